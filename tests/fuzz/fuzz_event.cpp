// What Hub::publish and create_webhook validate before anything is stored: brand ids, topics,
// tags and the payload. Any input is accepted or refused with a ValidationError (the API's 400);
// anything else escaping is a 500 and a crash here. What is accepted is in canonical form.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brandhooks/errors.hpp"
#include "brandhooks/model.hpp"
#include "validation.hpp"

using namespace brandhooks;

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}

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

// The payload as Hub::publish takes it (hub.cpp, event_body): a JSON object, embedded in the
// body the receivers get and serialized strictly.
void payload(const std::string& text) {
  nlohmann::ordered_json parsed;
  try {
    parsed = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return;  // "payload must be valid JSON" (syntax, or a number out of range such as 2e308)
  }
  if (!parsed.is_object()) return;  // "payload must be a JSON object"
  nlohmann::ordered_json body;
  body["payload"] = std::move(parsed);
  std::string dumped = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  check(nlohmann::ordered_json::parse(dumped) == body);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  uuid(in.ConsumeRandomLengthString(64));
  topic(in.ConsumeRandomLengthString(16));
  std::vector<std::string> list(in.ConsumeIntegralInRange<std::size_t>(0, 70));
  for (auto& tag : list) tag = in.ConsumeRandomLengthString(160);
  tags(list);
  payload(in.ConsumeRemainingBytesAsString());
  return 0;
}
