// What only the PostgreSQL backend has: nodes sharing one database at the same moment
// (concurrent claims, concurrent starts), and outages of the server.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "brandhooks/crypto.hpp"
#include "brandhooks/errors.hpp"
#include "brandhooks/hub.hpp"
#include "pg/connection.hpp"
#include "store.hpp"
#include "test_backends.hpp"

using namespace brandhooks;
using namespace brandhooks_test;

namespace {

const std::string kBrand = "11111111-1111-4111-8111-111111111111";

// Runs `sql` in a session the test keeps open (its transaction stays open between calls).
void exec(PGconn* conn, const std::string& sql) {
  PGresult* result = PQexec(conn, sql.c_str());
  auto status = PQresultStatus(result);
  std::string message = PQresultErrorMessage(result);
  PQclear(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw std::runtime_error(sql + ": " + message);
}

// The outcome of a delivery's next attempt: a 200 at 100.
AttemptRecord delivered(const DueDelivery& d) {
  AttemptRecord r;
  r.delivery_seq = d.seq;
  r.webhook_seq = d.webhook_seq;
  r.attempt.number = d.attempts_made + 1;
  r.attempt.started_at = 100;
  r.attempt.status = 200;
  r.new_state = DeliveryState::delivered;
  return r;
}

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_url_ = pg_admin_url();
    if (admin_url_.empty()) GTEST_SKIP() << "no PostgreSQL test server (run through ctest: fixture pg)";
    config_.db = create_pg_database(admin_url_, &name_);
  }
  void TearDown() override {
    if (name_.empty()) return;
    pg_query(admin_url_, "ALTER DATABASE " + name_ + " ALLOW_CONNECTIONS true");
    drop_pg_database(admin_url_, name_);
  }

  std::unique_ptr<Store> node(const std::string& id) {
    Config c = config_;
    c.node_id = id;
    return open_store(c);
  }

  // An outage of this test's database: no new connection is accepted and every open one is
  // cut, as when the server stops (the other tests' databases on the server carry on).
  void outage() {
    pg_query(admin_url_, "ALTER DATABASE " + name_ + " ALLOW_CONNECTIONS false");
    cut_connections();
  }
  void back() { pg_query(admin_url_, "ALTER DATABASE " + name_ + " ALLOW_CONNECTIONS true"); }
  void cut_connections() {
    pg_query(admin_url_, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name_ + "'");
  }

  static Webhook webhook(const std::string& id) {
    Webhook w;
    w.id = id;
    w.brand = kBrand;
    w.topic = "Deals";
    w.url = "https://example.com/" + id;
    w.key = std::string(64, 'a');
    w.created_at = w.updated_at = 1;
    return w;
  }
  static EventRecord event(int i) {
    EventRecord e;
    e.id = "e-" + std::to_string(i);
    e.brand = kBrand;
    e.topic = "Deals";
    e.event = "Created";
    e.body = "{\"n\":" + std::to_string(i) + "}";
    e.created_at = 1;
    e.first_attempt_at = 1;
    return e;
  }

  std::string admin_url_;
  std::string name_;
  Config config_;
};

}  // namespace

TEST_F(PgStoreTest, TwoNodesClaimingAtOnceNeverGetTheSameDelivery) {
  auto a = node("a");
  auto b = node("b");
  a->insert_webhook(webhook("w1"));
  a->insert_webhook(webhook("w2"));
  constexpr int kEvents = 1000;  // two webhooks: 2000 deliveries
  std::vector<EventRecord> events;
  for (int i = 0; i < kEvents; ++i) events.push_back(event(i));
  a->insert_events(events);

  std::mutex mutex;
  std::multiset<std::int64_t> claimed;
  std::map<std::string, int> per_node;
  auto work = [&](Store& store, const std::string& name) {
    for (;;) {
      auto due = store.claim_due(100, 37, {});
      if (due.empty()) return;
      std::vector<AttemptRecord> records;
      for (const auto& d : due) records.push_back(delivered(d));
      RecordResult result = store.record_attempts(records, 100, 0);
      EXPECT_EQ(result.lost, 0);
      std::lock_guard lock(mutex);
      for (const auto& d : due) claimed.insert(d.seq);
      per_node[name] += static_cast<int>(due.size());
    }
  };
  std::thread ta([&] { work(*a, "a"); });
  std::thread tb([&] { work(*b, "b"); });
  ta.join();
  tb.join();
  EXPECT_EQ(claimed.size(), 2u * kEvents);
  EXPECT_EQ(std::set<std::int64_t>(claimed.begin(), claimed.end()).size(), claimed.size()) << "a double claim";
  Stats stats = a->stats(100);
  EXPECT_EQ(stats.delivered, 2 * kEvents);
  EXPECT_EQ(stats.pending, 0);
  EXPECT_EQ(pg_query(config_.db, "SELECT count(*) FROM attempts")[0][0], std::to_string(2 * kEvents));
}

TEST_F(PgStoreTest, NodesStartingTogetherMigrateOnce) {
  constexpr int kNodes = 6;
  std::vector<std::thread> starting;
  std::atomic<int> failures{0};
  for (int i = 0; i < kNodes; ++i) {
    starting.emplace_back([&, i] {
      try {
        node("n" + std::to_string(i))->insert_webhook(webhook("w" + std::to_string(i)));
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    });
  }
  for (auto& t : starting) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto versions = pg_query(config_.db, "SELECT count(*), max(version) FROM brandhooks_schema");
  EXPECT_EQ(versions[0][0], std::to_string(pg_schema_version()));  // each version applied once
  EXPECT_EQ(versions[0][1], std::to_string(pg_schema_version()));
  EXPECT_EQ(node("check")->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}).total, kNodes);
}

// Schema step 6 takes each webhook's last success from the attempts already stored: a
// database of step 5 with a 2xx and a later 500 gets the 2xx's start, to the second.
TEST_F(PgStoreTest, AnUpgradedDatabaseTakesEachWebhooksLastSuccessFromItsAttempts) {
  {
    auto store = node("a");
    store->insert_webhook(webhook("ok"));
    store->insert_webhook(webhook("never"));
    store->insert_events({event(1), event(2)});  // one delivery per event and webhook
    pg_query(config_.db,
             "INSERT INTO attempts (delivery_seq, number, started_at, duration_us, status) "
             "SELECT d.seq, 1, CASE WHEN e.id = 'e-1' THEN 7500000 ELSE 9000000 END, 5, "
             "CASE WHEN w.id = 'ok' AND e.id = 'e-1' THEN 204 ELSE 500 END "
             "FROM deliveries d JOIN events e ON e.seq = d.event_seq JOIN webhooks w ON w.seq = d.webhook_seq");
  }
  // Back to step 5, as an older build left it (steps 7 to 9 undone too).
  pg_query(config_.db, "DROP INDEX webhooks_failing");
  pg_query(config_.db, "ALTER TABLE webhooks DROP COLUMN last_success_at");
  pg_query(config_.db, "DROP INDEX deliveries_by_event");
  pg_query(config_.db, "ALTER TABLE events DROP COLUMN traceparent, DROP COLUMN tracestate");
  pg_query(config_.db, "DELETE FROM brandhooks_schema WHERE version >= 6");
  auto store = node("b");
  EXPECT_EQ(store->find_webhook(kBrand, "ok")->last_success_at, 7'000'000);
  EXPECT_EQ(store->find_webhook(kBrand, "never")->last_success_at, std::nullopt);
}

TEST_F(PgStoreTest, RefusesADatabaseFromANewerVersion) {
  node("a");
  pg_query(config_.db, "INSERT INTO brandhooks_schema VALUES (" + std::to_string(pg_schema_version() + 1) + ")");
  try {
    node("b");
    FAIL() << "a newer schema was opened";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this build"), std::string::npos) << e.what();
  }
}

TEST_F(PgStoreTest, CutConnectionsAreReplacedWithoutAnError) {
  auto store = node("a");
  store->insert_webhook(webhook("w"));
  cut_connections();  // a server restart between two calls
  EXPECT_NO_THROW(store->insert_webhook(webhook("w2")));
  EXPECT_EQ(store->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}).total, 2);
}

TEST_F(PgStoreTest, AnOutageIsUnavailableAndTheStoreRecoversByItself) {
  auto store = node("a");
  store->insert_webhook(webhook("w"));
  store->insert_events({event(1)});
  auto held = store->claim_due(100, 10, {});
  ASSERT_EQ(held.size(), 1u);

  outage();
  auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(store->insert_webhook(webhook("x")), UnavailableError);
  EXPECT_THROW(store->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}), UnavailableError);
  EXPECT_THROW(store->insert_events({event(2)}), UnavailableError);
  EXPECT_THROW(store->claim_due(100, 10, {}), UnavailableError);
  EXPECT_THROW(store->renew_leases(100, {held[0].seq}, true), UnavailableError);
  EXPECT_THROW(store->stats(100), UnavailableError);
  EXPECT_THROW(store->check_writable(), UnavailableError);
  try {
    store->find_token(std::string(32, 'x'));
    ADD_FAILURE() << "no error during the outage";
  } catch (const UnavailableError& e) {
    EXPECT_NE(std::string(e.what()).find("database unavailable"), std::string::npos) << e.what();
  }
  // Every call fails fast: refused at once, no waiting for timeouts (generous bound).
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));

  back();
  // The same store, without a reopen: the outcome of the attempt made before the outage is
  // recorded (the lease is still this node's), and everything works again.
  EXPECT_EQ(store->record_attempts({delivered(held[0])}, 200, 0).lost, 0);
  EXPECT_NO_THROW(store->check_writable());
  store->insert_webhook(webhook("x"));
  EXPECT_EQ(store->insert_events({event(3)})[0].deliveries, 2);
  Stats stats = store->stats(300);
  EXPECT_EQ(stats.delivered, 1);
  EXPECT_EQ(stats.pending, 2);
}

TEST_F(PgStoreTest, AnUnreachableServerAtStartIsAClearErrorWithinSeconds) {
  // A port nobody listens on (the test server's, plus one, is as good as any: checked).
  Config c = config_;
  c.db = "postgresql://brandhooks:secret@127.0.0.1:1/brandhooks";
  auto started = std::chrono::steady_clock::now();
  try {
    open_store(c);
    FAIL() << "opened a store on a closed port";
  } catch (const UnavailableError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("cannot connect to PostgreSQL"), std::string::npos) << message;
    EXPECT_EQ(message.find("secret"), std::string::npos) << "the password leaked: " << message;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

TEST_F(PgStoreTest, OutcomesWithBinaryResponsesAndStrayBytesInDetailsAreRecorded) {
  auto store = node("a");
  store->insert_webhook(webhook("w"));
  store->insert_events({event(1)});
  auto due = store->claim_due(100, 10, {});
  ASSERT_EQ(due.size(), 1u);
  AttemptRecord r;
  r.delivery_seq = due[0].seq;
  r.webhook_seq = due[0].webhook_seq;
  r.attempt.number = 1;
  r.attempt.started_at = 100;
  r.attempt.error = AttemptError::protocol;
  r.attempt.detail = std::string("bad reason \xff\xfe with a \0 NUL", 26);  // not UTF-8, as a peer may send
  r.attempt.response = std::string("\0\x01\xff{\"a\":\"\\\"}", 12);       // any bytes
  r.new_state = DeliveryState::pending;
  r.next_at = 500;
  EXPECT_EQ(store->record_attempts({r}, 200, 0).lost, 0);  // a commit refused here would retry forever
  auto page = store->list_deliveries({kBrand, "w", std::nullopt, 0, 10});
  ASSERT_EQ(page.items.size(), 1u);
  ASSERT_EQ(page.items[0].attempts.size(), 1u);
  const Attempt& a = page.items[0].attempts[0];
  EXPECT_EQ(a.response, r.attempt.response);
  EXPECT_EQ(a.error, AttemptError::protocol);
  EXPECT_EQ(a.detail.substr(0, 11), "bad reason ");
  EXPECT_EQ(page.items[0].next_attempt_at, 500);
}

TEST_F(PgStoreTest, ALockHeldPastTheBusyTimeoutIsUnavailable) {
  config_.busy_timeout_ms = 200;  // lock_timeout on PostgreSQL
  auto store = node("a");
  store->insert_webhook(webhook("w"));
  // Another node (or an operator's session) holding the table, for longer than the timeout.
  PGconn* other = PQconnectdb(config_.db.c_str());
  ASSERT_EQ(PQstatus(other), CONNECTION_OK);
  PQclear(PQexec(other, "BEGIN"));
  PQclear(PQexec(other, "LOCK TABLE webhooks IN ACCESS EXCLUSIVE MODE"));
  try {
    store->insert_webhook(webhook("x"));
    ADD_FAILURE() << "no error while the table was locked";
  } catch (const UnavailableError& e) {
    EXPECT_NE(std::string(e.what()).find("lock timeout"), std::string::npos) << e.what();
  }
  PQclear(PQexec(other, "COMMIT"));
  PQfinish(other);
  EXPECT_NO_THROW(store->insert_webhook(webhook("x")));
  EXPECT_EQ(store->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}).total, 2);
}

TEST_F(PgStoreTest, OneNodePrunesAtATime) {
  auto store = node("a");
  store->insert_webhook(webhook("w"));
  store->insert_events({event(1), event(2)});
  auto due = store->claim_due(100, 10, {});
  ASSERT_EQ(due.size(), 2u);
  std::vector<AttemptRecord> records;
  for (const auto& d : due) records.push_back(delivered(d));
  store->record_attempts(records, 100, 0);
  // Another node is pruning (it holds the prune lock): this one skips the round.
  PGconn* other = PQconnectdb(config_.db.c_str());
  ASSERT_EQ(PQstatus(other), CONNECTION_OK);
  PQclear(PQexec(other, "SELECT pg_advisory_lock(x'62682d7072756e65'::bigint)"));
  EXPECT_EQ(store->prune(1000), 0);
  EXPECT_EQ(store->stats(0).delivered, 2);
  // It is done. (Unlocked before closing: PQfinish returns before the server has ended that
  // session, so the lock could outlive it for a moment.)
  PQclear(PQexec(other, "SELECT pg_advisory_unlock(x'62682d7072756e65'::bigint)"));
  PQfinish(other);
  EXPECT_EQ(store->prune(1000), 2);
  EXPECT_EQ(store->stats(0).delivered, 0);
  EXPECT_EQ(pg_query(config_.db, "SELECT count(*) FROM attempts")[0][0], "0");
}

// Two publishes committing concurrently (two nodes, or a publish and a test event) interleave
// their sequences: here the other node's event takes its seq first, this node's publish then
// commits whole, and the other's delivery comes last. Its event is older than the oldest
// remaining delivery's, and still has a delivery: pruning must keep it.
TEST_F(PgStoreTest, PruneKeepsAnEventWhoseDeliveriesRemainWhenPublishesInterleave) {
  auto store = node("a");
  store->insert_webhook(webhook("w"));
  PGconn* other = PQconnectdb(config_.db.c_str());
  ASSERT_EQ(PQstatus(other), CONNECTION_OK);
  exec(other, "BEGIN");
  exec(other, "INSERT INTO events (id, brand, topic, event, body, created_at) "
              "VALUES ('e-other', '" + kBrand + "', 'Deals', 'Created', '\\x7b7d', 1)");
  store->insert_events({event(1)});
  exec(other, "INSERT INTO deliveries (id, event_seq, webhook_seq, state, next_at, created_at, updated_at) "
              "SELECT 'd-other', e.seq, w.seq, 'pending', 1, 1, 1 FROM events e, webhooks w "
              "WHERE e.id = 'e-other' AND w.id = 'w'");
  exec(other, "COMMIT");
  PQfinish(other);
  ASSERT_EQ(pg_query(config_.db, "SELECT min(d.seq) = max(d.seq) FILTER (WHERE e.id = 'e-1') FROM deliveries d "
                                 "JOIN events e ON e.seq = d.event_seq")[0][0], "t")
      << "the younger event's delivery comes first";

  EXPECT_EQ(store->prune(1000), 0);  // nothing has finished
  EXPECT_EQ(pg_query(config_.db, "SELECT count(*) FROM events")[0][0], "2");
  auto due = store->claim_due(100, 10, {});
  ASSERT_EQ(due.size(), 2u) << "both deliveries can still be sent";
  EXPECT_TRUE(store->get_delivery(kBrand, "d-other").has_value());
  std::vector<AttemptRecord> records;
  for (const auto& d : due) records.push_back(delivered(d));
  EXPECT_EQ(store->record_attempts(records, 100, 0).lost, 0);
  EXPECT_EQ(store->prune(1000), 2);  // finished: both deliveries go, then both events
  EXPECT_EQ(pg_query(config_.db, "SELECT count(*) FROM events")[0][0], "0");
}

// Schema step 8 cancels what an older build's prune left: pending deliveries without their
// event, which no claim can ever send; the counts follow.
TEST_F(PgStoreTest, AnUpgradedDatabaseCancelsDeliveriesLeftWithoutTheirEvent) {
  {
    auto store = node("a");
    store->insert_webhook(webhook("w"));
    store->insert_events({event(1), event(2)});
  }
  pg_query(config_.db, "DELETE FROM events WHERE id = 'e-1'");
  // Back to step 7, as an older build left it (step 9 undone too).
  pg_query(config_.db, "DROP INDEX deliveries_by_event");
  pg_query(config_.db, "ALTER TABLE events DROP COLUMN traceparent, DROP COLUMN tracestate");
  pg_query(config_.db, "DELETE FROM brandhooks_schema WHERE version >= 8");
  auto store = node("b");
  Stats stats = store->stats(0);
  EXPECT_EQ((std::pair{stats.pending, stats.cancelled}), (std::pair<std::int64_t, std::int64_t>{1, 1}));
  EXPECT_EQ(store->next_due_at(), 1);
  EXPECT_EQ(store->claim_due(100, 10, {}).size(), 1u);
}

// A database (or a role) may keep the old bytea_output = 'escape': bodies and idempotency
// hashes come back as they went in.
TEST_F(PgStoreTest, BytesComeBackWhateverTheByteaOutputFormat) {
  pg_query(admin_url_, "ALTER DATABASE " + name_ + " SET bytea_output = 'escape'");
  auto store = node("a");
  ASSERT_EQ(pg_query(config_.db, "SHOW bytea_output")[0][0], "escape");
  store->insert_webhook(webhook("w"));
  EventRecord e = event(1);
  e.body.clear();
  for (int b = 0; b < 256; ++b) e.body += static_cast<char>(b);
  e.body += "\\\\x41\\";
  store->insert_events({e});
  auto due = store->claim_due(100, 10, {});
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(*due[0].body, e.body);

  // An idempotency key's request hash (raw bytes) is compared after reading it back.
  auto publish = [&](const std::string& id) {
    EventRecord again = event(2);
    again.id = id;
    IdempotencyClaim claim;
    claim.brand = kBrand;
    claim.key = "k";
    claim.request_hash = sha256("the same request");
    claim.count = 1;
    claim.now = 10;
    std::vector<IdempotencyClaim> claims{claim};
    auto results = store->insert_events({again}, {}, nullptr, &claims);
    return std::pair{claims[0].outcome, results[0].event_id};
  };
  EXPECT_EQ(publish("first").first, IdempotencyClaim::Outcome::fresh);
  EXPECT_EQ(publish("second"), (std::pair{IdempotencyClaim::Outcome::replayed, std::string("first")}));
}

// Two requests with one Idempotency-Key whose stored use has just expired: both find it
// expired and both take it afresh, one after the other (the second waits for the first's row
// lock). The window is checked again in the UPDATE: the second replays the first's answer.
TEST_F(PgStoreTest, AKeyReusedAsItsWindowEndsPublishesOnceWhenTwoRequestsRace) {
  auto store = node("a");
  store->insert_webhook(webhook("w"));
  pg_query(config_.db, "INSERT INTO idempotency_keys (brand, key, request_hash, results, created_at) "
                       "VALUES ('" + kBrand + "', 'k', '\\x00', '[[\"old\",1]]', 5)");
  PGconn* locker = PQconnectdb(config_.db.c_str());
  ASSERT_EQ(PQstatus(locker), CONNECTION_OK);
  exec(locker, "BEGIN");
  exec(locker, "SELECT * FROM idempotency_keys FOR UPDATE");  // both requests queue behind it
  std::vector<IdempotencyClaim::Outcome> outcomes(2);
  std::vector<std::string> ids(2);
  auto request = [&](int i) {
    IdempotencyClaim claim;
    claim.brand = kBrand;
    claim.key = "k";
    claim.request_hash = sha256("one request");
    claim.count = 1;
    claim.now = 1'000'000;
    claim.expired_before = 100;  // the stored use (at 5) is past its window
    std::vector<IdempotencyClaim> claims{claim};
    EventRecord e = event(10 + i);
    auto results = store->insert_events({e}, {}, nullptr, &claims);
    outcomes[i] = claims[0].outcome;
    ids[i] = results[0].event_id;
  };
  std::thread first(request, 0), second(request, 1);
  for (int i = 0; i < 200; ++i) {  // both wait on the key's row
    if (pg_query(config_.db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                             "AND wait_event_type = 'Lock'")[0][0] == "2") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  exec(locker, "COMMIT");
  first.join();
  second.join();
  PQfinish(locker);
  EXPECT_EQ(pg_query(config_.db, "SELECT count(*) FROM events")[0][0], "1") << "published twice";
  std::multiset<IdempotencyClaim::Outcome> seen(outcomes.begin(), outcomes.end());
  EXPECT_EQ(seen.count(IdempotencyClaim::Outcome::fresh), 1u);
  EXPECT_EQ(seen.count(IdempotencyClaim::Outcome::replayed), 1u);
  EXPECT_EQ(ids[0], ids[1]) << "both answer the one event";
}

// Retry-After follows the outage: a moment after it began (a restart, a failover), 1 s; half
// as long again as it has lasted so far, up to 10 s.
TEST(PgRetryAfter, FollowsHowLongTheServerHasBeenAway) {
  EXPECT_EQ(pg::Pool::retry_after_s(0), 1);
  EXPECT_EQ(pg::Pool::retry_after_s(1.5), 1);
  EXPECT_EQ(pg::Pool::retry_after_s(6), 3);
  EXPECT_EQ(pg::Pool::retry_after_s(600), 10);
}

TEST_F(PgStoreTest, ARefusedConnectionAsksForARetrySoon) {
  Config c = config_;
  c.db = "postgresql://postgres@127.0.0.1:1/brandhooks";
  try {
    open_store(c);
    FAIL() << "opened a store on a closed port";
  } catch (const UnavailableError& e) {
    EXPECT_EQ(e.retry_after_s(), 1) << "the outage has just begun";
  }
}
