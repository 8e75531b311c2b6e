// W3C Trace Context as a publish receives it (header values from anyone): any traceparent and
// tracestate are accepted or ignored, never crash; what is kept is well formed (a version 00
// traceparent of lowercase hex, a tracestate of at most 512 characters in at most 32 members)
// and is kept unchanged when it comes again; an attempt's child traceparent keeps the trace.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <string>

#include "fuzz_check.hpp"
#include "trace_context.hpp"

using namespace brandhooks;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  std::string traceparent = in.ConsumeRandomLengthString(128);
  std::string tracestate = in.ConsumeRemainingBytesAsString();
  auto kept = accept_trace_context(traceparent, tracestate);
  if (!kept) return 0;
  const std::string& parent = kept->traceparent;
  check(parent.size() == 55 && parent.rfind("00-", 0) == 0 && parent[35] == '-' && parent[52] == '-');
  check(std::all_of(parent.begin(), parent.end(),
                    [](char c) { return c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }));
  check(trace_id_of(*kept) != std::string(32, '0') && parent_id_of(*kept) != std::string(16, '0'));
  const std::string& state = kept->tracestate;
  check(state.size() <= kMaxTracestate && std::count(state.begin(), state.end(), ',') < 32);
  check(std::all_of(state.begin(), state.end(), [](char c) { return c >= 0x20 && c <= 0x7e; }));
  auto again = accept_trace_context(parent, state);
  check(again && again->traceparent == parent && again->tracestate == state);
  std::string child = child_traceparent(*kept, 0x0123456789abcdefULL);
  check(child.substr(0, 36) == parent.substr(0, 36) && child.substr(52) == parent.substr(52) &&
        child.substr(36, 16) == "0123456789abcdef");
  return 0;
}
