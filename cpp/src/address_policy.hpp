#pragma once
// SSRF guard: which resolved addresses a delivery may connect to. The HTTP client applies it
// to every address it resolves, so the check is on the address actually connected to.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace brandhooks {

// An IP address as 16 bytes; IPv4 as the IPv4-mapped IPv6 form ::ffff:a.b.c.d.
using IpBytes = std::array<std::uint8_t, 16>;

IpBytes ipv4_bytes(std::uint32_t host_order);
// Parses a textual IPv4 or IPv6 address; false when it is neither.
bool parse_ip(std::string_view text, IpBytes& out);

class AddressPolicy {
 public:
  // `allow_cidrs`: comma-separated CIDRs allowed even though not public. Throws
  // ValidationError on a malformed entry.
  AddressPolicy(bool allow_private, std::string_view allow_cidrs);

  bool allowed(const IpBytes& address) const;

  // Loopback, private, link-local, CGNAT, multicast, documentation and other reserved ranges.
  static bool is_special(const IpBytes& address);

 private:
  struct Cidr {
    IpBytes network;
    int prefix;  // over the 128-bit form
  };
  static bool contains(const Cidr& cidr, const IpBytes& address);

  bool allow_private_;
  std::vector<Cidr> allow_;
};

}  // namespace brandhooks
