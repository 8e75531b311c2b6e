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

namespace {
using Json = nlohmann::ordered_json;

// A string field of an event object: required, a JSON string.
std::string string_field(const Json& event, const char* name) {
  auto it = event.find(name);
  if (it == event.end() || it->is_null()) throw ValidationError(std::string(name) + " is required");
  if (!it->is_string()) throw ValidationError(std::string(name) + " must be a string");
  return it->get<std::string>();
}

EventInput event_input(const Json& event, const std::string& brand) {
  if (!event.is_object()) throw ValidationError("request body must be a JSON object");
  auto payload = event.find("payload");
  if (payload == event.end() || !payload->is_object()) throw ValidationError("payload must be a JSON object");
  EventInput input{brand, string_field(event, "topic"), string_field(event, "event"), payload->dump(), std::nullopt,
                   std::nullopt};
  auto tags = event.find("tags");
  if (tags != event.end() && !tags->is_null()) {
    if (!tags->is_array()) throw ValidationError("tags must be null or a list of strings");
    std::vector<std::string> list;
    for (const auto& tag : *tags) {
      if (!tag.is_string()) throw ValidationError("tags must be null or a list of strings");
      list.push_back(tag.get<std::string>());
    }
    input.tags = std::move(list);
  }
  return input;
}
}  // namespace

ParsedEvents parse_events_json(std::string_view body, const std::string& brand) {
  Json parsed;
  try {
    // Depth is checked while parsing, so a hostile body never becomes a deep tree.
    parsed = Json::parse(body.begin(), body.end(), [](int depth, Json::parse_event_t event, Json&) {
      if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
          depth >= kMaxBodyDepth) {
        throw BadRequestError("request body nests too deeply to parse");
      }
      return true;
    });
  } catch (const nlohmann::json::parse_error& e) {
    // JSON's "\ud800" escape decodes to a lone surrogate, which has no UTF-8 form.
    if (std::string_view(e.what()).find("surrogate") != std::string_view::npos) {
      throw ValidationError("request body has a lone UTF-16 surrogate escape (such as \\ud800) in a string: "
                            "not valid Unicode");
    }
    throw BadRequestError("request body must be valid JSON");
  } catch (const nlohmann::json::out_of_range&) {
    // Valid JSON grammar, but a number no double holds (the fuzzer's 11e308).
    throw ValidationError("request body has a number too large for a 64-bit float (such as 1e400)");
  }
  ParsedEvents out;
  if (!parsed.is_array()) {
    out.events.push_back(event_input(parsed, brand));
    return out;
  }
  out.batch = true;
  if (parsed.empty() || parsed.size() > kMaxBatchEvents) {
    throw ValidationError("a batch has 1 to " + std::to_string(kMaxBatchEvents) + " events");
  }
  out.events.reserve(parsed.size());
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    try {
      if (!parsed[i].is_object()) throw ValidationError("an event must be a JSON object");
      out.events.push_back(event_input(parsed[i], brand));
    } catch (const ValidationError& e) {
      throw ValidationError("events[" + std::to_string(i) + "]: " + e.what());
    }
  }
  return out;
}

}  // namespace brandhooks
