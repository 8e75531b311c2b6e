#pragma once
// The records the core stores and returns. Times are Unix microseconds; the REST contract
// shows them as float seconds (see to_json).
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace brandhooks {

// The topics a webhook can subscribe to (case-sensitive).
inline constexpr std::string_view kTopics[] = {"Deals", "Showings", "Contacts"};

// Custom headers a webhook's deliveries carry: name -> value (validation.hpp: check_headers).
using Headers = std::map<std::string, std::string>;

// A webhook's delivery controls, as set on creation (WebhookPatch changes them).
struct WebhookControls {
  bool ordered = false;                   // deliveries one at a time, in publish order
  std::optional<std::int64_t> rate_limit;  // deliveries per second at most (1..10000); none: no limit
  Headers headers;                        // sent with every attempt
};

struct Webhook {
  std::string id;     // UUID v4
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  std::optional<std::int64_t> deleted_at;
  std::string brand;  // UUID, lowercase
  std::string topic;
  std::string url;    // exactly as registered
  std::string key;    // 64 lowercase hex characters (32 random bytes)
  std::optional<std::vector<std::string>> tags;
  // Set when delivery gave up on the endpoint (410 Gone, or failing too long).
  std::optional<std::int64_t> disabled_at;
  std::string disabled_reason;
  // Delivery controls (WebhookControls).
  bool ordered = false;
  std::optional<std::int64_t> rate_limit;
  Headers headers;
  // Delivery health, shown by "webhook_state" only: when the current run of failed attempts
  // began (none while the last attempt succeeded), and the start of the newest successful
  // attempt, to the second.
  std::optional<std::int64_t> failing_since;
  std::optional<std::int64_t> last_success_at;
};

// W3C Trace Context (https://www.w3.org/TR/trace-context/) of a publish, as the publisher's
// traceparent and tracestate header values: stored with the event and sent with every attempt
// of its deliveries, so that a receiver's tracing continues the publisher's trace. The Hub
// keeps it only when the traceparent is valid (an invalid one is ignored, as the spec says).
struct TraceContext {
  std::string traceparent;  // "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"
  std::string tracestate;   // vendor entries, "" when none
};

// An event to publish: `payload_json` is a JSON object's text.
struct EventInput {
  std::string brand;
  std::string topic;
  std::string event;  // what happened, e.g. "Created"
  std::string payload_json;
  // A webhook with tags only receives events whose tags share at least one of them.
  std::optional<std::vector<std::string>> tags;
  // Publishing again with the same key (per brand, within Hub::kIdempotencyWindow) creates
  // nothing and returns the first result; with another event it is a ConflictError.
  std::optional<std::string> idempotency_key;
  // The publisher's trace context (not part of what an idempotency key stands for).
  std::optional<TraceContext> trace = std::nullopt;
};

// A partial update of a webhook: only the fields that are set change.
struct WebhookPatch {
  std::optional<std::string> url;
  std::optional<std::string> topic;
  bool set_tags = false;  // tags below replace the webhook's (nullopt: no tags)
  std::optional<std::vector<std::string>> tags;
  // false disables by hand; true re-enables and clears the failure state.
  std::optional<bool> enabled;
  std::optional<bool> ordered;
  bool set_rate_limit = false;  // rate_limit below replaces the webhook's (nullopt: no limit)
  std::optional<std::int64_t> rate_limit;
  std::optional<Headers> headers;  // replaces all of them ({} removes them)
};

struct PublishResult {
  std::string event_id;
  std::int64_t deliveries = 0;  // one per matching webhook, committed with the event
};

// Why an attempt got no response: none when a response (any status) was read. The REST
// contract, the delivery log and the database show the lowercase name (to_string).
enum class AttemptError { none, timeout, dns, blocked, connect, tls, network, protocol };
std::string_view to_string(AttemptError error);  // "" for none
// The error of a stored name; nullopt for a name this build does not know.
std::optional<AttemptError> attempt_error_from(std::string_view name);

// One try at a delivery. `error` is none when a response was read (then `status` is set).
struct Attempt {
  int number = 0;
  std::int64_t started_at = 0;
  std::int64_t duration_us = 0;
  std::optional<int> status;
  AttemptError error = AttemptError::none;
  std::string detail;
  std::string response;  // first 4 KiB of the response body
};

// The states of a delivery: pending (due or waiting for a retry), delivered (a 2xx), failed
// (retries exhausted, or the webhook disabled by a 410), cancelled (webhook deleted/disabled).
// The REST contract and the database spell them in lowercase (to_string).
enum class DeliveryState { pending, delivered, failed, cancelled };
inline constexpr DeliveryState kDeliveryStates[] = {DeliveryState::pending, DeliveryState::delivered,
                                                    DeliveryState::failed, DeliveryState::cancelled};
// Their names in the enum's order: the REST contract and the database spell them so.
inline constexpr std::string_view kDeliveryStateNames[] = {"pending", "delivered", "failed", "cancelled"};
std::string_view to_string(DeliveryState state);
// The state of a name; nullopt for anything else.
std::optional<DeliveryState> delivery_state_from(std::string_view name);

// The names of the errors after none, in the enum's order (Attempt::error).
inline constexpr std::string_view kAttemptErrors[] = {"timeout", "dns",     "blocked", "connect",
                                                      "tls",     "network", "protocol"};

// A finished attempt of a delivery whose event carried a trace context, as an exporter of
// spans needs it (Hub::take_attempt_spans): the attempt is a span of the publisher's trace, a
// child of the publisher's span, and the traceparent the receiver got named it as the parent.
struct AttemptSpan {
  std::string trace_id;        // 32 lowercase hex digits
  std::string span_id;         // 16: the attempt's own span
  std::string parent_span_id;  // 16: the publisher's span
  int trace_flags = 0;         // as the publisher sent them (bit 0: sampled)
  std::string tracestate;
  std::string delivery_id;
  std::string webhook_id;
  std::string brand;  // the webhook's
  Attempt attempt;    // number, start, duration, status or error (no response body)
  DeliveryState state = DeliveryState::pending;  // after this attempt: delivered, pending (a retry) or failed
};

struct Delivery {
  std::string id;  // the webhook-id header, stable across retries
  std::string event_id;
  std::string webhook_id;
  std::string brand;  // the webhook's brand
  std::string topic;
  std::string event;
  DeliveryState state = DeliveryState::pending;
  int attempt_count = 0;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  std::optional<std::int64_t> next_attempt_at;  // while pending
  std::vector<Attempt> attempts;                // oldest first
};

// What a failed-deliveries recovery queued again.
struct RecoverResult {
  std::int64_t queued = 0;
  std::vector<std::string> delivery_ids;
};

// Counting the due queue stops here (Gauges::due_now, Stats::due_now): a read of it costs what
// this many index entries cost (about a millisecond), however long the queue grows.
inline constexpr std::int64_t kDueCountLimit = 10'000;

// The live, enabled webhook whose failure streak began first (Gauges::longest_failing).
struct FailingWebhook {
  std::string id;
  std::string brand;
  std::int64_t since = 0;  // the first failure after its last success
};

// The store's counts that cost the same whatever the size of the tables: the per-state counters
// kept as deliveries change, the live webhooks, the due queue counted up to kDueCountLimit and
// its head (the first entry of an index).
struct StoreCounts {
  std::int64_t webhooks = 0;           // live
  std::int64_t disabled_webhooks = 0;  // live but disabled
  std::int64_t pending = 0;
  std::int64_t delivered = 0;
  std::int64_t failed = 0;
  std::int64_t cancelled = 0;
  std::int64_t due_now = 0;                   // pending, due, not being attempted: at most kDueCountLimit
  std::optional<std::int64_t> oldest_due_at;  // earliest due time among those
};

// What a scrape of /metrics reads from the store (Hub::gauges): the counts, and the webhook
// failing the longest (the first entry of an index).
struct Gauges : StoreCounts {
  std::optional<FailingWebhook> longest_failing;
};

// A snapshot of the store for operators (`brandhooks stats`, /stats): the counts and the events
// stored (a count over the table: never read by a scrape).
struct Stats : StoreCounts {
  std::int64_t events = 0;
  std::string node;  // the node that answered (Config::node_id): nodes share the store, not this
};

struct DeliveryQuery {
  std::string brand;
  std::string webhook_id;
  std::optional<std::string> state;  // as the REST filter gives it; the Hub checks it names a DeliveryState
  std::int64_t start = 0;
  std::int64_t limit = 100;
};

// Delivery attempts of a brand's live webhooks over a window of whole minutes (from the
// per-minute rollup the dispatcher writes with each batch of outcomes; docs/delivery.md,
// "Delivery statistics"). Outcomes: succeeded (a 2xx answer), failed (another answer), errors
// (no answer: timeout, dns, blocked, connect, tls, network, protocol).
struct OutcomeCounts {
  std::int64_t succeeded = 0;
  std::int64_t failed = 0;
  std::int64_t errors = 0;
  std::int64_t total() const { return succeeded + failed + errors; }
};

struct MinuteStats {
  std::int64_t at = 0;  // the minute's start, Unix microseconds (a whole minute)
  OutcomeCounts counts;
};

struct WebhookStats {
  std::string webhook;  // id
  OutcomeCounts counts;
  // Attempt durations, estimated from a log-scale histogram (latency.hpp); none without attempts.
  std::optional<double> p50_ms;
  std::optional<double> p99_ms;
};

struct DeliveryStats {
  std::int64_t since = 0;  // start of the first minute, Unix microseconds
  std::int64_t until = 0;  // end of the current minute
  std::vector<MinuteStats> minutes;    // only minutes with attempts, oldest first
  std::vector<WebhookStats> webhooks;  // every live webhook of the brand, in listing order
};

// A brand (tenant) and its place in the brand tree.
struct Brand {
  std::string id;                     // UUID, lowercase
  std::optional<std::string> parent;  // empty: a root brand
};

// One page of a list and the number of records matching the query without paging.
template <class T>
struct Page {
  std::vector<T> items;
  std::int64_t total = 0;
};

struct WebhookQuery {
  std::string brand;
  std::optional<std::string> topic;
  std::int64_t start = 0;
  std::optional<std::int64_t> limit;  // no limit when empty
};

// An API token as listed: never the secret itself, which is shown once at creation.
struct TokenInfo {
  std::string id;
  std::optional<std::string> brand;  // empty: admin token (every brand)
  std::string label;
  std::int64_t created_at = 0;
  std::optional<std::int64_t> expires_at;  // empty: never; from then on the token is refused
};

struct IssuedToken {
  TokenInfo info;
  std::string secret;  // the bearer token; only its hash is stored
};

// Who a bearer token speaks for.
struct Principal {
  std::string token_id;
  std::optional<std::string> brand;  // empty: admin
  std::optional<std::int64_t> expires_at;  // the token's expiry; empty: never
  bool is_admin() const { return !brand.has_value(); }
};

// A link that opens the portal signed in with a new brand token of its own (Hub::create_portal_link).
struct PortalLink {
  std::string url;  // <base>/portal#token=<secret>: the secret is in the fragment, which browsers never send
  std::int64_t expires_at = 0;
  std::string brand;
  std::string token_id;
};

// One field of a record as the REST API shows it. The tables of these (record_fields) are the
// one definition of each record's shape: to_json writes the names from them, in their order, and
// checks each value's type; Python derives the OpenAPI schemas, the client's records and the
// docs' field tables from them.
struct FieldSpec {
  std::string_view name;
  // "string", "uuid" (a string), "integer", "number", "time" (Unix seconds as a float with
  // microseconds), "boolean", an array: "string[]", or "<record>[]" for another record, or
  // "string{}": an object whose values are strings.
  std::string_view type;
  bool nullable = false;
  std::string_view description;
  std::span<const std::string_view> values = {};  // the allowed values when the set is closed
};

// The records to_json writes: webhook, attempt, delivery, webhook_state, published, recovered,
// token, new_token, stats, brand, portal_link, delivery_stats (with its stats_minute and
// webhook_stats).
std::span<const std::string_view> record_names();
// A record's fields in the order to_json writes them; std::out_of_range for an unknown record.
std::span<const FieldSpec> record_fields(std::string_view record);

// Each record as the REST API shows it, one JSON object with record_fields' names in order.
// The webhook: fields in contract order, "type":"brand_webhook".
std::string to_json(const Webhook& webhook);
// A delivery with its attempts (times as float seconds, durations in ms).
std::string to_json(const Delivery& delivery);
// Whether delivery to the webhook is enabled, and why not ("webhook_state").
std::string state_json(const Webhook& webhook);
std::string to_json(const PublishResult& result);  // "published": {"id", "deliveries"}
std::string to_json(const RecoverResult& result);  // "recovered": {"queued", "deliveries"}
std::string to_json(const TokenInfo& token);       // "token", never the secret
std::string to_json(const IssuedToken& token);     // "new_token": the token's fields and its secret
std::string to_json(const Stats& stats);
std::string to_json(const Brand& brand);
// "delivery_stats": {"since","until","bucket_seconds","minutes":[stats_minute],"webhooks":[webhook_stats]}.
std::string to_json(const DeliveryStats& stats);
std::string to_json(const PortalLink& link);  // "portal_link": its url holds a secret
// `url` with any user[:password]@ replaced by "***@", for logs and reprs (urls registered
// before credentials were refused may still hold them).
std::string redact_url(std::string_view url);

}  // namespace brandhooks
