#include "brandhooks/hub.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string_view>

#include <nlohmann/json.hpp>

#include "address_policy.hpp"
#include "attempt_spans.hpp"
#include "brandhooks/crypto.hpp"
#include "clock.hpp"
#include "log.hpp"
#include "dispatcher.hpp"
#include "event.hpp"
#include "lease.hpp"
#include "retry.hpp"
#include "store.hpp"
#include "store_common.hpp"
#include "trace_context.hpp"
#include "validation.hpp"

namespace brandhooks {

namespace {
void check_synchronous(const std::string& value) {
  if (value != "normal" && value != "full") {
    throw ValidationError("synchronous must be \"normal\" or \"full\"");
  }
}

// Every number a user sets is bounded, so that the arithmetic done with it (seconds to
// microseconds, deadlines, thread and connection counts) cannot overflow or exhaust the host.
void check_range(std::int64_t value, const char* name, std::int64_t max) {
  if (value <= 0 || value > max) {
    throw ValidationError(std::string(name) + " must be between 1 and " + std::to_string(max));
  }
}

constexpr std::int64_t kMaxTimeoutMs = 86'400'000;          // a day
constexpr std::int64_t kMaxSeconds = kMaxDuration / 1'000'000;  // 3650 days

// The simple signature's header must not be one the HTTP client writes itself or one that
// changes how the request is framed or routed (a request-smuggling shape), nor a Standard
// Webhooks header.
void check_signature_header(const std::string& name) {
  if (name.empty() || name.size() > 64 || !is_token(name)) {
    throw ValidationError("signature_header must be a header name (1 to 64 letters, digits or !#$%&'*+-.^_`|~)");
  }
  if (is_reserved_header(name)) {
    throw ValidationError("signature_header " + name +
                          " is reserved (HTTP framing, a header the client sets, or webhook-*); "
                          "choose another name such as X-Webhook-Signature");
  }
}

// A node id is written on every lease and in log lines: printable, no spaces, short.
void check_node_id(const std::string& id) {
  if (id.size() > 255 || !std::all_of(id.begin(), id.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; })) {
    throw ValidationError("node_id must have at most 255 printable ASCII characters, without spaces");
  }
}

// The base of portal links: where browsers reach the server (no query or fragment, which
// "/portal#token=..." would land inside of; no credentials, which would be shown to everyone
// a link is handed to).
void check_base_url(const std::string& url, const char* what) {
  const std::string help = std::string(what) + " must be an absolute http(s) URL without query, fragment or credentials, "
                           "e.g. https://hooks.example.com";
  Url parsed;
  try {
    parsed = parse_url(url);
  } catch (const ValidationError&) {
    throw ValidationError(help);
  }
  if (parsed.has_credentials || url.find_first_of("?#") != std::string::npos) throw ValidationError(help);
}

void check_config(const Config& c) {
  check_synchronous(c.synchronous);
  check_range(c.busy_timeout_ms, "busy_timeout_ms", kMaxTimeoutMs);
  check_range(c.connect_timeout_ms, "connect_timeout_ms", kMaxTimeoutMs);
  check_range(c.request_timeout_ms, "request_timeout_ms", kMaxTimeoutMs);
  check_range(c.max_in_flight_per_webhook, "max_in_flight_per_webhook", 100'000);
  check_range(c.max_in_flight, "max_in_flight", 100'000);
  check_range(c.delivery_threads, "delivery_threads", 256);
  check_range(c.disable_after_s, "disable_after_s", kMaxSeconds);
  check_range(c.retention_s, "retention_s", kMaxSeconds);
  check_range(c.prune_interval_s, "prune_interval_s", kMaxSeconds);
  check_range(c.idle_timeout_ms, "idle_timeout_ms", kMaxTimeoutMs);
  check_range(c.max_idle_connections, "max_idle_connections", 1'000'000);
  check_range(c.lease_timeout_s, "lease_timeout_s", 86'400);
  check_range(c.api_connections, "api_connections", 1000);
  check_range(c.dispatcher_connections, "dispatcher_connections", 1000);
  check_node_id(c.node_id);
  check_signature_header(c.signature_header);
  if (!c.public_url.empty()) check_base_url(c.public_url, "public_url");
  AddressPolicy(c.allow_private, c.allow_cidrs);  // throws on a malformed CIDR
  parse_log_level(c.log_level);
  parse_log_format(c.log_format);
}

constexpr std::int64_t kMaxRecover = 100'000;  // deliveries one recover call queues at most

void check_idempotency_key(const std::string& key) {
  if (key.empty() || key.size() > 255 ||
      !std::all_of(key.begin(), key.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; })) {
    throw ValidationError("Idempotency-Key must have 1 to 255 visible ASCII characters");
  }
}

// Adds an event to what an idempotency key stands for (hashed once the request is complete):
// each field length-prefixed, so no two different requests read alike.
void add_to_request(std::string& request, const EventInput& e, const std::string& brand) {
  for (const std::string* field : {&brand, &e.topic, &e.event, &e.payload_json}) {
    request.append(std::to_string(field->size())).append(":").append(*field);
  }
  std::string tags = tags_json(e.tags).value_or("null");
  request.append(std::to_string(tags.size())).append(":").append(tags);
}

IdempotencyClaim idempotency_claim(const std::string& brand, const std::string& key, const std::string& request,
                                   std::size_t first, std::size_t count, std::int64_t now) {
  IdempotencyClaim claim;
  claim.brand = brand;
  claim.key = key;
  claim.request_hash = sha256(request);
  claim.first = first;
  claim.count = count;
  claim.now = now;
  claim.expired_before = now - Hub::kIdempotencyWindow * 1'000'000;
  return claim;
}

}  // namespace

// Admin tokens that authorize_monitoring verified in the store, by hash: what a scrape may use
// while the store cannot be read. A handful at most (a scraper uses one or two).
struct Hub::MonitorTokens {
  static constexpr std::size_t kMax = 8;
  std::mutex mutex;
  std::map<std::string, std::pair<Principal, std::int64_t>> by_hash;  // principal, when verified
};

Hub::Hub(Config config) : config_(std::move(config)), monitor_tokens_(std::make_unique<MonitorTokens>()) {
  check_config(config_);
  if (config_.node_id.empty()) config_.node_id = default_node_id();
  retry_ = std::make_unique<RetryPolicy>(config_.retry_schedule, config_.retry_jitter);
  metrics_ = std::make_unique<Metrics>();
  store_ = open_store(config_);
  attempt_spans_ = std::make_unique<AttemptSpanQueue>(*metrics_);
  if (config_.deliver) dispatcher_ = std::make_unique<Dispatcher>(*store_, config_, *metrics_, *attempt_spans_);
}

Hub::~Hub() = default;

PublishResult Hub::publish(const std::string& brand, const std::string& topic,
                           const std::string& event, const std::string& payload_json,
                           const std::optional<std::vector<std::string>>& tags,
                           const std::optional<std::string>& idempotency_key,
                           const std::optional<TraceContext>& trace) {
  std::vector<EventInput> one;
  one.push_back({brand, topic, event, payload_json, tags, idempotency_key, trace});
  return publish_many(one).front();
}

EventRecord Hub::prepare_event(const EventInput& e, std::int64_t now) const {
  EventRecord r;
  r.brand = normalize_uuid(e.brand, "brand id");
  check_topic(e.topic);
  check_event_name(e.event);
  check_tags(e.tags);
  r.id = uuid_v7();
  r.topic = e.topic;
  r.event = e.event;
  r.created_at = now;
  r.first_attempt_at = now + retry_->first_delay();
  r.body = event_body(e, r.brand, r.id, now);
  r.tags_json = tags_json(e.tags);
  if (e.trace) r.trace = accept_trace_context(e.trace->traceparent, e.trace->tracestate);
  return r;
}

std::vector<PublishResult> Hub::publish_many(const std::vector<EventInput>& events) {
  std::vector<EventRecord> records;
  records.reserve(events.size());
  std::int64_t now = now_micros();
  std::vector<IdempotencyClaim> claims;
  for (const auto& e : events) {
    records.push_back(prepare_event(e, now));
    if (!e.idempotency_key) continue;
    check_idempotency_key(*e.idempotency_key);
    std::string request;
    add_to_request(request, e, records.back().brand);
    claims.push_back(idempotency_claim(records.back().brand, *e.idempotency_key, request, records.size() - 1, 1, now));
    claims.back().conflict_aborts = true;  // all or nothing
  }
  return commit_events(records, claims.empty() ? nullptr : &claims);
}

namespace {
// The answer to a publish: {"code":"OK","data":<published>}, or for a batch "data" lists them
// in order and "info" counts them. Each record is written by model.cpp's to_json (its shape's
// one definition).
std::string publish_answer(const PublishResult* results, std::size_t count, bool batch) {
  auto published = [](std::string& out, const PublishResult& r) { out += to_json(r); };
  std::string answer = "{\"code\":\"OK\",\"data\":";
  if (!batch) {
    published(answer, results[0]);
    return answer + "}";
  }
  answer.reserve(answer.size() + count * 70 + 40);
  answer += '[';
  for (std::size_t i = 0; i < count; ++i) {
    if (i) answer += ',';
    published(answer, results[i]);
  }
  std::string n = std::to_string(count);
  return answer + "],\"info\":{\"count\":" + n + ",\"total\":" + n + "}}";
}
}  // namespace

std::string Hub::publish_json(const std::string& brand, std::string_view body,
                              const std::optional<std::string>& idempotency_key,
                              const std::optional<TraceContext>& trace) {
  JsonAnswer answer = std::move(publish_json_each({{brand, body, std::nullopt, idempotency_key, trace}}).front());
  if (answer.error) std::rethrow_exception(answer.error);
  return std::move(answer.json);
}

std::vector<Hub::JsonAnswer> Hub::publish_json_each(const std::vector<JsonPublish>& requests) {
  std::vector<JsonAnswer> answers(requests.size());
  struct Accepted {
    std::size_t request, first, count;
    bool batch;
    std::size_t claim;  // its idempotency key's in `claims`, or SIZE_MAX
  };
  std::vector<Accepted> accepted;
  std::vector<EventRecord> records;
  std::vector<IdempotencyClaim> claims;
  std::int64_t now = now_micros();
  for (std::size_t r = 0; r < requests.size(); ++r) {
    std::size_t first = records.size();
    try {
      if (requests[r].token) authorize(*requests[r].token, requests[r].brand);
      const auto& key = requests[r].idempotency_key;
      if (key) check_idempotency_key(*key);
      ParsedEvents parsed = parse_events_json(requests[r].body, requests[r].brand);
      std::string request;  // what the key stands for
      for (std::size_t i = 0; i < parsed.events.size(); ++i) {
        parsed.events[i].trace = requests[r].trace;
        try {
          records.push_back(prepare_event(parsed.events[i], now));
        } catch (const ValidationError& e) {
          if (!parsed.batch) throw;
          throw ValidationError("events[" + std::to_string(i) + "]: " + e.what());
        }
        if (key) add_to_request(request, parsed.events[i], records.back().brand);
      }
      std::size_t claim = SIZE_MAX;
      if (key && records.size() > first) {
        claim = claims.size();
        claims.push_back(idempotency_claim(records[first].brand, *key, request, first, records.size() - first, now));
      }
      accepted.push_back({r, first, records.size() - first, parsed.batch, claim});
    } catch (...) {
      records.resize(first);  // all or nothing per request
      answers[r].error = std::current_exception();
    }
  }
  if (records.empty()) return answers;
  std::vector<PublishResult> results;
  try {
    results = commit_events(records, claims.empty() ? nullptr : &claims);
  } catch (...) {
    for (const auto& a : accepted) answers[a.request].error = std::current_exception();
    return answers;
  }
  for (const auto& a : accepted) {
    if (a.claim != SIZE_MAX && claims[a.claim].outcome == IdempotencyClaim::Outcome::conflict) {
      answers[a.request].error = std::make_exception_ptr(
          ConflictError("Idempotency-Key '" + claims[a.claim].key + "' was used for a different request"));
      continue;
    }
    answers[a.request].json = publish_answer(&results[a.first], a.count, a.batch);
  }
  return answers;
}

std::vector<PublishResult> Hub::commit_events(const std::vector<EventRecord>& records,
                                              std::vector<IdempotencyClaim>* claims) {
  std::vector<PublishResult> results;
  if (dispatcher_) {
    // Deliveries due at once go straight to the dispatcher, leased, as far as it has room.
    LeaseRoom room = dispatcher_->reserve();
    std::vector<DueDelivery> leased;
    try {
      results = store_->insert_events(records, room, &leased, claims);
    } catch (...) {
      dispatcher_->publish_failed(room);
      throw;
    }
    dispatcher_->hand_over(std::move(leased), room);
  } else {
    results = store_->insert_events(records, {}, nullptr, claims);
  }
  // Events answered from an idempotency key were not published now.
  std::vector<bool> stored(results.size(), true);
  for (const auto& claim : claims ? *claims : std::vector<IdempotencyClaim>{}) {
    if (claim.outcome == IdempotencyClaim::Outcome::fresh) continue;
    for (std::size_t e = claim.first; e < claim.first + claim.count; ++e) stored[e] = false;
  }
  for (std::size_t e = 0; e < results.size(); ++e) {
    if (!stored[e]) continue;
    ++metrics_->events_published;
    metrics_->deliveries_created += static_cast<std::uint64_t>(results[e].deliveries);
  }
  return results;
}

Webhook Hub::update_webhook(const std::string& brand, const std::string& webhook_id,
                            const WebhookPatch& patch) {
  if (patch.url) check_webhook_url(*patch.url);
  if (patch.topic) check_topic(*patch.topic);
  if (patch.set_tags) check_tags(patch.tags);
  if (patch.set_rate_limit) check_rate_limit(patch.rate_limit);
  if (patch.headers) check_headers(*patch.headers, config_.signature_header);
  auto updated = store_->update_webhook(normalize_uuid(brand, "brand id"),
                                        normalize_uuid(webhook_id, "webhook id"), patch, now_micros());
  if (!updated) throw NotFoundError("webhook not found");
  return *updated;
}

Webhook Hub::rotate_key(const std::string& brand, const std::string& webhook_id,
                        std::int64_t grace_seconds) {
  if (grace_seconds < 0 || grace_seconds > 30 * 24 * 3600) {
    throw ValidationError("grace_seconds must be between 0 and 2592000 (30 days)");
  }
  std::int64_t now = now_micros();
  auto updated = store_->rotate_key(normalize_uuid(brand, "brand id"),
                                    normalize_uuid(webhook_id, "webhook id"), generate_key(),
                                    now + grace_seconds * 1'000'000, now, kMaxPreviousKeys);
  if (!updated) throw NotFoundError("webhook not found");
  return *updated;
}

Delivery Hub::get_delivery(const std::string& brand, const std::string& delivery_id) {
  auto found = store_->get_delivery(normalize_uuid(brand, "brand id"),
                                    normalize_uuid(delivery_id, "delivery id"));
  if (!found) throw NotFoundError("delivery not found");
  return *found;
}

Delivery Hub::redeliver(const std::string& brand, const std::string& delivery_id) {
  auto queued = store_->redeliver(normalize_uuid(brand, "brand id"),
                                  normalize_uuid(delivery_id, "delivery id"), now_micros());
  if (!queued) throw NotFoundError("delivery not found");
  wake_dispatcher();
  return *queued;
}

RecoverResult Hub::recover(const std::string& brand, const std::string& webhook_id, double since_s,
                           std::int64_t limit) {
  if (!(since_s >= 0) || since_s > 1e11) throw ValidationError("since must be Unix seconds");
  if (limit <= 0 || limit > kMaxRecover) throw ValidationError("limit must be between 1 and 100000");
  auto result = store_->recover(normalize_uuid(brand, "brand id"), normalize_uuid(webhook_id, "webhook id"),
                                static_cast<std::int64_t>(since_s * 1e6), limit, now_micros());
  if (result.queued > 0) wake_dispatcher();
  return result;
}

Delivery Hub::send_test_event(const std::string& brand, const std::string& webhook_id) {
  Webhook webhook = get_webhook(brand, webhook_id);  // NotFoundError: unknown or deleted
  if (webhook.disabled_at) throw ConflictError("the webhook is disabled: enable it first");
  EventInput input;
  input.brand = webhook.brand;
  input.topic = webhook.topic;
  input.event = "Test";
  input.payload_json = nlohmann::ordered_json{{"test", true},
                                              {"message", "a test event sent on request"},
                                              {"webhook", webhook.id}}
                           .dump();
  EventRecord record = prepare_event(input, now_micros());
  // Checked again in the transaction: the webhook may have been deleted or disabled meanwhile.
  std::string delivery_id = store_->insert_test_event(record, webhook.id);
  ++metrics_->events_published;
  ++metrics_->deliveries_created;
  wake_dispatcher();
  return get_delivery(webhook.brand, delivery_id);
}

DeliveryStats Hub::delivery_stats(const std::string& brand, std::int64_t hours) {
  if (hours < 1 || hours > 24) throw ValidationError("hours must be an integer between 1 and 24");
  std::string id = normalize_uuid(brand, "brand id");
  std::int64_t until = minute_of(now_micros()) + kMinuteUs;  // the end of the current minute
  return store_->delivery_stats(id, until - hours * 60 * kMinuteUs, until);
}

std::int64_t Hub::prune() {
  std::int64_t removed = prune_expired(*store_, config_.retention_s, now_micros(), Work::api);
  metrics_->deliveries_pruned += static_cast<std::uint64_t>(removed);
  return removed;
}

Stats Hub::stats() {
  Stats stats = store_->stats(now_micros());
  stats.node = config_.node_id;
  return stats;
}

std::optional<Gauges> Hub::gauges() {
  try {
    store_->check_writable();
    return store_->gauges(now_micros());
  } catch (const StorageError&) {
    return std::nullopt;  // the database is down: the scrape says so (/healthz says why)
  }
}

void Hub::check_storage() { store_->check_writable(); }

void Hub::wake_dispatcher() {
  if (dispatcher_) dispatcher_->notify();
}

Page<Delivery> Hub::list_deliveries(const DeliveryQuery& query) {
  DeliveryQuery q = query;
  q.brand = normalize_uuid(query.brand, "brand id");
  q.webhook_id = normalize_uuid(query.webhook_id, "webhook id");
  if (q.state && !delivery_state_from(*q.state)) {
    throw ValidationError("status must be one of pending, delivered, failed, cancelled");
  }
  if (q.start < 0) throw ValidationError("start must not be negative");
  if (q.limit < 0 || q.limit > 1000) throw ValidationError("limit must be between 0 and 1000");
  return store_->list_deliveries(q);
}

void Hub::stop_delivery() {
  if (dispatcher_) dispatcher_->stop();
}

void Hub::enable_attempt_spans(std::size_t capacity) {
  if (capacity < 1 || capacity > 10'000'000) throw ValidationError("capacity must be between 1 and 10000000");
  attempt_spans_->enable(capacity);
}

std::vector<AttemptSpan> Hub::take_attempt_spans(std::size_t max, std::int64_t wait_ms) {
  if (max < 1 || max > 100'000) throw ValidationError("max must be between 1 and 100000");
  if (wait_ms < 0 || wait_ms > 60'000) throw ValidationError("wait_ms must be between 0 and 60000");
  return attempt_spans_->take(max, std::chrono::milliseconds(wait_ms));
}

Webhook Hub::create_webhook(const std::string& brand, const std::string& topic,
                            const std::string& url,
                            const std::optional<std::vector<std::string>>& tags,
                            const WebhookControls& controls) {
  Webhook w;
  w.brand = normalize_uuid(brand, "brand id");
  check_topic(topic);
  check_webhook_url(url);
  check_tags(tags);
  check_rate_limit(controls.rate_limit);
  check_headers(controls.headers, config_.signature_header);
  w.id = uuid_v4();
  w.created_at = w.updated_at = now_micros();
  w.topic = topic;
  w.url = url;
  w.key = generate_key();
  w.tags = tags;
  w.ordered = controls.ordered;
  w.rate_limit = controls.rate_limit;
  w.headers = controls.headers;
  store_->insert_webhook(w);
  return w;
}

Page<Webhook> Hub::list_webhooks(const WebhookQuery& query) {
  WebhookQuery q = query;
  q.brand = normalize_uuid(query.brand, "brand id");
  if (q.topic) check_topic(*q.topic);
  if (q.start < 0) throw ValidationError("start must not be negative");
  if (q.limit && *q.limit < 0) throw ValidationError("limit must not be negative");
  return store_->list_webhooks(q);
}

Webhook Hub::get_webhook(const std::string& brand, const std::string& webhook_id) {
  auto found = store_->find_live_webhook(normalize_uuid(brand, "brand id"),
                                         normalize_uuid(webhook_id, "webhook id"));
  if (!found) throw NotFoundError("webhook not found");
  return *found;
}

Webhook Hub::delete_webhook(const std::string& brand, const std::string& webhook_id) {
  auto deleted = store_->soft_delete_webhook(normalize_uuid(brand, "brand id"),
                                             normalize_uuid(webhook_id, "webhook id"),
                                             now_micros());
  if (!deleted) throw NotFoundError("webhook not found");
  return *deleted;
}

Brand Hub::set_brand_parent(const std::string& brand, const std::optional<std::string>& parent) {
  std::string id = normalize_uuid(brand, "brand id");
  std::optional<std::string> parent_id;
  if (parent) parent_id = normalize_uuid(*parent, "parent");
  if (parent_id == id) throw ConflictError("a brand cannot be its own parent");
  store_->set_brand_parent(id, parent_id, now_micros());
  return Brand{id, parent_id};
}

std::optional<std::string> Hub::brand_parent(const std::string& brand) {
  return store_->brand_parent(normalize_uuid(brand, "brand id"));
}

std::vector<Brand> Hub::brand_descendants(const std::string& brand) {
  return store_->brand_descendants(normalize_uuid(brand, "brand id"));
}

namespace {
void check_lifetime(std::int64_t seconds, std::int64_t low, std::int64_t high) {
  if (seconds < low || seconds > high) {
    throw ValidationError("expires_in must be between " + std::to_string(low) + " and " + std::to_string(high) +
                          " seconds");
  }
}
}  // namespace

IssuedToken Hub::create_token(const std::optional<std::string>& brand, const std::string& label,
                              std::optional<std::int64_t> expires_in) {
  std::optional<std::string> brand_id;
  if (brand) brand_id = normalize_uuid(*brand, "brand id");
  if (expires_in) check_lifetime(*expires_in, kMinTokenLifetime, kMaxTokenLifetime);
  std::int64_t now = now_micros();
  std::optional<std::int64_t> expires_at;
  if (expires_in) expires_at = now + *expires_in * 1'000'000;
  return issue_token(brand_id, label, now, expires_at);
}

IssuedToken Hub::issue_token(const std::optional<std::string>& brand_id, const std::string& label,
                             std::int64_t created_at, std::optional<std::int64_t> expires_at) {
  IssuedToken issued;
  issued.info = {uuid_v4(), brand_id, label, created_at, expires_at};
  // "bh_" makes a leaked token easy to recognise (secret scanners, logs).
  issued.secret = "bh_" + to_hex(random_bytes(32));
  store_->insert_token({issued.info, sha256(issued.secret)});
  return issued;
}

TokenInfo Hub::ensure_admin_token(const std::string& secret, const std::string& label) {
  if (secret.size() < 16) throw ValidationError("an admin token needs at least 16 characters");
  std::string hash = sha256(secret);
  TokenInfo info{uuid_v4(), std::nullopt, label, now_micros(), std::nullopt};
  store_->insert_token({info, hash});
  auto stored = store_->find_token(hash);
  if (!stored) throw ConflictError("this token was revoked");
  if (stored->brand) throw ConflictError("this token exists as a brand token");
  if (stored->expires_at) throw ConflictError("this token exists as a token that expires");
  return *stored;
}

std::vector<TokenInfo> Hub::list_tokens() { return store_->list_tokens(); }

void Hub::revoke_token(const std::string& token_id) {
  if (!store_->revoke_token(normalize_uuid(token_id, "token id"), now_micros())) {
    throw NotFoundError("token not found");
  }
}

bool Hub::has_tokens() { return store_->has_tokens(); }

TokenInfo Hub::current_token(const std::string& secret) {
  if (secret.empty()) throw UnauthorizedError("missing bearer token");
  // Read from the store on every request (no cache), so a token stops working at its expiry
  // or revocation, on every node at once.
  auto token = store_->find_token(sha256(secret));
  if (!token) throw UnauthorizedError("invalid or revoked token");
  if (token->expires_at && now_micros() >= *token->expires_at) throw UnauthorizedError("token expired");
  return *token;
}

Principal Hub::authenticate(const std::string& secret) {
  TokenInfo token = current_token(secret);
  return Principal{token.id, token.brand, token.expires_at};
}

Principal Hub::authorize(const std::string& secret, const std::string& brand) {
  Principal who = authenticate(secret);  // 401 before any other answer
  std::string id = normalize_uuid(brand, "brand id");
  if (who.is_admin()) return who;
  for (const auto& ancestor : store_->brand_lineage(id)) {
    if (ancestor == *who.brand) return who;
  }
  throw ForbiddenError("this token has no access to brand " + id);
}

Principal Hub::authorize_admin(const std::string& secret) {
  Principal who = authenticate(secret);
  if (!who.is_admin()) throw ForbiddenError("this operation needs an admin token");
  return who;
}

Principal Hub::authorize_monitoring(const std::string& secret) {
  std::string hash = sha256(secret);
  MonitorTokens& known = *monitor_tokens_;
  try {
    Principal who = authorize_admin(secret);
    std::lock_guard lock(known.mutex);
    if (known.by_hash.size() >= MonitorTokens::kMax && !known.by_hash.contains(hash)) {
      auto oldest = std::min_element(known.by_hash.begin(), known.by_hash.end(),
                                     [](const auto& a, const auto& b) { return a.second.second < b.second.second; });
      known.by_hash.erase(oldest);
    }
    known.by_hash[hash] = {who, now_micros()};
    return who;
  } catch (const StorageError&) {
    std::lock_guard lock(known.mutex);
    auto found = known.by_hash.find(hash);
    if (found == known.by_hash.end()) throw;
    const Principal& who = found->second.first;
    if (who.expires_at && now_micros() >= *who.expires_at) throw UnauthorizedError("token expired");
    return who;
  } catch (const Error&) {  // refused by the store: revoked, expired, or no longer admin
    std::lock_guard lock(known.mutex);
    known.by_hash.erase(hash);
    throw;
  }
}

PortalLink Hub::create_portal_link(const std::string& secret, const std::string& brand, std::int64_t expires_in,
                                   const std::string& request_base) {
  Principal caller = authorize(secret, brand);  // 401, 400 (brand id), 403 first
  check_lifetime(expires_in, kMinLinkLifetime, kMaxLinkLifetime);
  std::string base = config_.public_url.empty() ? request_base : config_.public_url;
  if (base.empty()) throw ValidationError("a portal link needs public_url or the address of the request");
  check_base_url(base, config_.public_url.empty() ? "the request's address" : "public_url");
  while (base.ends_with('/')) base.pop_back();

  std::int64_t now = now_micros();
  // A link never outlives the token that made it.
  std::int64_t expires_at = std::min(now + expires_in * 1'000'000,
                                     caller.expires_at.value_or(std::numeric_limits<std::int64_t>::max()));
  IssuedToken issued = issue_token(normalize_uuid(brand, "brand id"), "portal link", now, expires_at);
  return PortalLink{base + "/portal#token=" + issued.secret, *issued.info.expires_at, *issued.info.brand,
                    issued.info.id};
}

}  // namespace brandhooks
