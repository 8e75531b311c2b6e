#include <gtest/gtest.h>
#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unistd.h>

#include "brandhooks/crypto.hpp"
#include "brandhooks/errors.hpp"
#include "brandhooks/hub.hpp"
#include "store.hpp"
#include "store_common.hpp"
#include "test_backends.hpp"

using namespace brandhooks;
using namespace brandhooks_test;
namespace fs = std::filesystem;

namespace {
Webhook make_webhook(const std::string& id, const std::string& brand, const std::string& topic) {
  Webhook w;
  w.id = id;
  w.brand = brand;
  w.topic = topic;
  w.url = "https://example.com/" + id;
  w.key = std::string(64, 'a');
  w.created_at = w.updated_at = 1'700'000'000'123'456;
  return w;
}

// A fresh directory per test, removed afterwards.
fs::path test_dir(const std::string& prefix) {
  std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::replace(name.begin(), name.end(), '/', '_');
  fs::path dir = fs::temp_directory_path() / (prefix + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// SQLite only: a fresh database file per test.
class StoreFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_dir("brandhooks-test-");
    config_.db = (dir_ / "store.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  Config config_;
};

// Both backends: a fresh SQLite file, or a fresh PostgreSQL database, per test.
class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    database_.emplace(GetParam(), "brandhooks-test-");
    dir_ = database_->dir();
    config_.db = database_->db();
    if (config_.db.empty()) GTEST_SKIP() << kNoPgServer;
  }
  void TearDown() override { database_.reset(); }

  // Every row of `sql` run directly on the test's database, columns as text.
  std::vector<std::vector<std::string>> query(const std::string& sql) {
    if (GetParam() == Backend::pg) return pg_query(config_.db, sql);
    SQLite::Database db(config_.db);
    SQLite::Statement q(db, sql);
    std::vector<std::vector<std::string>> rows;
    while (q.executeStep()) {
      rows.emplace_back();
      for (int c = 0; c < q.getColumnCount(); ++c) rows.back().push_back(q.getColumn(c).getString());
    }
    return rows;
  }
  std::string scalar(const std::string& sql) { return query(sql).at(0).at(0); }

  // The counts stats() reports against a GROUP BY over every row.
  void expect_counts_match(brandhooks::Store& store, const std::string& when) {
    std::map<std::string, std::int64_t> truth;
    for (const auto& row : query("SELECT state, count(*) FROM deliveries GROUP BY state")) {
      truth[row[0]] = std::stoll(row[1]);
    }
    Stats stats = store.stats(0);
    EXPECT_EQ(stats.pending, truth["pending"]) << when;
    EXPECT_EQ(stats.delivered, truth["delivered"]) << when;
    EXPECT_EQ(stats.failed, truth["failed"]) << when;
    EXPECT_EQ(stats.cancelled, truth["cancelled"]) << when;
  }

  fs::path dir_;
  Config config_;
  std::optional<TestDatabase> database_;
};

std::string backend_test_name(const ::testing::TestParamInfo<Backend>& info) { return backend_name(info.param); }

const std::string kBrand = "11111111-1111-4111-8111-111111111111";
}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values(Backend::sqlite, Backend::pg), backend_test_name);

// The names are the REST contract's and the database's: they must never change.
TEST(StoreCommon, StateAndErrorNamesRoundTrip) {
  std::vector<std::string> names;
  for (DeliveryState state : kDeliveryStates) {
    names.emplace_back(to_string(state));
    EXPECT_EQ(delivery_state_from(to_string(state)), state);
    EXPECT_EQ(stored_delivery_state(std::string(to_string(state))), state);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"pending", "delivered", "failed", "cancelled"}));
  EXPECT_EQ(delivery_state_from("Pending"), std::nullopt);
  EXPECT_THROW(stored_delivery_state("lost"), StorageError);

  EXPECT_EQ(to_string(AttemptError::none), "");
  for (auto [error, name] : {std::pair{AttemptError::timeout, "timeout"}, {AttemptError::dns, "dns"},
                             {AttemptError::blocked, "blocked"}, {AttemptError::connect, "connect"},
                             {AttemptError::tls, "tls"}, {AttemptError::network, "network"},
                             {AttemptError::protocol, "protocol"}}) {
    EXPECT_EQ(to_string(error), name);
    EXPECT_EQ(attempt_error_from(name), error);
  }
  EXPECT_EQ(attempt_error_from("nope"), std::nullopt);
}

// A batch folds into one streak per webhook: the last success resets it, and the first
// failure after it starts the new one.
TEST(StoreCommon, FailureStreaksFoldABatchInOrder) {
  FailureStreaks streaks;
  streaks.add(1, DeliveryState::pending, 10);
  streaks.add(1, DeliveryState::failed, 20);
  streaks.add(2, DeliveryState::pending, 10);
  streaks.add(2, DeliveryState::delivered, 20);
  streaks.add(2, DeliveryState::pending, 30);
  streaks.add(2, DeliveryState::pending, 40);
  streaks.add(3, DeliveryState::delivered, 50);
  const auto& by = streaks.by_webhook();
  ASSERT_EQ(by.size(), 3u);
  EXPECT_FALSE(by.at(1).succeeded);
  EXPECT_EQ(by.at(1).failing_from, 10);
  EXPECT_TRUE(by.at(2).succeeded);
  EXPECT_EQ(by.at(2).failing_from, 30);
  EXPECT_TRUE(by.at(3).succeeded);
  EXPECT_EQ(by.at(3).failing_from, std::nullopt);
}

TEST_F(StoreFile, UsesWalAndCurrentSchema) {
  open_sqlite_store(config_);
  SQLite::Database db(config_.db);
  EXPECT_EQ(db.execAndGet("PRAGMA journal_mode").getString(), "wal");
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), sqlite_schema_version());
}

TEST_P(StoreTest, DataSurvivesReopen) {
  {
    auto store = open_store(config_);
    store->insert_webhook(make_webhook("w1", kBrand, "Deals"));
  }
  auto store = open_store(config_);
  auto found = store->find_live_webhook(kBrand, "w1");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->url, "https://example.com/w1");
  EXPECT_EQ(found->created_at, 1'700'000'000'123'456);
}

TEST_F(StoreFile, OpensAFileOfEveryOlderSchemaVersion) {
  for (int old_version = 1; old_version <= sqlite_schema_version(); ++old_version) {
    fs::remove(config_.db);
    {
      SQLite::Database db(config_.db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      for (int v = 0; v < old_version; ++v) db.exec(sqlite_migration(v));
      db.exec("PRAGMA user_version = " + std::to_string(old_version));
      db.exec("INSERT INTO brands VALUES ('" + kBrand + "', NULL, 1, 1)");
      db.exec("INSERT INTO webhooks (id, brand, topic, url, key, tags, created_at, updated_at) "
              "VALUES ('old', '" + kBrand + "', 'Deals', 'https://old.example/', '" +
              std::string(64, 'b') + "', '[\"t\"]', 1, 1)");
    }
    bool counts_from_rows = old_version == 2 || old_version == 3;  // deliveries before delivery_counts
    if (counts_from_rows) {
      SQLite::Database db(config_.db, SQLite::OPEN_READWRITE);
      db.exec("INSERT INTO events (id, brand, topic, event, body, created_at) VALUES "
              "('e', '" + kBrand + "', 'Deals', 'Created', '{}', 1)");
      db.exec("INSERT INTO deliveries (id, event_seq, webhook_seq, state, next_at, created_at, updated_at) "
              "VALUES ('d1', 1, 1, 'delivered', NULL, 1, 1), ('d2', 1, 1, 'pending', 5, 1, 1), "
              "('d3', 1, 1, 'pending', 5, 1, 1)");
    }
    if (old_version == 4) {  // a delivery leased by a node of the days before lease owners
      SQLite::Database db(config_.db, SQLite::OPEN_READWRITE);
      db.exec("INSERT INTO events (id, brand, topic, event, body, created_at) VALUES "
              "('e', '" + kBrand + "', 'Deals', 'Created', '{}', 1)");
      db.exec("INSERT INTO deliveries (id, event_seq, webhook_seq, state, next_at, created_at, updated_at, leased) "
              "VALUES ('d1', 1, 1, 'pending', 5, 1, 1, 1)");
      db.exec("UPDATE delivery_counts SET n = 1 WHERE state = 'pending'");
    }
    auto store = open_sqlite_store(config_);
    auto found = store->find_live_webhook(kBrand, "old");
    ASSERT_TRUE(found) << "from version " << old_version;
    if (old_version == 4) {
      EXPECT_EQ(store->claim_due(10, 10, {}).size(), 1u);  // its holder is unknown: due again at once
      EXPECT_EQ(store->stats(10).pending, 1);
    }
    EXPECT_EQ(found->tags, std::vector<std::string>{"t"});
    if (counts_from_rows) {
      Stats stats = store->stats(10);
      EXPECT_EQ(stats.delivered, 1);
      EXPECT_EQ(stats.pending, 2);
      EXPECT_EQ(stats.due_now, 2);
      EXPECT_EQ(store->claim_due(10, 10, {}).size(), 2u);
    }
    SQLite::Database db(config_.db);
    EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), sqlite_schema_version());
  }
}

TEST_F(StoreFile, RefusesAFileFromANewerVersion) {
  {
    SQLite::Database db(config_.db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA user_version = " + std::to_string(sqlite_schema_version() + 1));
  }
  EXPECT_THROW(open_sqlite_store(config_), StorageError);
}

TEST_F(StoreFile, RefusesAFileThatIsNotADatabase) {
  { std::ofstream(config_.db) << std::string(4096, 'x'); }
  EXPECT_THROW(open_sqlite_store(config_), StorageError);
}

TEST_P(StoreTest, ListFiltersPagesAndCounts) {
  auto store = open_store(config_);
  for (int i = 0; i < 5; ++i) {
    store->insert_webhook(make_webhook("d" + std::to_string(i), kBrand, "Deals"));
    store->insert_webhook(make_webhook("s" + std::to_string(i), kBrand, "Showings"));
  }
  store->soft_delete_webhook(kBrand, "d0", 2);

  auto all = store->list_webhooks({kBrand, std::nullopt, 0, std::nullopt});
  EXPECT_EQ(all.total, 9);
  EXPECT_EQ(all.items.size(), 9u);

  auto deals = store->list_webhooks({kBrand, "Deals", 1, 2});
  EXPECT_EQ(deals.total, 4);
  ASSERT_EQ(deals.items.size(), 2u);
  EXPECT_EQ(deals.items[0].id, "d2");  // insertion order, d0 deleted
  EXPECT_EQ(deals.items[1].id, "d3");
}

TEST_P(StoreTest, SoftDeleteKeepsTheRowAndHidesIt) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  auto deleted = store->soft_delete_webhook(kBrand, "w", 42);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->deleted_at, 42);
  EXPECT_FALSE(store->soft_delete_webhook(kBrand, "w", 43));  // already deleted
  EXPECT_FALSE(store->find_live_webhook(kBrand, "w"));
  EXPECT_EQ(scalar("SELECT deleted_at FROM webhooks WHERE id = 'w'"), "42");
}

TEST_P(StoreTest, BrandTreeRefusesCycles) {
  auto store = open_store(config_);
  const std::string a = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
  const std::string b = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
  const std::string c = "cccccccc-cccc-4ccc-8ccc-cccccccccccc";
  store->set_brand_parent(b, a, 1);
  store->set_brand_parent(c, b, 1);
  EXPECT_EQ(store->brand_lineage(c), (std::vector<std::string>{c, b, a}));
  EXPECT_THROW(store->set_brand_parent(a, c, 2), ConflictError);
  EXPECT_EQ(store->brand_parent(a), std::nullopt);
  store->set_brand_parent(c, std::nullopt, 3);
  EXPECT_EQ(store->brand_lineage(c), std::vector<std::string>{c});
}

TEST_P(StoreTest, ConcurrentWritersLoseNothing) {
  auto store = open_store(config_);
  constexpr int kThreads = 8, kEach = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        try {
          std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
          store->insert_webhook(make_webhook(id, kBrand, "Contacts"));
          if (i % 2 == 0) store->soft_delete_webhook(kBrand, id, 5);
          store->list_webhooks({kBrand, "Contacts", 0, 10});
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}).total,
            kThreads * kEach / 2);
}

// --- the delivery queue ---------------------------------------------------------------------

namespace {
EventRecord event_for(const std::string& brand, const std::string& topic, std::int64_t due) {
  EventRecord e;
  static int counter = 0;
  e.id = "e-" + std::to_string(++counter);
  e.brand = brand;
  e.topic = topic;
  e.event = "Created";
  e.body = R"({"topic":")" + topic + R"("})";
  e.created_at = 1;
  e.first_attempt_at = due;
  return e;
}

AttemptRecord outcome(const DueDelivery& d, DeliveryState state, std::optional<std::int64_t> next_at,
                      int status) {
  AttemptRecord r;
  r.delivery_seq = d.seq;
  r.webhook_seq = d.webhook_seq;
  r.attempt.number = d.attempts_made + 1;
  r.attempt.started_at = 100;
  r.attempt.duration_us = 5;
  r.attempt.status = status;
  r.new_state = state;
  r.next_at = next_at;
  return r;
}
}  // namespace

TEST_P(StoreTest, PublishMatchesLiveWebhooksOfTheTopicAndAncestors) {
  auto store = open_store(config_);
  const std::string parent = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
  store->set_brand_parent(kBrand, parent, 1);
  store->insert_webhook(make_webhook("own", kBrand, "Deals"));
  store->insert_webhook(make_webhook("parent", parent, "Deals"));
  store->insert_webhook(make_webhook("other-topic", kBrand, "Showings"));
  store->insert_webhook(make_webhook("gone", kBrand, "Deals"));
  store->soft_delete_webhook(kBrand, "gone", 2);

  auto results = store->insert_events({event_for(kBrand, "Deals", 10), event_for(parent, "Deals", 10)});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].deliveries, 2);  // own + parent's
  EXPECT_EQ(results[1].deliveries, 1);  // the parent's event does not go down to the child
}

TEST_P(StoreTest, ClaimLeasesDueDeliveriesOnceInDueOrder) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  store->insert_events({event_for(kBrand, "Deals", 30), event_for(kBrand, "Deals", 10),
                        event_for(kBrand, "Deals", 20), event_for(kBrand, "Deals", 1000)});
  EXPECT_EQ(store->next_due_at(), 10);

  auto first = store->claim_due(25, 10, {});
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(*first[0].body, R"({"topic":"Deals"})");
  EXPECT_EQ(first[0].target->url, "https://example.com/w");
  EXPECT_TRUE(store->claim_due(25, 10, {}).empty());  // leased: not handed out twice
  EXPECT_EQ(store->next_due_at(), 30);

  auto rest = store->claim_due(2000, 1, {});
  ASSERT_EQ(rest.size(), 1u);  // the limit holds
  EXPECT_EQ(store->claim_due(2000, 10, {rest[0].webhook_seq}).size(), 0u);  // skipped webhook
}

TEST_P(StoreTest, ReleasedLeasesBecomeDueAgain) {
  config_.node_id = "node-a";  // a restart under the same node id
  {
    auto store = open_store(config_);
    store->insert_webhook(make_webhook("w", kBrand, "Deals"));
    store->insert_events({event_for(kBrand, "Deals", 10)});
    ASSERT_EQ(store->claim_due(10, 10, {}).size(), 1u);
  }  // "crash" with the delivery leased
  auto store = open_store(config_);
  EXPECT_TRUE(store->claim_due(10, 10, {}).empty());
  store->release_leases(10);  // what the dispatcher does on start
  EXPECT_EQ(store->claim_due(10, 10, {}).size(), 1u);
}

TEST_P(StoreTest, RecordedAttemptsScheduleRetriesAndFinish) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  store->insert_events({event_for(kBrand, "Deals", 10)});
  auto d = store->claim_due(10, 10, {}).at(0);
  store->record_attempts({outcome(d, DeliveryState::pending, 50, 500)}, 20, 0);
  EXPECT_EQ(store->next_due_at(), 50);
  EXPECT_TRUE(store->claim_due(49, 10, {}).empty());
  auto again = store->claim_due(50, 10, {}).at(0);
  EXPECT_EQ(again.attempts_made, 1);
  store->record_attempts({outcome(again, DeliveryState::delivered, std::nullopt, 200)}, 60, 0);
  EXPECT_FALSE(store->next_due_at());

  auto page = store->list_deliveries({kBrand, "w", std::nullopt, 0, 10});
  ASSERT_EQ(page.total, 1);
  const Delivery& delivery = page.items[0];
  EXPECT_EQ(delivery.state, DeliveryState::delivered);
  EXPECT_EQ(delivery.attempt_count, 2);
  ASSERT_EQ(delivery.attempts.size(), 2u);
  EXPECT_EQ(delivery.attempts[0].status, 500);
  EXPECT_EQ(delivery.attempts[1].status, 200);
  EXPECT_EQ(store->list_deliveries({kBrand, "w", "pending", 0, 10}).total, 0);
}

TEST_P(StoreTest, DisablingAWebhookCancelsItsQueue) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  store->insert_events({event_for(kBrand, "Deals", 10), event_for(kBrand, "Deals", 20)});
  auto d = store->claim_due(10, 1, {}).at(0);
  AttemptRecord gone = outcome(d, DeliveryState::failed, std::nullopt, 410);
  gone.disable_reason = "410";
  store->record_attempts({gone}, 11, 0);
  auto w = store->find_webhook(kBrand, "w");
  ASSERT_TRUE(w && w->disabled_at);
  EXPECT_EQ(w->disabled_reason, "410");
  EXPECT_EQ(store->list_deliveries({kBrand, "w", "cancelled", 0, 10}).total, 1);
  EXPECT_TRUE(store->claim_due(100, 10, {}).empty());
  EXPECT_EQ(store->insert_events({event_for(kBrand, "Deals", 30)})[0].deliveries, 0);
}

TEST_P(StoreTest, FailingTooLongDisables) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  store->insert_events({event_for(kBrand, "Deals", 10)});
  auto d = store->claim_due(10, 1, {}).at(0);
  store->record_attempts({outcome(d, DeliveryState::pending, 20, 500)}, 100, /*disable_before=*/50);
  EXPECT_FALSE(store->find_webhook(kBrand, "w")->disabled_at);  // failing since 100 > 50
  auto again = store->claim_due(20, 1, {}).at(0);
  AttemptRecord late = outcome(again, DeliveryState::pending, 30, 500);
  late.attempt.started_at = 300;
  store->record_attempts({late}, 300, /*disable_before=*/150);
  EXPECT_TRUE(store->find_webhook(kBrand, "w")->disabled_at);  // failing since 100 <= 150
}

// webhook_state's failing_since and last_success_at: a success ends the streak and stamps its
// start to the second (never moving back), a failure starts a streak and keeps the last
// success, a re-enable clears the streak.
TEST_P(StoreTest, FailureStreakAndLastSuccessFollowTheOutcomes) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  store->insert_events({event_for(kBrand, "Deals", 10), event_for(kBrand, "Deals", 10), event_for(kBrand, "Deals", 10),
                        event_for(kBrand, "Deals", 10), event_for(kBrand, "Deals", 10)});
  auto due = store->claim_due(10, 10, {});
  ASSERT_EQ(due.size(), 5u);
  auto at = [](const DueDelivery& d, DeliveryState state, int status, std::int64_t started_at) {
    AttemptRecord r = outcome(d, state, state == DeliveryState::pending ? std::optional<std::int64_t>(1'000'000'000'000)
                                                                        : std::nullopt, status);
    r.attempt.started_at = started_at;
    return r;
  };
  auto state = [&] { return *store->find_webhook(kBrand, "w"); };
  EXPECT_EQ(state().failing_since, std::nullopt);
  EXPECT_EQ(state().last_success_at, std::nullopt);

  store->record_attempts({at(due[0], DeliveryState::delivered, 200, 5'000'700'000)}, 5'001'000'000, 0);
  EXPECT_EQ(state().last_success_at, 5'000'000'000);  // to the second
  EXPECT_EQ(state().failing_since, std::nullopt);

  store->record_attempts({at(due[1], DeliveryState::pending, 500, 6'000'300'000)}, 6'001'000'000, 0);
  EXPECT_EQ(state().failing_since, 6'000'300'000);
  EXPECT_EQ(state().last_success_at, 5'000'000'000);
  store->record_attempts({at(due[2], DeliveryState::failed, 500, 7'000'000'000)}, 7'001'000'000, 0);
  EXPECT_EQ(state().failing_since, 6'000'300'000);  // the streak goes on
  EXPECT_EQ(state().last_success_at, 5'000'000'000);

  // A success older than the stored one (a slow attempt recorded late) does not move it back;
  // the failure after it in the batch starts a new streak.
  store->record_attempts({at(due[3], DeliveryState::delivered, 200, 4'000'000'000),
                          at(due[4], DeliveryState::pending, 500, 8'000'000'000)},
                         8'001'000'000, 0);
  EXPECT_EQ(state().failing_since, 8'000'000'000);
  EXPECT_EQ(state().last_success_at, 5'000'000'000);

  WebhookPatch enable;
  enable.enabled = true;
  store->update_webhook(kBrand, "w", enable, 9'000'000'000);
  EXPECT_EQ(state().failing_since, std::nullopt);
  EXPECT_EQ(state().last_success_at, 5'000'000'000);

  auto retry = store->claim_due(1'000'000'000'000, 10, {});
  ASSERT_EQ(retry.size(), 2u);
  store->record_attempts({at(retry[0], DeliveryState::delivered, 200, 10'000'999'999)}, 10'001'000'000, 0);
  EXPECT_EQ(state().last_success_at, 10'000'000'000);
  EXPECT_EQ(state().failing_since, std::nullopt);
}

// The gauges a scrape reads (Gauges): the due queue is counted no further than kDueCountLimit
// (a scrape's cost stays flat however long the queue grows), its head and the per-state counts
// stay exact.
TEST_P(StoreTest, GaugesCountTheDueQueueOnlyUpToTheLimit) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  std::vector<EventRecord> events;
  for (std::int64_t i = 0; i < kDueCountLimit + 5; ++i) events.push_back(event_for(kBrand, "Deals", 10 + i % 7));
  store->insert_events(events);
  Gauges g = store->gauges(100);
  EXPECT_EQ(g.due_now, kDueCountLimit);
  EXPECT_EQ(g.pending, kDueCountLimit + 5);
  EXPECT_EQ(g.oldest_due_at, 10);
  EXPECT_EQ(g.webhooks, 1);
  Stats stats = store->stats(100);
  EXPECT_EQ(stats.due_now, kDueCountLimit);
  EXPECT_EQ(stats.events, kDueCountLimit + 5);
  // Nothing due yet: an empty queue has no head.
  Gauges early = store->gauges(9);
  EXPECT_EQ(early.due_now, 0);
  EXPECT_EQ(early.oldest_due_at, std::nullopt);
}

// The webhook failing the longest: live and enabled webhooks only, by the start of the streak.
TEST_P(StoreTest, GaugesNameTheWebhookFailingTheLongest) {
  auto store = open_store(config_);
  for (const char* id : {"w1", "w2", "w3"}) store->insert_webhook(make_webhook(id, kBrand, "Deals"));
  store->insert_events({event_for(kBrand, "Deals", 10), event_for(kBrand, "Deals", 10)});
  auto due = store->claim_due(10, 10, {});
  ASSERT_EQ(due.size(), 6u);
  EXPECT_EQ(store->gauges(10).longest_failing, std::nullopt);
  std::map<std::int64_t, std::vector<DueDelivery>> by_webhook;
  for (const auto& d : due) by_webhook[d.webhook_seq].push_back(d);
  std::map<std::string, std::int64_t> seq;
  for (const auto& row : query("SELECT id, seq FROM webhooks")) seq[row[0]] = std::stoll(row[1]);
  auto fail = [&](const std::string& webhook, int n, std::int64_t started_at) {
    AttemptRecord r = outcome(by_webhook.at(seq.at(webhook)).at(n), DeliveryState::pending, 1'000'000'000'000, 500);
    r.attempt.started_at = started_at;
    store->record_attempts({r}, started_at + 1000, 0);
  };
  fail("w2", 0, 2'000'000'000);
  fail("w1", 0, 3'000'000'000);
  fail("w3", 0, 1'000'000'000);
  auto longest = [&] { return store->gauges(10).longest_failing; };
  ASSERT_TRUE(longest());
  EXPECT_EQ(longest()->id, "w3");
  EXPECT_EQ(longest()->brand, kBrand);
  EXPECT_EQ(longest()->since, 1'000'000'000);

  store->soft_delete_webhook(kBrand, "w3", 4'000'000'000);  // deleted: not counted
  EXPECT_EQ(longest()->id, "w2");
  WebhookPatch disable;
  disable.enabled = false;
  store->update_webhook(kBrand, "w2", disable, 4'000'000'000);  // disabled: not counted either
  EXPECT_EQ(longest()->id, "w1");
  AttemptRecord success = outcome(by_webhook.at(seq.at("w1")).at(1), DeliveryState::delivered, std::nullopt, 200);
  success.attempt.started_at = 5'000'000'000;
  store->record_attempts({success}, 5'000'001'000, 0);  // the streak ends
  EXPECT_EQ(longest(), std::nullopt);
}

// A healthy, busy webhook's row is written at most once per second: outcomes in the second
// already recorded leave it untouched (on PostgreSQL its xmin stays; on SQLite a trigger
// counts the writes), so nodes recording its outcomes at once do not queue on it.
TEST_P(StoreTest, AHealthyWebhooksRowIsWrittenAtMostOncePerSecond) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  std::vector<EventRecord> events;
  for (int i = 0; i < 4; ++i) events.push_back(event_for(kBrand, "Deals", 10));
  store->insert_events(events);
  auto due = store->claim_due(10, 10, {});
  ASSERT_EQ(due.size(), 4u);
  auto success = [](const DueDelivery& d, std::int64_t started_at) {
    AttemptRecord r = outcome(d, DeliveryState::delivered, std::nullopt, 200);
    r.attempt.started_at = started_at;
    return r;
  };
  std::function<std::string()> writes;
  if (GetParam() == Backend::pg) {
    writes = [&] { return scalar("SELECT xmin::text FROM webhooks"); };
  } else {
    SQLite::Database db(config_.db, SQLite::OPEN_READWRITE);
    db.exec("CREATE TABLE webhook_writes (n INTEGER);"
            "CREATE TRIGGER count_webhook_writes AFTER UPDATE ON webhooks BEGIN INSERT INTO webhook_writes VALUES (1); END");
    writes = [&] { return scalar("SELECT count(*) FROM webhook_writes"); };
  }

  store->record_attempts({success(due[0], 5'000'100'000)}, 5'000'200'000, 0);
  std::string first = writes();
  store->record_attempts({success(due[1], 5'000'300'000), success(due[2], 5'000'900'000)}, 5'001'000'000, 0);
  EXPECT_EQ(writes(), first);  // the same second: no write
  EXPECT_EQ(store->find_webhook(kBrand, "w")->last_success_at, 5'000'000'000);
  store->record_attempts({success(due[3], 5'001'000'000)}, 5'001'100'000, 0);
  EXPECT_NE(writes(), first);  // the next second: one
  EXPECT_EQ(store->find_webhook(kBrand, "w")->last_success_at, 5'001'000'000);
}

TEST_P(StoreTest, PublishCanHandOverDueDeliveriesAlreadyLeased) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("a", kBrand, "Deals"));
  store->insert_webhook(make_webhook("b", kBrand, "Deals"));
  EventRecord due_now = event_for(kBrand, "Deals", 1);  // first attempt at its creation time
  EventRecord later = event_for(kBrand, "Deals", 50);   // first attempt later: never handed over
  std::vector<DueDelivery> leased;
  auto results = store->insert_events({due_now, later}, LeaseRoom{1, SIZE_MAX}, &leased);
  EXPECT_EQ(results[0].deliveries, 2);
  ASSERT_EQ(leased.size(), 1u);  // the room given, no more
  EXPECT_EQ(*leased[0].body, due_now.body);
  EXPECT_EQ(leased[0].target->url, "https://example.com/a");
  EXPECT_EQ(leased[0].target->keys, std::vector<std::string>{std::string(64, 'a')});

  auto claimed = store->claim_due(100, 10, {});  // everything else, never the handed-over one
  EXPECT_EQ(claimed.size(), 3u);
  for (const auto& d : claimed) EXPECT_NE(d.seq, leased[0].seq);
  store->release_leases(100);  // a crash before sending: the next start sends it
  EXPECT_EQ(store->claim_due(100, 10, {}).size(), 4u);
}

TEST_P(StoreTest, AnEventsTraceContextReachesEveryDeliveryHandedOverOrClaimed) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("a", kBrand, "Deals"));
  store->insert_webhook(make_webhook("b", kBrand, "Deals"));
  EventRecord traced = event_for(kBrand, "Deals", 1);
  traced.trace = TraceContext{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=a,other=b"};
  EventRecord parent_only = event_for(kBrand, "Deals", 1);
  parent_only.trace = TraceContext{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", ""};
  EventRecord untraced = event_for(kBrand, "Deals", 1);
  std::vector<DueDelivery> leased;
  store->insert_events({traced, parent_only, untraced}, LeaseRoom{1, SIZE_MAX}, &leased);
  ASSERT_EQ(leased.size(), 1u);  // handed over at publish
  ASSERT_TRUE(leased[0].trace);
  EXPECT_EQ(leased[0].trace->traceparent, traced.trace->traceparent);
  EXPECT_EQ(leased[0].trace->tracestate, "vendor=a,other=b");

  auto claimed = store->claim_due(100, 10, {});  // the rest, read back from the events
  ASSERT_EQ(claimed.size(), 5u);
  std::map<std::string, int> seen;
  for (const auto& d : claimed) {
    if (!d.trace) {
      ++seen["none"];
      continue;
    }
    ++seen[d.trace->traceparent + " " + d.trace->tracestate];
  }
  EXPECT_EQ(seen[traced.trace->traceparent + " vendor=a,other=b"], 1);
  EXPECT_EQ(seen[parent_only.trace->traceparent + " "], 2);
  EXPECT_EQ(seen["none"], 2);  // nothing invented
  // Stored as given; the tracestate column is NULL when there is none.
  EXPECT_EQ(scalar("SELECT count(*) FROM events WHERE traceparent IS NULL AND tracestate IS NULL"), "1");
  EXPECT_EQ(scalar("SELECT count(*) FROM events WHERE traceparent IS NOT NULL AND tracestate IS NULL"), "1");
}

namespace {
EventRecord event_at(std::int64_t created_at) {
  EventRecord e = event_for(kBrand, "Deals", created_at);
  e.created_at = created_at;
  return e;
}
}  // namespace

TEST_P(StoreTest, StateCountsFollowEveryChange) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  store->insert_webhook(make_webhook("x", kBrand, "Deals"));
  store->insert_events({event_at(10), event_at(11), event_at(12)});
  expect_counts_match(*store, "published");
  EXPECT_EQ(store->stats(0).pending, 6);

  auto due = store->claim_due(100, 4, {});
  ASSERT_EQ(due.size(), 4u);
  store->record_attempts({outcome(due[0], DeliveryState::delivered, std::nullopt, 200), outcome(due[1], DeliveryState::failed, std::nullopt, 500),
                          outcome(due[2], DeliveryState::pending, 50, 500), outcome(due[3], DeliveryState::delivered, std::nullopt, 200)},
                         20, 0);
  expect_counts_match(*store, "recorded");

  auto delivered = store->list_deliveries({kBrand, "w", "delivered", 0, 10}).items.at(0);
  store->redeliver(kBrand, delivered.id, 30);
  expect_counts_match(*store, "redelivered");

  std::string failed_webhook = store->list_deliveries({kBrand, "w", "failed", 0, 10}).total ? "w" : "x";
  EXPECT_EQ(store->recover(kBrand, failed_webhook, 0, 10, 40).queued, 1);
  expect_counts_match(*store, "recovered");

  store->soft_delete_webhook(kBrand, "x", 50);  // cancels what waits
  expect_counts_match(*store, "deleted");
  store->claim_due(1000, 10, {});               // and claims cancel what a dead webhook still had
  expect_counts_match(*store, "claimed after delete");
  EXPECT_GT(store->stats(0).cancelled, 0);

  store->prune(2000);
  expect_counts_match(*store, "pruned");
}

// A delivery whose event is gone (an older build's prune on PostgreSQL deleted such events)
// can never be claimed: it is never due either, or the dispatcher would claim in a loop.
TEST_P(StoreTest, ADeliveryWithoutItsEventIsNeverDue) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  store->insert_events({event_for(kBrand, "Deals", 10), event_for(kBrand, "Deals", 20)});
  const std::string orphan = "DELETE FROM events WHERE seq = (SELECT min(seq) FROM events)";
  if (GetParam() == Backend::pg) {
    pg_query(config_.db, orphan);
  } else {
    SQLite::Database(config_.db, SQLite::OPEN_READWRITE).exec(orphan);  // foreign keys are off here
  }
  EXPECT_EQ(store->next_due_at(), 20);
  auto due = store->claim_due(100, 10, {});
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(store->next_due_at(), std::nullopt) << "due, although no claim can take it";
  EXPECT_TRUE(store->claim_due(100, 10, {}).empty());
}

TEST_P(StoreTest, PruneRemovesOldFinishedDeliveriesWithTheirAttemptsAndEvents) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  store->insert_events({event_at(10), event_at(20), event_at(30), event_at(1000)});
  auto due = store->claim_due(2000, 10, {});
  ASSERT_EQ(due.size(), 4u);
  store->record_attempts({outcome(due[0], DeliveryState::delivered, std::nullopt, 200), outcome(due[1], DeliveryState::pending, 5000, 500),
                          outcome(due[2], DeliveryState::failed, std::nullopt, 500)},
                         100, 0);
  store->record_attempts({outcome(due[3], DeliveryState::delivered, std::nullopt, 200)}, 1100, 0);

  // Finished before 500: the first and third. The second still waits for its retry; the
  // fourth finished after the cut.
  EXPECT_EQ(store->prune(500), 2);
  auto left = store->list_deliveries({kBrand, "w", std::nullopt, 0, 10});
  ASSERT_EQ(left.total, 2);
  EXPECT_EQ(left.items[0].state, DeliveryState::delivered);  // newest first
  EXPECT_EQ(left.items[1].state, DeliveryState::pending);
  EXPECT_EQ(scalar("SELECT count(*) FROM attempts"), "2");
  // The first event went with its only delivery, and on PostgreSQL the third as well: events
  // without deliveries go. SQLite keeps the third until the older pending second one is
  // pruned: its events go in order, which is right there since its writes never interleave.
  EXPECT_EQ(scalar(GetParam() == Backend::sqlite
                       ? "SELECT group_concat(created_at) FROM (SELECT created_at FROM events ORDER BY seq)"
                       : "SELECT string_agg(created_at::text, ',' ORDER BY seq) FROM events"),
            GetParam() == Backend::sqlite ? "20,30,1000" : "20,1000");
  EXPECT_EQ(store->prune(500), 0);  // nothing more, and nothing twice
  expect_counts_match(*store, "pruned");
}

TEST_P(StoreTest, LeasesStopAtTheRoomInBytes) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  std::vector<EventRecord> events(3, event_at(1));
  for (std::size_t i = 0; i < events.size(); ++i) {
    events[i].id = "big-" + std::to_string(i);
    events[i].body = std::string(1000, 'x');
  }
  std::vector<DueDelivery> leased;
  store->insert_events(events, LeaseRoom{10, 2500}, &leased);
  EXPECT_EQ(leased.size(), 2u);  // a third body would pass 2500 bytes

  auto due = store->claim_due(100, 10, {}, /*max_bytes=*/10);
  EXPECT_EQ(due.size(), 1u);  // over the budget, but one always goes (or a large body never would)
  EXPECT_TRUE(store->claim_due(100, 10, {}, 10).empty());
}

// The keys a delivery of webhook "w" is signed with when claimed at `now`.
static std::vector<std::string> signing_keys(Store& store, std::int64_t now) {
  store.release_leases(now);
  auto claimed = store.claim_due(now, 1, {});
  EXPECT_EQ(claimed.size(), 1u);
  return claimed.empty() ? std::vector<std::string>{} : claimed[0].target->keys;
}

TEST_P(StoreTest, RotationKeepsAtMostTheGivenNumberOfPreviousKeys) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  store->insert_events({event_for(kBrand, "Deals", 10)});
  for (int i = 1; i <= 8; ++i) {
    ASSERT_TRUE(store->rotate_key(kBrand, "w", std::string(64, static_cast<char>('a' + i)), 1'000'000, 50 + i, 5));
  }
  // The newest key, then the five most recently retired (h..d); b and c were dropped although
  // still within their grace.
  auto keys = signing_keys(*store, 100);
  ASSERT_EQ(keys.size(), 6u);
  EXPECT_EQ(keys[0], std::string(64, 'i'));
  std::vector<std::string> previous(keys.begin() + 1, keys.end());
  std::sort(previous.begin(), previous.end());
  EXPECT_EQ(previous, (std::vector<std::string>{std::string(64, 'd'), std::string(64, 'e'), std::string(64, 'f'),
                                                std::string(64, 'g'), std::string(64, 'h')}));
}

TEST_P(StoreTest, RotationWithoutGraceEndsEveryEarlierKey) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  store->insert_events({event_for(kBrand, "Deals", 10)});
  ASSERT_TRUE(store->rotate_key(kBrand, "w", std::string(64, 'b'), 1'000'000, 50, 5));
  EXPECT_EQ(signing_keys(*store, 100).size(), 2u);  // b, and a in its grace
  ASSERT_TRUE(store->rotate_key(kBrand, "w", std::string(64, 'c'), 60, 60, 5));  // no grace
  // Only c: b ends at once, and so does a although its own grace runs until 1'000'000.
  EXPECT_EQ(signing_keys(*store, 100), std::vector<std::string>{std::string(64, 'c')});
}

TEST_F(StoreFile, RefusesAnEmptyFileUnlessAskedForANewDatabase) {
  { std::ofstream created(config_.db); }  // 0 bytes: a lost or truncated database, maybe
  ASSERT_EQ(fs::file_size(config_.db), 0u);
  try {
    open_sqlite_store(config_);
    FAIL() << "an empty file was taken as a new database";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("is empty (0 bytes)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("init_db"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::file_size(config_.db), 0u);  // left as found

  Config init = config_;
  init.init_db = true;
  open_sqlite_store(init)->insert_webhook(make_webhook("w", kBrand, "Deals"));
  // Now a real database: opens without the flag.
  EXPECT_EQ(open_sqlite_store(config_)->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}).total, 1);

  Config missing = config_;
  missing.db = (dir_ / "missing.db").string();  // a missing file is created, as always
  EXPECT_NO_THROW(open_sqlite_store(missing));
}

// --- owned leases: nodes sharing one file ------------------------------------------------------

namespace {
constexpr std::int64_t kLease = 30'000'000;  // the default lease timeout, in microseconds

class Nodes : public StoreTest {
 protected:
  // A store opened as node `id`, as a second process on the same file would open it.
  std::unique_ptr<Store> node(const std::string& id) {
    Config c = config_;
    c.node_id = id;
    c.lease_timeout_s = kLease / 1'000'000;
    return open_store(c);
  }
  // Two webhooks' deliveries due at 10, one event each.
  void publish_two(Store& store) {
    store.insert_webhook(make_webhook("w", kBrand, "Deals"));
    store.insert_events({event_for(kBrand, "Deals", 10), event_for(kBrand, "Deals", 10)});
  }
};
}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, Nodes, ::testing::Values(Backend::sqlite, Backend::pg), backend_test_name);

TEST_P(Nodes, ALeaseIsItsNodesUntilItExpires) {
  auto a = node("a");
  auto b = node("b");
  publish_two(*a);
  auto held = a->claim_due(100, 1, {});
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].taken_from, "");
  auto other = b->claim_due(100, 10, {});
  ASSERT_EQ(other.size(), 1u);  // the other one only
  EXPECT_NE(other[0].seq, held[0].seq);
  EXPECT_TRUE(b->claim_due(100 + kLease - 1, 10, {}).empty());  // a's lease still runs
  // b stopped renewing: a takes its delivery over, and never takes its own (it still has it).
  auto later = a->claim_due(200 + kLease, 10, {});
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].seq, other[0].seq);
  EXPECT_EQ(later[0].taken_from, "b");  // the node that held it
}

TEST_P(Nodes, ANodeReleasesOnlyItsOwnLeases) {
  auto a = node("a");
  auto b = node("b");
  publish_two(*a);
  auto held = a->claim_due(100, 1, {});
  ASSERT_EQ(held.size(), 1u);
  ASSERT_EQ(b->claim_due(100, 1, {}).size(), 1u);
  // b restarts: what it held is due again, what a holds stays a's.
  EXPECT_EQ(node("b")->release_leases(200), 1);
  auto again = b->claim_due(200, 10, {});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(again[0].seq, held[0].seq);
  EXPECT_EQ(again[0].taken_from, "");
  // a's outcome is recorded: it still held its lease.
  RecordResult recorded = a->record_attempts({outcome(held[0], DeliveryState::delivered, std::nullopt, 200)}, 300, 0);
  EXPECT_EQ(recorded.lost, 0);
  EXPECT_EQ(a->stats(0).delivered, 1);
  expect_counts_match(*a, "a recorded");
}

TEST_P(Nodes, AnExpiredLeaseIsTakenOverAndTheOldHoldersOutcomeIsDropped) {
  auto a = node("a");
  auto b = node("b");
  publish_two(*a);
  auto held = a->claim_due(100, 2, {});
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(b->next_due_at(), 100 + kLease);  // when b could take them over
  EXPECT_FALSE(a->next_due_at());               // a never takes its own

  // a stops renewing (it hangs, or was killed): b takes both over once the lease expires.
  auto taken = b->claim_due(100 + kLease, 10, {});
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0].taken_from, "a");
  EXPECT_EQ(taken[1].taken_from, "a");
  EXPECT_EQ(taken[0].attempts_made, 0);

  // a comes back and reports its attempts: dropped, they no longer count.
  RecordResult late = a->record_attempts({outcome(held[0], DeliveryState::delivered, std::nullopt, 200),
                                          outcome(held[1], DeliveryState::pending, 500, 500)}, 200 + kLease, 0);
  EXPECT_EQ(late.lost, 2);
  EXPECT_EQ(a->stats(0).pending, 2);
  EXPECT_EQ(a->renew_leases(200 + kLease, {held[0].seq, held[1].seq}, false).renewed, 0);  // none is a's now

  RecordResult recorded = b->record_attempts({outcome(taken[0], DeliveryState::delivered, std::nullopt, 200),
                                              outcome(taken[1], DeliveryState::delivered, std::nullopt, 200)}, 300 + kLease, 0);
  EXPECT_EQ(recorded.lost, 0);
  Stats stats = b->stats(0);
  EXPECT_EQ(stats.pending, 0);
  EXPECT_EQ(stats.delivered, 2);
  expect_counts_match(*b, "taken over");
  EXPECT_EQ(scalar("SELECT count(*) FROM attempts"), "2");  // b's, not a's
}

TEST_P(Nodes, RenewingKeepsALeaseFromBeingTakenOver) {
  auto a = node("a");
  auto b = node("b");
  publish_two(*a);
  auto held = a->claim_due(100, 2, {});
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(a->renew_leases(100 + kLease / 2, {held[0].seq, held[1].seq}, false).renewed, 2);
  EXPECT_TRUE(b->claim_due(100 + kLease, 10, {}).empty());
  EXPECT_EQ(b->claim_due(100 + kLease / 2 + kLease, 10, {}).size(), 2u);  // a stopped renewing
}

// A COMMIT that lost its answer can leave a node leases its dispatcher never got (lease.hpp):
// renewing keeps only what the dispatcher holds, and a take-back returns the rest to the queue.
TEST_P(Nodes, ANodeRenewsOnlyTheLeasesItHoldsAndTakesBackTheOthers) {
  auto a = node("a");
  auto b = node("b");
  publish_two(*a);
  auto claimed = a->claim_due(100, 2, {});
  ASSERT_EQ(claimed.size(), 2u);
  // The dispatcher got only the first (say the claim of the second lost its COMMIT's answer).
  LeaseUpkeep done = a->renew_leases(200, {claimed[0].seq}, /*take_back=*/false);
  EXPECT_EQ(done.renewed, 1);
  EXPECT_EQ(done.taken_back, 0);
  done = a->renew_leases(300, {claimed[0].seq}, /*take_back=*/true);
  EXPECT_EQ((std::pair{done.renewed, done.taken_back}), (std::pair<std::int64_t, std::int64_t>{1, 1}));
  // The second is due again, free (not a take-over), for any node; the first stays a's.
  auto again = b->claim_due(300, 10, {});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].seq, claimed[1].seq);
  EXPECT_TRUE(again[0].taken_from.empty());
  EXPECT_TRUE(b->claim_due(100 + kLease, 10, {}).empty()) << "a renewed the one it holds at 300";
  EXPECT_EQ(a->record_attempts({outcome(claimed[0], DeliveryState::delivered, std::nullopt, 200)}, 400, 0).lost, 0);
  // Nothing held: a take-back alone.
  done = a->renew_leases(500, {}, /*take_back=*/true);
  EXPECT_EQ((std::pair{done.renewed, done.taken_back}), (std::pair<std::int64_t, std::int64_t>{0, 0}));
  expect_counts_match(*a, "taken back");
}

// An outcome batch whose COMMIT lost its answer is written again: found recorded, it is neither
// lost to a take-over nor counted twice.
TEST_P(Nodes, AnOutcomeWrittenTwiceIsFoundRecordedNotLost) {
  auto a = node("a");
  auto b = node("b");
  publish_two(*a);
  auto held = a->claim_due(100, 2, {});
  ASSERT_EQ(held.size(), 2u);
  std::vector<AttemptRecord> batch = {outcome(held[0], DeliveryState::delivered, std::nullopt, 200),
                                      outcome(held[1], DeliveryState::pending, 500, 500)};
  RecordResult first = a->record_attempts(batch, 200, 0);
  EXPECT_EQ((std::pair{first.lost, first.already_recorded}), (std::pair<std::int64_t, std::int64_t>{0, 0}));
  RecordResult again = a->record_attempts(batch, 210, 0);
  EXPECT_EQ((std::pair{again.lost, again.already_recorded}), (std::pair<std::int64_t, std::int64_t>{0, 2}));
  EXPECT_EQ(scalar("SELECT count(*) FROM attempts"), "2");
  expect_counts_match(*a, "written twice");
  // The retry is another node's now: a's late copy of the same attempt is taken over, lost.
  auto taken = b->claim_due(500, 10, {});
  ASSERT_EQ(taken.size(), 1u);
  AttemptRecord other = outcome(held[1], DeliveryState::pending, 900, 500);
  other.attempt.started_at = 101;  // not the attempt that was recorded
  RecordResult late = a->record_attempts({other}, 600, 0);
  EXPECT_EQ((std::pair{late.lost, late.already_recorded}), (std::pair<std::int64_t, std::int64_t>{1, 0}));
}

TEST_P(Nodes, PublishedDeliveriesHandedOverAreLeasedToTheirNode) {
  auto a = node("a");
  auto b = node("b");
  a->insert_webhook(make_webhook("w", kBrand, "Deals"));
  EventRecord due_now = event_for(kBrand, "Deals", 1);  // created at 1, due at 1
  std::vector<DueDelivery> leased;
  a->insert_events({due_now}, LeaseRoom{10, SIZE_MAX}, &leased);
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_TRUE(b->claim_due(100, 10, {}).empty());
  EXPECT_EQ(b->release_leases(100), 0);
  EXPECT_EQ(b->claim_due(1 + kLease, 10, {}).size(), 1u);  // a never renewed it
}

TEST_P(Nodes, RedeliverLeavesALeaseHeldByAnotherNode) {
  auto a = node("a");
  auto b = node("b");
  publish_two(*a);
  auto held = a->claim_due(100, 2, {});
  ASSERT_EQ(held.size(), 2u);
  auto page = b->list_deliveries({kBrand, "w", std::nullopt, 0, 10});
  ASSERT_EQ(page.items.size(), 2u);
  // Held by a (its attempt may be under way): b cannot queue it again.
  EXPECT_THROW(b->redeliver(kBrand, page.items[0].id, 200), ConflictError);
  // Once a stopped renewing it is free to queue again, and a's late outcome is dropped.
  EXPECT_TRUE(b->redeliver(kBrand, page.items[0].id, 100 + kLease));
  EXPECT_EQ(a->record_attempts({outcome(held[0], DeliveryState::delivered, std::nullopt, 200),
                                outcome(held[1], DeliveryState::delivered, std::nullopt, 200)}, 200 + kLease, 0).lost, 1);
  expect_counts_match(*b, "redelivered");
}

TEST_F(StoreFile, ALockHeldPastTheBusyTimeoutIsUnavailable) {
  config_.busy_timeout_ms = 50;
  auto store = open_sqlite_store(config_);
  SQLite::Database other(config_.db, SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");  // another process writing, for longer than the timeout
  EXPECT_THROW(store->insert_webhook(make_webhook("w", kBrand, "Deals")), UnavailableError);
  EXPECT_THROW(store->check_writable(), UnavailableError);
  other.exec("COMMIT");
  EXPECT_NO_THROW(store->insert_webhook(make_webhook("w", kBrand, "Deals")));
  EXPECT_NO_THROW(store->check_writable());
}

// A real full disk: a small tmpfs (needs root, as CI runs; skipped where mounting fails).
TEST_F(StoreFile, AFullDiskIsUnavailableAndRecoversByItself) {
  fs::path mountpoint = dir_ / "small";
  fs::create_directories(mountpoint);
  if (std::system(("mount -t tmpfs -o size=4m tmpfs " + mountpoint.string() + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here";
  }
  struct Unmount {
    fs::path at;
    ~Unmount() { (void)std::system(("umount -l " + at.string()).c_str()); }
  } unmount{mountpoint};
  config_.db = (mountpoint / "store.db").string();
  auto store = open_sqlite_store(config_);
  EXPECT_NO_THROW(store->check_writable());
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  {
    std::ofstream filler(mountpoint / "filler", std::ios::binary);
    std::string block(1 << 16, '\0');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) && filler.flush()) {
    }
  }
  EXPECT_THROW(store->check_writable(), UnavailableError);
  EventRecord big = event_for(kBrand, "Deals", 10);
  big.body = std::string(512 * 1024, 'x');
  bool refused = false;
  for (int i = 0; i < 20 && !refused; ++i) {  // the WAL may still have free pages for a few
    try {
      big.id = "big-" + std::to_string(i);
      store->insert_events({big});
    } catch (const UnavailableError& e) {
      refused = true;
      EXPECT_NE(std::string(e.what()).find("storage is full"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(refused);
  fs::remove(mountpoint / "filler");
  EXPECT_NO_THROW(store->check_writable());
  big.id = "after";
  EXPECT_NO_THROW(store->insert_events({big}));
}

// --- delivery controls: ordered and throttled webhooks, across nodes ---------------------------

namespace {
std::vector<std::string> ids_of(const std::vector<DueDelivery>& due) {
  std::vector<std::string> ids;
  for (const auto& d : due) ids.push_back(d.id);
  return ids;
}

std::vector<DueDelivery> of_webhook(const std::vector<DueDelivery>& due, std::int64_t webhook_seq) {
  std::vector<DueDelivery> out;
  for (const auto& d : due) {
    if (d.webhook_seq == webhook_seq) out.push_back(d);
  }
  return out;
}

// Control columns are set directly here (the Hub, REST and CLI side is tested in Python);
// `(1=1)` is true on both backends.
class Controls : public Nodes {
 public:
  void set(const std::string& webhook, const std::string& assignment) {
    std::string sql = "UPDATE webhooks SET " + assignment + " WHERE id = '" + webhook + "'";
    if (GetParam() == Backend::pg) {
      pg_query(config_.db, sql);
      return;
    }
    SQLite::Database db(config_.db, SQLite::OPEN_READWRITE);
    db.exec(sql);
  }
  std::int64_t seq_of(const std::string& webhook) {
    return std::stoll(scalar("SELECT seq FROM webhooks WHERE id = '" + webhook + "'"));
  }
  // The ids of webhook `w`'s deliveries in publish order.
  std::vector<std::string> published(const std::string& w) {
    std::vector<std::string> ids;
    for (const auto& row : query("SELECT d.id FROM deliveries d JOIN webhooks w ON w.seq = d.webhook_seq "
                                 "WHERE w.id = '" + w + "' ORDER BY d.seq")) {
      ids.push_back(row[0]);
    }
    return ids;
  }
};
}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, Controls, ::testing::Values(Backend::sqlite, Backend::pg), backend_test_name);

// One at a time, oldest first, across two nodes; a retry holds the later ones back, a final
// failure lets the next one go; an unordered webhook of the topic is not held back at all.
TEST_P(Controls, AnOrderedWebhookGivesOnlyItsOldestPendingDeliveryAndOnlyWhenNoneIsHeld) {
  auto a = node("a");
  auto b = node("b");
  a->insert_webhook(make_webhook("w", kBrand, "Deals"));
  a->insert_webhook(make_webhook("u", kBrand, "Deals"));
  set("w", "ordered = (1=1)");
  std::int64_t w = seq_of("w"), u = seq_of("u");
  // Published due at once with room to hand over: only the unordered ones are handed over.
  std::vector<DueDelivery> handed;
  std::vector<EventRecord> events;
  for (int i = 0; i < 3; ++i) events.push_back(event_for(kBrand, "Deals", 1));
  a->insert_events(events, LeaseRoom{100, SIZE_MAX}, &handed);
  EXPECT_EQ(handed.size(), 3u);
  EXPECT_TRUE(of_webhook(handed, w).empty());
  auto order = published("w");
  ASSERT_EQ(order.size(), 3u);

  auto first = a->claim_due(100, 10, {});
  ASSERT_EQ(ids_of(first), std::vector<std::string>{order[0]});
  EXPECT_TRUE(first[0].target->ordered);
  EXPECT_TRUE(b->claim_due(100, 10, {}).empty());  // held by a: nothing of w for b
  EXPECT_TRUE(a->claim_due(100, 10, {}).empty());

  // A failed attempt with a retry at 500 holds the later ones back until then.
  a->record_attempts({outcome(first[0], DeliveryState::pending, 500, 500)}, 110, 0);
  EXPECT_TRUE(b->claim_due(200, 10, {}).empty());
  auto retry = b->claim_due(500, 10, {});
  ASSERT_EQ(ids_of(retry), std::vector<std::string>{order[0]});
  EXPECT_EQ(retry[0].attempts_made, 1);
  EXPECT_TRUE(a->claim_due(500, 10, {}).empty());
  // Failed for good: the next one goes (on either node).
  b->record_attempts({outcome(retry[0], DeliveryState::failed, std::nullopt, 500)}, 510, 0);
  auto second = a->claim_due(600, 10, {});
  ASSERT_EQ(ids_of(second), std::vector<std::string>{order[1]});
  a->record_attempts({outcome(second[0], DeliveryState::delivered, std::nullopt, 200)}, 610, 0);
  EXPECT_EQ(ids_of(b->claim_due(700, 10, {})), std::vector<std::string>{order[2]});
  (void)u;
}

// A redelivered (or recovered) delivery takes its place in publish order again: it goes after
// the delivery in flight and before every later one still waiting.
TEST_P(Controls, ARedeliveredOrderedDeliveryGoesBeforeTheLaterOnes) {
  auto a = node("a");
  a->insert_webhook(make_webhook("w", kBrand, "Deals"));
  set("w", "ordered = (1=1)");
  a->insert_events({event_for(kBrand, "Deals", 10), event_for(kBrand, "Deals", 10), event_for(kBrand, "Deals", 10)});
  auto order = published("w");
  auto first = a->claim_due(100, 10, {});
  a->record_attempts({outcome(first.at(0), DeliveryState::delivered, std::nullopt, 200)}, 110, 0);
  auto second = a->claim_due(200, 10, {});
  ASSERT_EQ(ids_of(second), std::vector<std::string>{order[1]});
  ASSERT_TRUE(a->redeliver(kBrand, order[0], 210));
  auto b = node("b");
  EXPECT_TRUE(b->claim_due(300, 10, {}).empty());  // the second is still in flight
  a->record_attempts({outcome(second[0], DeliveryState::delivered, std::nullopt, 200)}, 310, 0);
  EXPECT_EQ(ids_of(b->claim_due(400, 10, {})), std::vector<std::string>{order[0]});
}

// A node that stops renewing loses its ordered delivery to another node, which takes that one
// over (never a later one).
TEST_P(Controls, AnExpiredOrderedLeaseIsTakenOverInOrder) {
  auto a = node("a");
  auto b = node("b");
  a->insert_webhook(make_webhook("w", kBrand, "Deals"));
  set("w", "ordered = (1=1)");
  a->insert_events({event_for(kBrand, "Deals", 10), event_for(kBrand, "Deals", 10)});
  auto order = published("w");
  ASSERT_EQ(a->claim_due(100, 10, {}).size(), 1u);
  EXPECT_EQ(b->next_due_at(), 100 + kLease);
  auto taken = b->claim_due(100 + kLease, 10, {});
  ASSERT_EQ(ids_of(taken), std::vector<std::string>{order[0]});
  EXPECT_EQ(taken[0].taken_from, "a");
}

// Two nodes claiming and recording as fast as they can (one thread each): never two
// deliveries of the ordered webhook held at once, and attempted exactly in publish order.
TEST_P(Controls, TwoNodesNeverHoldTwoDeliveriesOfAnOrderedWebhook) {
  constexpr int kEvents = 40;
  {
    auto setup = node("setup");
    setup->insert_webhook(make_webhook("w", kBrand, "Deals"));
    set("w", "ordered = (1=1)");
    std::vector<EventRecord> events;
    for (int i = 0; i < kEvents; ++i) events.push_back(event_for(kBrand, "Deals", 10));
    setup->insert_events(events);
  }
  auto order = published("w");
  std::atomic<int> held{0}, most_held{0}, done{0};
  std::mutex attempted_mutex;
  std::vector<std::string> attempted;
  std::atomic<bool> failed{false};
  auto run = [&](const std::string& id) {
    auto store = node(id);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (done.load() < kEvents && std::chrono::steady_clock::now() < deadline) {
      std::vector<DueDelivery> due;
      try {
        due = store->claim_due(100, 10, {});
      } catch (const std::exception&) {
        continue;  // a busy database: claim again
      }
      if (due.empty()) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      if (due.size() != 1) failed = true;
      int now_held = ++held;
      int seen = most_held.load();
      while (now_held > seen && !most_held.compare_exchange_weak(seen, now_held)) {
      }
      {
        std::lock_guard lock(attempted_mutex);
        attempted.push_back(due[0].id);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(300));  // the "attempt"
      --held;
      while (true) {
        try {
          store->record_attempts({outcome(due[0], DeliveryState::delivered, std::nullopt, 200)}, 110, 0);
          break;
        } catch (const std::exception&) {
        }
      }
      ++done;
    }
  };
  std::thread ta(run, "a"), tb(run, "b");
  ta.join();
  tb.join();
  EXPECT_FALSE(failed.load());
  EXPECT_EQ(most_held.load(), 1);
  EXPECT_EQ(done.load(), kEvents);
  EXPECT_EQ(attempted, order);
}

// rate_limit N: each delivery takes the webhook's next send slot, 1/N s after the last one, on
// whichever node claims it; a claim reserves at most kPaceHorizon ahead and leaves the rest
// waiting (free, due when their slot comes near); an unthrottled webhook is not held back.
TEST_P(Controls, AThrottledWebhookTakesSendSlotsSharedByAllNodes) {
  auto a = node("a");
  auto b = node("b");
  a->insert_webhook(make_webhook("t", kBrand, "Deals"));
  a->insert_webhook(make_webhook("u", kBrand, "Deals"));
  set("t", "rate_limit = 4");  // a slot every 250 ms
  std::int64_t t = seq_of("t"), u = seq_of("u");
  std::vector<EventRecord> events;
  for (int i = 0; i < 10; ++i) events.push_back(event_for(kBrand, "Deals", 1));
  std::vector<DueDelivery> handed;
  a->insert_events(events, LeaseRoom{100, SIZE_MAX}, &handed);
  EXPECT_EQ(handed.size(), 10u);  // the unthrottled webhook's, at once
  EXPECT_TRUE(of_webhook(handed, t).empty());

  constexpr std::int64_t kNow = 1'000'000;  // before the handed-over leases expire
  auto first = a->claim_due(kNow, 100, {});
  ASSERT_EQ(first.size(), 2u);  // slots at now and now + 250 ms: within the horizon
  EXPECT_EQ(first[0].not_before, kNow);
  EXPECT_EQ(first[1].not_before, kNow + 250'000);
  EXPECT_TRUE(of_webhook(first, u).empty());
  // The rest waits, free, until its slot comes near; then b takes the next slot.
  EXPECT_TRUE(b->claim_due(kNow + 100'000, 100, {}).empty());
  EXPECT_EQ(b->next_due_at(), kNow + 250'000);
  auto next = b->claim_due(kNow + 250'000, 100, {});
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].not_before, kNow + 500'000);
  // Much later, the pace starts again from then (no burst for the time it was idle).
  auto later = a->claim_due(kNow + 10'000'000, 100, {});
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].not_before, kNow + 10'000'000);
  EXPECT_EQ(later[1].not_before, kNow + 10'250'000);
  EXPECT_EQ(a->stats(0).pending, 20);  // nothing dropped or failed
  expect_counts_match(*a, "throttled");
}

// Idempotency keys: stored with the events, found again, expired by age and pruned with retention.
TEST_P(StoreTest, IdempotencyKeysReplayConflictExpireAndArePruned) {
  auto store = open_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  auto event = [](const std::string& id, std::int64_t at) {
    EventRecord e;
    e.id = id;
    e.brand = kBrand;
    e.topic = "Deals";
    e.event = "Created";
    e.body = "{}";
    e.created_at = e.first_attempt_at = at;
    return e;
  };
  auto claim = [](const std::string& hash, std::int64_t now) {
    IdempotencyClaim c;
    c.brand = kBrand;
    c.key = "k";
    c.request_hash = hash;
    c.count = 1;
    c.now = now;
    c.expired_before = now - 1000;
    return std::vector<IdempotencyClaim>{c};
  };
  using Outcome = IdempotencyClaim::Outcome;
  auto claims = claim("h1", 100);
  auto first = store->insert_events({event("e1", 100)}, {}, nullptr, &claims);
  EXPECT_EQ(claims[0].outcome, Outcome::fresh);
  EXPECT_EQ(first.at(0).event_id, "e1");

  claims = claim("h1", 200);
  auto replayed = store->insert_events({event("e2", 200)}, {}, nullptr, &claims);
  EXPECT_EQ(claims[0].outcome, Outcome::replayed);
  EXPECT_EQ(replayed.at(0).event_id, "e1");
  EXPECT_EQ(replayed.at(0).deliveries, 1);
  claims = claim("h2", 300);
  store->insert_events({event("e3", 300)}, {}, nullptr, &claims);
  EXPECT_EQ(claims[0].outcome, Outcome::conflict);
  claims = claim("h2", 400);
  claims[0].conflict_aborts = true;
  EXPECT_THROW(store->insert_events({event("e4", 400)}, {}, nullptr, &claims), ConflictError);
  EXPECT_EQ(scalar("SELECT count(*) FROM events"), "1");

  // Older than the window: taken afresh, for any request.
  claims = claim("h3", 1200);
  EXPECT_EQ(store->insert_events({event("e5", 1200)}, {}, nullptr, &claims).at(0).event_id, "e5");
  EXPECT_EQ(claims[0].outcome, Outcome::fresh);
  EXPECT_EQ(scalar("SELECT count(*) FROM idempotency_keys"), "1");
  // Retention: keys stored before the cut go.
  store->prune(1201);
  EXPECT_EQ(scalar("SELECT count(*) FROM idempotency_keys"), "0");
  claims = claim("h4", 1300);
  store->insert_events({event("e6", 1300)}, {}, nullptr, &claims);
  EXPECT_EQ(claims[0].outcome, Outcome::fresh);
}

// Issue 13: tokens that expire, and the brand tree read downwards.
TEST_P(StoreTest, TokenExpiryIsStoredReadAndPrunedWithRetention) {
  auto store = open_store(config_);
  auto token = [](const std::string& id, std::optional<std::int64_t> expires_at) {
    return TokenRecord{TokenInfo{id, kBrand, "t", 100, expires_at}, sha256(id)};
  };
  ASSERT_TRUE(store->insert_token(token("never", std::nullopt)));
  ASSERT_TRUE(store->insert_token(token("early", 200)));
  ASSERT_TRUE(store->insert_token(token("late", 900)));
  EXPECT_EQ(store->find_token(sha256("early"))->expires_at, 200);
  EXPECT_EQ(store->find_token(sha256("never"))->expires_at, std::nullopt);
  EXPECT_EQ(store->list_tokens().size(), 3u);  // expired ones are listed until pruned

  EXPECT_EQ(store->prune(500), 0);  // no delivery went, but the token that expired before the cut did
  EXPECT_FALSE(store->find_token(sha256("early")));
  EXPECT_EQ(store->find_token(sha256("late"))->expires_at, 900);
  EXPECT_TRUE(store->find_token(sha256("never")));
  EXPECT_EQ(scalar("SELECT count(*) FROM api_tokens"), "2");
}

TEST_P(StoreTest, DescendantsComeBreadthFirstWithoutTheBrandItself) {
  auto store = open_store(config_);
  const std::string root = "10000000-0000-4000-8000-000000000000";
  const std::string b = "b0000000-0000-4000-8000-000000000000";  // children of root, out of id order
  const std::string a = "a0000000-0000-4000-8000-000000000000";
  const std::string a1 = "a1000000-0000-4000-8000-000000000000";  // a's child
  const std::string b1 = "01000000-0000-4000-8000-000000000000";  // b's child, smallest id
  store->set_brand_parent(b, root, 1);
  store->set_brand_parent(a, root, 1);
  store->set_brand_parent(a1, a, 1);
  store->set_brand_parent(b1, b, 1);
  auto below = store->brand_descendants(root);
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& brand : below) got.emplace_back(brand.id, brand.parent.value_or("-"));
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{{a, root}, {b, root}, {b1, b}, {a1, a}}));
  EXPECT_EQ(store->brand_descendants(a).size(), 1u);
  EXPECT_TRUE(store->brand_descendants(a1).empty());
  EXPECT_TRUE(store->brand_descendants(kBrand).empty());  // unknown
}

TEST_F(StoreFile, TokensOfAFileFromBeforeExpiryNeverExpire) {
  {
    SQLite::Database db(config_.db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    for (int v = 0; v < 7; ++v) db.exec(sqlite_migration(v));
    db.exec("PRAGMA user_version = 7");
    db.exec("INSERT INTO api_tokens (id, hash, brand, label, created_at) VALUES ('old', x'00', NULL, 'ops', 5)");
  }
  auto store = open_sqlite_store(config_);
  auto found = store->find_token(std::string(1, '\0'));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->created_at, 5);
  EXPECT_EQ(found->expires_at, std::nullopt);
}

TEST_F(StoreFile, AnUpgradedFileTakesEachWebhooksLastSuccessFromItsAttempts) {
  {
    SQLite::Database db(config_.db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    for (int v = 0; v < 9; ++v) db.exec(sqlite_migration(v));
    db.exec("PRAGMA user_version = 9");
    db.exec("INSERT INTO brands (id, created_at, updated_at) VALUES ('" + kBrand + "', 1, 1)");
    for (const char* w : {"ok", "never"}) {
      db.exec(std::string("INSERT INTO webhooks (id, brand, topic, url, key, created_at, updated_at) VALUES ('") + w +
              "', '" + kBrand + "', 'Deals', 'https://x/', 'k', 1, 1)");
    }
    db.exec("INSERT INTO events (id, brand, topic, event, body, created_at) VALUES ('e', '" + kBrand +
            "', 'Deals', 'Created', x'7b7d', 1)");
    db.exec("INSERT INTO deliveries (id, event_seq, webhook_seq, state, created_at, updated_at) VALUES "
            "('d1', 1, 1, 'delivered', 1, 1), ('d2', 1, 1, 'pending', 1, 1), ('d3', 1, 2, 'failed', 1, 1)");
    db.exec("INSERT INTO attempts (delivery_seq, number, started_at, duration_us, status) VALUES "
            "(1, 1, 7500000, 5, 204), (2, 1, 9000000, 5, 500), (3, 1, 9500000, 5, 500)");
  }
  auto store = open_sqlite_store(config_);
  EXPECT_EQ(store->find_webhook(kBrand, "ok")->last_success_at, 7'000'000);
  EXPECT_EQ(store->find_webhook(kBrand, "never")->last_success_at, std::nullopt);
}
