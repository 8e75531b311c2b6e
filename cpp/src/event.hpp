#pragma once
// What a publish checks of an event and the exact bytes its receivers get. Pure functions (no
// store, no clock), so the fuzzer exercises the very code Hub::publish runs.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "brandhooks/model.hpp"

namespace brandhooks {

inline constexpr std::size_t kMaxEventBody = 1 << 20;
inline constexpr int kMaxPayloadDepth = 128;  // nesting of objects and arrays in a payload
inline constexpr std::size_t kMaxBatchEvents = 1000;  // events in one publish request, at most
// A request body nesting deeper than this is not parsed at all (BadRequest); one nesting less
// deeply but its payload deeper than kMaxPayloadDepth is a ValidationError naming the limit.
inline constexpr int kMaxBodyDepth = 1000;

// An event name: 1 to 128 characters of UTF-8, no control characters. Throws ValidationError.
void check_event_name(const std::string& event);

// {"topic","event","timestamp"(ms),"payload","id","brand"} in that order, the same bytes on
// every attempt. Throws ValidationError when the payload is not a JSON object, nests deeper
// than kMaxPayloadDepth, or the body would exceed kMaxEventBody.
std::string event_body(const EventInput& e, const std::string& brand, const std::string& id,
                       std::int64_t created_at);

// The events of a publish request's raw JSON body, as the REST API receives it: one event object
// {"topic","event","payload"[,"tags"]} (other keys are ignored), or an array of 1 to
// kMaxBatchEvents of them (`batch`). Each gets `brand`; payloads come back as JSON text. Checks
// the shape only (Hub::publish checks the values). Throws BadRequestError when the body is not
// UTF-8 JSON or nests deeper than kMaxBodyDepth, ValidationError for a lone UTF-16 surrogate
// escape or a wrong shape ("events[i]: " before the message when `batch`).
struct ParsedEvents {
  std::vector<EventInput> events;
  bool batch = false;
};
ParsedEvents parse_events_json(std::string_view body, const std::string& brand);

}  // namespace brandhooks
