#include "attempt_spans.hpp"

#include <algorithm>
#include <iterator>

namespace brandhooks {

void AttemptSpanQueue::enable(std::size_t capacity) {
  std::lock_guard lock(mutex_);
  capacity_ = capacity;
  enabled_.store(true, std::memory_order_relaxed);
}

void AttemptSpanQueue::push(AttemptSpan span) {
  {
    std::lock_guard lock(mutex_);
    if (spans_.size() >= capacity_) {
      ++metrics_.attempt_spans_dropped;
      return;
    }
    spans_.push_back(std::move(span));
  }
  ready_.notify_one();
}

std::vector<AttemptSpan> AttemptSpanQueue::take(std::size_t max, std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, wait, [&] { return !spans_.empty(); });
  std::size_t n = std::min(max, spans_.size());
  std::vector<AttemptSpan> out(std::make_move_iterator(spans_.begin()), std::make_move_iterator(spans_.begin() + static_cast<std::ptrdiff_t>(n)));
  spans_.erase(spans_.begin(), spans_.begin() + static_cast<std::ptrdiff_t>(n));
  return out;
}

}  // namespace brandhooks
