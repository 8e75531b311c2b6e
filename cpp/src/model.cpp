#include "brandhooks/model.hpp"

#include <nlohmann/json.hpp>

namespace brandhooks {

namespace {
constexpr std::string_view kAttemptErrorNames[] = {"", "timeout", "dns", "blocked", "connect",
                                                   "tls", "network", "protocol"};
constexpr std::string_view kDeliveryStateNames[] = {"pending", "delivered", "failed", "cancelled"};

// Microseconds to the contract's float seconds.
double seconds(std::int64_t micros) { return static_cast<double>(micros) / 1e6; }
}  // namespace

std::string_view to_string(AttemptError error) { return kAttemptErrorNames[static_cast<int>(error)]; }

std::optional<AttemptError> attempt_error_from(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kAttemptErrorNames); ++i) {
    if (kAttemptErrorNames[i] == name) return static_cast<AttemptError>(i);
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

std::string to_json(const Webhook& w) {
  nlohmann::ordered_json j;
  j["id"] = w.id;
  j["created_at"] = seconds(w.created_at);
  j["updated_at"] = seconds(w.updated_at);
  j["deleted_at"] = w.deleted_at ? nlohmann::ordered_json(seconds(*w.deleted_at)) : nullptr;
  j["brand"] = w.brand;
  j["topic"] = w.topic;
  j["url"] = w.url;
  j["key"] = w.key;
  j["tags"] = w.tags ? nlohmann::ordered_json(*w.tags) : nullptr;
  j["type"] = "brand_webhook";
  return j.dump();
}

std::string to_json(const Delivery& d) {
  using json = nlohmann::ordered_json;
  json attempts = json::array();
  for (const auto& a : d.attempts) {
    json one;
    one["number"] = a.number;
    one["started_at"] = seconds(a.started_at);
    one["duration_ms"] = static_cast<double>(a.duration_us) / 1e3;
    one["status"] = a.status ? json(*a.status) : json(nullptr);
    one["error"] = a.error == AttemptError::none ? json(nullptr) : json(to_string(a.error));
    one["detail"] = a.detail.empty() ? json(nullptr) : json(a.detail);
    one["response"] = a.response;  // arbitrary bytes: the dump below replaces invalid UTF-8
    attempts.push_back(std::move(one));
  }
  json j;
  j["id"] = d.id;
  j["event"] = d.event_id;
  j["webhook"] = d.webhook_id;
  j["brand"] = d.brand;
  j["topic"] = d.topic;
  j["event_type"] = d.event;
  j["state"] = to_string(d.state);
  j["attempt_count"] = d.attempt_count;
  j["created_at"] = seconds(d.created_at);
  j["updated_at"] = seconds(d.updated_at);
  j["next_attempt_at"] = d.next_attempt_at ? json(seconds(*d.next_attempt_at)) : json(nullptr);
  j["attempts"] = std::move(attempts);
  j["type"] = "brand_webhook_delivery";
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace brandhooks
