// Delivery statistics on PostgreSQL (docs/delivery.md, "Delivery statistics"): the per-minute
// rollup, sharded per pooled connection (pg/schema.cpp), the brand's window summed over the
// shards, and its pruning.
#include <map>
#include <vector>

#include "pg/pg_store.hpp"

namespace brandhooks {

using pg::Params;

namespace {
// A batch's rows in one statement, in key order (two transactions sharing a shard lock rows in
// the same order); histograms merged bucket by bucket (unnest pads the shorter with NULLs).
constexpr const char* kAddMinutes =
    "INSERT INTO attempt_minutes (webhook_seq, minute, shard, succeeded, failed, errors, latency) "
    "SELECT u.webhook_seq, u.minute, $7, u.succeeded, u.failed, u.errors, translate(u.latency, '[]', '{}')::integer[] "
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[]) "
    "     AS u(webhook_seq, minute, succeeded, failed, errors, latency) "
    "ORDER BY u.webhook_seq, u.minute "
    "ON CONFLICT (webhook_seq, minute, shard) DO UPDATE SET "
    "succeeded = attempt_minutes.succeeded + EXCLUDED.succeeded, failed = attempt_minutes.failed + EXCLUDED.failed, "
    "errors = attempt_minutes.errors + EXCLUDED.errors, "
    "latency = ARRAY(SELECT coalesce(z.a, 0) + coalesce(z.b, 0) "
    "                FROM unnest(attempt_minutes.latency, EXCLUDED.latency) WITH ORDINALITY AS z(a, b, i) ORDER BY z.i)";

// $1 brand, $2 from, $3 until: the summed histogram buckets (0-based) per live webhook.
constexpr const char* kStatsBuckets =
    "SELECT m.webhook_seq, z.i - 1, sum(z.n) "
    "FROM webhooks w JOIN attempt_minutes m ON m.webhook_seq = w.seq "
    "CROSS JOIN LATERAL unnest(m.latency) WITH ORDINALITY AS z(n, i) "
    "WHERE w.brand = $1 AND w.deleted_at IS NULL AND m.minute >= $2 AND m.minute < $3 AND z.n > 0 "
    "GROUP BY m.webhook_seq, z.i";
}  // namespace

void PgStore::add_attempt_minutes(Connection& c, const MinuteRollup& rollup) {
  if (rollup.rows().empty()) return;
  std::vector<std::int64_t> webhooks, minutes, succeeded, failed, errors;
  std::vector<std::string> latency;
  for (const auto& [key, row] : rollup.rows()) {
    webhooks.push_back(key.first);
    minutes.push_back(key.second);
    succeeded.push_back(row.counts.succeeded);
    failed.push_back(row.counts.failed);
    errors.push_back(row.counts.errors);
    latency.push_back(row.latency.to_json());
  }
  c.exec(kAddMinutes, Params().int_array(webhooks).int_array(minutes).int_array(succeeded).int_array(failed)
                          .int_array(errors).text_array(latency).add(c.shard()));
}

DeliveryStats PgStore::delivery_stats(const std::string& brand, std::int64_t since, std::int64_t until) {
  // One transaction (REPEATABLE READ): the three queries see the same rows.
  return transact([&](Connection& c) {
    c.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
    std::vector<MinuteStats> minutes;
    auto per_minute = c.exec(pg::numbered(store_sql::kStatsMinutes), Params().add(brand).add(since).add(until));
    for (int i = 0; i < per_minute.rows(); ++i) {
      minutes.push_back({per_minute.int64(i, 0),
                         {per_minute.int64(i, 1), per_minute.int64(i, 2), per_minute.int64(i, 3)}});
    }
    std::vector<std::pair<std::int64_t, WebhookStats>> webhooks;
    auto per_webhook = c.exec(pg::numbered(store_sql::kStatsWebhooks), Params().add(brand).add(since).add(until));
    for (int i = 0; i < per_webhook.rows(); ++i) {
      WebhookStats w;
      w.webhook = per_webhook.text(i, 1);
      w.counts = {per_webhook.int64(i, 2), per_webhook.int64(i, 3), per_webhook.int64(i, 4)};
      webhooks.emplace_back(per_webhook.int64(i, 0), std::move(w));
    }
    std::map<std::int64_t, LatencyHistogram> latency;
    auto buckets = c.exec(kStatsBuckets, Params().add(brand).add(since).add(until));
    for (int i = 0; i < buckets.rows(); ++i) {
      latency[buckets.int64(i, 0)].add(static_cast<int>(buckets.int64(i, 1)), buckets.int64(i, 2));
    }
    return delivery_stats_of(since, until, std::move(minutes), webhooks, latency);
  });
}

std::int64_t PgStore::prune_stats(std::int64_t before, Work work) {
  return transact(work == Work::dispatcher ? dispatch_pool_ : pool_, [&](Connection& c) {
    return c.exec(pg::numbered(store_sql::kPruneAttemptMinutes), Params().add(before)).affected();
  });
}

}  // namespace brandhooks
