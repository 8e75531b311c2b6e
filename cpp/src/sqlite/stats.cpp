// Delivery statistics (docs/delivery.md, "Delivery statistics"): the per-minute rollup that
// record_attempts adds to, the brand's window read back, and its pruning.
#include <map>
#include <vector>

#include "sqlite/sqlite_store.hpp"

namespace brandhooks::sqlite {

// Inside record_attempts' transaction: one read and one upsert per webhook and minute of the
// batch (SQLite has no array type: the histograms are merged here).
void SqliteStore::add_attempt_minutes(const MinuteRollup& rollup) {
  if (rollup.rows().empty()) return;
  SQLite::Statement& find = prepare("SELECT latency FROM attempt_minutes WHERE webhook_seq = ?1 AND minute = ?2");
  SQLite::Statement& put = prepare(
      "INSERT INTO attempt_minutes (webhook_seq, minute, succeeded, failed, errors, latency) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (webhook_seq, minute) DO UPDATE SET "
      "succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed, "
      "errors = errors + excluded.errors, latency = excluded.latency");
  for (const auto& [key, row] : rollup.rows()) {
    LatencyHistogram latency = row.latency;
    find.bind(1, key.first);
    find.bind(2, key.second);
    if (find.executeStep()) latency.add(LatencyHistogram::from_json(find.getColumn(0).getString()));
    find.reset();
    put.bind(1, key.first);
    put.bind(2, key.second);
    put.bind(3, row.counts.succeeded);
    put.bind(4, row.counts.failed);
    put.bind(5, row.counts.errors);
    put.bind(6, latency.to_json());
    put.exec();
    put.reset();
  }
}

DeliveryStats SqliteStore::delivery_stats(const std::string& brand, std::int64_t since, std::int64_t until) {
  return guarded([&] {
    auto bind_window = [&](SQLite::Statement& q) {
      q.bind(1, brand);
      q.bind(2, since);
      q.bind(3, until);
    };
    // One read transaction: the three queries see the same rows.
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::DEFERRED);
    std::vector<MinuteStats> minutes;
    SQLite::Statement& per_minute = prepare(store_sql::kStatsMinutes);
    bind_window(per_minute);
    while (per_minute.executeStep()) {
      minutes.push_back({per_minute.getColumn(0).getInt64(),
                         {per_minute.getColumn(1).getInt64(), per_minute.getColumn(2).getInt64(),
                          per_minute.getColumn(3).getInt64()}});
    }
    std::vector<std::pair<std::int64_t, WebhookStats>> webhooks;
    SQLite::Statement& per_webhook = prepare(store_sql::kStatsWebhooks);
    bind_window(per_webhook);
    while (per_webhook.executeStep()) {
      WebhookStats w;
      w.webhook = per_webhook.getColumn(1).getString();
      w.counts = {per_webhook.getColumn(2).getInt64(), per_webhook.getColumn(3).getInt64(),
                  per_webhook.getColumn(4).getInt64()};
      webhooks.emplace_back(per_webhook.getColumn(0).getInt64(), std::move(w));
    }
    // The histograms summed bucket by bucket (json_each's key is the bucket).
    std::map<std::int64_t, LatencyHistogram> latency;
    SQLite::Statement& buckets = prepare(
        "SELECT m.webhook_seq, j.key, sum(j.value) "
        "FROM webhooks w JOIN attempt_minutes m ON m.webhook_seq = w.seq, json_each(m.latency) j "
        "WHERE w.brand = ?1 AND w.deleted_at IS NULL AND m.minute >= ?2 AND m.minute < ?3 AND j.value > 0 "
        "GROUP BY m.webhook_seq, j.key");
    bind_window(buckets);
    while (buckets.executeStep()) {
      latency[buckets.getColumn(0).getInt64()].add(buckets.getColumn(1).getInt(), buckets.getColumn(2).getInt64());
    }
    tx.commit();
    return delivery_stats_of(since, until, std::move(minutes), webhooks, latency);
  });
}

std::int64_t SqliteStore::prune_stats(std::int64_t before, Work) {  // one connection for all
  return guarded([&] {
    SQLite::Statement& q = prepare(store_sql::kPruneAttemptMinutes);
    q.bind(1, before);
    return static_cast<std::int64_t>(q.exec());
  });
}

}  // namespace brandhooks::sqlite
