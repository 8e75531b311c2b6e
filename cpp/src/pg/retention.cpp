// Retention and counts on PostgreSQL: prune (one node at a time) and stats.
#include <optional>
#include <utility>

#include "pg/pg_store.hpp"

namespace brandhooks {

using pg::Params;

namespace {
// Advisory lock key of pruning ("bh-prune"): held by the node that prunes; the others skip.
constexpr std::int64_t kPruneLock = 0x62682d7072756e65;
constexpr std::int64_t kChunk = 2000;  // rows per transaction: the queue never waits long
}  // namespace

std::int64_t PgStore::prune(std::int64_t before, Work work) {
  return read(work == Work::dispatcher ? dispatch_pool_ : pool_, [&](Connection& c) -> std::int64_t {
    // The lock is this connection's session's: another node pruning now (or a moment ago, on
    // the same rows) makes this call a no-op; a node that dies while pruning frees it.
    if (!c.exec("SELECT pg_try_advisory_lock($1)", Params().add(kPruneLock)).boolean(0, 0)) return 0;
    struct Unlock {
      Connection& c;
      ~Unlock() {
        if (c.broken()) return;
        try {
          c.exec("SELECT pg_advisory_unlock($1)", Params().add(kPruneLock));
        } catch (const std::exception&) {
        }
      }
    } unlock{c};
    // Runs `step(after)` in chunks of its own transaction until it says there is no more.
    auto in_chunks = [&](auto&& step) {
      for (std::int64_t after = 0;;) {
        c.run("BEGIN");
        try {
          std::optional<std::int64_t> next = step(after);
          c.run("COMMIT");
          if (!next) return;
          after = *next;
        } catch (...) {
          rollback(c);
          throw;
        }
      }
    };
    // The first `kChunk` rows of `table` after seq `after`: the last seq, and whether the walk
    // goes on (a full chunk, all created before the cut). Rows are created in seq order (up to
    // the few of concurrent transactions), so only the table's first rows can qualify.
    auto scan = [&](const char* table, std::int64_t after) -> std::pair<std::int64_t, bool> {
      auto rows = c.exec(std::string("SELECT max(seq), count(*), bool_or(created_at >= $3) FROM "
                                     "(SELECT seq, created_at FROM ") + table +
                             " WHERE seq > $1 ORDER BY seq LIMIT $2) s",
                         Params().add(after).add(kChunk).add(before));
      std::int64_t scanned = rows.int64(0, 1);
      return {scanned ? rows.int64(0, 0) : after, scanned == kChunk && !rows.boolean(0, 2)};
    };
    std::int64_t removed = 0;
    in_chunks([&](std::int64_t after) -> std::optional<std::int64_t> {
      auto [upto, more] = scan("deliveries", after);
      // Finished before the cut; a delivery someone holds right now is left for next time.
      auto gone = c.exec("DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries "
                         "WHERE seq > $1 AND seq <= $2 AND state <> 'pending' AND updated_at < $3 "
                         "AND created_at < $3 FOR UPDATE SKIP LOCKED) RETURNING state",
                         Params().add(after).add(upto).add(before));
      StateCounts counts;
      for (int i = 0; i < gone.rows(); ++i) counts.add(stored_delivery_state(gone.text(i, 0)), -1);
      save_counts(c, counts);
      removed += gone.rows();
      return more ? std::optional(upto) : std::nullopt;
    });
    // Events that have no delivery left (deliveries_by_event). Not those older than the
    // oldest remaining delivery: publishes committing concurrently interleave their seqs, so
    // an older event may still have deliveries when a younger one has none.
    in_chunks([&](std::int64_t after) -> std::optional<std::int64_t> {
      auto [upto, more] = scan("events", after);
      c.exec("DELETE FROM events e WHERE e.seq > $1 AND e.seq <= $2 AND e.created_at < $3 "
             "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)",
             Params().add(after).add(upto).add(before));
      if (more) return upto;
      c.exec(pg::numbered(store_sql::kPruneKeys), Params().add(before));    // keys expire with retention
      c.exec(pg::numbered(store_sql::kPruneTokens), Params().add(before));  // and so do expired tokens
      return std::nullopt;
    });
    return removed;
  });
}

Gauges PgStore::gauges(std::int64_t now) {
  return read([&](Connection& c) {
    Gauges g;
    auto hooks = c.exec(store_sql::kCountWebhooks);
    g.webhooks = hooks.int64(0, 0);
    g.disabled_webhooks = hooks.int64(0, 1);
    auto states = c.exec("SELECT state, sum(n) FROM delivery_counts GROUP BY state");
    for (int i = 0; i < states.rows(); ++i) state_count(g, stored_delivery_state(states.text(i, 0))) = states.int64(i, 1);
    // The queue counted no further than kDueCountLimit entries of its index, and its head.
    auto due = c.exec("SELECT (SELECT count(*) FROM (SELECT 1 FROM deliveries "
                      "                              WHERE state = 'pending' AND next_at <= $1 LIMIT $2) q), "
                      "       (SELECT min(next_at) FROM deliveries WHERE state = 'pending' AND next_at <= $1)",
                      Params().add(now).add(kDueCountLimit));
    g.due_now = due.int64(0, 0);
    g.oldest_due_at = due.optional_int64(0, 1);
    auto failing = c.exec(store_sql::kLongestFailing);
    if (failing.rows() > 0) g.longest_failing = FailingWebhook{failing.text(0, 0), failing.text(0, 1), failing.int64(0, 2)};
    return g;
  });
}

std::int64_t PgStore::count_events() {
  return read([&](Connection& c) { return c.exec(store_sql::kCountEvents).int64(0, 0); });
}

}  // namespace brandhooks
