#pragma once
// What a publish checks of an event and the exact bytes its receivers get. Pure functions (no
// store, no clock), so the fuzzer exercises the very code Hub::publish runs.
#include <cstddef>
#include <cstdint>
#include <string>

#include "brandhooks/model.hpp"

namespace brandhooks {

inline constexpr std::size_t kMaxEventBody = 1 << 20;
inline constexpr int kMaxPayloadDepth = 128;  // nesting of objects and arrays in a payload

// An event name: 1 to 128 characters of UTF-8, no control characters. Throws ValidationError.
void check_event_name(const std::string& event);

// {"topic","event","timestamp"(ms),"payload","id","brand"} in that order, the same bytes on
// every attempt. Throws ValidationError when the payload is not a JSON object, nests deeper
// than kMaxPayloadDepth, or the body would exceed kMaxEventBody.
std::string event_body(const EventInput& e, const std::string& brand, const std::string& id,
                       std::int64_t created_at);

}  // namespace brandhooks
