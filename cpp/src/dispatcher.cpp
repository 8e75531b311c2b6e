#include "dispatcher.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "brandhooks/crypto.hpp"
#include "brandhooks/signer.hpp"
#include "clock.hpp"
#include "http_client.hpp"
#include "retry.hpp"
#include "store.hpp"

namespace brandhooks {

namespace {
constexpr std::size_t kClaimBatch = 512;
constexpr std::size_t kMaxLanes = 10'000;                // idle lanes kept for their HMAC keys
constexpr std::size_t kRecordBatch = 256;                 // outcomes that commit at once
constexpr std::int64_t kRecordInterval = 2'000;           // or the longest an outcome waits (us)
constexpr std::int64_t kPollInterval = 500'000;           // other processes may publish too
constexpr std::int64_t kMaxRetryAfter = 86'400'000'000;   // honour Retry-After up to a day
constexpr std::size_t kQueuedPerWebhook = kClaimBatch;   // leased but waiting, per webhook

HttpClientOptions client_options(const Config& c) {
  HttpClientOptions o;
  o.connect_timeout_ms = c.connect_timeout_ms;
  o.request_timeout_ms = c.request_timeout_ms;
  o.threads = c.delivery_threads;
  o.ca_file = c.ca_file;
  o.policy = AddressPolicy(c.allow_private, c.allow_cidrs);
  return o;
}

struct Finished {
  DueDelivery delivery;
  std::int64_t started_at = 0;
  HttpOutcome outcome;
  bool sent = true;  // false: refused before sending (counts for no in-flight slot)
};

// Per webhook: what is in flight, what waits, and its keyed HMACs (newest key first, then
// the keys still valid after a rotation).
struct WebhookLane {
  int in_flight = 0;
  std::deque<DueDelivery> waiting;
  std::vector<std::string> keys_hex;
  std::vector<std::unique_ptr<Hmac>> hmacs;
  std::optional<Url> url;
  std::string url_text;
};
}  // namespace

struct Dispatcher::Impl {
  Impl(Store& s, const Config& c, Metrics& m)
      : store(s), config(c), metrics(m), retry(c.retry_schedule, c.retry_jitter),
        client(client_options(c)), rng(std::random_device{}()),
        next_prune(now_micros() + c.prune_interval_s * 1'000'000) {
    store.release_leases();
    thread = std::thread([this] { loop(); });
  }

  void notify() {
    {
      std::lock_guard lock(mutex);
      woken = true;
    }
    wake.notify_one();
  }

  std::size_t reserve(std::size_t wanted) {
    std::lock_guard lock(mutex);
    std::size_t capacity = static_cast<std::size_t>(config.max_in_flight) * 4;
    std::size_t used = leased.load() + reserved;
    if (stopping || used >= capacity) return 0;
    std::size_t granted = std::min(wanted, capacity - used);
    reserved += granted;
    return granted;
  }

  void hand_over(std::vector<DueDelivery> deliveries, std::size_t granted) {
    {
      std::lock_guard lock(mutex);
      reserved -= granted;
      leased += deliveries.size();
      for (auto& d : deliveries) fresh.push_back(std::move(d));
      woken = true;
    }
    wake.notify_one();
  }

  void stop() {
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
      stopping = true;
    }
    wake.notify_one();
    if (thread.joinable()) thread.join();
  }

  // --- the store thread ----------------------------------------------------------------------
  void loop() {
    std::int64_t wake_at = 0;
    while (true) {
      std::vector<Finished> done;
      std::vector<DueDelivery> arrived;
      bool stop_now = false, published = false;
      {
        std::unique_lock lock(mutex);
        wait_for_work(lock, wake_at);
        done.swap(finished);
        arrived.swap(fresh);
        published = woken;
        woken = false;
        stop_now = stopping;
      }
      record(done);
      commit(stop_now);
      queue(arrived);
      if (stop_now) break;
      prune_when_due();
      wake_at = std::min(claim_and_send(published), next_prune);
    }
    drain();
  }

  // Sleeps until an outcome, a publish, a stop, `wake_at`, or the commit deadline.
  void wait_for_work(std::unique_lock<std::mutex>& lock, std::int64_t wake_at) {
    std::int64_t until = unrecorded.empty() ? wake_at : std::min(wake_at, first_unrecorded + kRecordInterval);
    wake.wait_until(lock, std::chrono::system_clock::time_point(std::chrono::microseconds(until)),
                    [&] { return stopping || woken || !finished.empty(); });
  }

  // Writes the outcomes gathered so far once there are enough, or once the oldest has waited
  // kRecordInterval: every commit rewrites whole WAL pages, so committing each outcome alone
  // would cost more than the delivery itself. Until then the deliveries stay leased, so a
  // crash sends them again (at least once).
  void commit(bool force) {
    if (unrecorded.empty()) return;
    std::int64_t now = now_micros();
    if (!force && unrecorded.size() < kRecordBatch && now < first_unrecorded + kRecordInterval) return;
    try {
      metrics.webhooks_disabled += static_cast<std::uint64_t>(
          store.record_attempts(unrecorded, now, now - config.disable_after_s * 1'000'000));
    } catch (const std::exception&) {
      // Not recorded: the leases stay until the next start, which retries these deliveries.
      // At-least-once holds; the attempt log misses these rows.
    }
    unrecorded.clear();
  }

  void prune_when_due() {
    std::int64_t now = now_micros();
    if (now < next_prune) return;
    next_prune = now + config.prune_interval_s * 1'000'000;
    try {
      metrics.deliveries_pruned += static_cast<std::uint64_t>(prune_expired(store, config.retention_s, now));
    } catch (const std::exception&) {
      // A busy database: the next round prunes.
    }
  }

  // Leases due deliveries and starts what the limits allow; returns when to look again.
  std::int64_t claim_and_send(bool published) {
    std::int64_t now = now_micros();
    std::size_t capacity = static_cast<std::size_t>(config.max_in_flight) * 4;
    // Lease more only when little is left waiting: a claim scans the due index, so claiming
    // on every wake-up while lanes are full would cost a scan per delivery.
    std::size_t held = leased.load();  // publishes may add to it meanwhile: read it once
    if (held >= capacity || waiting >= kClaimBatch) return now + kPollInterval;  // results wake us
    std::vector<std::int64_t> saturated;
    for (const auto& [seq, lane] : lanes) {
      if (lane.waiting.size() >= kQueuedPerWebhook) saturated.push_back(seq);
    }
    // The last claim found everything due in saturated lanes: scanning again finds nothing
    // new until something is published, a lane drains, or a retry falls due.
    if (drained && !published && saturated.size() >= drained_saturated && now < drained_until) {
      return drained_until;
    }
    drained = false;
    std::size_t want = std::min(kClaimBatch, capacity - held);
    std::vector<DueDelivery> due;
    try {
      due = store.claim_due(now, want, saturated);
    } catch (const std::exception&) {
      return now + kPollInterval;  // a busy or failing database: try again shortly
    }
    leased += due.size();
    queue(due);
    if (due.size() == want) return now;  // probably more due already
    std::optional<std::int64_t> next;
    try {
      next = store.next_due_at();
    } catch (const std::exception&) {
    }
    std::int64_t wake_at = std::min(next.value_or(INT64_MAX), now + kPollInterval);
    if (!saturated.empty() && next && *next <= now) {
      // What is due belongs to saturated lanes only.
      drained = true;
      drained_saturated = saturated.size();
      drained_until = now + kPollInterval;
      return drained_until;
    }
    return wake_at;
  }

  // Leased deliveries join their lanes and start as the limits allow.
  void queue(std::vector<DueDelivery>& due) {
    waiting += due.size();
    for (auto& d : due) lanes[d.webhook_seq].waiting.push_back(std::move(d));
    start_waiting();
  }

  void start_waiting() {
    for (auto& [seq, lane] : lanes) {
      while (!lane.waiting.empty() && lane.in_flight < config.max_in_flight_per_webhook &&
             in_flight < config.max_in_flight) {
        DueDelivery d = std::move(lane.waiting.front());
        lane.waiting.pop_front();
        --waiting;
        send(lane, std::move(d));
      }
    }
  }

  void send(WebhookLane& lane, DueDelivery d) {
    std::int64_t started_at = now_micros();
    HttpRequest request;
    try {
      std::vector<std::string> keys{d.key};
      keys.insert(keys.end(), d.previous_keys.begin(), d.previous_keys.end());
      if (lane.keys_hex != keys) {  // first use, or a rotation
        lane.hmacs.clear();
        for (const auto& key : keys) lane.hmacs.push_back(std::make_unique<Hmac>(from_hex(key)));
        lane.keys_hex = std::move(keys);
      }
      if (lane.url_text != d.url || !lane.url) {
        lane.url = parse_url(d.url);
        lane.url_text = d.url;
      }
      request.url = *lane.url;
    } catch (const std::exception& e) {
      HttpOutcome bad;
      bad.error = "protocol";
      bad.detail = e.what();
      finish({std::move(d), started_at, std::move(bad), false});
      return;
    }
    std::int64_t timestamp = started_at / 1'000'000;
    std::vector<Hmac*> signers;
    for (auto& hmac : lane.hmacs) signers.push_back(hmac.get());
    request.headers = {
        {config.signature_header, sign_simple(*signers.front(), *d.body)},
        {"webhook-id", d.id},
        {"webhook-timestamp", std::to_string(timestamp)},
        {"webhook-signature", sign_standard(signers, d.id, timestamp, *d.body)},
    };
    request.body = d.body;
    ++lane.in_flight;
    ++in_flight;
    client.send(std::move(request), [this, d = std::move(d), started_at](HttpOutcome outcome) mutable {
      finish({std::move(d), started_at, std::move(outcome), true});
    });
  }

  // Runs on a client thread: hand the outcome to the store thread.
  void finish(Finished f) {
    bool first;
    {
      std::lock_guard lock(mutex);
      first = finished.empty();
      finished.push_back(std::move(f));
    }
    if (first) wake.notify_one();  // later ones are taken in the same swap
  }

  // Frees the lanes' slots at once and queues the outcomes for the next commit.
  void record(std::vector<Finished>& done) {
    if (done.empty()) return;
    std::int64_t now = now_micros();
    if (unrecorded.empty()) first_unrecorded = now;
    for (auto& f : done) {
      WebhookLane& lane = lanes[f.delivery.webhook_seq];
      if (f.sent) {
        --lane.in_flight;
        --in_flight;
      }
      --leased;
      unrecorded.push_back(decide(f, now));
      count(unrecorded.back(), f, now);
    }
    if (lanes.size() > kMaxLanes) {  // forget idle lanes (and their keys) only when there are many
      std::erase_if(lanes, [](const auto& lane) { return lane.second.in_flight == 0 && lane.second.waiting.empty(); });
    }
    start_waiting();
  }

  void count(const AttemptRecord& r, const Finished& f, std::int64_t now) {
    ++metrics.attempts;
    metrics.attempt_seconds.observe(static_cast<double>(r.attempt.duration_us) / 1e6);
    if (r.new_state == "delivered") {
      ++metrics.deliveries_delivered;
      metrics.publish_to_delivered_seconds.observe(
          static_cast<double>(now - f.delivery.event_created_at) / 1e6);
    } else if (r.new_state == "failed") {
      ++metrics.deliveries_failed;
    } else {
      ++metrics.retries_scheduled;
    }
  }

  AttemptRecord decide(Finished& f, std::int64_t now) {
    AttemptRecord r;
    r.delivery_seq = f.delivery.seq;
    r.webhook_seq = f.delivery.webhook_seq;
    Attempt& a = r.attempt;
    a.number = f.delivery.attempts_made + 1;
    a.started_at = f.started_at;
    a.duration_us = f.outcome.duration_us;
    if (f.outcome.error.empty()) a.status = f.outcome.status;
    a.error = f.outcome.error;
    a.detail = f.outcome.detail;
    a.response = std::move(f.outcome.response);

    int status = f.outcome.error.empty() ? f.outcome.status : 0;
    if (status >= 200 && status < 300) {
      r.new_state = "delivered";
      return r;
    }
    if (status == 410) {
      r.new_state = "failed";
      r.disable_reason = "the endpoint answered 410 Gone";
      return r;
    }
    auto delay = retry.next_delay(a.number, rng);
    if (!delay) {
      r.new_state = "failed";
      return r;
    }
    if ((status == 429 || status == 503) && f.outcome.retry_after) {
      if (auto asked = parse_retry_after(*f.outcome.retry_after, now)) {
        delay = std::min(*asked, kMaxRetryAfter);
      }
    }
    r.new_state = "pending";
    r.next_at = now + *delay;
    return r;
  }

  // After the loop: let in-flight attempts finish, record them, release the rest.
  void drain() {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(config.request_timeout_ms + 1000);
    while (in_flight > 0) {
      std::vector<Finished> done;
      {
        std::unique_lock lock(mutex);
        wake.wait_until(lock, deadline, [&] { return !finished.empty(); });
        done.swap(finished);
      }
      if (done.empty()) break;  // the deadline passed
      record(done);
    }
    commit(true);
    client.stop();  // abandons whatever is left; its leases are released below
    try {
      store.release_leases();
    } catch (const std::exception&) {
      // The next start releases them.
    }
  }

  Store& store;
  Config config;
  Metrics& metrics;
  RetryPolicy retry;
  HttpClient client;
  std::mt19937_64 rng;
  std::int64_t next_prune;
  std::thread thread;

  std::mutex mutex;
  std::condition_variable wake;
  bool woken = false;
  bool stopping = false;
  std::vector<Finished> finished;

  // Store-thread state.
  std::unordered_map<std::int64_t, WebhookLane> lanes;
  std::atomic<std::size_t> leased{0};  // handed out by the store, not yet recorded
  std::size_t reserved = 0;            // promised to publishes under way (guarded by mutex)
  std::vector<DueDelivery> fresh;      // handed over by publishes (guarded by mutex)
  std::size_t waiting = 0;  // leased and queued in a lane, not yet sent
  std::vector<AttemptRecord> unrecorded;  // outcomes waiting for the next commit
  std::int64_t first_unrecorded = 0;
  bool drained = false;     // the last claim left only saturated lanes' deliveries due
  std::size_t drained_saturated = 0;
  std::int64_t drained_until = 0;
  int in_flight = 0;
};

Dispatcher::Dispatcher(Store& store, const Config& config, Metrics& metrics)
    : impl_(std::make_unique<Impl>(store, config, metrics)) {}

Dispatcher::~Dispatcher() { stop(); }

void Dispatcher::notify() { impl_->notify(); }

std::size_t Dispatcher::reserve(std::size_t wanted) { return impl_->reserve(wanted); }

void Dispatcher::hand_over(std::vector<DueDelivery> deliveries, std::size_t reserved) {
  impl_->hand_over(std::move(deliveries), reserved);
}

void Dispatcher::stop() { impl_->stop(); }

}  // namespace brandhooks
