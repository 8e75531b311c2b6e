#include "address_policy.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "brandhooks/errors.hpp"

namespace brandhooks {

IpBytes ipv4_bytes(std::uint32_t v) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, static_cast<std::uint8_t>(v >> 24),
          static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
          static_cast<std::uint8_t>(v)};
}

bool parse_ip(std::string_view text, IpBytes& out) {
  // inet_pton reads a C string: an embedded NUL would hide whatever follows it.
  if (text.find('\0') != std::string_view::npos) return false;
  std::string s(text);
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out = ipv4_bytes(ntohl(v4.s_addr));
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return true;
  }
  return false;
}

namespace {
struct Range {
  const char* network;
  int prefix;  // IPv4 prefixes are given over 32 bits
};

// IPv4 special-purpose ranges (IANA registry) that a webhook must not reach by default.
constexpr Range kV4[] = {
    {"0.0.0.0", 8},       {"10.0.0.0", 8},      {"100.64.0.0", 10},   {"127.0.0.0", 8},
    {"169.254.0.0", 16},  {"172.16.0.0", 12},   {"192.0.0.0", 24},    {"192.0.2.0", 24},
    {"192.88.99.0", 24},  {"192.168.0.0", 16},  {"198.18.0.0", 15},   {"198.51.100.0", 24},
    {"203.0.113.0", 24},  {"224.0.0.0", 4},     {"240.0.0.0", 4},
};
// IPv6 ones (IPv4-mapped addresses are checked as IPv4).
constexpr Range kV6[] = {
    {"::", 128},       {"::1", 128},       {"::", 96},          {"64:ff9b::", 96},
    {"64:ff9b:1::", 48}, {"100::", 64},    {"2001::", 23},      {"2001:db8::", 32},
    {"2002::", 16},    {"fc00::", 7},      {"fe80::", 10},      {"fec0::", 10},
    {"ff00::", 8},
};

bool is_v4_mapped(const IpBytes& a) {
  static constexpr std::uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), kPrefix, 12) == 0;
}
}  // namespace

bool AddressPolicy::contains(const Cidr& cidr, const IpBytes& a) {
  int full = cidr.prefix / 8, rest = cidr.prefix % 8;
  if (std::memcmp(cidr.network.data(), a.data(), static_cast<std::size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (cidr.network[static_cast<std::size_t>(full)] & mask) == (a[static_cast<std::size_t>(full)] & mask);
}

bool AddressPolicy::is_special(const IpBytes& a) {
  IpBytes network;
  if (is_v4_mapped(a)) {
    for (const auto& r : kV4) {
      parse_ip(r.network, network);
      if (contains({network, 96 + r.prefix}, a)) return true;
    }
    return a == ipv4_bytes(0xffffffff);
  }
  for (const auto& r : kV6) {
    parse_ip(r.network, network);
    if (contains({network, r.prefix}, a)) return true;
  }
  return false;
}

AddressPolicy::AddressPolicy(bool allow_private, std::string_view cidrs)
    : allow_private_(allow_private) {
  std::size_t pos = 0;
  while (pos < cidrs.size()) {
    std::size_t comma = cidrs.find(',', pos);
    std::string_view item = cidrs.substr(pos, comma - pos);
    pos = comma == std::string_view::npos ? cidrs.size() : comma + 1;
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;

    std::size_t slash = item.find('/');
    Cidr cidr{};
    if (!parse_ip(item.substr(0, slash), cidr.network)) {
      throw ValidationError("allow_cidrs: not an IP network: " + std::string(item));
    }
    bool v4 = is_v4_mapped(cidr.network) && item.find(':') == std::string_view::npos;
    int max = v4 ? 32 : 128, prefix = max;
    if (slash != std::string_view::npos) {
      std::string_view digits = item.substr(slash + 1);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
      if (ec != std::errc() || end != digits.data() + digits.size() || prefix < 0 || prefix > max) {
        throw ValidationError("allow_cidrs: bad prefix length in " + std::string(item));
      }
    }
    cidr.prefix = v4 ? 96 + prefix : prefix;
    allow_.push_back(cidr);
  }
}

bool AddressPolicy::allowed(const IpBytes& address) const {
  if (allow_private_ || !is_special(address)) return true;
  for (const auto& cidr : allow_) {
    if (contains(cidr, address)) return true;
  }
  return false;
}

}  // namespace brandhooks
