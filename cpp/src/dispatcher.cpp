#include "dispatcher.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <optional>
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
constexpr std::size_t kLeasedPerSlot = 16;               // leased deliveries per max_in_flight slot
constexpr std::size_t kMaxLanes = 10'000;                // idle lanes kept for their HMAC keys
constexpr std::size_t kRecordBatch = 1024;                // outcomes that commit at once
constexpr std::int64_t kRecordInterval = 10'000;          // or the longest an outcome waits (us)
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
  // Every slot may talk to one origin: keeping fewer idle connections would close and reopen
  // them all the time under load.
  o.max_idle_per_origin = static_cast<std::size_t>(c.max_in_flight);
  return o;
}

std::chrono::system_clock::time_point at_micros(std::int64_t micros) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(micros));
}

struct Finished {
  DueDelivery delivery;
  std::int64_t started_at = 0;
  HttpOutcome outcome;
  bool sent = true;  // false: refused before sending (counts for no in-flight slot)
};

struct ClaimRequest {
  std::size_t want = 0;
  std::vector<std::int64_t> skip_webhooks;  // saturated lanes
};

struct ClaimReply {
  ClaimRequest request;
  std::vector<DueDelivery> due;
  std::optional<std::int64_t> next_due;  // asked only when the claim came back short
  bool failed = false;
};

// Per webhook: what is in flight, what waits, and what its target needs prepared once: the
// parsed URL and a keyed HMAC per valid key (newest first).
struct WebhookLane {
  int in_flight = 0;
  std::deque<DueDelivery> waiting;
  std::shared_ptr<const WebhookTarget> target;  // what `url` and `hmacs` were made from
  std::optional<Url> url;
  std::vector<std::unique_ptr<Hmac>> hmacs;
};
}  // namespace

// Two threads of its own besides the HTTP client's. The scheduler owns the lanes: it signs,
// sends and decides outcomes, and never waits for SQLite. The store thread commits outcomes in
// batches, claims due deliveries when the scheduler asks, and prunes. A commit that takes a
// few milliseconds therefore never leaves the lanes idle.
struct Dispatcher::Impl {
  Impl(Store& s, const Config& c, Metrics& m)
      : store(s), config(c), metrics(m), retry(c.retry_schedule, c.retry_jitter),
        client(client_options(c)), rng(std::random_device{}()),
        capacity(static_cast<std::size_t>(c.max_in_flight) * kLeasedPerSlot),
        next_prune(now_micros() + c.prune_interval_s * 1'000'000) {
    store.release_leases();
    store_thread = std::thread([this] { store_loop(); });
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

  // --- the scheduler thread --------------------------------------------------------------------
  void loop() {
    std::int64_t wake_at = 0;
    while (true) {
      std::vector<Finished> done;
      std::vector<DueDelivery> arrived;
      std::optional<ClaimReply> answer;
      bool stop_now = false;
      {
        std::unique_lock lock(mutex);
        wake.wait_until(lock, at_micros(wake_at), [&] {
          return stopping || woken || !finished.empty() || !fresh.empty() || reply;
        });
        done.swap(finished);
        arrived.swap(fresh);
        answer.swap(reply);
        claim_soon = claim_soon || woken;
        woken = false;
        stop_now = stopping;
      }
      if (stop_now) {
        draining = true;  // what was handed over or claimed stays leased until released
        record(done);
        break;
      }
      record(done);
      queue(arrived);
      if (answer) claimed(*answer);
      wake_at = maybe_claim();
    }
    drain();
  }

  // Asks the store thread for more due deliveries when the lanes run low. Returns when to look
  // again (replies, outcomes and publishes wake the scheduler earlier).
  std::int64_t maybe_claim() {
    std::int64_t now = now_micros();
    if (claim_outstanding) return now + kPollInterval;
    // Lease more only when little is left waiting: a claim scans the due index, so claiming
    // on every wake-up while lanes are full would cost a scan per delivery.
    std::size_t held = leased.load();  // publishes may add to it meanwhile: read it once
    if (held >= capacity || waiting >= kClaimBatch) return now + kPollInterval;
    if (!claim_soon && now < next_claim_at) return next_claim_at;
    ClaimRequest request;
    for (const auto& [seq, lane] : lanes) {
      if (lane.waiting.size() >= kQueuedPerWebhook) request.skip_webhooks.push_back(seq);
    }
    // The last claim found everything due in saturated lanes: scanning again finds nothing
    // new until something is published, a lane drains, or a retry falls due.
    if (drained && !claim_soon && request.skip_webhooks.size() >= drained_saturated && now < drained_until) {
      return drained_until;
    }
    drained = false;
    claim_soon = false;
    request.want = std::min(kClaimBatch, capacity - held);
    {
      std::lock_guard lock(store_mutex);
      claim_request = std::move(request);
    }
    store_wake.notify_one();
    claim_outstanding = true;
    return now + kPollInterval;
  }

  // A claim came back: its deliveries join their lanes; decides when the next one is worth it.
  void claimed(ClaimReply& answer) {
    claim_outstanding = false;
    std::int64_t now = now_micros();
    if (answer.failed) {  // a busy or failing database: try again shortly
      next_claim_at = now + kPollInterval;
      return;
    }
    queue(answer.due);
    if (answer.due.size() == answer.request.want) {  // probably more due already
      next_claim_at = now;
      claim_soon = true;
      return;
    }
    next_claim_at = std::min(answer.next_due.value_or(INT64_MAX), now + kPollInterval);
    if (!answer.request.skip_webhooks.empty() && answer.next_due && *answer.next_due <= now) {
      // What is due belongs to saturated lanes only.
      drained = true;
      drained_saturated = answer.request.skip_webhooks.size();
      drained_until = now + kPollInterval;
      next_claim_at = drained_until;
    }
  }

  // Leased deliveries join their lanes and start as the limits allow.
  void queue(std::vector<DueDelivery>& due) {
    waiting += due.size();
    for (auto& d : due) lanes[d.webhook_seq].waiting.push_back(std::move(d));
    start_waiting();
  }

  void start_waiting() {
    if (draining) return;
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

  // Parses the URL and keys the HMACs when the webhook's target changed (first use, an
  // update, a rotation); deliveries of one claim share their target, so this is rare.
  static void prepare(WebhookLane& lane, const std::shared_ptr<const WebhookTarget>& target) {
    if (lane.target == target) return;
    if (!lane.target || lane.target->url != target->url || !lane.url) lane.url = parse_url(target->url);
    if (!lane.target || lane.target->keys != target->keys || lane.hmacs.empty()) {
      lane.hmacs.clear();
      for (const auto& key : target->keys) lane.hmacs.push_back(std::make_unique<Hmac>(from_hex(key)));
    }
    lane.target = target;
  }

  void send(WebhookLane& lane, DueDelivery d) {
    std::int64_t started_at = now_micros();
    HttpRequest request;
    try {
      prepare(lane, d.target);
      request.url = *lane.url;
    } catch (const std::exception& e) {
      lane.target = nullptr;
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

  // Runs on a client thread: hand the outcome to the scheduler.
  void finish(Finished f) {
    bool first;
    {
      std::lock_guard lock(mutex);
      first = finished.empty();
      finished.push_back(std::move(f));
    }
    if (first) wake.notify_one();  // later ones are taken in the same swap
  }

  // Frees the lanes' slots at once, starts what waits, and queues the outcomes for the store
  // thread's next commit.
  void record(std::vector<Finished>& done) {
    if (done.empty()) return;
    std::int64_t now = now_micros();
    std::vector<AttemptRecord> records;
    records.reserve(done.size());
    for (auto& f : done) {
      WebhookLane& lane = lanes[f.delivery.webhook_seq];
      if (f.sent) {
        --lane.in_flight;
        --in_flight;
      }
      --leased;
      records.push_back(decide(f, now));
      count(records.back(), f, now);
    }
    if (lanes.size() > kMaxLanes) {  // forget idle lanes (and their keys) only when there are many
      std::erase_if(lanes, [](const auto& lane) { return lane.second.in_flight == 0 && lane.second.waiting.empty(); });
    }
    start_waiting();
    bool wake_store;
    {
      std::lock_guard lock(store_mutex);
      if (to_record.empty()) first_to_record = now;
      for (auto& r : records) to_record.push_back(std::move(r));
      // The store thread sleeps until the oldest outcome is due anyway; wake it early only
      // for a first outcome (to set that deadline) or a full batch.
      wake_store = to_record.size() == records.size() || to_record.size() >= kRecordBatch;
    }
    if (wake_store) store_wake.notify_one();
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

  // After the loop: no new sends; let in-flight attempts finish, record them, stop the store
  // thread (it commits what is left), release the rest.
  void drain() {
    draining = true;
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
    {
      std::lock_guard lock(store_mutex);
      store_stopping = true;
    }
    store_wake.notify_one();
    store_thread.join();
    client.stop();  // abandons whatever is left; its leases are released below
    try {
      store.release_leases();
    } catch (const std::exception&) {
      // The next start releases them.
    }
  }

  // --- the store thread ------------------------------------------------------------------------
  void store_loop() {
    while (true) {
      std::vector<AttemptRecord> records;
      std::optional<ClaimRequest> request;
      bool stop_now = false;
      {
        std::unique_lock lock(store_mutex);
        while (true) {  // outcomes wait for a full batch or kRecordInterval; the rest goes at once
          std::int64_t now = now_micros();
          bool batch_ready = to_record.size() >= kRecordBatch ||
                             (!to_record.empty() && now >= first_to_record + kRecordInterval);
          if (store_stopping || claim_request || batch_ready || now >= next_prune) {
            if (store_stopping || batch_ready) records.swap(to_record);
            break;
          }
          std::int64_t until = to_record.empty() ? next_prune : std::min(next_prune, first_to_record + kRecordInterval);
          store_wake.wait_until(lock, at_micros(until));
        }
        stop_now = store_stopping;
        request.swap(claim_request);
      }
      commit(records);
      if (stop_now) break;
      if (request) claim(std::move(*request));
      prune_when_due();
    }
  }

  // Outcomes commit in batches: every commit rewrites whole WAL pages, so committing each
  // outcome alone would cost more than the delivery itself. Until then the deliveries stay
  // leased, so a crash sends them again (at least once).
  void commit(const std::vector<AttemptRecord>& records) {
    if (records.empty()) return;
    std::int64_t now = now_micros();
    try {
      metrics.webhooks_disabled += static_cast<std::uint64_t>(
          store.record_attempts(records, now, now - config.disable_after_s * 1'000'000));
    } catch (const std::exception&) {
      // Not recorded: the leases stay until the next start, which retries these deliveries.
      // At-least-once holds; the attempt log misses these rows.
    }
  }

  void claim(ClaimRequest request) {
    ClaimReply answer;
    std::int64_t now = now_micros();
    try {
      answer.due = store.claim_due(now, request.want, request.skip_webhooks);
      if (answer.due.size() < request.want) answer.next_due = store.next_due_at();
    } catch (const std::exception&) {
      answer.failed = true;
    }
    answer.request = std::move(request);
    {
      std::lock_guard lock(mutex);
      leased += answer.due.size();
      reply = std::move(answer);
    }
    wake.notify_one();
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

  Store& store;
  Config config;
  Metrics& metrics;
  RetryPolicy retry;
  HttpClient client;
  std::mt19937_64 rng;
  const std::size_t capacity;  // deliveries leased at once, fresh hand-overs included
  std::atomic<std::size_t> leased{0};  // handed out by the store, not yet recorded

  // Shared with publishers, the HTTP client and the store thread (guarded by mutex).
  std::mutex mutex;
  std::condition_variable wake;
  bool woken = false;
  bool stopping = false;
  std::vector<Finished> finished;
  std::vector<DueDelivery> fresh;  // handed over by publishes
  std::optional<ClaimReply> reply;
  std::size_t reserved = 0;        // promised to publishes under way

  // The scheduler thread's own.
  std::thread thread;
  std::unordered_map<std::int64_t, WebhookLane> lanes;
  std::size_t waiting = 0;  // leased and queued in a lane, not yet sent
  int in_flight = 0;
  bool draining = false;
  bool claim_outstanding = false;
  bool claim_soon = true;          // something was published, or the last claim came back full
  std::int64_t next_claim_at = 0;  // otherwise: when something falls due
  bool drained = false;            // the last claim left only saturated lanes' deliveries due
  std::size_t drained_saturated = 0;
  std::int64_t drained_until = 0;

  // The store thread's inbox (guarded by store_mutex) and its own state.
  std::thread store_thread;
  std::mutex store_mutex;
  std::condition_variable store_wake;
  std::vector<AttemptRecord> to_record;
  std::int64_t first_to_record = 0;
  std::optional<ClaimRequest> claim_request;
  bool store_stopping = false;
  std::int64_t next_prune;
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
