#pragma once
// What every fuzz target uses to state an invariant: a broken one is a crash, which libFuzzer
// reports with the input that caused it.
#include <cstdlib>

namespace brandhooks {

inline void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace brandhooks
