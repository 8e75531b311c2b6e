#pragma once
#include <chrono>
#include <cstdint>

namespace brandhooks {

// Wall-clock Unix time in microseconds (what the contract's float timestamps show).
inline std::int64_t now_micros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace brandhooks
