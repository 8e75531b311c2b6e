// SQLite backend of the Store: one connection in WAL mode guarded by a mutex (SQLiteCpp
// statements are not thread-safe), schema versioned with PRAGMA user_version.
#include <SQLiteCpp/SQLiteCpp.h>

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <mutex>
#include <unordered_map>
#include <nlohmann/json.hpp>

#include "brandhooks/crypto.hpp"
#include "brandhooks/errors.hpp"
#include "store.hpp"
#include "validation.hpp"

namespace brandhooks {

namespace {

// Migrations in order: entry i upgrades a file from version i to version i + 1. Never edit
// a released entry; append a new one.
const char* const kMigrations[] = {
    // 1: brands (with an optional parent), webhooks (soft delete), API tokens (hashed).
    R"sql(
    CREATE TABLE brands (
      id         TEXT PRIMARY KEY,
      parent     TEXT REFERENCES brands(id),
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    );
    CREATE INDEX brands_by_parent ON brands(parent);
    CREATE TABLE webhooks (
      seq        INTEGER PRIMARY KEY AUTOINCREMENT,
      id         TEXT NOT NULL UNIQUE,
      brand      TEXT NOT NULL REFERENCES brands(id),
      topic      TEXT NOT NULL,
      url        TEXT NOT NULL,
      key        TEXT NOT NULL,
      tags       TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      deleted_at INTEGER
    );
    CREATE INDEX webhooks_live ON webhooks(brand, topic) WHERE deleted_at IS NULL;
    CREATE TABLE api_tokens (
      id         TEXT PRIMARY KEY,
      hash       BLOB NOT NULL UNIQUE,
      brand      TEXT,
      label      TEXT NOT NULL DEFAULT '',
      created_at INTEGER NOT NULL,
      revoked_at INTEGER
    );
    )sql",
    // 2: events, deliveries (the durable queue) and the attempt log; webhook disable state.
    R"sql(
    ALTER TABLE webhooks ADD COLUMN disabled_at INTEGER;
    ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT;
    ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;
    CREATE TABLE events (
      seq        INTEGER PRIMARY KEY AUTOINCREMENT,
      id         TEXT NOT NULL UNIQUE,
      brand      TEXT NOT NULL,
      topic      TEXT NOT NULL,
      event      TEXT NOT NULL,
      body       BLOB NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE deliveries (
      seq         INTEGER PRIMARY KEY AUTOINCREMENT,
      id          TEXT NOT NULL UNIQUE,
      event_seq   INTEGER NOT NULL REFERENCES events(seq),
      webhook_seq INTEGER NOT NULL REFERENCES webhooks(seq),
      state       TEXT NOT NULL,
      attempts    INTEGER NOT NULL DEFAULT 0,
      leased      INTEGER NOT NULL DEFAULT 0,
      next_at     INTEGER,
      created_at  INTEGER NOT NULL,
      updated_at  INTEGER NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries(next_at, seq) WHERE state = 'pending' AND leased = 0;
    CREATE INDEX deliveries_leased ON deliveries(seq) WHERE leased = 1;
    CREATE INDEX deliveries_by_webhook ON deliveries(webhook_seq, seq);
    CREATE TABLE attempts (
      delivery_seq INTEGER NOT NULL REFERENCES deliveries(seq),
      number       INTEGER NOT NULL,
      started_at   INTEGER NOT NULL,
      duration_us  INTEGER NOT NULL,
      status       INTEGER,
      error        TEXT,
      detail       TEXT,
      response     BLOB,
      PRIMARY KEY (delivery_seq, number)
    ) WITHOUT ROWID;
    )sql",
    // 3: event tags, previous keys valid during a rotation, an index for retention.
    R"sql(
    ALTER TABLE events ADD COLUMN tags TEXT;
    CREATE TABLE webhook_keys (
      webhook_seq INTEGER NOT NULL REFERENCES webhooks(seq),
      key         TEXT NOT NULL,
      expires_at  INTEGER NOT NULL
    );
    CREATE INDEX webhook_keys_by_webhook ON webhook_keys(webhook_seq, expires_at);
    CREATE INDEX deliveries_by_state ON deliveries(state, updated_at);
    )sql",
    // 4: fewer index writes per delivery. One queue index over pending deliveries, leased or
    // not (a lease moves an entry within it instead of from one index to another). Counts per
    // state, adjusted once per transaction by the store, instead of an index on state that
    // every attempt rewrote; retention scans deliveries in creation (seq) order instead.
    R"sql(
    CREATE TABLE delivery_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO delivery_counts
      SELECT s.value, (SELECT count(*) FROM deliveries d WHERE d.state = s.value)
      FROM json_each('["pending","delivered","failed","cancelled"]') s;
    DROP INDEX deliveries_by_state;
    DROP INDEX deliveries_due;
    DROP INDEX deliveries_leased;
    CREATE INDEX deliveries_queue ON deliveries(leased, next_at, seq) WHERE state = 'pending';
    )sql",
    // 5: owned leases (lease.hpp): a lease names its node (lease_owner) and lasts until next_at,
    // which the node renews; a claim takes what is due, expired leases included. A lease of the
    // old layout (leased = 1, no owner) keeps its past due time: due again at once.
    R"sql(
    DROP INDEX deliveries_queue;
    ALTER TABLE deliveries DROP COLUMN leased;
    ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
    CREATE INDEX deliveries_due ON deliveries(next_at, seq) WHERE state = 'pending';
    CREATE INDEX deliveries_by_lease_owner ON deliveries(lease_owner) WHERE lease_owner IS NOT NULL;
    )sql",
};

constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

constexpr const char* kDeliveryColumns =
    "d.seq, d.id, e.id, w.id, w.brand, d.state, d.attempts, d.created_at, d.updated_at, d.next_at, "
    "e.topic, e.event";

constexpr const char* kWebhookColumns =
    "id, created_at, updated_at, deleted_at, brand, topic, url, key, tags, disabled_at, "
    "disabled_reason";

// How a transaction changed the number of deliveries in each state (see delivery_counts).
struct StateCounts {
  std::map<std::string, std::int64_t> delta;
  void move(const std::string& from, const std::string& to, std::int64_t n = 1) {
    if (from == to || n == 0) return;
    delta[from] -= n;
    delta[to] += n;
  }
};

std::optional<std::int64_t> optional_int(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt64();
}

// A BLOB or TEXT column as bytes.
std::string bytes(const SQLite::Column& c) {
  return std::string(static_cast<const char*>(c.getBlob()), static_cast<std::size_t>(c.getBytes()));
}

template <class T>
void bind_optional(SQLite::Statement& q, int index, const std::optional<T>& value) {
  if (value) {
    q.bind(index, *value);
  } else {
    q.bind(index);
  }
}

void bind_text_or_null(SQLite::Statement& q, int index, const std::string& value) {
  if (value.empty()) {
    q.bind(index);
  } else {
    q.bind(index, value);
  }
}

Webhook read_webhook(SQLite::Statement& q) {
  Webhook w;
  w.id = q.getColumn(0).getString();
  w.created_at = q.getColumn(1).getInt64();
  w.updated_at = q.getColumn(2).getInt64();
  if (!q.getColumn(3).isNull()) w.deleted_at = q.getColumn(3).getInt64();
  w.brand = q.getColumn(4).getString();
  w.topic = q.getColumn(5).getString();
  w.url = q.getColumn(6).getString();
  w.key = q.getColumn(7).getString();
  if (!q.getColumn(8).isNull()) {
    w.tags = nlohmann::json::parse(q.getColumn(8).getString()).get<std::vector<std::string>>();
  }
  w.disabled_at = optional_int(q.getColumn(9));
  if (!q.getColumn(10).isNull()) w.disabled_reason = q.getColumn(10).getString();
  return w;
}

TokenInfo read_token(SQLite::Statement& q) {
  TokenInfo t;
  t.id = q.getColumn(0).getString();
  if (!q.getColumn(1).isNull()) t.brand = q.getColumn(1).getString();
  t.label = q.getColumn(2).getString();
  t.created_at = q.getColumn(3).getInt64();
  return t;
}

// A database given as a plain file path (not ":memory:", not a "file:" URI).
bool is_file_path(const std::string& db) { return db != ":memory:" && db.rfind("file:", 0) != 0; }

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const Config& config)
      : db_(open(config)),
        holder_{config.node_id.empty() ? default_node_id() : config.node_id, config.lease_timeout_s * 1'000'000} {
    if (is_file_path(config.db)) db_path_ = std::filesystem::absolute(config.db);
    guarded([&] {
      db_.setBusyTimeout(config.busy_timeout_ms);
      if (config.db != ":memory:") db_.exec("PRAGMA journal_mode=WAL");
      db_.exec(config.synchronous == "full" ? "PRAGMA synchronous=FULL"
                                            : "PRAGMA synchronous=NORMAL");
      db_.exec("PRAGMA foreign_keys=ON");
    });
    migrate();
  }

  void insert_webhook(const Webhook& w) override {
    guarded([&] {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      ensure_brand(w.brand, w.created_at);
      SQLite::Statement& q = prepare("INSERT INTO webhooks (id, created_at, updated_at, deleted_at, brand, "
                          "topic, url, key, tags) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?)");
      q.bind(1, w.id);
      q.bind(2, w.created_at);
      q.bind(3, w.updated_at);
      q.bind(4, w.brand);
      q.bind(5, w.topic);
      q.bind(6, w.url);
      q.bind(7, w.key);
      bind_optional(q, 8, tags_json(w.tags));
      q.exec();
      tx.commit();
    });
  }

  Page<Webhook> list_webhooks(const WebhookQuery& query) override {
    return guarded([&] {
      std::string where = " FROM webhooks WHERE brand = ? AND deleted_at IS NULL";
      if (query.topic) where += " AND topic = ?";
      auto bind_filters = [&](SQLite::Statement& q) {
        q.bind(1, query.brand);
        if (query.topic) q.bind(2, *query.topic);
      };
      Page<Webhook> page;
      SQLite::Statement& count = prepare("SELECT count(*)" + where);
      bind_filters(count);
      count.executeStep();
      page.total = count.getColumn(0).getInt64();

      SQLite::Statement& q = prepare(std::string("SELECT ") + kWebhookColumns + where +
                                   " ORDER BY seq LIMIT ? OFFSET ?");
      bind_filters(q);
      int next = query.topic ? 3 : 2;
      q.bind(next, query.limit.value_or(-1));  // -1: no limit in SQLite
      q.bind(next + 1, query.start);
      while (q.executeStep()) page.items.push_back(read_webhook(q));
      return page;
    });
  }

  std::optional<Webhook> find_live_webhook(const std::string& brand,
                                           const std::string& id) override {
    return guarded([&] { return find_webhook_locked(brand, id, false); });
  }

  std::optional<Webhook> soft_delete_webhook(const std::string& brand, const std::string& id,
                                             std::int64_t now) override {
    return guarded([&]() -> std::optional<Webhook> {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement& q = prepare("UPDATE webhooks SET deleted_at = ?, updated_at = ? "
                          "WHERE brand = ? AND id = ? AND deleted_at IS NULL");
      q.bind(1, now);
      q.bind(2, now);
      q.bind(3, brand);
      q.bind(4, id);
      if (q.exec() == 0) return std::nullopt;
      cancel_waiting(id, now);
      SQLite::Statement& r = prepare(std::string("SELECT ") + kWebhookColumns +
                                   " FROM webhooks WHERE id = ?");
      r.bind(1, id);
      r.executeStep();
      Webhook w = read_webhook(r);
      tx.commit();
      return w;
    });
  }

  void set_brand_parent(const std::string& brand, const std::optional<std::string>& parent,
                        std::int64_t now) override {
    guarded([&] {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      ensure_brand(brand, now);
      if (parent) {
        ensure_brand(*parent, now);
        for (const auto& ancestor : lineage_locked(*parent)) {
          if (ancestor == brand) {
            throw ConflictError("a brand cannot be its own ancestor");
          }
        }
      }
      SQLite::Statement& q = prepare("UPDATE brands SET parent = ?, updated_at = ? WHERE id = ?");
      bind_optional(q, 1, parent);
      q.bind(2, now);
      q.bind(3, brand);
      q.exec();
      tx.commit();
    });
  }

  std::optional<std::string> brand_parent(const std::string& brand) override {
    return guarded([&]() -> std::optional<std::string> {
      SQLite::Statement& q = prepare("SELECT parent FROM brands WHERE id = ?");
      q.bind(1, brand);
      if (!q.executeStep() || q.getColumn(0).isNull()) return std::nullopt;
      return q.getColumn(0).getString();
    });
  }

  std::vector<std::string> brand_lineage(const std::string& brand) override {
    return guarded([&] { return lineage_locked(brand); });
  }

  std::vector<PublishResult> insert_events(const std::vector<EventRecord>& events, LeaseRoom room,
                                           std::vector<DueDelivery>* leased) override {
    return guarded([&] {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      // A webhook with tags matches only events sharing one of them; without tags, all.
      SQLite::Statement& matching = prepare(
          "SELECT seq FROM webhooks w WHERE topic = ?1 AND deleted_at IS NULL "
          "AND disabled_at IS NULL AND brand IN (SELECT value FROM json_each(?2)) "
          "AND (w.tags IS NULL OR w.tags = '[]' OR EXISTS (SELECT 1 FROM json_each(w.tags) t "
          "     WHERE t.value IN (SELECT value FROM json_each(?3)))) ORDER BY seq");
      SQLite::Statement& add_event = prepare("INSERT INTO events (id, brand, topic, event, body, created_at, tags) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?)");
      SQLite::Statement& add_delivery = prepare("INSERT INTO deliveries (id, event_seq, webhook_seq, state, "
                                     "next_at, created_at, updated_at, lease_owner) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)");
      // What a handed-over delivery needs of its webhook, read once per webhook and call.
      std::map<std::int64_t, std::shared_ptr<const WebhookTarget>> targets;
      std::map<std::string, std::string> lineage_json;  // brand -> JSON array of it and its ancestors
      std::vector<PublishResult> results;
      results.reserve(events.size());
      std::int64_t created = 0;
      std::size_t handed_bytes = 0;
      // Events of one brand, topic and tags match the same webhooks: asked once per call.
      std::map<std::string, std::vector<std::int64_t>> matched;
      for (const auto& e : events) {
        std::string tags = e.tags_json.value_or("[]");
        auto [found, fresh_match] = matched.try_emplace(e.brand + '\n' + e.topic + '\n' + tags);
        if (fresh_match) {
          auto [it, fresh] = lineage_json.try_emplace(e.brand);
          if (fresh) it->second = nlohmann::json(lineage_locked(e.brand)).dump();
          matching.bind(1, e.topic);
          matching.bind(2, it->second);
          matching.bind(3, tags);
          while (matching.executeStep()) found->second.push_back(matching.getColumn(0).getInt64());
          matching.reset();
        }
        const std::vector<std::int64_t>& webhooks = found->second;

        add_event.bind(1, e.id);
        add_event.bind(2, e.brand);
        add_event.bind(3, e.topic);
        add_event.bind(4, e.event);
        add_event.bindNoCopy(5, e.body.data(), static_cast<int>(e.body.size()));
        add_event.bind(6, e.created_at);
        bind_optional(add_event, 7, e.tags_json);
        add_event.exec();
        add_event.reset();
        std::int64_t event_seq = db_.getLastInsertRowid();

        std::shared_ptr<const std::string> body;  // shared by this event's handed-over deliveries
        for (std::int64_t webhook : webhooks) {
          bool hand_over = leased && leased->size() < room.deliveries &&
                           handed_bytes + e.body.size() <= room.bytes && e.first_attempt_at <= e.created_at;
          std::string id = uuid_v7();
          add_delivery.bindNoCopy(1, id);  // alive until exec(): SQLite need not copy it
          add_delivery.bind(2, event_seq);
          add_delivery.bind(3, webhook);
          // Handed over: leased by this node at once (next_at is then the lease's expiry).
          add_delivery.bind(4, hand_over ? holder_.expiry(e.created_at) : e.first_attempt_at);
          add_delivery.bind(5, e.created_at);
          add_delivery.bind(6, e.created_at);
          if (hand_over) {
            add_delivery.bindNoCopy(7, holder_.node);
          } else {
            add_delivery.bind(7);
          }
          add_delivery.exec();
          add_delivery.reset();
          if (!hand_over) continue;
          handed_bytes += e.body.size();
          if (!body) body = std::make_shared<const std::string>(e.body);
          auto [target, fresh_target] = targets.try_emplace(webhook);
          if (fresh_target) target->second = target_locked(webhook, e.created_at);
          DueDelivery d;
          d.target = target->second;
          d.seq = db_.getLastInsertRowid();
          d.id = std::move(id);
          d.webhook_seq = webhook;
          d.body = body;
          d.event_created_at = e.created_at;
          leased->push_back(std::move(d));
        }
        results.push_back({e.id, static_cast<std::int64_t>(webhooks.size())});
        created += static_cast<std::int64_t>(webhooks.size());
      }
      StateCounts counts;
      counts.delta["pending"] = created;
      save_counts(counts);
      tx.commit();
      return results;
    });
  }

  std::int64_t release_leases(std::int64_t now) override {
    return guarded([&] { return update_own_leases(lease_sql::kRelease, now); });
  }

  std::int64_t renew_leases(std::int64_t now) override {
    return guarded([&] { return update_own_leases(lease_sql::kRenew, holder_.expiry(now)); });
  }

  std::vector<DueDelivery> claim_due(std::int64_t now, std::size_t limit,
                                     const std::vector<std::int64_t>& skip_webhooks,
                                     std::size_t max_bytes) override {
    return guarded([&] {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      // INDEXED BY: the planner must never fall back to sorting every pending row per claim.
      // Due includes leases whose holder stopped renewing (lease.hpp), but never this node's
      // own: it still holds them in memory and records them itself.
      SQLite::Statement& q = prepare(
          "SELECT d.seq, d.id, d.attempts, d.event_seq, e.body, d.webhook_seq, e.created_at, "
          "       d.lease_owner IS NOT NULL "
          "FROM deliveries d INDEXED BY deliveries_due JOIN events e ON e.seq = d.event_seq "
          "WHERE d.state = 'pending' AND d.next_at <= ?1 "
          "AND (d.lease_owner IS NULL OR d.lease_owner <> ?4) "
          "AND d.webhook_seq NOT IN (SELECT value FROM json_each(?2)) "
          "ORDER BY d.next_at, d.seq LIMIT ?3");
      q.bind(1, now);
      q.bind(2, nlohmann::json(skip_webhooks).dump());
      q.bind(3, static_cast<std::int64_t>(limit));
      q.bind(4, holder_.node);
      std::vector<DueDelivery> rows;
      std::int64_t last_event = -1;
      std::shared_ptr<const std::string> body;
      std::size_t claimed_bytes = 0;
      while (q.executeStep()) {
        auto size = static_cast<std::size_t>(q.getColumn(4).getBytes());
        if (!rows.empty() && claimed_bytes + size > max_bytes) break;
        claimed_bytes += size;
        DueDelivery d;
        d.seq = q.getColumn(0).getInt64();
        d.id = q.getColumn(1).getString();
        d.attempts_made = q.getColumn(2).getInt();
        std::int64_t event_seq = q.getColumn(3).getInt64();
        if (event_seq != last_event) {  // an event's deliveries are usually adjacent
          body = std::make_shared<const std::string>(bytes(q.getColumn(4)));
          last_event = event_seq;
        }
        d.body = body;
        d.webhook_seq = q.getColumn(5).getInt64();
        d.event_created_at = q.getColumn(6).getInt64();
        d.taken_over = q.getColumn(7).getInt() != 0;
        rows.push_back(std::move(d));
      }
      q.reset();

      // Each webhook is read once per claim; deliveries of deleted or disabled ones are cancelled.
      std::map<std::int64_t, std::shared_ptr<const WebhookTarget>> targets;
      SQLite::Statement& lease = prepare(lease_sql::kTake);
      SQLite::Statement& cancel = prepare("UPDATE deliveries SET state = 'cancelled', next_at = NULL, "
                                          "lease_owner = NULL, updated_at = ? WHERE seq = ?");
      std::vector<DueDelivery> due;
      due.reserve(rows.size());
      StateCounts counts;
      for (auto& d : rows) {
        auto [target, fresh] = targets.try_emplace(d.webhook_seq);
        if (fresh) target->second = target_locked(d.webhook_seq, now);
        if (!target->second) {
          cancel.bind(1, now);
          cancel.bind(2, d.seq);
          cancel.exec();
          cancel.reset();
          counts.move("pending", "cancelled");
          continue;
        }
        d.target = target->second;
        lease.bind(1, holder_.node);
        lease.bind(2, holder_.expiry(now));
        lease.bind(3, d.seq);
        lease.exec();
        lease.reset();
        due.push_back(std::move(d));
      }
      save_counts(counts);
      tx.commit();
      return due;
    });
  }

  std::optional<std::int64_t> next_due_at() override {
    return guarded([&]() -> std::optional<std::int64_t> {
      // As claim_due sees them: this node's own leases are never due to it.
      SQLite::Statement& q = prepare("SELECT next_at FROM deliveries INDEXED BY deliveries_due "
                                     "WHERE state = 'pending' AND (lease_owner IS NULL OR lease_owner <> ?) "
                                     "ORDER BY next_at, seq LIMIT 1");
      q.bind(1, holder_.node);
      if (!q.executeStep()) return std::nullopt;
      return q.getColumn(0).getInt64();
    });
  }

  RecordResult record_attempts(const std::vector<AttemptRecord>& records, std::int64_t now,
                               std::int64_t disable_before) override {
    return guarded([&] {
      RecordResult result;
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement& attempt = prepare("INSERT OR REPLACE INTO attempts (delivery_seq, number, started_at, "
                                "duration_us, status, error, detail, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
      SQLite::Statement& delivery = prepare(lease_sql::kFinish);
      SQLite::Statement& succeeded = prepare("UPDATE webhooks SET failing_since = NULL "
                                  "WHERE seq = ? AND failing_since IS NOT NULL");
      SQLite::Statement& failed = prepare("UPDATE webhooks SET failing_since = coalesce(failing_since, ?) WHERE seq = ?");
      SQLite::Statement& failing_again = prepare("UPDATE webhooks SET failing_since = ? WHERE seq = ?");
      SQLite::Statement& disable = prepare("UPDATE webhooks SET disabled_at = ?, disabled_reason = ?, updated_at = ? "
                                "WHERE seq = ? AND disabled_at IS NULL AND "
                                "(? OR failing_since <= ?)");
      SQLite::Statement& cancel = prepare(std::string("UPDATE deliveries SET state = 'cancelled', next_at = NULL, "
                                                      "lease_owner = NULL, updated_at = ?1 "
                                                      "WHERE webhook_seq = ?2 AND state = 'pending' AND ") +
                                          lease_sql::kNotHeld);
      // Each webhook's failure streak folded over the batch, in order: one update per webhook
      // and commit instead of one per attempt.
      struct Streak {
        bool succeeded = false;                   // a success in this batch ended the old streak
        std::optional<std::int64_t> failing_from;  // the first failure after the last success
      };
      std::map<std::int64_t, Streak> streaks;
      StateCounts counts;
      for (const auto& r : records) {
        const Attempt& a = r.attempt;
        delivery.bind(1, a.number);
        delivery.bindNoCopy(2, r.new_state);
        bind_optional(delivery, 3, r.next_at);
        delivery.bind(4, now);
        delivery.bind(5, r.delivery_seq);
        delivery.bindNoCopy(6, holder_.node);
        bool held = delivery.exec() == 1;
        delivery.reset();
        if (!held) {  // taken over: the new holder records its own attempt
          ++result.lost;
          continue;
        }
        counts.move("pending", r.new_state);

        attempt.bind(1, r.delivery_seq);
        attempt.bind(2, a.number);
        attempt.bind(3, a.started_at);
        attempt.bind(4, a.duration_us);
        bind_optional(attempt, 5, a.status);
        bind_text_or_null(attempt, 6, a.error);
        bind_text_or_null(attempt, 7, a.detail);
        attempt.bindNoCopy(8, a.response.data(), static_cast<int>(a.response.size()));
        attempt.exec();
        attempt.reset();

        Streak& streak = streaks[r.webhook_seq];
        if (r.new_state == "delivered") {
          streak.succeeded = true;
          streak.failing_from.reset();
        } else if (!streak.failing_from) {
          streak.failing_from = a.started_at;
        }
        if (!r.disable_reason.empty()) {
          result.disabled += disable_webhook(disable, cancel, r.webhook_seq, r.disable_reason, now, true, 0, counts);
        }
      }
      for (const auto& [webhook, streak] : streaks) {
        if (!streak.failing_from) {
          succeeded.bind(1, webhook);
          succeeded.exec();
          succeeded.reset();
          continue;
        }
        SQLite::Statement& q = streak.succeeded ? failing_again : failed;
        q.bind(1, *streak.failing_from);
        q.bind(2, webhook);
        q.exec();
        q.reset();
        // Already disabled (410 above) or not failing long enough: nothing happens.
        result.disabled += disable_webhook(disable, cancel, webhook,
                                    "failing without a successful delivery for too long", now, false,
                                    disable_before, counts);
      }
      save_counts(counts);
      tx.commit();
      return result;
    });
  }

  Page<Delivery> list_deliveries(const DeliveryQuery& query) override {
    return guarded([&] {
      Page<Delivery> page;
      auto webhook = find_webhook_locked(query.brand, query.webhook_id, true);
      if (!webhook) throw NotFoundError("webhook not found");
      std::string where = " FROM deliveries d JOIN events e ON e.seq = d.event_seq "
                          "JOIN webhooks w ON w.seq = d.webhook_seq WHERE w.id = ?";
      if (query.state) where += " AND d.state = ?";
      auto bind_filters = [&](SQLite::Statement& q) {
        q.bind(1, query.webhook_id);
        if (query.state) q.bind(2, *query.state);
      };
      SQLite::Statement& count = prepare("SELECT count(*)" + where);
      bind_filters(count);
      count.executeStep();
      page.total = count.getColumn(0).getInt64();

      SQLite::Statement& q = prepare(std::string("SELECT ") + kDeliveryColumns + where +
                                     " ORDER BY d.seq DESC LIMIT ? OFFSET ?");
      bind_filters(q);
      int next = query.state ? 3 : 2;
      q.bind(next, query.limit);
      q.bind(next + 1, query.start);
      while (q.executeStep()) page.items.push_back(read_delivery(q));
      return page;
    });
  }

  std::optional<Delivery> get_delivery(const std::string& brand, const std::string& id) override {
    return guarded([&] { return find_delivery_locked(brand, id); });
  }

  std::optional<Delivery> redeliver(const std::string& brand, const std::string& id,
                                    std::int64_t now) override {
    return guarded([&]() -> std::optional<Delivery> {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      auto found = find_delivery_locked(brand, id);
      if (!found) return std::nullopt;
      check_deliverable(brand, found->webhook_id);
      SQLite::Statement& q = prepare(
          std::string("UPDATE deliveries SET state = 'pending', next_at = ?1, lease_owner = NULL, updated_at = ?1 "
                      "WHERE id = ?2 AND ") + lease_sql::kNotHeld);
      q.bind(1, now);
      q.bind(2, id);
      // The row exists (found above, same transaction): no change means a node holds it.
      if (q.exec() == 0) throw ConflictError("this delivery is being attempted right now");
      StateCounts counts;
      counts.move(found->state, "pending");
      save_counts(counts);
      auto updated = find_delivery_locked(brand, id);
      tx.commit();
      return updated;
    });
  }

  RecoverResult recover(const std::string& brand, const std::string& webhook_id, std::int64_t since,
                        std::int64_t limit, std::int64_t now) override {
    return guarded([&] {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      check_deliverable(brand, webhook_id);
      SQLite::Statement& q = prepare(
          "SELECT d.seq, d.id FROM deliveries d JOIN webhooks w ON w.seq = d.webhook_seq "
          "WHERE w.id = ? AND d.state = 'failed' AND d.created_at >= ? ORDER BY d.seq LIMIT ?");
      q.bind(1, webhook_id);
      q.bind(2, since);
      q.bind(3, limit);
      RecoverResult result;
      std::vector<std::int64_t> seqs;
      while (q.executeStep()) {
        seqs.push_back(q.getColumn(0).getInt64());
        result.delivery_ids.push_back(q.getColumn(1).getString());
      }
      SQLite::Statement& requeue = prepare(
          "UPDATE deliveries SET state = 'pending', next_at = ?, updated_at = ? WHERE seq = ?");
      for (std::int64_t seq : seqs) {
        requeue.bind(1, now);
        requeue.bind(2, now);
        requeue.bind(3, seq);
        requeue.exec();
        requeue.reset();
      }
      StateCounts counts;
      counts.move("failed", "pending", static_cast<std::int64_t>(seqs.size()));
      save_counts(counts);
      tx.commit();
      result.queued = static_cast<std::int64_t>(seqs.size());
      return result;
    });
  }

  std::optional<Webhook> update_webhook(const std::string& brand, const std::string& id,
                                        const WebhookPatch& patch, std::int64_t now) override {
    return guarded([&]() -> std::optional<Webhook> {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      auto current = find_webhook_locked(brand, id, false);
      if (!current) return std::nullopt;
      std::string sets = "updated_at = ?";
      if (patch.url) sets += ", url = ?";
      if (patch.topic) sets += ", topic = ?";
      if (patch.set_tags) sets += ", tags = ?";
      if (patch.enabled) {
        sets += *patch.enabled ? ", disabled_at = NULL, disabled_reason = NULL, failing_since = NULL"
                               : ", disabled_at = coalesce(disabled_at, ?), "
                                 "disabled_reason = coalesce(disabled_reason, 'disabled by an operator')";
      }
      SQLite::Statement& q = prepare("UPDATE webhooks SET " + sets + " WHERE id = ?");
      int i = 1;
      q.bind(i++, now);
      if (patch.url) q.bind(i++, *patch.url);
      if (patch.topic) q.bind(i++, *patch.topic);
      if (patch.set_tags) bind_optional(q, i++, tags_json(patch.tags));
      if (patch.enabled && !*patch.enabled) q.bind(i++, now);
      q.bind(i, id);
      q.exec();
      if (patch.enabled && !*patch.enabled) cancel_waiting(id, now);
      auto updated = find_webhook_locked(brand, id, false);
      tx.commit();
      return updated;
    });
  }

  std::optional<Webhook> rotate_key(const std::string& brand, const std::string& id,
                                    const std::string& new_key, std::int64_t old_valid_until,
                                    std::int64_t now, int max_previous) override {
    return guarded([&]() -> std::optional<Webhook> {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      auto current = find_webhook_locked(brand, id, false);
      if (!current) return std::nullopt;
      if (old_valid_until > now && max_previous > 0) {
        SQLite::Statement& keep = prepare(
            "INSERT INTO webhook_keys (webhook_seq, key, expires_at) "
            "SELECT seq, key, ? FROM webhooks WHERE id = ?");
        keep.bind(1, old_valid_until);
        keep.bind(2, id);
        keep.exec();
      }
      // No grace: every earlier key ends now (expires_at <= ?1 matches all). Otherwise the
      // expired ones go, and all but the `max_previous` most recently retired.
      std::int64_t ended_before = old_valid_until > now ? now : INT64_MAX;
      SQLite::Statement& forget = prepare(
          "DELETE FROM webhook_keys WHERE webhook_seq = (SELECT seq FROM webhooks WHERE id = ?2) "
          "AND (expires_at <= ?1 OR rowid NOT IN (SELECT rowid FROM webhook_keys "
          "WHERE webhook_seq = (SELECT seq FROM webhooks WHERE id = ?2) ORDER BY rowid DESC LIMIT ?3))");
      forget.bind(1, ended_before);
      forget.bind(2, id);
      forget.bind(3, max_previous);
      forget.exec();
      SQLite::Statement& q = prepare("UPDATE webhooks SET key = ?, updated_at = ? WHERE id = ?");
      q.bind(1, new_key);
      q.bind(2, now);
      q.bind(3, id);
      q.exec();
      auto updated = find_webhook_locked(brand, id, false);
      tx.commit();
      return updated;
    });
  }

  std::int64_t prune(std::int64_t before) override {
    // Deliveries are created in seq order and updated only after their creation, so only the
    // table's first rows (created before `before`) can qualify: scan them in seq order, in
    // chunks, so the queue never waits long behind one transaction.
    constexpr std::int64_t kChunk = 2000;
    std::int64_t removed = 0;
    std::int64_t after = 0;
    bool more = true;
    while (more) {
      removed += guarded([&] {
        SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
        SQLite::Statement& scan = prepare(
            "SELECT seq, state, updated_at, created_at FROM deliveries WHERE seq > ? ORDER BY seq LIMIT ?");
        scan.bind(1, after);
        scan.bind(2, kChunk);
        std::vector<std::int64_t> doomed;
        StateCounts counts;
        std::int64_t scanned = 0;
        while (scan.executeStep()) {
          ++scanned;
          if (scan.getColumn(3).getInt64() >= before) {
            more = false;
            break;
          }
          after = scan.getColumn(0).getInt64();
          std::string state = scan.getColumn(1).getString();
          if (state != "pending" && scan.getColumn(2).getInt64() < before) {
            doomed.push_back(after);
            --counts.delta[state];
          }
        }
        scan.reset();
        if (scanned < kChunk) more = false;
        SQLite::Statement& attempts = prepare("DELETE FROM attempts WHERE delivery_seq = ?");
        SQLite::Statement& delivery = prepare("DELETE FROM deliveries WHERE seq = ?");
        for (std::int64_t seq : doomed) {
          attempts.bind(1, seq);
          attempts.exec();
          attempts.reset();
          delivery.bind(1, seq);
          delivery.exec();
          delivery.reset();
        }
        save_counts(counts);
        if (!more) {
          // Events older than every remaining delivery have none left (an event's deliveries
          // are created with it, so event order follows delivery order).
          SQLite::Statement& events = prepare(
              "DELETE FROM events WHERE created_at < ? AND seq < coalesce("
              "(SELECT event_seq FROM deliveries ORDER BY seq LIMIT 1), 9223372036854775807)");
          events.bind(1, before);
          events.exec();
        }
        tx.commit();
        return static_cast<std::int64_t>(doomed.size());
      });
    }
    return removed;
  }

  Stats stats(std::int64_t now) override {
    return guarded([&] {
      Stats st;
      SQLite::Statement& hooks = prepare(
          "SELECT count(*), count(disabled_at) FROM webhooks WHERE deleted_at IS NULL");
      hooks.executeStep();
      st.webhooks = hooks.getColumn(0).getInt64();
      st.disabled_webhooks = hooks.getColumn(1).getInt64();
      SQLite::Statement& events = prepare("SELECT count(*) FROM events");
      events.executeStep();
      st.events = events.getColumn(0).getInt64();
      SQLite::Statement& states = prepare("SELECT state, n FROM delivery_counts");
      while (states.executeStep()) {
        std::string state = states.getColumn(0).getString();
        std::int64_t n = states.getColumn(1).getInt64();
        if (state == "pending") st.pending = n;
        else if (state == "delivered") st.delivered = n;
        else if (state == "failed") st.failed = n;
        else if (state == "cancelled") st.cancelled = n;
      }
      SQLite::Statement& due = prepare(
          "SELECT count(*), min(next_at) FROM deliveries INDEXED BY deliveries_due "
          "WHERE state = 'pending' AND next_at <= ?");
      due.bind(1, now);
      due.executeStep();
      st.due_now = due.getColumn(0).getInt64();
      st.oldest_due_at = optional_int(due.getColumn(1));
      return st;
    });
  }

  std::optional<Webhook> find_webhook(const std::string& brand, const std::string& id) override {
    return guarded([&] { return find_webhook_locked(brand, id, true); });
  }

  bool insert_token(const TokenRecord& t) override {
    return guarded([&] {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      if (t.info.brand) ensure_brand(*t.info.brand, t.info.created_at);
      SQLite::Statement& q = prepare("INSERT OR IGNORE INTO api_tokens (id, hash, brand, label, created_at) "
                          "VALUES (?, ?, ?, ?, ?)");
      q.bind(1, t.info.id);
      q.bind(2, t.hash.data(), static_cast<int>(t.hash.size()));
      bind_optional(q, 3, t.info.brand);
      q.bind(4, t.info.label);
      q.bind(5, t.info.created_at);
      bool inserted = q.exec() == 1;
      tx.commit();
      return inserted;
    });
  }

  std::optional<TokenInfo> find_token(const std::string& hash) override {
    return guarded([&]() -> std::optional<TokenInfo> {
      SQLite::Statement& q = prepare("SELECT id, brand, label, created_at FROM api_tokens "
                          "WHERE hash = ? AND revoked_at IS NULL");
      q.bind(1, hash.data(), static_cast<int>(hash.size()));
      if (!q.executeStep()) return std::nullopt;
      return read_token(q);
    });
  }

  std::vector<TokenInfo> list_tokens() override {
    return guarded([&] {
      SQLite::Statement& q = prepare("SELECT id, brand, label, created_at FROM api_tokens "
                          "WHERE revoked_at IS NULL ORDER BY created_at, id");
      std::vector<TokenInfo> out;
      while (q.executeStep()) out.push_back(read_token(q));
      return out;
    });
  }

  bool revoke_token(const std::string& id, std::int64_t now) override {
    return guarded([&] {
      SQLite::Statement& q = prepare("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL");
      q.bind(1, now);
      q.bind(2, id);
      return q.exec() == 1;
    });
  }

  void check_writable() override {
    guarded([&] {
      // Takes the write lock and lets it go: fails on a read-only or locked database.
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    });
    if (db_path_.empty()) return;
    std::error_code ec;
    auto space = std::filesystem::space(db_path_.parent_path(), ec);
    if (!ec && space.available < kMinFreeBytes) {
      throw UnavailableError("storage is full: " + std::to_string(space.available / 1024) +
                             " KiB free where the database lives; writes may fail until space is freed");
    }
  }

  bool has_tokens() override {
    return guarded([&] {
      SQLite::Statement& q = prepare("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL)");
      q.executeStep();
      return q.getColumn(0).getInt() == 1;
    });
  }

 private:
  static SQLite::Database open(const Config& config) {
    refuse_empty_file(config);
    try {
      // NOMUTEX: the connection is only used under mutex_, so SQLite's own lock around every
      // call would be taken for nothing (it showed in profiles of the store thread).
      return SQLite::Database(config.db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX);
    } catch (const SQLite::Exception& e) {
      throw StorageError("cannot open database " + config.db + ": " + e.what());
    }
  }

  // An existing 0-byte file is what a truncated copy, a failed restore or a mistyped path
  // to a placeholder looks like; taking it as a new database would silently lose every
  // webhook and token. Only Config::init_db makes a new database in it.
  static void refuse_empty_file(const Config& config) {
    if (config.init_db || !is_file_path(config.db)) return;
    auto empty = [](const std::string& path) {
      std::error_code ec;
      return std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) == 0 && !ec;
    };
    // A database that never left its WAL has a 0-byte main file next to a non-empty -wal.
    std::error_code ec;
    bool wal_has_data = std::filesystem::exists(config.db + "-wal", ec) && !empty(config.db + "-wal");
    if (empty(config.db) && !wal_has_data) {
      throw StorageError("database file " + config.db +
                         " is empty (0 bytes): refusing to take it as a new database; to create a new "
                         "database in it, set init_db (brandhooks serve --init-db, BRANDHOOKS_INIT_DB=1)");
    }
  }

  // Below this many free bytes where the database lives, check_writable reports the store
  // as full: one event body (1 MiB) and its WAL pages would no longer fit.
  static constexpr std::uintmax_t kMinFreeBytes = 2u << 20;

  // Whether a failure means that the disk (or the file-size limit) is full: SQLite says so
  // with SQLITE_FULL, or with an I/O error whose system error is ENOSPC/EDQUOT.
  bool is_full(const SQLite::Exception& e) {
    if ((e.getExtendedErrorCode() & 0xff) == SQLITE_FULL) return true;
    int system = sqlite3_system_errno(db_.getHandle());
    return (e.getExtendedErrorCode() & 0xff) == SQLITE_IOERR && (system == ENOSPC || system == EDQUOT);
  }

  // Runs `fn` under the connection's lock; SQLite failures become StorageError, while the
  // core's own errors (e.g. ConflictError from a check inside a transaction) pass through.
  // Statements `fn` prepared are reset afterwards, so none keeps a read snapshot open.
  template <class Fn>
  auto guarded(Fn&& fn) -> decltype(fn()) {
    std::lock_guard lock(mutex_);
    struct ResetUsed {
      std::vector<SQLite::Statement*>& used;
      ~ResetUsed() {
        for (auto* statement : used) statement->tryReset();
        used.clear();
      }
    } reset_used{used_};
    try {
      return fn();
    } catch (const SQLite::Exception& e) {
      if (is_full(e)) {
        throw UnavailableError(std::string("storage is full: the database cannot be written (") + e.what() +
                               "); nothing was changed, try again when space is freed");
      }
      int primary = e.getExtendedErrorCode() & 0xff;
      if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
        throw UnavailableError(std::string("database is busy: another process held its lock for longer than "
                                           "busy_timeout_ms (") + e.what() + "); nothing was changed, try again");
      }
      throw StorageError(std::string("database error: ") + e.what());
    }
  }

  // A prepared statement for `sql`, compiled once per connection and reused (compiling costs
  // more than running most of these). Only under the lock, inside guarded().
  SQLite::Statement& prepare(const std::string& sql) {
    auto& slot = statements_[sql];
    if (!slot) slot = std::make_unique<SQLite::Statement>(db_, sql);
    slot->reset();
    slot->clearBindings();
    // Once per statement: a loop that prepares the same one per row keeps the list short.
    if (std::find(used_.begin(), used_.end(), slot.get()) == used_.end()) used_.push_back(slot.get());
    return *slot;
  }

  void migrate() {
    guarded([&] {
      int version = db_.execAndGet("PRAGMA user_version").getInt();
      if (version > kSchemaVersion) {
        throw StorageError("database schema version " + std::to_string(version) +
                           " is newer than this build supports (" +
                           std::to_string(kSchemaVersion) + "); upgrade brandhooks");
      }
      for (; version < kSchemaVersion; ++version) {
        SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
        // Re-read under the write lock: another process may have migrated meanwhile.
        int current = db_.execAndGet("PRAGMA user_version").getInt();
        if (current > version) {
          version = current - 1;
          continue;
        }
        db_.exec(kMigrations[version]);
        db_.exec("PRAGMA user_version = " + std::to_string(version + 1));
        tx.commit();
      }
    });
  }

  // Runs a statement over this node's leases: ?1 `time`, ?2 the node.
  std::int64_t update_own_leases(const char* sql, std::int64_t time) {
    SQLite::Statement& q = prepare(sql);
    q.bind(1, time);
    q.bind(2, holder_.node);
    return q.exec();
  }

  void ensure_brand(const std::string& id, std::int64_t now) {
    SQLite::Statement& q = prepare("INSERT OR IGNORE INTO brands (id, parent, created_at, updated_at) "
                        "VALUES (?, NULL, ?, ?)");
    q.bind(1, id);
    q.bind(2, now);
    q.bind(3, now);
    q.exec();
  }

  // Disables a webhook (when `force`, or when it has failed since before `failing_before`) and
  // cancels its waiting deliveries.
  bool disable_webhook(SQLite::Statement& disable, SQLite::Statement& cancel, std::int64_t webhook,
                       const std::string& reason, std::int64_t now, bool force,
                       std::int64_t failing_before, StateCounts& counts) {
    disable.bind(1, now);
    disable.bind(2, reason);
    disable.bind(3, now);
    disable.bind(4, webhook);
    disable.bind(5, force ? 1 : 0);
    disable.bind(6, failing_before);
    bool disabled = disable.exec() == 1;
    disable.reset();
    if (!disabled) return false;
    cancel.bind(1, now);
    cancel.bind(2, webhook);
    counts.move("pending", "cancelled", cancel.exec());
    cancel.reset();
    return true;
  }

  Delivery read_delivery(SQLite::Statement& q) {
    Delivery d;
    d.id = q.getColumn(1).getString();
    d.event_id = q.getColumn(2).getString();
    d.webhook_id = q.getColumn(3).getString();
    d.brand = q.getColumn(4).getString();
    d.state = q.getColumn(5).getString();
    d.attempt_count = q.getColumn(6).getInt();
    d.created_at = q.getColumn(7).getInt64();
    d.updated_at = q.getColumn(8).getInt64();
    if (d.state == "pending") d.next_attempt_at = optional_int(q.getColumn(9));
    d.topic = q.getColumn(10).getString();
    d.event = q.getColumn(11).getString();
    SQLite::Statement& attempts = prepare(
        "SELECT number, started_at, duration_us, status, error, detail, response "
        "FROM attempts WHERE delivery_seq = ? ORDER BY number");
    attempts.bind(1, q.getColumn(0).getInt64());
    while (attempts.executeStep()) {
      Attempt a;
      a.number = attempts.getColumn(0).getInt();
      a.started_at = attempts.getColumn(1).getInt64();
      a.duration_us = attempts.getColumn(2).getInt64();
      if (!attempts.getColumn(3).isNull()) a.status = attempts.getColumn(3).getInt();
      if (!attempts.getColumn(4).isNull()) a.error = attempts.getColumn(4).getString();
      if (!attempts.getColumn(5).isNull()) a.detail = attempts.getColumn(5).getString();
      a.response = bytes(attempts.getColumn(6));
      d.attempts.push_back(std::move(a));
    }
    attempts.reset();
    return d;
  }

  // Applies a transaction's state changes to delivery_counts (within that transaction).
  void save_counts(const StateCounts& counts) {
    SQLite::Statement& q = prepare("UPDATE delivery_counts SET n = n + ? WHERE state = ?");
    for (const auto& [state, n] : counts.delta) {
      if (n == 0) continue;
      q.bind(1, n);
      q.bind(2, state);
      q.exec();
      q.reset();
    }
  }

  // Where the webhook's deliveries attempted at `now` go and their keys; null once the
  // webhook is deleted or disabled.
  std::shared_ptr<const WebhookTarget> target_locked(std::int64_t webhook_seq, std::int64_t now) {
    SQLite::Statement& q = prepare(
        "SELECT url, key, deleted_at IS NULL AND disabled_at IS NULL, "
        "       (SELECT json_group_array(k.key) FROM webhook_keys k "
        "        WHERE k.webhook_seq = w.seq AND k.expires_at > ?2), id, brand "
        "FROM webhooks w WHERE seq = ?1");
    q.bind(1, webhook_seq);
    q.bind(2, now);
    std::shared_ptr<WebhookTarget> target;
    if (q.executeStep() && q.getColumn(2).getInt() != 0) {
      target = std::make_shared<WebhookTarget>();
      target->id = q.getColumn(4).getString();
      target->brand = q.getColumn(5).getString();
      target->url = q.getColumn(0).getString();
      target->keys.push_back(q.getColumn(1).getString());
      for (const auto& key : nlohmann::json::parse(q.getColumn(3).getString())) {
        target->keys.push_back(key.get<std::string>());
      }
    }
    q.reset();
    return target;
  }

  std::optional<Delivery> find_delivery_locked(const std::string& brand, const std::string& id) {
    SQLite::Statement& q = prepare(std::string("SELECT ") + kDeliveryColumns +
                                   " FROM deliveries d JOIN events e ON e.seq = d.event_seq "
                                   "JOIN webhooks w ON w.seq = d.webhook_seq WHERE d.id = ? AND w.brand = ?");
    q.bind(1, id);
    q.bind(2, brand);
    if (!q.executeStep()) return std::nullopt;
    Delivery d = read_delivery(q);
    q.reset();
    return d;
  }

  // Replays need a live, enabled webhook: otherwise the queued deliveries would only be
  // cancelled again, and recover (which takes failed ones) could not bring them back.
  void check_deliverable(const std::string& brand, const std::string& webhook_id) {
    auto webhook = find_webhook_locked(brand, webhook_id, false);
    if (!webhook) throw NotFoundError("webhook not found");
    if (webhook->disabled_at) {
      throw ConflictError("the webhook is disabled (" + webhook->disabled_reason + "); enable it first");
    }
  }

  // The webhook's deliveries that wait for an attempt will never get one.
  void cancel_waiting(const std::string& webhook_id, std::int64_t now) {
    SQLite::Statement& cancel = prepare(
        std::string("UPDATE deliveries SET state = 'cancelled', next_at = NULL, lease_owner = NULL, updated_at = ?1 "
                    "WHERE webhook_seq = (SELECT seq FROM webhooks WHERE id = ?2) AND state = 'pending' AND ") +
        lease_sql::kNotHeld);
    cancel.bind(1, now);
    cancel.bind(2, webhook_id);
    StateCounts counts;
    counts.move("pending", "cancelled", cancel.exec());
    save_counts(counts);
  }

  std::optional<Webhook> find_webhook_locked(const std::string& brand, const std::string& id,
                                             bool include_deleted) {
    SQLite::Statement& q = prepare(std::string("SELECT ") + kWebhookColumns +
                                 " FROM webhooks WHERE brand = ? AND id = ?" +
                                 (include_deleted ? "" : " AND deleted_at IS NULL"));
    q.bind(1, brand);
    q.bind(2, id);
    if (!q.executeStep()) return std::nullopt;
    return read_webhook(q);
  }

  std::vector<std::string> lineage_locked(const std::string& brand) {
    // The tree is acyclic (set_brand_parent refuses cycles); the depth cap guards a file
    // edited by hand.
    SQLite::Statement& q = prepare("WITH RECURSIVE up(id, depth) AS ("
                        "  SELECT ?, 0"
                        "  UNION ALL SELECT b.parent, up.depth + 1 FROM brands b JOIN up ON b.id = up.id"
                        "  WHERE b.parent IS NOT NULL AND up.depth < 1000)"
                        " SELECT id FROM up ORDER BY depth");
    q.bind(1, brand);
    std::vector<std::string> out;
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  }

  std::mutex mutex_;
  SQLite::Database db_;
  const LeaseHolder holder_;
  std::filesystem::path db_path_;  // empty for an in-memory database
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> statements_;
  std::vector<SQLite::Statement*> used_;
};

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const Config& config) {
  return std::make_unique<SqliteStore>(config);
}

int sqlite_schema_version() { return kSchemaVersion; }

const char* sqlite_migration(int version) { return kMigrations[version]; }

}  // namespace brandhooks
