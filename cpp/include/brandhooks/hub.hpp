#pragma once
// brandhooks::Hub — the one public entry point of the core. Python bindings, the REST API,
// the CLI and C++ programs all go through it. Every method is safe to call from any thread.
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brandhooks/config.hpp"
#include "brandhooks/errors.hpp"
#include "brandhooks/metrics.hpp"
#include "brandhooks/model.hpp"

namespace brandhooks {

class Store;
class Dispatcher;
class AttemptSpanQueue;
class RetryPolicy;
struct EventRecord;
struct IdempotencyClaim;

class Hub {
 public:
  // Opens (or creates) the store. With config.deliver, also starts the dispatcher. Throws
  // ValidationError for a bad setting, StorageError when the database cannot be used.
  explicit Hub(Config config);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  const Config& config() const { return config_; }

  // --- webhooks -------------------------------------------------------------------------
  // Registers `url` for `topic` events of `brand` (and, with a brand tree, its descendants).
  // Throws ValidationError for a non-UUID brand, an unknown topic, a bad url, bad tags or bad
  // controls (a rate limit out of 1..10000, headers check_headers refuses).
  Webhook create_webhook(const std::string& brand, const std::string& topic,
                         const std::string& url,
                         const std::optional<std::vector<std::string>>& tags = std::nullopt,
                         const WebhookControls& controls = {});
  // The brand's live (not deleted) webhooks, oldest first, optionally of one topic.
  Page<Webhook> list_webhooks(const WebhookQuery& query);
  // A live webhook of the brand; NotFoundError otherwise (deleted, unknown, other brand).
  Webhook get_webhook(const std::string& brand, const std::string& webhook_id);
  // Soft delete: sets deleted_at. NotFoundError if not a live webhook of the brand.
  Webhook delete_webhook(const std::string& brand, const std::string& webhook_id);
  // Changes url, topic, tags, enabled (re-enabling clears the failure state), ordered,
  // rate_limit or headers; validated as on creation.
  Webhook update_webhook(const std::string& brand, const std::string& webhook_id,
                         const WebhookPatch& patch);
  // Keys retired by rotations that still sign during their grace period, at most (the
  // oldest is dropped when a rotation would keep more).
  static constexpr int kMaxPreviousKeys = 5;
  // A new key. Until `grace_seconds` pass, deliveries also carry a Standard Webhooks
  // signature made with the old key (and older ones still in their grace period, at most
  // kMaxPreviousKeys in all). grace_seconds = 0: only the new key signs from now on, every
  // earlier key included.
  Webhook rotate_key(const std::string& brand, const std::string& webhook_id,
                     std::int64_t grace_seconds = 24 * 3600);

  // --- events and deliveries ------------------------------------------------------------
  // Commits the event and one pending delivery per matching webhook (the brand's and its
  // ancestors' live webhooks of the topic) in one transaction, then wakes the dispatcher.
  // `payload_json` must be a JSON object. The receiver gets
  // {"topic","event","timestamp"(ms),"payload","id","brand"} in that order.
  // With `idempotency_key` (1 to 255 visible ASCII characters, per brand): the same key again
  // within kIdempotencyWindow (and before retention prunes it) returns the first result and
  // creates nothing; the same key for another event throws ConflictError.
  // With `trace` (the publisher's W3C traceparent and tracestate), every attempt of the event's
  // deliveries sends it on (TraceContext); an invalid traceparent is ignored, never an error.
  PublishResult publish(const std::string& brand, const std::string& topic,
                        const std::string& event, const std::string& payload_json,
                        const std::optional<std::vector<std::string>>& tags = std::nullopt,
                        const std::optional<std::string>& idempotency_key = std::nullopt,
                        const std::optional<TraceContext>& trace = std::nullopt);
  static constexpr std::int64_t kIdempotencyWindow = 24 * 3600;  // seconds
  // Many events in one transaction (all or nothing; an idempotency key per event, a conflict
  // of one stores none).
  std::vector<PublishResult> publish_many(const std::vector<EventInput>& events);
  // The REST API's publish, from the request's raw JSON body: one event
  // {"topic","event","payload"[,"tags"]} for `brand`, or an array of 1 to 1000 of them, validated
  // all or nothing (a ValidationError names the first bad one: "events[i]: ...") and committed in
  // one transaction. Returns the answer's JSON: {"code":"OK","data":{"id","deliveries"}}, or for
  // an array "data" with one such object per event, in order, and "info":{"count","total"}.
  // BadRequestError when the body is not JSON (or nests too deeply to parse).
  // With `idempotency_key`, the key stands for the whole request (one event or a batch), as
  // with publish: the same body again answers the first answer; another body is ConflictError.
  // With `trace`, every event of the request carries it (as with publish).
  std::string publish_json(const std::string& brand, std::string_view body,
                           const std::optional<std::string>& idempotency_key = std::nullopt,
                           const std::optional<TraceContext>& trace = std::nullopt);
  // One request to publish_json_each: the brand of the path and the raw body; with a token,
  // authorize(token, brand) first (so a bad token is that request's answer).
  struct JsonPublish {
    std::string brand;
    std::string_view body;
    std::optional<std::string> token;
    std::optional<std::string> idempotency_key;
    std::optional<TraceContext> trace = std::nullopt;  // the request's: every event of it carries it
  };
  // The answer to one of them: its JSON, or the error publish_json would have thrown.
  struct JsonAnswer {
    std::string json;
    std::exception_ptr error;
  };
  // Group commit: many publish_json requests at once (e.g. from concurrent connections). Each
  // is checked on its own (a bad one gets its error, the others go on); all the valid ones
  // commit in one transaction, so a storage error is every one's answer. One commit costs far
  // more than the rows of one event, so this is how a server keeps up with many clients.
  std::vector<JsonAnswer> publish_json_each(const std::vector<JsonPublish>& requests);
  // A webhook's deliveries, newest first, each with its attempts. NotFoundError when the
  // brand has no such webhook (deleted ones still show their deliveries).
  Page<Delivery> list_deliveries(const DeliveryQuery& query);
  // One delivery of one of the brand's webhooks, with its attempts.
  Delivery get_delivery(const std::string& brand, const std::string& delivery_id);
  // A new attempt now, whatever the delivery's state. ConflictError while one is under way or
  // when the webhook is disabled; NotFoundError when it is deleted.
  Delivery redeliver(const std::string& brand, const std::string& delivery_id);
  // Queues again every failed delivery of the webhook created at or after `since_s` (Unix
  // seconds), at most `limit` per call (call again until `queued` is 0). ConflictError when
  // the webhook is disabled (enable it first); NotFoundError when it is deleted.
  RecoverResult recover(const std::string& brand, const std::string& webhook_id, double since_s,
                        std::int64_t limit = 100000);
  // Publishes a test event to that webhook only: topic = the webhook's, event "Test", payload
  // {"test":true,"message":"a test event sent on request","webhook":"<id>"}; the event and its
  // one delivery commit in one transaction, then the dispatcher wakes (the webhook's ordering,
  // rate limit and signing apply as to any delivery). Returns the delivery. NotFoundError for
  // an unknown or deleted webhook of the brand, ConflictError when it is disabled.
  Delivery send_test_event(const std::string& brand, const std::string& webhook_id);
  // Delivery attempts of the brand's live webhooks in the last `hours` (1..24) whole minutes
  // (the current one included), per minute by outcome and per webhook with p50/p99 durations.
  // ValidationError for hours out of range.
  DeliveryStats delivery_stats(const std::string& brand, std::int64_t hours = 24);
  // Removes finished deliveries older than config.retention_s now (the dispatcher also does
  // it every config.prune_interval_s). Returns how many went.
  std::int64_t prune();
  Stats stats();
  // What a scrape of /metrics reads from the store, at a cost that does not grow with the
  // tables; nullopt when the store cannot take writes now or cannot be read (check_storage
  // throws, or the read fails): a scrape still answers while the database is down.
  std::optional<Gauges> gauges();
  // Throws when the store cannot take writes now: UnavailableError when its disk is (nearly)
  // full, StorageError when the database fails. For health checks.
  void check_storage();
  const Metrics& metrics() const { return *metrics_; }
  // Stops the dispatcher, if running: in-flight attempts finish or return to the queue.
  void stop_delivery();

  // --- attempt spans (for an exporter such as OpenTelemetry's) ---------------------------
  // From now on, each attempt of a delivery whose event carried a trace context is a span of
  // its own: the traceparent it sends names a new span id as the parent (the W3C way: the
  // receiver's parent is the request's sender), and the finished attempt (AttemptSpan) waits
  // for take_attempt_spans in a queue of at most `capacity` (1..10 000 000; ValidationError
  // otherwise); beyond that, new ones are dropped and counted (metrics().attempt_spans_dropped).
  // Until then, attempts send the publisher's traceparent unchanged and nothing is queued.
  // `brandhooks serve` enables it when OpenTelemetry's OTEL_EXPORTER_OTLP_*ENDPOINT is set.
  void enable_attempt_spans(std::size_t capacity = kAttemptSpanCapacity);
  static constexpr std::size_t kAttemptSpanCapacity = 65536;
  // Up to `max` (1..100 000) finished attempt spans, oldest first, waiting up to `wait_ms`
  // (0..60 000) for the first one; empty when none came. Call it from one thread of your own.
  std::vector<AttemptSpan> take_attempt_spans(std::size_t max = 1024, std::int64_t wait_ms = 1000);

  // --- brand tree -----------------------------------------------------------------------
  // Sets (or clears, with nullopt) the parent of a brand. ConflictError on a cycle.
  Brand set_brand_parent(const std::string& brand, const std::optional<std::string>& parent);
  std::optional<std::string> brand_parent(const std::string& brand);
  // Every brand below `brand` in the tree (not itself), breadth first (a level in id order);
  // empty when it has none (or is unknown).
  std::vector<Brand> brand_descendants(const std::string& brand);

  // --- API tokens -----------------------------------------------------------------------
  // Bounds of a token's expires_in (seconds): at least a minute, at most 30 days.
  static constexpr std::int64_t kMinTokenLifetime = 60;
  static constexpr std::int64_t kMaxTokenLifetime = 30 * 24 * 3600;
  // A new random token, admin when `brand` is empty. The secret is returned only here. With
  // `expires_in` (kMinTokenLifetime..kMaxTokenLifetime seconds, else ValidationError), it is
  // refused from then on (401 "token expired"); retention prunes it later.
  IssuedToken create_token(const std::optional<std::string>& brand, const std::string& label = "",
                           std::optional<std::int64_t> expires_in = std::nullopt);
  // Registers a caller-chosen secret as an admin token (idempotent); e.g. --admin-token.
  TokenInfo ensure_admin_token(const std::string& secret, const std::string& label = "");
  // Live (not revoked) tokens, expired ones included until retention prunes them.
  std::vector<TokenInfo> list_tokens();
  void revoke_token(const std::string& token_id);
  bool has_tokens();
  // The token `secret` is: UnauthorizedError when it matches no live token ("invalid or revoked
  // token") or has expired ("token expired"). Never cached: a token stops at its expiry.
  TokenInfo current_token(const std::string& secret);
  // Who `secret` speaks for (current_token's id, brand and expiry).
  Principal authenticate(const std::string& secret);
  // authenticate + the brand check: ForbiddenError unless admin, the token's brand, or a
  // descendant of it. A bad token is reported before a bad brand id.
  Principal authorize(const std::string& secret, const std::string& brand);
  // authenticate + admin check (ForbiddenError for brand tokens).
  Principal authorize_admin(const std::string& secret);
  // authorize_admin for monitoring (/metrics), which must answer while the database is down:
  // when the store cannot be read (StorageError), an admin token that this Hub verified in the
  // store before is accepted until its expiry. It is forgotten once the store refuses it
  // (revoked); a revocation made meanwhile on another node counts once this one reaches the
  // database again. Other tokens get the store's error.
  Principal authorize_monitoring(const std::string& secret);

  // --- portal links ---------------------------------------------------------------------
  // Bounds and default of a portal link's expires_in (seconds).
  static constexpr std::int64_t kMinLinkLifetime = 60;
  static constexpr std::int64_t kMaxLinkLifetime = 24 * 3600;
  static constexpr std::int64_t kDefaultLinkLifetime = 3600;
  // A link that opens the portal signed in for `brand`: authorize(secret, brand) first, then
  // a new brand token for `brand` labelled "portal link" that expires after `expires_in`
  // seconds (kMinLinkLifetime..kMaxLinkLifetime), or when the caller's own token expires if
  // that comes sooner (a link never outlives the token that made it). The url is
  // config().public_url, or else `request_base` (the address the request came to, e.g.
  // "http://127.0.0.1:8080"), then "/portal#token=<secret>".
  PortalLink create_portal_link(const std::string& secret, const std::string& brand,
                                std::int64_t expires_in = kDefaultLinkLifetime,
                                const std::string& request_base = "");

 private:
  void wake_dispatcher();
  // Stores a new random token (its hash) and returns it with its secret; arguments checked.
  IssuedToken issue_token(const std::optional<std::string>& brand_id, const std::string& label,
                          std::int64_t created_at, std::optional<std::int64_t> expires_at);
  // The event as stored (checked, its body built); `now` is its creation time.
  EventRecord prepare_event(const EventInput& event, std::int64_t now) const;
  // Commits the events and their deliveries in one transaction, hands the due ones over.
  // With `claims`, their idempotency keys in the same transaction (Store::insert_events).
  std::vector<PublishResult> commit_events(const std::vector<EventRecord>& records,
                                           std::vector<IdempotencyClaim>* claims = nullptr);

  struct MonitorTokens;

  Config config_;
  std::unique_ptr<MonitorTokens> monitor_tokens_;
  std::unique_ptr<RetryPolicy> retry_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AttemptSpanQueue> attempt_spans_;
  std::unique_ptr<Dispatcher> dispatcher_;  // declared last: stopped before the store closes
};

}  // namespace brandhooks
