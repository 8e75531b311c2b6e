#include "store_common.hpp"

#include <nlohmann/json.hpp>

#include "brandhooks/errors.hpp"

namespace brandhooks {

std::vector<std::string> strings_from_json(const std::string& json) {
  return nlohmann::json::parse(json).get<std::vector<std::string>>();
}

Headers headers_from_json(const std::string& json) { return nlohmann::json::parse(json).get<Headers>(); }

std::string results_json(const std::vector<PublishResult>& results, std::size_t first, std::size_t count) {
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = first; i < first + count; ++i) out.push_back({results[i].event_id, results[i].deliveries});
  return out.dump();
}

std::vector<PublishResult> results_from_json(const std::string& json) {
  std::vector<PublishResult> out;
  for (const auto& r : nlohmann::json::parse(json)) out.push_back({r.at(0).get<std::string>(), r.at(1).get<std::int64_t>()});
  return out;
}

std::string header_lines_from_json(const std::string& json) {
  std::string lines;
  for (const auto& [name, value] : headers_from_json(json)) lines.append(name).append(": ").append(value).append("\r\n");
  return lines;
}

DeliveryState stored_delivery_state(const std::string& name) {
  if (auto state = delivery_state_from(name)) return *state;
  throw StorageError("database holds an unknown delivery state '" + name + "'");
}

}  // namespace brandhooks
