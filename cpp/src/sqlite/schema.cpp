// The schema: versioned migrations (PRAGMA user_version), applied at open.
#include <iterator>

#include "brandhooks/errors.hpp"
#include "sqlite/sqlite_store.hpp"

namespace brandhooks {
namespace sqlite {

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
    // 6: delivery controls (issue 12): per-webhook ordering, rate limit and custom headers (a
    // JSON object; NULL: none), and the idempotency keys of publish requests: one per brand and
    // key (the primary key makes two nodes' concurrent requests with one key commit once), with
    // the SHA-256 of the request and the answer's events ([{"id","deliveries"}, ...]); pruned
    // with retention (by created_at).
    R"sql(
    ALTER TABLE webhooks ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER;
    ALTER TABLE webhooks ADD COLUMN headers TEXT;
    CREATE TABLE idempotency_keys (
      brand        TEXT NOT NULL,
      key          TEXT NOT NULL,
      request_hash BLOB NOT NULL,
      results      TEXT NOT NULL,
      created_at   INTEGER NOT NULL,
      PRIMARY KEY (brand, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);
    )sql",
    // 7: delivery controls, the claims' side (docs/delivery.md, "Ordered webhooks" and
    // "Throttled webhooks"): a throttled webhook's next free send slot, the ordered webhooks
    // without a scan, and each webhook's pending deliveries in publish order.
    R"sql(
    ALTER TABLE webhooks ADD COLUMN rate_next_at INTEGER;
    CREATE INDEX webhooks_ordered ON webhooks(seq) WHERE ordered;
    CREATE INDEX deliveries_pending_by_webhook ON deliveries(webhook_seq, seq) WHERE state = 'pending';
    )sql",
    // 8: tokens that expire (portal links, issue 13): refused from expires_at on, pruned with
    // retention.
    R"sql(
    ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
    CREATE INDEX api_tokens_by_expiry ON api_tokens(expires_at) WHERE expires_at IS NOT NULL;
    )sql",
    // 9: delivery statistics (docs/delivery.md, "Delivery statistics"): attempts per webhook and
    // minute by outcome, with a histogram of their durations (a JSON array of counts, latency.hpp),
    // written with each batch of outcomes; pruned 25 h after the minute. Starts empty: attempts
    // made before the upgrade are not counted.
    R"sql(
    CREATE TABLE attempt_minutes (
      webhook_seq INTEGER NOT NULL,
      minute      INTEGER NOT NULL,
      succeeded   INTEGER NOT NULL,
      failed      INTEGER NOT NULL,
      errors      INTEGER NOT NULL,
      latency     TEXT NOT NULL,
      PRIMARY KEY (webhook_seq, minute)
    ) WITHOUT ROWID;
    CREATE INDEX attempt_minutes_by_minute ON attempt_minutes(minute);
    )sql",
    // 10: each webhook's last success (webhook_state's last_success_at), kept by record_attempts
    // to the second; taken once from the attempts already stored (a 2xx is a success).
    R"sql(
    ALTER TABLE webhooks ADD COLUMN last_success_at INTEGER;
    UPDATE webhooks SET last_success_at = (
      SELECT max(a.started_at) / 1000000 * 1000000 FROM deliveries d JOIN attempts a ON a.delivery_seq = d.seq
      WHERE d.webhook_seq = webhooks.seq AND a.status BETWEEN 200 AND 299);
    )sql",
    // 11: the live, enabled webhooks that are failing, by the start of their failure streak:
    // a scrape of /metrics reads the one failing the longest from its first entry.
    R"sql(
    CREATE INDEX webhooks_failing ON webhooks(failing_since)
      WHERE failing_since IS NOT NULL AND disabled_at IS NULL AND deleted_at IS NULL;
    )sql",
    // 12: the W3C trace context a publish carried (issue 23), sent on with every attempt of the
    // event's deliveries: the traceparent as kept (version 00), the tracestate (NULL: none).
    R"sql(
    ALTER TABLE events ADD COLUMN traceparent TEXT;
    ALTER TABLE events ADD COLUMN tracestate TEXT;
    )sql",
};

constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

}  // namespace

void SqliteStore::migrate() {
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

}  // namespace sqlite

int sqlite_schema_version() { return sqlite::kSchemaVersion; }

const char* sqlite_migration(int version) { return sqlite::kMigrations[version]; }

}  // namespace brandhooks
