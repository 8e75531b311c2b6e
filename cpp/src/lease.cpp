#include "lease.hpp"

#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <random>

namespace brandhooks {

std::string default_node_id() {
  std::array<char, 256> host{};
  std::string name = ::gethostname(host.data(), host.size() - 1) == 0 && host[0] != '\0' ? host.data() : "node";
  std::uint32_t start = std::random_device{}();
  std::array<char, 9> suffix{};
  std::snprintf(suffix.data(), suffix.size(), "%08x", start);
  return name + ":" + std::to_string(::getpid()) + ":" + suffix.data();
}

}  // namespace brandhooks
