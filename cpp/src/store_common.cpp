#include "store_common.hpp"

#include <nlohmann/json.hpp>

#include "brandhooks/errors.hpp"

namespace brandhooks {

std::vector<std::string> strings_from_json(const std::string& json) {
  return nlohmann::json::parse(json).get<std::vector<std::string>>();
}

Headers headers_from_json(const std::string& json) { return nlohmann::json::parse(json).get<Headers>(); }

DeliveryState stored_delivery_state(const std::string& name) {
  if (auto state = delivery_state_from(name)) return *state;
  throw StorageError("database holds an unknown delivery state '" + name + "'");
}

}  // namespace brandhooks
