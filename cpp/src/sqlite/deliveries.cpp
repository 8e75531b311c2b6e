// The delivery log (deliveries with their attempts) and replays: redeliver, recover.
#include <vector>

#include "brandhooks/errors.hpp"
#include "sqlite/sqlite_store.hpp"

namespace brandhooks::sqlite {

Page<Delivery> SqliteStore::list_deliveries(const DeliveryQuery& query) {
  return guarded([&] {
    Page<Delivery> page;
    auto webhook = find_webhook_locked(query.brand, query.webhook_id, true);
    if (!webhook) throw NotFoundError("webhook not found");
    std::string where = std::string(store_sql::kDeliveryJoins) + " WHERE w.id = ?";
    if (query.state) where += " AND d.state = ?";
    auto bind_filters = [&](SQLite::Statement& q) {
      q.bind(1, query.webhook_id);
      if (query.state) q.bind(2, *query.state);
    };
    SQLite::Statement& count = prepare("SELECT count(*)" + where);
    bind_filters(count);
    count.executeStep();
    page.total = count.getColumn(0).getInt64();

    SQLite::Statement& q =
        prepare(std::string("SELECT ") + store_sql::kDeliveryColumns + where + " ORDER BY d.seq DESC LIMIT ? OFFSET ?");
    bind_filters(q);
    int next = query.state ? 3 : 2;
    q.bind(next, query.limit);
    q.bind(next + 1, query.start);
    while (q.executeStep()) page.items.push_back(read_delivery(q));
    return page;
  });
}

std::optional<Delivery> SqliteStore::get_delivery(const std::string& brand, const std::string& id) {
  return guarded([&] { return find_delivery_locked(brand, id); });
}

std::optional<Delivery> SqliteStore::redeliver(const std::string& brand, const std::string& id, std::int64_t now) {
  return guarded([&]() -> std::optional<Delivery> {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    auto found = find_delivery_locked(brand, id);
    if (!found) return std::nullopt;
    check_deliverable(brand, found->webhook_id);
    SQLite::Statement& q = prepare(store_sql::kRedeliver);
    q.bind(1, now);
    q.bind(2, id);
    // The row exists (found above, same transaction): no change means a node holds it.
    if (q.exec() == 0) throw ConflictError("this delivery is being attempted right now");
    StateCounts counts;
    counts.move(found->state, DeliveryState::pending);
    save_counts(counts);
    auto updated = find_delivery_locked(brand, id);
    tx.commit();
    return updated;
  });
}

RecoverResult SqliteStore::recover(const std::string& brand, const std::string& webhook_id, std::int64_t since,
                                   std::int64_t limit, std::int64_t now) {
  return guarded([&] {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    check_deliverable(brand, webhook_id);
    SQLite::Statement& q = prepare(store_sql::kFailedSince);
    q.bind(1, webhook_id);
    q.bind(2, since);
    q.bind(3, limit);
    RecoverResult result;
    std::vector<std::int64_t> seqs;
    while (q.executeStep()) {
      seqs.push_back(q.getColumn(0).getInt64());
      result.delivery_ids.push_back(q.getColumn(1).getString());
    }
    SQLite::Statement& requeue = prepare(store_sql::kRequeue);
    for (std::int64_t seq : seqs) {
      requeue.bind(1, now);
      requeue.bind(2, seq);
      requeue.exec();
      requeue.reset();
    }
    StateCounts counts;
    counts.move(DeliveryState::failed, DeliveryState::pending, static_cast<std::int64_t>(seqs.size()));
    save_counts(counts);
    tx.commit();
    result.queued = static_cast<std::int64_t>(seqs.size());
    return result;
  });
}

// The delivery of the current row of a kDeliveryColumns query, with its attempts.
Delivery SqliteStore::read_delivery(SQLite::Statement& q) {
  Delivery d = delivery_from_row(Row{q});
  SQLite::Statement& attempts = prepare(store_sql::kAttemptsOfDelivery);
  attempts.bind(1, q.getColumn(0).getInt64());
  while (attempts.executeStep()) d.attempts.push_back(attempt_from_row(Row{attempts}));
  attempts.reset();
  return d;
}

std::optional<Delivery> SqliteStore::find_delivery_locked(const std::string& brand, const std::string& id) {
  SQLite::Statement& q = prepare(std::string("SELECT ") + store_sql::kDeliveryColumns + store_sql::kDeliveryJoins +
                                 " WHERE d.id = ? AND w.brand = ?");
  q.bind(1, id);
  q.bind(2, brand);
  if (!q.executeStep()) return std::nullopt;
  Delivery d = read_delivery(q);
  q.reset();
  return d;
}

// Replays need a live, enabled webhook: otherwise the queued deliveries would only be
// cancelled again, and recover (which takes failed ones) could not bring them back.
void SqliteStore::check_deliverable(const std::string& brand, const std::string& webhook_id) {
  auto webhook = find_webhook_locked(brand, webhook_id, false);
  if (!webhook) throw NotFoundError("webhook not found");
  if (webhook->disabled_at) {
    throw ConflictError("the webhook is disabled (" + webhook->disabled_reason + "); enable it first");
  }
}

}  // namespace brandhooks::sqlite
