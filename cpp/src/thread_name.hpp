#pragma once
// Names the calling thread (as `top -H`, `ps -L` and perf show it); at most 15 characters.
#if defined(__linux__)
#include <pthread.h>
#endif

namespace brandhooks {

inline void name_this_thread(const char* name) {
#if defined(__linux__)
  pthread_setname_np(pthread_self(), name);
#else
  (void)name;
#endif
}

}  // namespace brandhooks
