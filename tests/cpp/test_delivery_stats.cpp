// Delivery statistics (the per-minute rollup written with each batch of outcomes) and test
// events, on both backends.
#include <gtest/gtest.h>
#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <random>
#include <thread>
#include <unistd.h>

#include "brandhooks/errors.hpp"
#include "brandhooks/hub.hpp"
#include "clock.hpp"
#include "latency.hpp"
#include "store.hpp"
#include "store_common.hpp"
#include "test_backends.hpp"

using namespace brandhooks;
using namespace brandhooks_test;
namespace fs = std::filesystem;

namespace {

const std::string kBrand = "11111111-1111-4111-8111-111111111111";
const std::string kOther = "22222222-2222-4222-8222-222222222222";
constexpr std::int64_t kMinute = 1'700'000'040'000'000;  // a minute's start (Unix µs)

// Within a bucket's half width of the true value (LatencyHistogram: a factor 2^(1/8)).
constexpr double kResolution = 1.0905077326652577;  // 2^(1/8)

Webhook webhook(const std::string& id, const std::string& brand, const std::string& topic = "Deals") {
  Webhook w;
  w.id = id;
  w.brand = brand;
  w.topic = topic;
  w.url = "https://example.com/" + id;
  w.key = std::string(64, 'a');
  w.created_at = w.updated_at = 1;
  return w;
}

EventRecord event(const std::string& brand, const std::string& topic = "Deals") {
  static std::atomic<int> counter{0};
  EventRecord e;
  e.id = "stats-e-" + std::to_string(++counter);
  e.brand = brand;
  e.topic = topic;
  e.event = "Created";
  e.body = "{}";
  e.created_at = 1;
  e.first_attempt_at = 10;
  return e;
}

// The outcome of the delivery's next attempt: a status (200, 500, ...) or, with 0, no answer.
AttemptRecord attempt(const DueDelivery& d, int status, std::int64_t started_at, std::int64_t duration_us) {
  AttemptRecord r;
  r.delivery_seq = d.seq;
  r.webhook_seq = d.webhook_seq;
  r.attempt.number = d.attempts_made + 1;
  r.attempt.started_at = started_at;
  r.attempt.duration_us = duration_us;
  if (status) {
    r.attempt.status = status;
  } else {
    r.attempt.error = AttemptError::connect;
  }
  r.new_state = status >= 200 && status < 300 ? DeliveryState::delivered : DeliveryState::failed;
  return r;
}

// The nearest-rank percentile of `values` (ms).
double exact_percentile(std::vector<std::int64_t> values, double p) {
  std::sort(values.begin(), values.end());
  auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(p * static_cast<double>(values.size()))));
  return static_cast<double>(values[rank - 1]) / 1e3;
}

void expect_within_resolution(std::optional<double> estimate, double truth, const char* what) {
  ASSERT_TRUE(estimate) << what;
  EXPECT_LE(*estimate, truth * kResolution * (1 + 1e-9)) << what << ": truth " << truth;
  EXPECT_GE(*estimate, truth / kResolution / (1 + 1e-9)) << what << ": truth " << truth;
}

class DeliveryStatsTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    database_.emplace(GetParam(), "brandhooks-stats-");
    config_.node_id = "a";
    config_.db = database_->db();
    if (config_.db.empty()) GTEST_SKIP() << kNoPgServer;
  }
  void TearDown() override { database_.reset(); }

  std::unique_ptr<Store> node(const std::string& id) {
    Config c = config_;
    c.node_id = id;
    return open_store(c);
  }

  std::int64_t rows() {
    const std::string sql = "SELECT count(*) FROM attempt_minutes";
    if (GetParam() == Backend::pg) return std::stoll(pg_query(config_.db, sql).at(0).at(0));
    SQLite::Database db(config_.db);
    return db.execAndGet(sql).getInt64();
  }

  // `n` due deliveries per webhook of the topic, leased by `store`.
  static std::vector<DueDelivery> publish_and_claim(Store& store, int n, const std::string& brand = kBrand) {
    std::vector<EventRecord> events;
    for (int i = 0; i < n; ++i) events.push_back(event(brand));
    store.insert_events(events);
    return store.claim_due(10, 100000, {});
  }

  Config config_;
  std::optional<TestDatabase> database_;
};

std::string backend_test_name(const ::testing::TestParamInfo<Backend>& info) { return backend_name(info.param); }

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, DeliveryStatsTest, ::testing::Values(Backend::sqlite, Backend::pg),
                         backend_test_name);

TEST(LatencyHistogram, BucketsAreLogScaleAndRoundTrip) {
  EXPECT_EQ(LatencyHistogram::bucket(0), 0);
  EXPECT_EQ(LatencyHistogram::bucket(99), 0);
  EXPECT_EQ(LatencyHistogram::bucket(100), 1);
  EXPECT_EQ(LatencyHistogram::bucket(200), 5);  // a doubling is 4 buckets
  EXPECT_EQ(LatencyHistogram::bucket(std::int64_t{1} << 62), LatencyHistogram::kBuckets - 1);
  for (std::int64_t us = 100; us < 100'000'000; us = us * 11 / 10 + 1) {
    double estimate = LatencyHistogram::estimate_ms(LatencyHistogram::bucket(us));
    EXPECT_LE(estimate, us / 1e3 * kResolution * (1 + 1e-9)) << us;
    EXPECT_GE(estimate, us / 1e3 / kResolution / (1 + 1e-9)) << us;
  }
  LatencyHistogram h;
  EXPECT_FALSE(h.percentile_ms(0.5));
  h.add_duration(150);
  h.add_duration(150);
  h.add_duration(5'000'000);
  EXPECT_EQ(h.total(), 3);
  LatencyHistogram back = LatencyHistogram::from_json(h.to_json());
  EXPECT_EQ(back.counts(), h.counts());
  EXPECT_EQ(back.counts().size(), static_cast<std::size_t>(LatencyHistogram::bucket(5'000'000) + 1));  // no trailing zeros
  expect_within_resolution(back.percentile_ms(0.5), 0.15, "p50");
  expect_within_resolution(back.percentile_ms(0.99), 5000, "p99");
}

TEST_P(DeliveryStatsTest, CountsAttemptsPerOutcomeAndMinuteOfTheBrandsLiveWebhooks) {
  auto store = open_store(config_);
  store->insert_webhook(webhook("w1", kBrand));
  store->insert_webhook(webhook("w2", kBrand));
  store->insert_webhook(webhook("idle", kBrand, "Showings"));
  store->insert_webhook(webhook("gone", kBrand));
  store->insert_webhook(webhook("theirs", kOther));
  std::vector<EventRecord> events = {event(kBrand), event(kBrand), event(kBrand), event(kOther)};
  store->insert_events(events);
  auto due = store->claim_due(10, 100, {});
  ASSERT_EQ(due.size(), 3u * 3 + 1);
  std::map<std::string, std::vector<DueDelivery>> by_webhook;
  for (auto& d : due) by_webhook[d.target->id].push_back(d);

  const auto& w1 = by_webhook["w1"];
  const auto& w2 = by_webhook["w2"];
  // Minute 0: w1 200, 500, no answer; w2 204. Minute 1 (59.999 s later is still minute 0):
  // w2 503. Another brand's and a deleted webhook's attempts in the same minutes count nowhere.
  store->record_attempts({attempt(w1[0], 200, kMinute, 1000), attempt(w1[1], 500, kMinute + 59'999'999, 2000),
                          attempt(w1[2], 0, kMinute + 5, 3000), attempt(w2[0], 204, kMinute + 1, 1000),
                          attempt(by_webhook["theirs"][0], 200, kMinute, 1000),
                          attempt(by_webhook["gone"][0], 200, kMinute, 1000)},
                         20, 0);
  store->record_attempts({attempt(w2[1], 503, kMinute + 60'000'000, 4000)}, 21, 0);
  store->soft_delete_webhook(kBrand, "gone", 30);

  DeliveryStats stats = store->delivery_stats(kBrand, kMinute - kMinuteUs, kMinute + 2 * kMinuteUs);
  EXPECT_EQ(stats.since, kMinute - kMinuteUs);
  EXPECT_EQ(stats.until, kMinute + 2 * kMinuteUs);
  ASSERT_EQ(stats.minutes.size(), 2u);  // only minutes with attempts
  EXPECT_EQ(stats.minutes[0].at, kMinute);
  EXPECT_EQ(stats.minutes[0].counts.succeeded, 2);
  EXPECT_EQ(stats.minutes[0].counts.failed, 1);
  EXPECT_EQ(stats.minutes[0].counts.errors, 1);
  EXPECT_EQ(stats.minutes[1].at, kMinute + kMinuteUs);
  EXPECT_EQ(stats.minutes[1].counts.failed, 1);
  EXPECT_EQ(stats.minutes[1].counts.total(), 1);

  ASSERT_EQ(stats.webhooks.size(), 3u);  // the live ones, in listing order
  EXPECT_EQ(stats.webhooks[0].webhook, "w1");
  EXPECT_EQ(stats.webhooks[0].counts.succeeded, 1);
  EXPECT_EQ(stats.webhooks[0].counts.failed, 1);
  EXPECT_EQ(stats.webhooks[0].counts.errors, 1);
  expect_within_resolution(stats.webhooks[0].p50_ms, 2.0, "w1 p50");
  expect_within_resolution(stats.webhooks[0].p99_ms, 3.0, "w1 p99");
  EXPECT_EQ(stats.webhooks[1].webhook, "w2");
  EXPECT_EQ(stats.webhooks[1].counts.total(), 2);
  EXPECT_EQ(stats.webhooks[2].webhook, "idle");
  EXPECT_EQ(stats.webhooks[2].counts.total(), 0);
  EXPECT_FALSE(stats.webhooks[2].p50_ms);
  EXPECT_FALSE(stats.webhooks[2].p99_ms);

  // The window is [since, until): the second minute alone, then none.
  DeliveryStats later = store->delivery_stats(kBrand, kMinute + kMinuteUs, kMinute + 2 * kMinuteUs);
  ASSERT_EQ(later.minutes.size(), 1u);
  EXPECT_EQ(later.webhooks[0].counts.total(), 0);
  EXPECT_EQ(later.webhooks[1].counts.failed, 1);
  expect_within_resolution(later.webhooks[1].p50_ms, 4.0, "w2 p50 in minute 1");
  EXPECT_TRUE(store->delivery_stats(kBrand, kMinute - 5 * kMinuteUs, kMinute).minutes.empty());
  // The other brand sees its own.
  DeliveryStats theirs = store->delivery_stats(kOther, kMinute, kMinute + kMinuteUs);
  ASSERT_EQ(theirs.webhooks.size(), 1u);
  EXPECT_EQ(theirs.webhooks[0].counts.succeeded, 1);
}

TEST_P(DeliveryStatsTest, PercentilesAreWithinTheHistogramsResolution) {
  auto store = open_store(config_);
  store->insert_webhook(webhook("w", kBrand));
  auto due = publish_and_claim(*store, 600);
  ASSERT_EQ(due.size(), 600u);
  std::mt19937_64 random(42);
  std::uniform_real_distribution<double> log_us(std::log(50.0), std::log(20'000'000.0));  // 0.05 ms .. 20 s
  std::vector<std::int64_t> durations;
  std::vector<AttemptRecord> batch;
  for (std::size_t i = 0; i < due.size(); ++i) {
    auto us = static_cast<std::int64_t>(std::exp(log_us(random)));
    durations.push_back(us);
    // Over five minutes, in batches of 50: the histograms of minutes and batches add up.
    batch.push_back(attempt(due[i], 200, kMinute + static_cast<std::int64_t>(i % 5) * kMinuteUs, us));
    if (batch.size() == 50) {
      store->record_attempts(batch, 20, 0);
      batch.clear();
    }
  }
  DeliveryStats stats = store->delivery_stats(kBrand, kMinute, kMinute + 5 * kMinuteUs);
  ASSERT_EQ(stats.minutes.size(), 5u);
  ASSERT_EQ(stats.webhooks.at(0).counts.succeeded, 600);
  expect_within_resolution(stats.webhooks[0].p50_ms, exact_percentile(durations, 0.5), "p50");
  expect_within_resolution(stats.webhooks[0].p99_ms, exact_percentile(durations, 0.99), "p99");
}

TEST_P(DeliveryStatsTest, PrunedAfterTwentyFiveHoursWhateverTheRetention) {
  auto store = open_store(config_);
  store->insert_webhook(webhook("w", kBrand));
  auto due = publish_and_claim(*store, 3);
  const std::int64_t now = kMinute + 26 * 3600 * 1'000'000LL;
  store->record_attempts({attempt(due[0], 200, kMinute, 1000),                                   // 26 h old
                          attempt(due[1], 200, now - 24 * 3600 * 1'000'000LL - kMinuteUs, 1000),  // 24 h 1 min
                          attempt(due[2], 200, now - kMinuteUs, 1000)},
                         now, 0);
  EXPECT_EQ(rows(), 3);
  // A retention of one second prunes the deliveries, not the 24 h the statistics show.
  prune_expired(*store, 1, now, Work::api);
  EXPECT_EQ(rows(), 2);
  DeliveryStats stats = store->delivery_stats(kBrand, now - 25 * 3600 * 1'000'000LL, now + kMinuteUs);
  EXPECT_EQ(stats.webhooks.at(0).counts.succeeded, 2);
  EXPECT_EQ(store->prune_stats(now), 2);
  EXPECT_EQ(rows(), 0);
}

TEST_P(DeliveryStatsTest, NodesAndThreadsRecordingOneMinuteLoseNothing) {
  constexpr int kNodes = 2, kThreadsPerNode = 2, kDeliveries = 400, kBatch = 10;
  std::vector<std::unique_ptr<Store>> nodes;
  for (int n = 0; n < kNodes; ++n) nodes.push_back(node("node-" + std::to_string(n)));
  nodes[0]->insert_webhook(webhook("w1", kBrand));
  nodes[0]->insert_webhook(webhook("w2", kBrand));
  std::vector<EventRecord> events;
  for (int i = 0; i < kDeliveries / 2; ++i) events.push_back(event(kBrand));
  nodes[0]->insert_events(events);
  // Each node leases half; its threads record their share concurrently, all in one minute.
  std::vector<std::vector<DueDelivery>> held;
  for (auto& store : nodes) held.push_back(store->claim_due(10, kDeliveries / kNodes, {}));
  ASSERT_EQ(held[0].size() + held[1].size(), static_cast<std::size_t>(kDeliveries));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int n = 0; n < kNodes; ++n) {
    for (int t = 0; t < kThreadsPerNode; ++t) {
      threads.emplace_back([&, n, t] {
        std::vector<AttemptRecord> batch;
        const auto& mine = held[static_cast<std::size_t>(n)];
        for (std::size_t i = static_cast<std::size_t>(t); i < mine.size(); i += kThreadsPerNode) {
          int status = i % 3 == 0 ? 200 : i % 3 == 1 ? 500 : 0;
          batch.push_back(attempt(mine[i], status, kMinute + static_cast<std::int64_t>(i) * 1000, 1000 + static_cast<std::int64_t>(i)));
          if (batch.size() == kBatch || i + kThreadsPerNode >= mine.size()) {
            try {
              if (nodes[static_cast<std::size_t>(n)]->record_attempts(batch, 20, 0).lost != 0) ++failures;
            } catch (const std::exception& e) {
              ADD_FAILURE() << e.what();
              ++failures;
            }
            batch.clear();
          }
        }
      });
    }
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  OutcomeCounts expected;
  for (const auto& mine : held) {
    for (std::size_t i = 0; i < mine.size(); ++i) {
      (i % 3 == 0 ? expected.succeeded : i % 3 == 1 ? expected.failed : expected.errors) += 1;
    }
  }
  DeliveryStats stats = nodes[1]->delivery_stats(kBrand, kMinute, kMinute + kMinuteUs);
  ASSERT_EQ(stats.minutes.size(), 1u);
  EXPECT_EQ(stats.minutes[0].counts.succeeded, expected.succeeded);
  EXPECT_EQ(stats.minutes[0].counts.failed, expected.failed);
  EXPECT_EQ(stats.minutes[0].counts.errors, expected.errors);
  ASSERT_EQ(stats.webhooks.size(), 2u);
  EXPECT_EQ(stats.webhooks[0].counts.total() + stats.webhooks[1].counts.total(), kDeliveries);
  EXPECT_EQ(stats.webhooks[0].counts.total(), kDeliveries / 2);
}

TEST_P(DeliveryStatsTest, ATestEventGoesToItsWebhookOnly) {
  auto store = open_store(config_);
  store->insert_webhook(webhook("target", kBrand));
  store->insert_webhook(webhook("sibling", kBrand));  // same topic: gets nothing
  store->insert_webhook(webhook("gone", kBrand));
  store->soft_delete_webhook(kBrand, "gone", 2);
  EventRecord e = event(kBrand);
  std::string id = store->insert_test_event(e, "target");
  auto due = store->claim_due(10, 100, {});
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].id, id);
  EXPECT_EQ(due[0].target->id, "target");
  EXPECT_EQ(store->stats(0).pending, 1);
  EXPECT_THROW(store->insert_test_event(event(kBrand), "gone"), NotFoundError);
  EXPECT_THROW(store->insert_test_event(event(kBrand), "nope"), NotFoundError);
  EXPECT_THROW(store->insert_test_event(event(kOther), "target"), NotFoundError);  // another brand's
  WebhookPatch off;
  off.enabled = false;
  store->update_webhook(kBrand, "sibling", off, 3);
  EXPECT_THROW(store->insert_test_event(event(kBrand), "sibling"), ConflictError);
  EXPECT_EQ(store->stats(0).pending, 1);  // the refused ones stored nothing
}

TEST_P(DeliveryStatsTest, TheHubSendsTestEventsAndChecksTheWindow) {
  config_.deliver = false;
  Hub hub(config_);
  Webhook target = hub.create_webhook(kBrand, "Showings", "https://example.com/t");
  hub.create_webhook(kBrand, "Showings", "https://example.com/sibling");
  Delivery d = hub.send_test_event(kBrand, target.id);
  EXPECT_EQ(d.webhook_id, target.id);
  EXPECT_EQ(d.topic, "Showings");
  EXPECT_EQ(d.event, "Test");
  EXPECT_EQ(d.state, DeliveryState::pending);
  EXPECT_EQ(hub.stats().pending, 1);
  EXPECT_THROW(hub.send_test_event(kBrand, "not-a-uuid"), ValidationError);
  EXPECT_THROW(hub.send_test_event(kOther, target.id), NotFoundError);
  hub.delete_webhook(kBrand, target.id);
  EXPECT_THROW(hub.send_test_event(kBrand, target.id), NotFoundError);

  EXPECT_THROW(hub.delivery_stats(kBrand, 0), ValidationError);
  EXPECT_THROW(hub.delivery_stats(kBrand, 25), ValidationError);
  DeliveryStats stats = hub.delivery_stats(kBrand, 1);
  EXPECT_EQ(stats.until - stats.since, 60 * kMinuteUs);
  EXPECT_EQ(stats.until % kMinuteUs, 0);
  EXPECT_GT(stats.until, now_micros());
  ASSERT_EQ(stats.webhooks.size(), 1u);
  DeliveryStats day = hub.delivery_stats(kBrand);
  EXPECT_EQ(day.until - day.since, 24 * 60 * kMinuteUs);
}
