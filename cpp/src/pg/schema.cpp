// Opening a PostgreSQL store: the connection pool, versioned migrations under an advisory
// lock, and the helpers every other file of the backend shares.
#include <iterator>

#include "pg/pg_store.hpp"

namespace brandhooks {

namespace {

// Migrations in order: entry i upgrades a database from version i to version i + 1. Never
// edit a released entry; append a new one. The layout follows SQLite's (same columns, same
// meaning, lease.hpp's rules) with PostgreSQL's types; where they differ, it says why.
const char* const kMigrations[] = {
    // 1: the whole schema of SQLite's version 5.
    // - ids stay text as on SQLite (UUIDs are checked by the core before they get here).
    // - deliveries.event_seq has no foreign key: prune deletes only events without deliveries
    //   (step 8), and a key would cost a check on every delete; nor has
    //   webhook_seq (webhooks are never deleted, and the check would lock the webhook's row
    //   for every delivery published to it).
    // - delivery_counts is sharded: each pooled connection adds its changes to its own row per
    //   state, so that concurrent transactions (of one node or several) do not queue behind
    //   one hot row; stats() sums the shards.
    R"sql(
    CREATE TABLE brands (
      id         text PRIMARY KEY,
      parent     text REFERENCES brands(id),
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL
    );
    CREATE INDEX brands_by_parent ON brands(parent);
    CREATE TABLE webhooks (
      seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      id              text NOT NULL UNIQUE,
      brand           text NOT NULL REFERENCES brands(id),
      topic           text NOT NULL,
      url             text NOT NULL,
      key             text NOT NULL,
      tags            jsonb,
      created_at      bigint NOT NULL,
      updated_at      bigint NOT NULL,
      deleted_at      bigint,
      disabled_at     bigint,
      disabled_reason text,
      failing_since   bigint
    );
    CREATE INDEX webhooks_live ON webhooks(brand, topic) WHERE deleted_at IS NULL;
    CREATE TABLE webhook_keys (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      webhook_seq bigint NOT NULL REFERENCES webhooks(seq),
      key         text NOT NULL,
      expires_at  bigint NOT NULL
    );
    CREATE INDEX webhook_keys_by_webhook ON webhook_keys(webhook_seq, expires_at);
    CREATE TABLE api_tokens (
      id         text PRIMARY KEY,
      hash       bytea NOT NULL UNIQUE,
      brand      text,
      label      text NOT NULL DEFAULT '',
      created_at bigint NOT NULL,
      revoked_at bigint
    );
    CREATE TABLE events (
      seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      id         text NOT NULL UNIQUE,
      brand      text NOT NULL,
      topic      text NOT NULL,
      event      text NOT NULL,
      body       bytea NOT NULL,
      created_at bigint NOT NULL,
      tags       jsonb
    );
    CREATE TABLE deliveries (
      seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      id          text NOT NULL UNIQUE,
      event_seq   bigint NOT NULL,
      webhook_seq bigint NOT NULL,
      state       text NOT NULL,
      attempts    integer NOT NULL DEFAULT 0,
      next_at     bigint,
      lease_owner text,
      created_at  bigint NOT NULL,
      updated_at  bigint NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries(next_at, seq) WHERE state = 'pending';
    CREATE INDEX deliveries_by_lease_owner ON deliveries(lease_owner) WHERE lease_owner IS NOT NULL;
    CREATE INDEX deliveries_by_webhook ON deliveries(webhook_seq, seq);
    CREATE TABLE attempts (
      delivery_seq bigint NOT NULL REFERENCES deliveries(seq) ON DELETE CASCADE,
      number       integer NOT NULL,
      started_at   bigint NOT NULL,
      duration_us  bigint NOT NULL,
      status       integer,
      error        text,
      detail       text,
      response     bytea,
      PRIMARY KEY (delivery_seq, number)
    );
    CREATE TABLE delivery_counts (
      state text NOT NULL,
      shard integer NOT NULL,
      n     bigint NOT NULL,
      PRIMARY KEY (state, shard)
    );
    )sql",
    // 2: SQLite's version 6: delivery controls (ordering, rate limit, custom headers) and the
    // idempotency keys of publish requests.
    R"sql(
    ALTER TABLE webhooks ADD COLUMN ordered boolean NOT NULL DEFAULT false;
    ALTER TABLE webhooks ADD COLUMN rate_limit integer;
    ALTER TABLE webhooks ADD COLUMN headers jsonb;
    CREATE TABLE idempotency_keys (
      brand        text NOT NULL,
      key          text NOT NULL,
      request_hash bytea NOT NULL,
      results      text NOT NULL,
      created_at   bigint NOT NULL,
      PRIMARY KEY (brand, key)
    );
    CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);
    )sql",
    // 3: delivery controls, the claims' side (docs/delivery.md, "Ordered webhooks" and
    // "Throttled webhooks"): a throttled webhook's next free send slot, the ordered webhooks
    // without a scan, and each webhook's pending deliveries in publish order.
    R"sql(
    ALTER TABLE webhooks ADD COLUMN rate_next_at bigint;
    CREATE INDEX webhooks_ordered ON webhooks(seq) WHERE ordered;
    CREATE INDEX deliveries_pending_by_webhook ON deliveries(webhook_seq, seq) WHERE state = 'pending';
    )sql",
    // 4: SQLite's version 8: tokens that expire, pruned with retention.
    R"sql(
    ALTER TABLE api_tokens ADD COLUMN expires_at bigint;
    CREATE INDEX api_tokens_by_expiry ON api_tokens(expires_at) WHERE expires_at IS NOT NULL;
    )sql",
    // 5: SQLite's version 9: delivery statistics per webhook and minute, sharded as
    // delivery_counts (each pooled connection adds to its own row, so that nodes recording the
    // same webhook's outcomes at once never wait on one row); the reads sum the shards.
    R"sql(
    CREATE TABLE attempt_minutes (
      webhook_seq bigint NOT NULL,
      minute      bigint NOT NULL,
      shard       integer NOT NULL DEFAULT 0,
      succeeded   bigint NOT NULL,
      failed      bigint NOT NULL,
      errors      bigint NOT NULL,
      latency     integer[] NOT NULL,
      PRIMARY KEY (webhook_seq, minute, shard)
    );
    CREATE INDEX attempt_minutes_by_minute ON attempt_minutes(minute);
    )sql",
    // 6: SQLite's version 10: each webhook's last success, to the second, taken once from the
    // attempts already stored.
    R"sql(
    ALTER TABLE webhooks ADD COLUMN last_success_at bigint;
    UPDATE webhooks SET last_success_at = (
      SELECT max(a.started_at) / 1000000 * 1000000 FROM deliveries d JOIN attempts a ON a.delivery_seq = d.seq
      WHERE d.webhook_seq = webhooks.seq AND a.status BETWEEN 200 AND 299);
    )sql",
    // 7: SQLite's version 11: the live, enabled webhooks that are failing, by the start of
    // their failure streak (a scrape of /metrics reads the first entry). The streak's updates
    // keep failing_since as it is while it lasts, so they stay HOT updates.
    R"sql(
    CREATE INDEX webhooks_failing ON webhooks(failing_since)
      WHERE failing_since IS NOT NULL AND disabled_at IS NULL AND deleted_at IS NULL;
    )sql",
    // 8: prune deletes the events that have no delivery left (found through this index), no
    // longer every event older than the oldest remaining delivery: publishes committing
    // concurrently interleave their seqs, so that rule deleted events whose deliveries were
    // still pending. Such a delivery can never be sent (its body is gone): it is cancelled,
    // and the counts follow.
    R"sql(
    CREATE INDEX deliveries_by_event ON deliveries(event_seq);
    WITH orphaned AS (
      UPDATE deliveries d SET state = 'cancelled', next_at = NULL, lease_owner = NULL,
             updated_at = (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
      WHERE d.state = 'pending' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.seq = d.event_seq)
      RETURNING 1),
    moved(n) AS (SELECT count(*) FROM orphaned)
    INSERT INTO delivery_counts (state, shard, n)
    SELECT s.state, 0, s.n FROM moved, LATERAL (VALUES ('pending', -moved.n), ('cancelled', moved.n)) AS s(state, n)
    WHERE moved.n > 0
    ON CONFLICT (state, shard) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n;
    )sql",
    // 9: SQLite's version 12: the W3C trace context a publish carried (nullable columns: no
    // table rewrite).
    R"sql(
    ALTER TABLE events ADD COLUMN traceparent text, ADD COLUMN tracestate text;
    )sql",
};

constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// Advisory lock keys (any 64-bit numbers no other program on the database uses): "bh-migra".
constexpr std::int64_t kMigrationLock = 0x62682d6d69677261;

pg::ConnectOptions connect_options(const Config& config, const std::string& node) {
  pg::ConnectOptions options;
  options.connect_timeout_s = (config.busy_timeout_ms + 999) / 1000;
  options.lock_timeout_ms = config.busy_timeout_ms;
  options.application_name = "brandhooks " + node;
  return options;
}

}  // namespace

// Two pools: the API's threads wait for a free connection of theirs beyond api_connections;
// the dispatcher's store thread has its own, so that no API call, however slow, delays a
// claim, an outcome or a lease renewal.
PgStore::PgStore(const Config& config)
    : holder_{config.node_id.empty() ? default_node_id() : config.node_id, config.lease_timeout_s * 1'000'000},
      pool_(config.db, static_cast<std::size_t>(config.api_connections), connect_options(config, holder_.node)),
      dispatch_pool_(config.db, static_cast<std::size_t>(config.dispatcher_connections),
                     connect_options(config, holder_.node)) {
  migrate();
}

void PgStore::migrate() {
  // One connection for the whole upgrade: the advisory lock is its session's, so nodes that
  // start together take turns, and one that dies while holding it frees it.
  read([&](Connection& c) {
    c.exec("SELECT pg_advisory_lock($1)", pg::Params().add(kMigrationLock));
    try {
      c.run("CREATE TABLE IF NOT EXISTS brandhooks_schema (version integer NOT NULL)");
      auto current = c.exec("SELECT max(version) FROM brandhooks_schema");
      int version = current.is_null(0, 0) ? 0 : static_cast<int>(current.int64(0, 0));
      if (version > kSchemaVersion) {
        throw StorageError("database schema version " + std::to_string(version) +
                           " is newer than this build supports (" + std::to_string(kSchemaVersion) +
                           "); upgrade brandhooks");
      }
      for (; version < kSchemaVersion; ++version) {
        c.run("BEGIN");
        try {
          c.run(kMigrations[version]);
          c.exec("INSERT INTO brandhooks_schema (version) VALUES ($1)", pg::Params().add(version + 1));
          c.run("COMMIT");
        } catch (...) {
          rollback(c);
          throw;
        }
      }
    } catch (...) {
      if (!c.broken()) {
        try {
          c.exec("SELECT pg_advisory_unlock($1)", pg::Params().add(kMigrationLock));
        } catch (const std::exception&) {
        }
      }
      throw;
    }
    c.exec("SELECT pg_advisory_unlock($1)", pg::Params().add(kMigrationLock));
  });
}

void PgStore::rollback(Connection& connection) noexcept {
  if (connection.broken()) return;
  try {
    connection.run("ROLLBACK");
  } catch (const std::exception&) {
    // The pool drops a connection left inside a transaction.
  }
}

void PgStore::ensure_brand(Connection& c, const std::string& id, std::int64_t now) {
  c.exec("INSERT INTO brands (id, parent, created_at, updated_at) VALUES ($1, NULL, $2, $2) "
         "ON CONFLICT (id) DO NOTHING",
         pg::Params().add(id).add(now));
}

void PgStore::save_counts(Connection& c, const StateCounts& counts) {
  // In state order: two transactions never wait for each other's rows in opposite orders.
  for (DeliveryState state : kDeliveryStates) {
    std::int64_t n = counts.delta[static_cast<std::size_t>(state)];
    if (n == 0) continue;
    c.exec("INSERT INTO delivery_counts (state, shard, n) VALUES ($1, $2, $3) "
           "ON CONFLICT (state, shard) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n",
           pg::Params().add(std::string(to_string(state))).add(c.shard()).add(n));
  }
}

int pg_schema_version() { return kSchemaVersion; }

}  // namespace brandhooks
