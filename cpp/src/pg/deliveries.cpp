// The delivery log on PostgreSQL: listing, one delivery, redeliver and recover.
#include <algorithm>
#include <unordered_map>

#include "pg/pg_store.hpp"
#include "pg/rows.hpp"

namespace brandhooks {

using pg::Params;

using store_sql::kDeliveryJoins;

std::vector<Delivery> PgStore::read_deliveries(Connection& c, const pg::Result& rows) {
  std::vector<Delivery> out;
  std::vector<std::int64_t> seqs;
  std::unordered_map<std::int64_t, std::size_t> index;
  for (int i = 0; i < rows.rows(); ++i) {
    seqs.push_back(rows.int64(i, 0));
    index[seqs.back()] = out.size();
    out.push_back(delivery_from_row(pg::Row(rows, i)));
  }
  if (seqs.empty()) return out;
  // Every listed delivery's attempts in one query (kAttemptsOfDelivery's columns after the seq).
  auto attempts = c.exec("SELECT number, started_at, duration_us, status, error, detail, response, delivery_seq "
                         "FROM attempts WHERE delivery_seq = ANY($1::bigint[]) ORDER BY delivery_seq, number",
                         Params().int_array(seqs));
  for (int i = 0; i < attempts.rows(); ++i) {
    out[index.at(attempts.int64(i, 7))].attempts.push_back(attempt_from_row(pg::Row(attempts, i)));
  }
  return out;
}

Page<Delivery> PgStore::list_deliveries(const DeliveryQuery& query) {
  return read([&](Connection& c) {
    if (!find_webhook_in(c, query.brand, query.webhook_id, true)) throw NotFoundError("webhook not found");
    std::string where = std::string(kDeliveryJoins) + " WHERE w.id = $1 AND ($2::text IS NULL OR d.state = $2)";
    Page<Delivery> page;
    page.total = c.exec("SELECT count(*)" + where, Params().add(query.webhook_id).add(query.state)).int64(0, 0);
    auto rows = c.exec(std::string("SELECT ") + store_sql::kDeliveryColumns + where + " ORDER BY d.seq DESC LIMIT $3 OFFSET $4",
                       Params().add(query.webhook_id).add(query.state).add(query.limit).add(query.start));
    page.items = read_deliveries(c, rows);
    return page;
  });
}

std::optional<Delivery> PgStore::find_delivery_in(Connection& c, const std::string& brand, const std::string& id) {
  auto rows = c.exec(std::string("SELECT ") + store_sql::kDeliveryColumns + kDeliveryJoins + " WHERE d.id = $1 AND w.brand = $2",
                     Params().add(id).add(brand));
  auto found = read_deliveries(c, rows);
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

std::optional<Delivery> PgStore::get_delivery(const std::string& brand, const std::string& id) {
  return read([&](Connection& c) { return find_delivery_in(c, brand, id); });
}

void PgStore::check_deliverable(Connection& c, const std::string& brand, const std::string& webhook_id) {
  // Replays need a live, enabled webhook: otherwise the queued deliveries would only be
  // cancelled again, and recover (which takes failed ones) could not bring them back.
  auto webhook = find_webhook_in(c, brand, webhook_id, false);
  if (!webhook) throw NotFoundError("webhook not found");
  if (webhook->disabled_at) {
    throw ConflictError("the webhook is disabled (" + webhook->disabled_reason + "); enable it first");
  }
}

std::optional<Delivery> PgStore::redeliver(const std::string& brand, const std::string& id, std::int64_t now) {
  return transact([&](Connection& c) -> std::optional<Delivery> {
    auto found = find_delivery_in(c, brand, id);
    if (!found) return std::nullopt;
    check_deliverable(c, brand, found->webhook_id);
    // The previous state as the update saw it (the row may have changed since it was read).
    auto changed = c.exec("WITH old AS (SELECT seq, state FROM deliveries WHERE id = $2 FOR UPDATE) "
                          "UPDATE deliveries d SET state = 'pending', next_at = $1, lease_owner = NULL, "
                          "updated_at = $1 FROM old WHERE d.seq = old.seq AND " +
                              pg::numbered(lease_sql::kNotHeld) + " RETURNING old.state",
                          Params().add(now).add(id));
    // The row exists (found above): no change means a node holds it.
    if (changed.rows() == 0) throw ConflictError("this delivery is being attempted right now");
    StateCounts counts;
    counts.move(stored_delivery_state(changed.text(0, 0)), DeliveryState::pending);
    save_counts(c, counts);
    return find_delivery_in(c, brand, id);
  });
}

RecoverResult PgStore::recover(const std::string& brand, const std::string& webhook_id, std::int64_t since,
                               std::int64_t limit, std::int64_t now) {
  return transact([&](Connection& c) {
    check_deliverable(c, brand, webhook_id);
    auto rows = c.exec(
        "UPDATE deliveries SET state = 'pending', next_at = $3, updated_at = $3 WHERE seq IN ("
        "  SELECT d.seq FROM deliveries d JOIN webhooks w ON w.seq = d.webhook_seq "
        "  WHERE w.id = $1 AND d.state = 'failed' AND d.created_at >= $2 ORDER BY d.seq LIMIT $4 "
        "  FOR UPDATE OF d) AND state = 'failed' RETURNING seq, id",
        Params().add(webhook_id).add(since).add(now).add(limit));
    std::vector<std::pair<std::int64_t, std::string>> queued;
    for (int i = 0; i < rows.rows(); ++i) queued.emplace_back(rows.int64(i, 0), rows.text(i, 1));
    std::sort(queued.begin(), queued.end());
    RecoverResult result;
    for (auto& [seq, id] : queued) result.delivery_ids.push_back(std::move(id));
    result.queued = static_cast<std::int64_t>(queued.size());
    StateCounts counts;
    counts.move(DeliveryState::failed, DeliveryState::pending, result.queued);
    save_counts(c, counts);
    return result;
  });
}

}  // namespace brandhooks
