#pragma once
// W3C Trace Context (https://www.w3.org/TR/trace-context/): what a publish's traceparent and
// tracestate become when stored with the event, and the traceparent each attempt sends. Pure
// functions (no clock, no store), so the fuzzer exercises the very code a publish runs.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "brandhooks/model.hpp"

namespace brandhooks {

// The longest tracestate kept: the spec asks to propagate at least 512 characters and says
// how to cut a longer one (whole members, the longest over 128 characters first, then from
// the end).
inline constexpr std::size_t kMaxTracestate = 512;

// The context as a receiver of the headers treats it. nullopt (no context: nothing invented)
// when the traceparent is absent or invalid, as the spec says: the parse fails quietly and the
// trace restarts, never an error answer. Invalid: not version-traceid-parentid-flags in
// lowercase hex, version ff, an all-zero trace or parent id, version 00 with anything after the
// flags, a later version whose extra part does not start with '-', or two header lines joined
// by a comma. A later version is kept as version 00 (the one this sender speaks). Spaces and
// tabs around the value are allowed. The tracestate is only read with a valid traceparent; an
// invalid one (a bad key or value, a key twice, more than 32 members) is dropped alone; empty
// members go; a long one is cut to kMaxTracestate. The result's traceparent is always 55
// characters and its tracestate "" when none is kept.
std::optional<TraceContext> accept_trace_context(std::string_view traceparent, std::string_view tracestate);

// The parts of an accepted traceparent (accept_trace_context's output).
inline std::string_view trace_id_of(const TraceContext& c) { return std::string_view(c.traceparent).substr(3, 32); }
inline std::string_view parent_id_of(const TraceContext& c) { return std::string_view(c.traceparent).substr(36, 16); }
inline std::string_view flags_of(const TraceContext& c) { return std::string_view(c.traceparent).substr(53, 2); }

// The traceparent of a request that continues `c` from the sender's own span `span_id` (the
// W3C way: the receiver's parent is the span that made the request), flags as received.
std::string child_traceparent(const TraceContext& c, std::uint64_t span_id);

// 16 lowercase hex digits.
std::string span_id_hex(std::uint64_t span_id);

}  // namespace brandhooks
