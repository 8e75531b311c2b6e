// Retention (pruning finished deliveries) and the counts operators read (stats,
// delivery_counts).
#include <vector>

#include "sqlite/sqlite_store.hpp"

namespace brandhooks::sqlite {

std::int64_t SqliteStore::prune(std::int64_t before, Work) {  // one connection for all
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
        DeliveryState state = stored_delivery_state(scan.getColumn(1).getString());
        if (state != DeliveryState::pending && scan.getColumn(2).getInt64() < before) {
          doomed.push_back(after);
          counts.add(state, -1);
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
        SQLite::Statement& keys = prepare(store_sql::kPruneKeys);  // idempotency keys expire with retention
        keys.bind(1, before);
        keys.exec();
        SQLite::Statement& tokens = prepare(store_sql::kPruneTokens);  // and so do expired tokens
        tokens.bind(1, before);
        tokens.exec();
      }
      tx.commit();
      return static_cast<std::int64_t>(doomed.size());
    });
  }
  return removed;
}

Gauges SqliteStore::gauges(std::int64_t now) {
  return guarded([&] {
    Gauges g;
    SQLite::Statement& hooks = prepare(store_sql::kCountWebhooks);
    hooks.executeStep();
    g.webhooks = hooks.getColumn(0).getInt64();
    g.disabled_webhooks = hooks.getColumn(1).getInt64();
    SQLite::Statement& states = prepare(store_sql::kDeliveryCounts);
    while (states.executeStep()) {
      state_count(g, stored_delivery_state(states.getColumn(0).getString())) = states.getColumn(1).getInt64();
    }
    // The queue counted no further than kDueCountLimit entries of its index, and its head.
    SQLite::Statement& due = prepare(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM deliveries INDEXED BY deliveries_due "
        "                              WHERE state = 'pending' AND next_at <= ?1 LIMIT ?2)), "
        "       (SELECT min(next_at) FROM deliveries INDEXED BY deliveries_due "
        "        WHERE state = 'pending' AND next_at <= ?1)");
    due.bind(1, now);
    due.bind(2, kDueCountLimit);
    due.executeStep();
    g.due_now = due.getColumn(0).getInt64();
    g.oldest_due_at = optional_int(due.getColumn(1));
    SQLite::Statement& failing = prepare(store_sql::kLongestFailing);
    if (failing.executeStep()) {
      g.longest_failing = FailingWebhook{failing.getColumn(0).getString(), failing.getColumn(1).getString(),
                                         failing.getColumn(2).getInt64()};
    }
    return g;
  });
}

std::int64_t SqliteStore::count_events() {
  return guarded([&] {
    SQLite::Statement& events = prepare(store_sql::kCountEvents);
    events.executeStep();
    return events.getColumn(0).getInt64();
  });
}

// Applies a transaction's state changes to delivery_counts (within that transaction).
void SqliteStore::save_counts(const StateCounts& counts) {
  SQLite::Statement& q = prepare("UPDATE delivery_counts SET n = n + ? WHERE state = ?");
  for (DeliveryState state : kDeliveryStates) {
    std::int64_t n = counts.delta[static_cast<std::size_t>(state)];
    if (n == 0) continue;
    q.bind(1, n);
    q.bindNoCopy(2, to_string(state).data());  // a static, NUL-terminated name
    q.exec();
    q.reset();
  }
}

}  // namespace brandhooks::sqlite
