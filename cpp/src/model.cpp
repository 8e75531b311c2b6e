#include "brandhooks/model.hpp"

#include <nlohmann/json.hpp>

namespace brandhooks {

namespace {
// Microseconds to the contract's float seconds.
double seconds(std::int64_t micros) { return static_cast<double>(micros) / 1e6; }
}  // namespace

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

}  // namespace brandhooks
