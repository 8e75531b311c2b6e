#include "event.hpp"

#include <nlohmann/json.hpp>

#include "brandhooks/errors.hpp"
#include "validation.hpp"

namespace brandhooks {

std::string event_body(const EventInput& e, const std::string& brand, const std::string& id,
                       std::int64_t created_at) {
  nlohmann::ordered_json payload;
  try {
    // The depth is checked while parsing: serializing (and receivers' parsers) recurse.
    payload = nlohmann::ordered_json::parse(
        e.payload_json, [](int depth, nlohmann::ordered_json::parse_event_t event, nlohmann::ordered_json&) {
          // `depth` counts the containers around this one: the payload object is level 1.
          using Event = nlohmann::ordered_json::parse_event_t;
          if ((event == Event::object_start || event == Event::array_start) && depth >= kMaxPayloadDepth) {
            throw ValidationError("payload must not nest deeper than " + std::to_string(kMaxPayloadDepth) +
                                  " levels");
          }
          return true;
        });
  } catch (const nlohmann::json::exception&) {
    throw ValidationError("payload must be valid JSON");
  }
  if (!payload.is_object()) throw ValidationError("payload must be a JSON object");
  nlohmann::ordered_json body;
  body["topic"] = e.topic;
  body["event"] = e.event;
  body["timestamp"] = created_at / 1000;  // milliseconds, as the original system sent
  body["payload"] = std::move(payload);
  body["id"] = id;
  body["brand"] = brand;
  std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  if (text.size() > kMaxEventBody) throw ValidationError("event body exceeds 1 MiB");
  return text;
}

void check_event_name(const std::string& event) {
  if (event.empty() || count_chars(event) > 128) throw ValidationError("event must have 1 to 128 characters");
  for (unsigned char c : event) {
    if (c < 0x20 || c == 0x7f) throw ValidationError("event must not contain control characters");
  }
  check_utf8(event, "event");
}

}  // namespace brandhooks
