#include "lease.hpp"

#include <unistd.h>

#include <array>

namespace brandhooks {

std::string default_node_id() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0 || host[0] == '\0') return "node:" + std::to_string(::getpid());
  return std::string(host.data()) + ":" + std::to_string(::getpid());
}

}  // namespace brandhooks
