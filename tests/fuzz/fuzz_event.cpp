// What Hub::publish and create_webhook validate before anything is stored: brand ids, topics,
// tags, the event name, the payload and a publish request's raw body (the functions publish
// itself calls). Any input is accepted or refused with a ValidationError (the API's 400);
// anything else escaping is a 500 and a crash here. What is accepted is in canonical form.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <optional>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brandhooks/errors.hpp"
#include "fuzz_check.hpp"
#include "brandhooks/model.hpp"
#include "event.hpp"
#include "validation.hpp"

using namespace brandhooks;

namespace {
void uuid(const std::string& text) {
  std::string id;
  try {
    id = normalize_uuid(text, "brand id");
  } catch (const ValidationError&) {
    return;
  }
  check(id.size() == 36 && id.find_first_not_of("0123456789abcdef-") == std::string::npos);
  check(normalize_uuid(id, "brand id") == id);
}

void topic(const std::string& text) {
  bool known = std::find(std::begin(kTopics), std::end(kTopics), text) != std::end(kTopics);
  try {
    check_topic(text);
    check(known);
  } catch (const ValidationError&) {
    check(!known);
  }
}

void tags(const std::vector<std::string>& list) {
  try {
    check_tags(list);
  } catch (const ValidationError&) {
    return;
  }
  // Accepted tags are stored as a JSON array that reads back the same.
  auto stored = tags_json(list);
  check(stored && nlohmann::json::parse(*stored).get<std::vector<std::string>>() == list);
}

// The event as Hub::publish takes it (event.hpp, the very functions publish calls): a name
// and a payload that must be a JSON object; what is accepted becomes a body that parses back
// with the six keys in order and the payload unchanged.
void event(const std::string& name, const std::string& payload) {
  EventInput input{"", "Deals", name, payload, std::nullopt, std::nullopt};
  std::string body;
  try {
    check_event_name(name);
    body = event_body(input, "0b6a5b1e-8c2d-4f3a-9e1b-2c3d4e5f6a7b", "id", 1'764'240'623'123'456);
  } catch (const ValidationError&) {
    return;
  }
  check(body.size() <= kMaxEventBody);
  auto parsed = nlohmann::ordered_json::parse(body);
  std::vector<std::string> keys;
  for (const auto& item : parsed.items()) keys.push_back(item.key());
  check(keys == std::vector<std::string>{"topic", "event", "timestamp", "payload", "id", "brand"});
  check(parsed["event"] == name && parsed["timestamp"] == 1'764'240'623'123);
  check(parsed["payload"] == nlohmann::ordered_json::parse(payload));
}

// A publish request's raw body, as Hub::publish_json reads it: refused with a ValidationError
// (BadRequestError is one), or 1 to kMaxBatchEvents events whose payloads are JSON objects.
void request(const std::string& body) {
  ParsedEvents parsed;
  try {
    parsed = parse_events_json(body, "0b6a5b1e-8c2d-4f3a-9e1b-2c3d4e5f6a7b");
  } catch (const ValidationError&) {
    return;
  }
  check(!parsed.events.empty() && parsed.events.size() <= kMaxBatchEvents);
  check(parsed.batch || parsed.events.size() == 1);
  for (const auto& e : parsed.events) check(nlohmann::ordered_json::parse(e.payload_json).is_object());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  uuid(in.ConsumeRandomLengthString(64));
  topic(in.ConsumeRandomLengthString(16));
  std::vector<std::string> list(in.ConsumeIntegralInRange<std::size_t>(0, 70));
  for (auto& tag : list) tag = in.ConsumeRandomLengthString(160);
  tags(list);
  std::string name = in.ConsumeRandomLengthString(160);
  std::string rest = in.ConsumeRemainingBytesAsString();
  event(name, rest);
  request(rest);
  return 0;
}
