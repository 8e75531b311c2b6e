// W3C Trace Context as a publish receives it (accept_trace_context) and as attempts send it on;
// the finished attempts' queue for exporters (AttemptSpanQueue).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "attempt_spans.hpp"
#include "trace_context.hpp"

using namespace brandhooks;

namespace {
const std::string kParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

std::optional<TraceContext> accept(std::string_view traceparent, std::string_view tracestate = "") {
  return accept_trace_context(traceparent, tracestate);
}

std::string state_of(std::string_view tracestate) {
  auto c = accept(kParent, tracestate);
  return c ? c->tracestate : "<no context>";
}
}  // namespace

TEST(TraceContext, AValidTraceparentIsKeptWithItsParts) {
  auto c = accept(kParent, "congo=t61rcWkgMzE");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->traceparent, kParent);
  EXPECT_EQ(c->tracestate, "congo=t61rcWkgMzE");
  EXPECT_EQ(trace_id_of(*c), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parent_id_of(*c), "00f067aa0ba902b7");
  EXPECT_EQ(flags_of(*c), "01");
  EXPECT_TRUE(accept("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));  // not sampled: still a context
  EXPECT_TRUE(accept(" \t" + kParent + "\t "));                                     // optional white space
}

TEST(TraceContext, AnInvalidTraceparentIsIgnoredNotAnError) {
  for (const std::string& bad : std::vector<std::string>{
           "",
           "garbage",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // uppercase
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",   // uppercase parent
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // all-zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // all-zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
           "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // short version
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",    // short trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",    // short parent id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",    // short flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",   // not hex
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",   // other separators
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // version 00 is exactly 55
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.extra",
           "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.extra",  // later version: '-' after flags
           kParent + "," + kParent,                                          // sent twice
       }) {
    EXPECT_FALSE(accept(bad, "vendor=kept-only-with-a-parent")) << bad;
  }
}

TEST(TraceContext, ALaterVersionIsReadAsVersion00) {
  auto c = accept("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-adds");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->traceparent, kParent);
  EXPECT_TRUE(accept("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09"));
}

TEST(TraceContext, TracestateKeepsValidMembersInOrderAndDropsABadOneWhole) {
  EXPECT_EQ(state_of("a=1, b=2 ,\tc=3"), "a=1,b=2,c=3");
  EXPECT_EQ(state_of("a=1,,  ,b=2"), "a=1,b=2");  // empty members go
  EXPECT_EQ(state_of("tenant1@system=x,t-2_*/x=y"), "tenant1@system=x,t-2_*/x=y");
  EXPECT_EQ(state_of("0tenant@sys=v"), "0tenant@sys=v");  // a tenant id may start with a digit
  EXPECT_EQ(state_of("a=value with spaces"), "a=value with spaces");
  for (const std::string& bad : std::vector<std::string>{"Upper=1", "1simple=1", "a=1,a=2", "a", "a=", "=1", "a=b=c", "a=\x01", "a=é",
                                "t@Sys=1", "t@s0123456789abcd=1", "@s=1", "t@=1"}) {
    EXPECT_EQ(state_of("ok=1," + bad), "") << bad;  // the whole tracestate goes, the traceparent stays
  }
  std::string many;
  for (int i = 0; i < 32; ++i) many += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
  EXPECT_EQ(state_of(many), many);
  EXPECT_EQ(state_of(many + ",k32=v"), "");  // more than 32 members
}

TEST(TraceContext, ALongTracestateIsCutToWholeMembersLongestFirst) {
  std::string long_member = "long=" + std::string(200, 'x');
  std::string small;  // 20 members, 470 characters
  for (int i = 0; i < 20; ++i) small += (i ? "," : "") + std::string("k") + std::to_string(i) + "=" + std::string(20, 'v');
  ASSERT_GT(small.size() + long_member.size(), kMaxTracestate);
  EXPECT_EQ(state_of(long_member + "," + small), small);  // the member over 128 characters went first
  std::string members;
  for (int i = 0; i < 30; ++i) members += (i ? "," : "") + std::string("k") + std::to_string(i) + "=" + std::string(20, 'v');
  std::string kept = state_of(members);
  EXPECT_LE(kept.size(), kMaxTracestate);
  EXPECT_EQ(members.rfind(kept, 0), 0u);  // whole members, from the start
  EXPECT_EQ(members[kept.size()], ',');
}

TEST(TraceContext, AnAttemptNamesItsOwnSpanAsTheReceiversParent) {
  auto c = accept(kParent, "a=1");
  ASSERT_TRUE(c);
  EXPECT_EQ(span_id_hex(0xb7ad6b7169203331), "b7ad6b7169203331");
  EXPECT_EQ(span_id_hex(1), "0000000000000001");
  EXPECT_EQ(child_traceparent(*c, 0xb7ad6b7169203331), "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01");
}

TEST(AttemptSpans, AFullQueueDropsAndCounts) {
  Metrics metrics;
  AttemptSpanQueue queue(metrics);
  EXPECT_FALSE(queue.enabled());
  queue.enable(2);
  EXPECT_TRUE(queue.enabled());
  for (int i = 1; i <= 3; ++i) {
    AttemptSpan span;
    span.attempt.number = i;
    queue.push(span);
  }
  EXPECT_EQ(metrics.attempt_spans_dropped.load(), 1u);
  auto first = queue.take(1, std::chrono::milliseconds(0));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].attempt.number, 1);  // oldest first
  auto rest = queue.take(10, std::chrono::milliseconds(0));
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].attempt.number, 2);
}

TEST(AttemptSpans, ATakeWaitsForTheFirstSpan) {
  Metrics metrics;
  AttemptSpanQueue queue(metrics);
  queue.enable(10);
  EXPECT_TRUE(queue.take(10, std::chrono::milliseconds(1)).empty());  // nothing came
  std::thread pusher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    queue.push(AttemptSpan{});
  });
  auto got = queue.take(10, std::chrono::seconds(30));  // woken by the push, long before 30 s
  pusher.join();
  EXPECT_EQ(got.size(), 1u);
}
