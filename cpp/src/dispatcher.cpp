#include "dispatcher.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <optional>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "attempt_spans.hpp"
#include "brandhooks/crypto.hpp"
#include "brandhooks/signer.hpp"
#include "clock.hpp"
#include "http_client.hpp"
#include "lease.hpp"
#include "log.hpp"
#include "retry.hpp"
#include "store.hpp"
#include "thread_name.hpp"
#include "trace_context.hpp"

namespace brandhooks {

namespace {
constexpr std::size_t kClaimBatch = 512;
// Leased deliveries (waiting in lanes or in flight) per max_in_flight slot, and the bytes of
// their bodies in all. Room for a whole publish_many call lets it hand everything over, with no
// claim scan afterwards; the byte budget keeps large bodies from taking the memory instead.
constexpr std::size_t kLeasedPerSlot = 64;
constexpr std::size_t kLeasedBytes = 64u << 20;
constexpr std::size_t kMaxLanes = 10'000;                // idle lanes kept for their HMAC keys
constexpr std::size_t kRecordBatch = 1024;                // outcomes that commit at once
constexpr std::int64_t kRecordInterval = 10'000;          // or the longest an outcome waits (us)
constexpr std::int64_t kPollInterval = 500'000;           // other processes may publish too
constexpr std::int64_t kCommitRetry = 500'000;            // after a failed commit (a busy database)
// After a claim that found due deliveries it could not take (rows another transaction holds,
// SKIP LOCKED; a webhook another claim holds), the next waits this long, doubling up to
// kPollInterval while that lasts: what blocks it is another node's business, not ours.
constexpr std::int64_t kClaimBackoff = 10'000;
constexpr std::size_t kQueuedPerWebhook = kClaimBatch;   // leased but waiting, per webhook

HttpClientOptions client_options(const Config& c) {
  HttpClientOptions o;
  o.connect_timeout_ms = c.connect_timeout_ms;
  o.request_timeout_ms = c.request_timeout_ms;
  o.threads = c.delivery_threads;
  o.ca_file = c.ca_file;
  o.policy = AddressPolicy(c.allow_private, c.allow_cidrs);
  o.dns_servers = c.dns_servers;
  o.idle_timeout_ms = c.idle_timeout_ms;
  // Every slot may talk to one origin: keeping fewer idle connections would close and reopen
  // them all the time under load.
  o.max_idle_per_origin = static_cast<std::size_t>(c.max_in_flight);
  o.max_idle_total = static_cast<std::size_t>(c.max_idle_connections);
  return o;
}

std::chrono::system_clock::time_point at_micros(std::int64_t micros) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(micros));
}

struct Finished {
  DueDelivery delivery;
  std::int64_t started_at = 0;
  HttpOutcome outcome;
  std::uint64_t span_id = 0;  // the attempt's own span (AttemptSpanQueue enabled); 0: none
};

// The attempt as a span of the publisher's trace (its parent is the publisher's span).
AttemptSpan attempt_span(const Finished& f, const AttemptRecord& r) {
  const TraceContext& trace = *f.delivery.trace;
  AttemptSpan span;
  span.trace_id = trace_id_of(trace);
  span.span_id = span_id_hex(f.span_id);
  span.parent_span_id = parent_id_of(trace);
  span.trace_flags = std::stoi(std::string(flags_of(trace)), nullptr, 16);
  span.tracestate = trace.tracestate;
  span.delivery_id = f.delivery.id;
  if (f.delivery.target) {
    span.webhook_id = f.delivery.target->id;
    span.brand = f.delivery.target->brand;
  }
  const Attempt& a = r.attempt;
  span.attempt = {a.number, a.started_at, a.duration_us, a.status, a.error, a.detail, {}};
  span.state = r.new_state;
  return span;
}

struct ClaimRequest {
  std::size_t want = 0;
  std::size_t max_bytes = 0;
  std::vector<std::int64_t> skip_webhooks;  // saturated lanes
};

// Per webhook: what is in flight, what waits, and what its target needs prepared once: the
// parsed URL and a keyed HMAC per valid key (newest first).
struct WebhookLane {
  int in_flight = 0;
  bool ready = false;  // in the queue of lanes waiting for a global slot
  std::deque<DueDelivery> waiting;
  std::shared_ptr<const WebhookTarget> target;  // what `http` and `hmacs` were made from
  std::shared_ptr<const HttpTarget> http;
  std::vector<std::unique_ptr<Hmac>> hmacs;
};
}  // namespace

// Scheduling happens where the events happen, under one mutex: an HTTP thread that finishes
// an attempt records it and starts the lane's next delivery on the spot, a publish starts what
// it hands over. So a steady stream of deliveries needs no thread switch per delivery. The
// store thread commits outcomes in batches, claims due deliveries when the lanes run low, and
// prunes; nothing waits for SQLite while holding the mutex.
struct Dispatcher::Impl {
  Impl(Store& s, const Config& c, Metrics& m, AttemptSpanQueue& q)
      : store(s), config(c), metrics(m), spans(q), retry(c.retry_schedule, c.retry_jitter),
        client(client_options(c)), rng(std::random_device{}()), log_level(parse_log_level(c.log_level)),
        log_format(parse_log_format(c.log_format)),
        capacity(static_cast<std::size_t>(c.max_in_flight) * kLeasedPerSlot),
        renew_interval(lease_renew_interval(c.lease_timeout_s * 1'000'000)),
        next_prune(now_micros() + c.prune_interval_s * 1'000'000),
        next_renew(now_micros() + renew_interval) {
    // Leases this node id held in a run that ended without releasing them (a crash); other
    // nodes' leases stay theirs.
    store.release_leases(now_micros());
    store_thread = std::thread([this] {
      name_this_thread("bh-store");
      store_loop();
    });
  }

  void notify() {
    std::lock_guard lock(mutex);
    claim_soon = true;
    ask_for_claim();
  }

  LeaseRoom reserve() {
    std::lock_guard lock(mutex);
    LeaseRoom room;
    std::size_t count = leased + reserved.deliveries, bytes = leased_bytes + reserved.bytes;
    // No hand-over while a take-back waits (upkeep_leases): the publish stores its deliveries
    // free, and a claim takes them.
    if (draining || take_back_due || count >= capacity || bytes >= kLeasedBytes) return room;
    room = {capacity - count, kLeasedBytes - bytes};
    reserved.deliveries += room.deliveries;
    reserved.bytes += room.bytes;
    return room;
  }

  void hand_over(std::vector<DueDelivery> deliveries, LeaseRoom granted) {
    std::lock_guard lock(mutex);
    settle(granted);
    take_leased(deliveries);
    claim_soon = true;  // the publish may have stored more than it handed over
    ask_for_claim();
  }

  // The publish failed; if its COMMIT was sent, it may have committed, with deliveries leased
  // to this node that it never got: look for them (upkeep_leases) once the database answers.
  void publish_failed(LeaseRoom granted) {
    std::lock_guard lock(mutex);
    settle(granted);
    if (granted.deliveries > 0) schedule_take_back(now_micros());
  }

  // Under `mutex`: a reservation is over.
  void settle(LeaseRoom granted) {
    reserved.deliveries -= granted.deliveries;
    reserved.bytes -= granted.bytes;
    if (take_back_due && reservations_settled()) store_wake.notify_one();
  }

  bool reservations_settled() const { return reserved.deliveries == 0 && reserved.bytes == 0; }

  // Under `mutex`.
  void schedule_take_back(std::int64_t at) {
    if (take_back_due) return;
    take_back_due = true;
    take_back_at = at;
    store_wake.notify_one();
  }

  void stop() {
    {
      std::unique_lock lock(mutex);
      if (draining) return;
      draining = true;  // no new attempts; what waits stays leased until released below
      // Let in-flight attempts finish (up to the request timeout) so their outcomes are kept.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.request_timeout_ms + 1000);
      idle.wait_until(lock, deadline, [&] { return in_flight == 0; });
      store_stopping = true;
    }
    store_wake.notify_one();
    store_thread.join();  // commits every outcome recorded so far
    client.stop();        // abandons whatever is left
    try {
      store.release_leases(now_micros());
    } catch (const std::exception&) {
      // They expire: another node takes them over, or this node id's next start releases them.
    }
  }

  // --- scheduling (all under `mutex`) -------------------------------------------------------
  // Deliveries leased for this dispatcher (claimed or handed over) count against its room,
  // join their lanes and start as the limits allow.
  void take_leased(std::vector<DueDelivery>& due) {
    leased += due.size();
    for (const auto& d : due) {
      leased_bytes += d.body->size();
      held.insert(d.seq);
    }
    queue(due, now_micros());
  }

  // Leased deliveries join their lanes; a throttled webhook's delivery whose send slot has not
  // come yet waits in `paced` until then (the store thread lets it go).
  void queue(std::vector<DueDelivery>& due, std::int64_t now) {
    std::vector<std::int64_t> touched;  // each lane once, in order of first appearance
    std::unordered_set<std::int64_t> seen;
    for (auto& d : due) {
      if (d.not_before > now) {
        std::int64_t at = d.not_before;
        paced.emplace(at, std::move(d));
        continue;
      }
      ++waiting;
      std::int64_t seq = d.webhook_seq;
      if (seen.insert(seq).second) touched.push_back(seq);
      WebhookLane& lane = lanes[seq];
      lane.waiting.push_back(std::move(d));
      if (lane.waiting.size() == kQueuedPerWebhook) ++saturated;
    }
    for (std::int64_t seq : touched) fill(lanes[seq], seq);
  }

  // Throttled deliveries whose send slot has come join their lanes.
  void release_paced(std::int64_t now) {
    std::vector<DueDelivery> due;
    while (!paced.empty() && paced.begin()->first <= now) {
      due.push_back(std::move(paced.begin()->second));
      paced.erase(paced.begin());
    }
    if (!due.empty()) queue(due, now);
  }

  // Sends the lane's waiting deliveries as far as its limit and the global one allow; a lane
  // stopped by the global limit queues for the next free slot.
  void fill(WebhookLane& lane, std::int64_t seq) {
    while (!draining && !lane.waiting.empty() && lane.in_flight < config.max_in_flight_per_webhook) {
      if (in_flight >= config.max_in_flight) {
        if (!lane.ready) {
          lane.ready = true;
          ready.push_back(seq);
        }
        return;
      }
      if (lane.waiting.size() == kQueuedPerWebhook) --saturated;
      DueDelivery d = std::move(lane.waiting.front());
      lane.waiting.pop_front();
      --waiting;
      send(lane, std::move(d));
    }
  }

  // Parses the URL and keys the HMACs when the webhook's target changed (first use, an
  // update, a rotation); deliveries of one claim share their target, so this is rare.
  static void prepare(WebhookLane& lane, const std::shared_ptr<const WebhookTarget>& target) {
    if (lane.target == target) return;
    if (!lane.target || lane.target->url != target->url || !lane.http) {
      lane.http = std::make_shared<const HttpTarget>(parse_url(target->url));
    }
    if (!lane.target || lane.target->keys != target->keys || lane.hmacs.empty()) {
      lane.hmacs.clear();
      for (const auto& key : target->keys) lane.hmacs.push_back(std::make_unique<Hmac>(from_hex(key)));
    }
    lane.target = target;
  }

  // Signs and starts one attempt. This runs on whichever thread scheduled it, so nothing may
  // escape: an attempt that cannot be made is recorded as failed (and retried) instead.
  void send(WebhookLane& lane, DueDelivery d) {
    std::int64_t started_at = now_micros();
    HttpRequest request;
    // With spans on, a traced attempt is a span of its own, also when it cannot be made.
    std::uint64_t span_id = 0;
    if (d.trace && spans.enabled()) {
      while (span_id == 0) span_id = rng();
    }
    try {
      prepare(lane, d.target);
      request.target = lane.http;
      std::int64_t timestamp = started_at / 1'000'000;
      std::vector<Hmac*> signers;
      for (auto& hmac : lane.hmacs) signers.push_back(hmac.get());
      request.headers.reserve(320);
      add_header(request.headers, config.signature_header, sign_simple(*signers.front(), *d.body));
      add_header(request.headers, "webhook-id", d.id);
      add_header(request.headers, "webhook-timestamp", std::to_string(timestamp));
      add_header(request.headers, "webhook-signature", sign_standard(signers, d.id, timestamp, *d.body));
      request.headers.append(d.target->header_lines);  // the webhook's own headers, if any
      if (d.trace) add_trace_headers(request.headers, *d.trace, span_id);
    } catch (const std::exception& e) {
      lane.target = nullptr;
      Finished refused{std::move(d), started_at, {}, span_id};
      refused.outcome.error = AttemptError::protocol;
      refused.outcome.detail = e.what();
      record(refused);
      return;
    }
    request.body = d.body;
    ++lane.in_flight;
    ++in_flight;
    client.send(std::move(request), [this, d = std::move(d), started_at, span_id](HttpOutcome outcome) mutable {
      finished({std::move(d), started_at, std::move(outcome), span_id});
    });
  }

  // The event's trace context, continued from the attempt's own span when it has one (the
  // receiver's parent is then this request), else the publisher's traceparent as it came.
  static void add_trace_headers(std::string& headers, const TraceContext& trace, std::uint64_t span_id) {
    add_header(headers, "traceparent", span_id != 0 ? child_traceparent(trace, span_id) : trace.traceparent);
    if (!trace.tracestate.empty()) add_header(headers, "tracestate", trace.tracestate);
  }

  // On an HTTP thread: record the outcome and start the lane's next delivery right here.
  void finished(Finished f) {
    std::lock_guard lock(mutex);
    std::int64_t webhook = f.delivery.webhook_seq;
    record(f);
    --in_flight;
    WebhookLane& lane = lanes[webhook];
    --lane.in_flight;
    if (draining) {
      if (in_flight == 0) idle.notify_all();
      return;
    }
    if (ready.empty()) {
      fill(lane, webhook);
    } else {  // lanes wait for a global slot: they go first, round robin
      if (!lane.waiting.empty() && !lane.ready) {
        lane.ready = true;
        ready.push_back(webhook);
      }
      start_ready();
    }
    if (lane.in_flight == 0 && lane.waiting.empty() && lanes.size() > kMaxLanes) {
      lanes.erase(webhook);  // forget idle lanes (and their keys) only when there are many
    }
    ask_for_claim();
  }

  void start_ready() {
    while (!ready.empty() && in_flight < config.max_in_flight && !draining) {
      std::int64_t seq = ready.front();
      ready.pop_front();
      auto it = lanes.find(seq);
      if (it == lanes.end()) continue;
      it->second.ready = false;
      fill(it->second, seq);
    }
  }

  // Decides the outcome and queues it for the store thread's next commit.
  void record(Finished& f) {
    std::int64_t now = now_micros();
    --leased;
    leased_bytes -= f.delivery.body->size();
    AttemptRecord r = decide(f, now);
    count(r, f, now);
    if (f.span_id != 0) spans.push(attempt_span(f, r));
    if (attempt_log_level(r) >= log_level) to_log.push_back(attempt_log_line(log_format, f.delivery, r));
    if (to_record.empty()) {
      first_to_record = now;
      store_wake.notify_one();  // to sleep until this one's deadline
    }
    to_record.push_back(std::move(r));
    if (to_record.size() == kRecordBatch) store_wake.notify_one();
  }

  // Whether leasing more is worth a scan of the due index now.
  bool claim_worthwhile(std::int64_t now) const {
    if (draining || claim_running) return false;
    // Little room, or enough waiting already: finishing attempts ask again.
    if (leased >= capacity || leased_bytes >= kLeasedBytes || waiting >= kClaimBatch) return false;
    if (claim_soon) return true;
    // The last claim found everything due in saturated lanes: a lane that drained since may
    // take some of it (otherwise scanning again finds nothing new before next_claim_at).
    if (drained && saturated < drained_saturated) return true;
    return now >= next_claim_at;
  }

  void ask_for_claim() {
    if (!claim_asked && claim_worthwhile(now_micros())) {
      claim_asked = true;
      store_wake.notify_one();
    }
  }

  void count(const AttemptRecord& r, const Finished& f, std::int64_t now) {
    ++metrics.attempts;
    metrics.attempt_seconds.observe(static_cast<double>(r.attempt.duration_us) / 1e6);
    if (r.new_state == DeliveryState::delivered) {
      ++metrics.deliveries_delivered;
      metrics.publish_to_delivered_seconds.observe(
          static_cast<double>(now - f.delivery.event_created_at) / 1e6);
    } else if (r.new_state == DeliveryState::failed) {
      ++metrics.deliveries_failed;
    } else {
      ++metrics.retries_scheduled;
    }
  }

  AttemptRecord decide(Finished& f, std::int64_t now) {
    AttemptRecord r;
    r.delivery_seq = f.delivery.seq;
    r.webhook_seq = f.delivery.webhook_seq;
    r.ordered = f.delivery.target && f.delivery.target->ordered;
    Attempt& a = r.attempt;
    a.number = f.delivery.attempts_made + 1;
    a.started_at = f.started_at;
    a.duration_us = f.outcome.duration_us;
    if (f.outcome.error == AttemptError::none) a.status = f.outcome.status;
    a.error = f.outcome.error;
    a.detail = f.outcome.detail;
    a.response = std::move(f.outcome.response);

    int status = f.outcome.error == AttemptError::none ? f.outcome.status : 0;
    if (status >= 200 && status < 300) {
      r.new_state = DeliveryState::delivered;
      return r;
    }
    if (status == 410) {
      r.new_state = DeliveryState::failed;
      r.disable_reason = "the endpoint answered 410 Gone";
      return r;
    }
    auto delay = retry.next_delay(a.number, rng);
    if (!delay) {
      r.new_state = DeliveryState::failed;
      return r;
    }
    if ((status == 429 || status == 503) && f.outcome.retry_after) {
      if (auto asked = parse_retry_after(*f.outcome.retry_after, now)) delay = asked;  // capped
    }
    r.new_state = DeliveryState::pending;
    r.next_at = now + *delay;
    return r;
  }

  // --- the store thread ------------------------------------------------------------------------
  void store_loop() {
    while (true) {
      std::vector<AttemptRecord> records;
      std::vector<std::string> lines;  // the log of those outcomes, written once committed
      std::optional<ClaimRequest> request;
      bool stop_now = false;
      {
        std::unique_lock lock(mutex);
        while (true) {  // outcomes wait for a full batch or kRecordInterval; the rest goes at once
          std::int64_t now = now_micros();
          if (!draining) release_paced(now);
          bool batch_ready = now >= commit_retry_at &&
                             (to_record.size() >= kRecordBatch ||
                              (!to_record.empty() && now >= first_to_record + kRecordInterval));
          claim_asked = false;  // awake and deciding now: a later ask must wake it again
          bool claim_now = claim_worthwhile(now);
          bool take_back_now = take_back_due && now >= take_back_at && reservations_settled();
          if (store_stopping || batch_ready || claim_now || now >= next_prune || now >= next_renew || take_back_now) {
            stop_now = store_stopping;
            if (stop_now || batch_ready) {
              records.swap(to_record);
              lines.swap(to_log);
            }
            if (claim_now && !stop_now) request = claim_request();
            break;
          }
          // A claim due already but not worthwhile waits for room: finishing attempts ask.
          std::int64_t until = std::min(next_prune, next_renew);
          if (next_claim_at > now) until = std::min(until, next_claim_at);
          if (take_back_due && take_back_at > now) until = std::min(until, take_back_at);
          if (!paced.empty() && !draining) until = std::min(until, paced.begin()->first);
          if (!to_record.empty()) {
            until = std::min(until, std::max(first_to_record + kRecordInterval, commit_retry_at));
          }
          store_wake.wait_until(lock, at_micros(until));
        }
      }
      if (commit(records, stop_now)) {
        for (const auto& line : lines) write_log_line(line);
      } else if (!stop_now) {  // kept for the next try, in order, before what came since
        std::lock_guard lock(mutex);
        to_record.insert(to_record.begin(), std::make_move_iterator(records.begin()),
                         std::make_move_iterator(records.end()));
        to_log.insert(to_log.begin(), std::make_move_iterator(lines.begin()), std::make_move_iterator(lines.end()));
        first_to_record = now_micros();
        commit_retry_at = first_to_record + kCommitRetry;
      }
      if (stop_now) break;
      upkeep_leases();
      if (request) claim(std::move(*request));
      prune_when_due();
    }
  }

  // Pushes the expiry of the leases this dispatcher holds (`held`: waiting in lanes, in
  // flight, or with an outcome not yet committed), so that no other node takes them over while
  // this one lives; and takes back this node's other leases (lease.hpp): at every renewal, and
  // soon after a claim or a publish failed, whose COMMIT may have committed what this
  // dispatcher never got. A take-back waits until no publish is handing deliveries over
  // (reserve() gives none meanwhile): those are this node's in the database a moment before
  // they are in `held`.
  void upkeep_leases() {
    std::int64_t now = now_micros();
    bool renew = now >= next_renew;
    bool take_back = false;
    std::vector<std::int64_t> held_now;
    {
      std::lock_guard lock(mutex);
      if (renew) schedule_take_back(now);
      take_back = take_back_due && now >= take_back_at && reservations_settled();
      if (!renew && !take_back) return;
      held_now.assign(held.begin(), held.end());
    }
    LeaseUpkeep done;
    try {
      done = store.renew_leases(now, held_now, take_back);
    } catch (const std::exception& e) {
      if (renew) next_renew = now + std::min(renew_interval, kPollInterval);  // a busy database: soon again
      if (take_back) {
        std::lock_guard lock(mutex);
        take_back_at = now + kPollInterval;
      }
      if (renew && log_level <= LogLevel::error) {
        LogLine line(log_format, LogLevel::error, "cannot renew leases; other nodes take them over once they expire");
        write_log_line(line.add("detail", e.what()).text());
      }
      return;
    }
    if (renew) next_renew = now + renew_interval;
    if (take_back) {
      std::lock_guard lock(mutex);
      take_back_due = false;
      if (done.taken_back > 0) claim_soon = true;  // due now: this node's claim may take them at once
    }
    if (done.taken_back > 0) {
      metrics.leases_taken_back += static_cast<std::uint64_t>(done.taken_back);
      if (log_level <= LogLevel::warning) {
        LogLine line(log_format, LogLevel::warning,
                     "took back leases this node had in the database but not in memory (a commit that lost its "
                     "answer had taken them); they are due again");
        write_log_line(line.add("count", done.taken_back).add("node", config.node_id).text());
      }
    }
  }

  // Under `mutex`: what to ask the store for, and the claim marked as running.
  ClaimRequest claim_request() {
    ClaimRequest request;
    request.want = std::min(kClaimBatch, capacity - leased);
    request.max_bytes = kLeasedBytes - leased_bytes;
    if (saturated > 0) {
      for (const auto& [seq, lane] : lanes) {
        if (lane.waiting.size() >= kQueuedPerWebhook) request.skip_webhooks.push_back(seq);
      }
    }
    claim_running = true;
    claim_soon = false;
    drained = false;
    return request;
  }

  // Outcomes commit in batches: every commit rewrites whole WAL pages, so committing each
  // outcome alone would cost more than the delivery itself. Until then the deliveries stay
  // leased (and renewed), so a crash sends them again (at least once). Returns false when the
  // commit failed: the caller tries again shortly, or, when `last`, the leases are released.
  bool commit(const std::vector<AttemptRecord>& records, bool last) {
    if (records.empty()) return true;
    std::int64_t now = now_micros();
    RecordResult result;
    try {
      result = store.record_attempts(records, now, now - config.disable_after_s * 1'000'000);
    } catch (const std::exception& e) {
      if (log_level <= LogLevel::error) {
        LogLine line(log_format, LogLevel::error, last ? "cannot record attempts; their deliveries are sent again"
                                           : "cannot record attempts; trying again");
        write_log_line(line.add("count", static_cast<std::int64_t>(records.size())).add("detail", e.what()).text());
      }
      return false;
    }
    metrics.webhooks_disabled += static_cast<std::uint64_t>(result.disabled);
    {
      std::lock_guard lock(mutex);
      for (const auto& r : records) held.erase(r.delivery_seq);  // recorded (or another node's now)
    }
    if (result.already_recorded > 0) {
      // The COMMIT of an earlier try lost its answer but had committed: nothing to do again.
      metrics.outcomes_already_recorded += static_cast<std::uint64_t>(result.already_recorded);
      if (log_level <= LogLevel::warning) {
        LogLine line(log_format, LogLevel::warning,
                     "attempt outcomes were already recorded: the answer to an earlier commit of them was lost");
        write_log_line(line.add("count", result.already_recorded).add("node", config.node_id).text());
      }
    }
    if (result.lost > 0) {
      // This node stopped renewing for longer than the lease timeout (a stall, a database
      // that refused the renewals), and other nodes took these deliveries over: their
      // attempts count, not these.
      metrics.leases_lost += static_cast<std::uint64_t>(result.lost);
      if (log_level <= LogLevel::warning) {
        LogLine line(log_format, LogLevel::warning, "attempt outcomes dropped: another node took their leases over");
        write_log_line(line.add("count", result.lost).add("node", config.node_id).text());
      }
    }
    std::int64_t first_retry = INT64_MAX;
    bool ordered = false;
    for (const auto& r : records) {
      if (r.new_state == DeliveryState::pending && r.next_at) first_retry = std::min(first_retry, *r.next_at);
      ordered = ordered || r.ordered;
    }
    if (first_retry != INT64_MAX || ordered) {
      std::lock_guard lock(mutex);
      // Claim the retry when it falls due, not at the next poll.
      next_claim_at = std::min(next_claim_at, first_retry);
      // An ordered webhook's next delivery may go now that this outcome is committed.
      if (ordered) claim_soon = true;
    }
    return true;
  }


  // Leases what is due (outside the mutex), then queues it and decides when to look again.
  void claim(ClaimRequest request) {
    std::vector<DueDelivery> due;
    std::optional<std::int64_t> next_due;
    bool failed = false;
    try {
      due = store.claim_due(now_micros(), request.want, request.skip_webhooks, request.max_bytes);
      if (due.size() < request.want) next_due = store.next_due_at();
    } catch (const std::exception&) {
      failed = true;
    }
    std::map<std::string, std::int64_t> taken_over;  // per node that stopped renewing them
    for (const auto& d : due) {
      if (!d.taken_from.empty()) ++taken_over[d.taken_from];
    }
    for (const auto& [from, n] : taken_over) {
      metrics.leases_taken_over.add(from, static_cast<std::uint64_t>(n));
      if (log_level <= LogLevel::warning) {
        LogLine line(log_format, LogLevel::warning, "took over leases another node stopped renewing");
        write_log_line(line.add("count", n).add("node", config.node_id).add("from_node", from).text());
      }
    }
    std::lock_guard lock(mutex);
    claim_running = false;
    std::int64_t now = now_micros();
    take_leased(due);
    if (failed) {  // a busy or failing database: try again shortly
      next_claim_at = now + kPollInterval;
      // If the claim's COMMIT was sent, it may have committed: its leases are this node's.
      schedule_take_back(now);
    } else if (due.size() == request.want) {  // probably more due already
      claim_soon = true;
      claim_backoff = 0;
    } else if (next_due && *next_due <= now) {  // due, and not taken
      if (!request.skip_webhooks.empty()) {  // it may belong to saturated lanes only
        drained = true;
        drained_saturated = request.skip_webhooks.size();
        next_claim_at = now + kPollInterval;
      } else if (due.empty()) {  // held by others for now: back off
        claim_backoff = claim_backoff ? std::min(2 * claim_backoff, kPollInterval) : kClaimBackoff;
        next_claim_at = now + claim_backoff;
      } else {  // taken in part (the byte budget, or rows held by others): again at once
        claim_backoff = 0;
        next_claim_at = now;
      }
    } else {
      claim_backoff = 0;
      next_claim_at = std::min(next_due.value_or(INT64_MAX), now + kPollInterval);
    }
  }

  void prune_when_due() {
    std::int64_t now = now_micros();
    if (now < next_prune) return;
    next_prune = now + config.prune_interval_s * 1'000'000;
    try {
      metrics.deliveries_pruned +=
          static_cast<std::uint64_t>(prune_expired(store, config.retention_s, now, Work::dispatcher));
    } catch (const std::exception&) {
      // A busy database: the next round prunes.
    }
  }

  Store& store;
  Config config;
  Metrics& metrics;
  AttemptSpanQueue& spans;
  RetryPolicy retry;
  HttpClient client;
  std::mt19937_64 rng;
  const LogLevel log_level;
  const LogFormat log_format;
  const std::size_t capacity;  // deliveries leased at once, fresh hand-overs included
  const std::int64_t renew_interval;

  std::mutex mutex;  // guards everything below but the store thread itself
  std::condition_variable store_wake;
  std::condition_variable idle;  // in_flight reached 0 while draining
  std::unordered_map<std::int64_t, WebhookLane> lanes;
  std::size_t leased = 0;    // handed out by the store (claims and publishes), not yet recorded
  std::size_t leased_bytes = 0;  // their bodies
  LeaseRoom reserved;        // promised to publishes under way
  // The seqs leased to this dispatcher: waiting (in lanes or paced), in flight, or with an
  // outcome not yet committed. Only these leases are renewed.
  std::unordered_set<std::int64_t> held;
  bool take_back_due = false;     // this node's leases not in `held` are to be taken back ...
  std::int64_t take_back_at = 0;  // ... from then on, once no publish is handing over
  std::size_t waiting = 0;   // leased and queued in a lane, not yet sent
  std::size_t saturated = 0; // lanes with kQueuedPerWebhook or more waiting
  int in_flight = 0;
  std::deque<std::int64_t> ready;  // lanes with work that wait for a global slot
  std::multimap<std::int64_t, DueDelivery> paced;  // by send slot: leased, not yet in a lane
  bool draining = false;
  std::vector<AttemptRecord> to_record;  // outcomes for the next commit
  std::vector<std::string> to_log;       // and their log lines
  std::int64_t first_to_record = 0;
  bool store_stopping = false;
  // When to claim: at once after a publish or a full claim, else when something falls due.
  bool claim_soon = true;
  bool claim_asked = false;
  bool claim_running = false;
  std::int64_t next_claim_at = 0;
  bool drained = false;  // the last claim left only saturated lanes' deliveries due
  std::int64_t claim_backoff = 0;  // the last claims found due deliveries they could not take
  std::size_t drained_saturated = 0;
  std::int64_t commit_retry_at = 0;  // after a failed commit, the next try waits until then
  std::int64_t next_prune;
  std::int64_t next_renew;  // the store thread's alone

  std::thread store_thread;
};

Dispatcher::Dispatcher(Store& store, const Config& config, Metrics& metrics, AttemptSpanQueue& spans)
    : impl_(std::make_unique<Impl>(store, config, metrics, spans)) {}

Dispatcher::~Dispatcher() { stop(); }

void Dispatcher::notify() { impl_->notify(); }

LeaseRoom Dispatcher::reserve() { return impl_->reserve(); }

void Dispatcher::hand_over(std::vector<DueDelivery> deliveries, LeaseRoom reserved) {
  impl_->hand_over(std::move(deliveries), reserved);
}

void Dispatcher::publish_failed(LeaseRoom reserved) { impl_->publish_failed(reserved); }

void Dispatcher::stop() { impl_->stop(); }

}  // namespace brandhooks
