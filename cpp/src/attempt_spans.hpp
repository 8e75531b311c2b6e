#pragma once
// Finished attempts of traced events on their way from the dispatcher's threads to an exporter
// of spans (brandhooks serve's OpenTelemetry thread, or a C++ program's own): a bounded queue
// that the exporter drains with a blocking take. The core never calls the exporter; when the
// queue is full, new spans are dropped and counted (Metrics::attempt_spans_dropped).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

#include "brandhooks/metrics.hpp"
#include "brandhooks/model.hpp"

namespace brandhooks {

class AttemptSpanQueue {
 public:
  explicit AttemptSpanQueue(Metrics& metrics) : metrics_(metrics) {}

  // Off until enabled: the dispatcher then makes a span of each traced attempt and push()es it.
  void enable(std::size_t capacity);
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  void push(AttemptSpan span);
  // Up to `max` spans, oldest first; waits up to `wait` for the first one.
  std::vector<AttemptSpan> take(std::size_t max, std::chrono::milliseconds wait);

 private:
  Metrics& metrics_;
  std::atomic<bool> enabled_{false};
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<AttemptSpan> spans_;
  std::size_t capacity_ = 0;
};

}  // namespace brandhooks
