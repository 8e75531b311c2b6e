#include "brandhooks/model.hpp"

#include <array>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace brandhooks {

namespace {
using json = nlohmann::ordered_json;

// The records' fields as the REST API shows them (see FieldSpec). to_json below writes the
// values in this order; everything else that names a field derives from these tables.
constexpr std::string_view kWebhookType[] = {"brand_webhook"};
constexpr std::string_view kDeliveryType[] = {"brand_webhook_delivery"};

constexpr FieldSpec kWebhook[] = {
    {"id", "uuid", false, "UUID v4"},
    {"created_at", "time", false, "Unix seconds with microseconds"},
    {"updated_at", "time", false, "Unix seconds with microseconds"},
    {"deleted_at", "time", true, "null while the webhook is live"},
    {"brand", "uuid", false, "brand UUID, lowercase (ids are accepted in any case)"},
    {"topic", "string", false, "the topic subscribed to (case-sensitive)", kTopics},
    {"url", "string", false,
     "absolute `http`/`https` URL with a host, at most 2048 characters, returned exactly as given"},
    {"key", "string", false,
     "64 lowercase hex characters: the 32-byte HMAC-SHA256 key, from OpenSSL's CSPRNG"},
    {"tags", "string[]", true, "at most 64 tags of 1-128 characters; null: every event of the topic"},
    {"type", "string", false, "always `brand_webhook`", kWebhookType},
    {"ordered", "boolean", false, "deliveries one at a time, in publish order; default false"},
    {"rate_limit", "integer", true, "at most this many deliveries per second (1-10000); null: no limit"},
    {"headers", "string{}", false,
     "sent with every attempt: at most 20, 8 KiB in all; names that frame or sign the request are "
     "refused; default {}"},
};

constexpr FieldSpec kAttempt[] = {
    {"number", "integer", false, "1 for the first attempt"},
    {"started_at", "time", false, "when the attempt started"},
    {"duration_ms", "number", false, "how long it took, in milliseconds"},
    {"status", "integer", true, "the HTTP status, null when no response was read"},
    {"error", "string", true, "why no response was read; null when one was", kAttemptErrors},
    {"detail", "string", true, "what went wrong, in words; null when nothing did"},
    {"response", "string", false, "the first 4 KiB of the response body"},
};

constexpr FieldSpec kDelivery[] = {
    {"id", "uuid", false, "the `webhook-id` header, stable across retries"},
    {"event", "uuid", false, "event id"},
    {"webhook", "uuid", false, "webhook id"},
    {"brand", "uuid", false, "the webhook's brand"},
    {"topic", "string", false, "the event's topic", kTopics},
    {"event_type", "string", false, "what happened, e.g. `Created`"},
    {"state", "string", false,
     "`pending` (due, or waiting for a retry), `delivered` (a 2xx), `failed` (retries exhausted, or "
     "the webhook answered 410), `cancelled` (the webhook was deleted or disabled)",
     kDeliveryStateNames},
    {"attempt_count", "integer", false, "attempts made so far"},
    {"created_at", "time", false, "Unix seconds with microseconds"},
    {"updated_at", "time", false, "Unix seconds with microseconds"},
    {"next_attempt_at", "time", true, "when the next attempt is due, while pending; else null"},
    {"attempts", "attempt[]", false, "every attempt, oldest first"},
    {"type", "string", false, "always `brand_webhook_delivery`", kDeliveryType},
};

constexpr FieldSpec kWebhookState[] = {
    {"id", "uuid", false, "webhook id"},
    {"enabled", "boolean", false, "whether events are delivered to the webhook"},
    {"disabled_at", "time", true, "when delivery was disabled; null while enabled"},
    {"disabled_reason", "string", true, "why: 410 Gone, failing too long, or an operator; null while enabled"},
    {"failing_since", "time", true,
     "when the current run of failed attempts began; null while the last attempt succeeded (and after a re-enable)"},
    {"last_success_at", "time", true, "the start of the newest successful attempt, to the second; null: none yet"},
};

constexpr FieldSpec kPublished[] = {
    {"id", "uuid", false, "event id"},
    {"deliveries", "integer", false, "deliveries created: one per matching webhook"},
};

constexpr FieldSpec kRecovered[] = {
    {"queued", "integer", false, "failed deliveries queued again"},
    {"deliveries", "string[]", false, "their ids"},
};

constexpr FieldSpec kNewToken[] = {
    {"id", "uuid", false, "token id"},
    {"brand", "uuid", true, "the brand it reaches (and its descendants); null: admin"},
    {"label", "string", false, "a name for people"},
    {"created_at", "time", false, "Unix seconds with microseconds"},
    {"expires_at", "time", true, "from then on the token is refused (401 \"token expired\"); null: never"},
    {"token", "string", false, "the secret bearer token: shown in this answer only"},
};
// A token as listed: a new token's fields but the secret.
constexpr std::span<const FieldSpec> kToken = std::span(kNewToken).first<5>();

constexpr FieldSpec kStats[] = {
    {"webhooks", "integer", false, "live webhooks"},
    {"disabled_webhooks", "integer", false, "live webhooks whose delivery is disabled"},
    {"events", "integer", false, "events stored"},
    {"pending", "integer", false, "deliveries pending"},
    {"delivered", "integer", false, "deliveries delivered"},
    {"failed", "integer", false, "deliveries failed"},
    {"cancelled", "integer", false, "deliveries cancelled"},
    {"due_now", "integer", false, "pending deliveries due now and not being attempted: the queue"},
    {"oldest_due_at", "time", true, "the earliest due time in the queue; null when it is empty"},
    {"node", "string", false, "the node that answered (its node_id): every node shares the counts"},
};

constexpr FieldSpec kBrand[] = {
    {"id", "uuid", false, "brand UUID"},
    {"parent", "uuid", true, "the parent brand; null for a root brand"},
};

constexpr FieldSpec kStatsMinute[] = {
    {"at", "integer", false, "the minute's start, Unix seconds"},
    {"succeeded", "integer", false, "attempts answered with a 2xx"},
    {"failed", "integer", false, "attempts answered with another status"},
    {"errors", "integer", false,
     "attempts without an answer (timeout, dns, blocked, connect, tls, network, protocol)"},
};

constexpr FieldSpec kWebhookStats[] = {
    {"webhook", "uuid", false, "webhook id"},
    {"attempts", "integer", false, "attempts in the window: succeeded + failed + errors"},
    {"succeeded", "integer", false, "attempts answered with a 2xx"},
    {"failed", "integer", false, "attempts answered with another status"},
    {"errors", "integer", false, "attempts without an answer"},
    {"p50_ms", "number", true,
     "median attempt duration in milliseconds, within 9% (log-scale histogram); null without attempts"},
    {"p99_ms", "number", true, "99th percentile of the attempt durations, as p50_ms; null without attempts"},
};

constexpr FieldSpec kDeliveryStats[] = {
    {"since", "integer", false, "start of the window's first minute, Unix seconds"},
    {"until", "integer", false, "end of the current minute (the window's end), Unix seconds"},
    {"bucket_seconds", "integer", false, "always 60: the counts are per minute"},
    {"minutes", "stats_minute[]", false, "the minutes with attempts, oldest first (no entry: none)"},
    {"webhooks", "webhook_stats[]", false, "every live webhook of the brand, in the order of the webhook listing"},
};

constexpr FieldSpec kPortalLink[] = {
    {"url", "string", false,
     "`<base>/portal#token=<secret>`: opens the portal signed in; the secret is in the fragment, which "
     "browsers never send, and is shown in this answer only"},
    {"expires_at", "time", false, "when the link's token stops working (Unix seconds)"},
    {"brand", "uuid", false, "the brand the link's token reaches (and its descendants)"},
    {"token_id", "uuid", false, "the link's token, labelled `portal link` (revoke it to end the link early)"},
};

struct Record {
  std::string_view name;
  std::span<const FieldSpec> fields;
};
constexpr Record kRecords[] = {
    {"webhook", kWebhook},     {"attempt", kAttempt},     {"delivery", kDelivery},
    {"webhook_state", kWebhookState}, {"published", kPublished}, {"recovered", kRecovered},
    {"token", kToken},         {"new_token", kNewToken},  {"stats", kStats},
    {"brand", kBrand},         {"portal_link", kPortalLink}, {"delivery_stats", kDeliveryStats},
    {"stats_minute", kStatsMinute}, {"webhook_stats", kWebhookStats},
};
constexpr auto kRecordNames = [] {
  std::array<std::string_view, std::size(kRecords)> names{};
  for (std::size_t i = 0; i < names.size(); ++i) names[i] = kRecords[i].name;
  return names;
}();

bool has_type(const json& value, std::string_view type) {
  if (type == "string" || type == "uuid") return value.is_string();
  if (type == "integer") return value.is_number_integer();
  if (type == "number" || type == "time") return value.is_number();
  if (type == "boolean") return value.is_boolean();
  if (type.ends_with("{}")) return value.is_object();
  return type.ends_with("[]") && value.is_array();
}

// The record with `values` in its table's order, named from the table. A count that differs
// from the table, a value of another type or a null where none may be is a bug in this file:
// every test that writes the record finds it.
json record(std::span<const FieldSpec> fields, std::initializer_list<json> values) {
  if (values.size() != fields.size()) throw std::logic_error("a record's values do not match its fields");
  json j = json::object();
  auto value = values.begin();
  for (const auto& field : fields) {
    if (value->is_null() ? !field.nullable : !has_type(*value, field.type)) {
      throw std::logic_error("field '" + std::string(field.name) + "' gets a value of another type");
    }
    j[std::string(field.name)] = *value++;
  }
  return j;
}

// Text from the store may hold invalid UTF-8 (a response body): replaced, never an exception.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Microseconds to the contract's float seconds.
double seconds(std::int64_t micros) { return static_cast<double>(micros) / 1e6; }
json seconds(const std::optional<std::int64_t>& micros) { return micros ? json(seconds(*micros)) : json(nullptr); }

template <class T>
json nullable(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}
json nullable(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }

}  // namespace

std::string_view to_string(AttemptError error) {
  return error == AttemptError::none ? std::string_view() : kAttemptErrors[static_cast<int>(error) - 1];
}

std::optional<AttemptError> attempt_error_from(std::string_view name) {
  if (name.empty()) return AttemptError::none;
  for (std::size_t i = 0; i < std::size(kAttemptErrors); ++i) {
    if (kAttemptErrors[i] == name) return static_cast<AttemptError>(i + 1);
  }
  return std::nullopt;
}

std::string_view to_string(DeliveryState state) { return kDeliveryStateNames[static_cast<int>(state)]; }

std::optional<DeliveryState> delivery_state_from(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kDeliveryStateNames); ++i) {
    if (kDeliveryStateNames[i] == name) return static_cast<DeliveryState>(i);
  }
  return std::nullopt;
}

std::span<const std::string_view> record_names() { return kRecordNames; }

std::span<const FieldSpec> record_fields(std::string_view name) {
  for (const auto& r : kRecords) {
    if (r.name == name) return r.fields;
  }
  throw std::out_of_range("no record named '" + std::string(name) + "'");
}

std::string to_json(const Webhook& w) {
  return dump(record(kWebhook, {w.id, seconds(w.created_at), seconds(w.updated_at), seconds(w.deleted_at),
                                w.brand, w.topic, w.url, w.key, nullable(w.tags), std::string(kWebhookType[0]),
                                w.ordered, nullable(w.rate_limit), json(w.headers)}));
}

std::string to_json(const Delivery& d) {
  json attempts = json::array();
  for (const auto& a : d.attempts) {
    attempts.push_back(record(kAttempt, {a.number, seconds(a.started_at),
                                         static_cast<double>(a.duration_us) / 1e3, nullable(a.status),
                                         nullable(std::string(to_string(a.error))), nullable(a.detail),
                                         a.response}));  // arbitrary bytes: dump() replaces invalid UTF-8
  }
  return dump(record(kDelivery, {d.id, d.event_id, d.webhook_id, d.brand, d.topic, d.event, std::string(to_string(d.state)),
                                 d.attempt_count, seconds(d.created_at), seconds(d.updated_at),
                                 seconds(d.next_attempt_at), attempts, std::string(kDeliveryType[0])}));
}

std::string state_json(const Webhook& w) {
  return dump(record(kWebhookState, {w.id, !w.disabled_at.has_value(), seconds(w.disabled_at),
                                     nullable(w.disabled_reason), seconds(w.failing_since),
                                     seconds(w.last_success_at)}));
}

std::string to_json(const PublishResult& r) { return dump(record(kPublished, {r.event_id, r.deliveries})); }

std::string to_json(const RecoverResult& r) { return dump(record(kRecovered, {r.queued, r.delivery_ids})); }

std::string to_json(const TokenInfo& t) {
  return dump(record(kToken, {t.id, nullable(t.brand), t.label, seconds(t.created_at), seconds(t.expires_at)}));
}

std::string to_json(const IssuedToken& t) {
  const TokenInfo& i = t.info;
  return dump(record(kNewToken, {i.id, nullable(i.brand), i.label, seconds(i.created_at), seconds(i.expires_at),
                                 t.secret}));
}

std::string to_json(const Stats& s) {
  return dump(record(kStats, {s.webhooks, s.disabled_webhooks, s.events, s.pending, s.delivered, s.failed,
                              s.cancelled, s.due_now, seconds(s.oldest_due_at), s.node}));
}

std::string to_json(const Brand& b) { return dump(record(kBrand, {b.id, nullable(b.parent)})); }

std::string to_json(const DeliveryStats& s) {
  json minutes = json::array();
  for (const auto& m : s.minutes) {
    minutes.push_back(record(kStatsMinute, {m.at / 1'000'000, m.counts.succeeded, m.counts.failed, m.counts.errors}));
  }
  json webhooks = json::array();
  for (const auto& w : s.webhooks) {
    webhooks.push_back(record(kWebhookStats, {w.webhook, w.counts.total(), w.counts.succeeded, w.counts.failed,
                                              w.counts.errors, nullable(w.p50_ms), nullable(w.p99_ms)}));
  }
  return dump(record(kDeliveryStats, {s.since / 1'000'000, s.until / 1'000'000, 60, minutes, webhooks}));
}

std::string to_json(const PortalLink& l) {
  return dump(record(kPortalLink, {l.url, seconds(l.expires_at), l.brand, l.token_id}));
}

}  // namespace brandhooks
