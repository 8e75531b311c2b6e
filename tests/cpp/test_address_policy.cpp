#include <gtest/gtest.h>

#include "address_policy.hpp"
#include "brandhooks/errors.hpp"

using namespace brandhooks;

namespace {
IpBytes ip(const char* text) {
  IpBytes out{};
  EXPECT_TRUE(parse_ip(text, out)) << text;
  return out;
}
}  // namespace

TEST(AddressPolicy, BlocksSpecialRangesByDefault) {
  AddressPolicy policy(false, "");
  for (const char* blocked :
       {"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "224.0.0.1", "239.1.1.1",
        "240.0.0.1", "255.255.255.255", "192.0.2.10", "198.18.0.1", "::1", "::", "fe80::1",
        "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "2001:db8::1", "64:ff9b::a00:1"}) {
    EXPECT_FALSE(policy.allowed(ip(blocked))) << blocked;
  }
  for (const char* open : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "93.184.216.34",
                           "2606:4700:4700::1111", "::ffff:8.8.8.8"}) {
    EXPECT_TRUE(policy.allowed(ip(open))) << open;
  }
}

TEST(AddressPolicy, AllowPrivateOpensEverything) {
  AddressPolicy policy(true, "");
  EXPECT_TRUE(policy.allowed(ip("127.0.0.1")));
  EXPECT_TRUE(policy.allowed(ip("::1")));
}

TEST(AddressPolicy, AllowListOpensOnlyItsNetworks) {
  AddressPolicy policy(false, "127.0.0.1/32, 10.2.0.0/16,fd00::/8");
  EXPECT_TRUE(policy.allowed(ip("127.0.0.1")));
  EXPECT_FALSE(policy.allowed(ip("127.0.0.2")));
  EXPECT_TRUE(policy.allowed(ip("10.2.200.1")));
  EXPECT_FALSE(policy.allowed(ip("10.3.0.1")));
  EXPECT_TRUE(policy.allowed(ip("fd12::1")));
  EXPECT_FALSE(policy.allowed(ip("fe80::1")));
}

TEST(AddressPolicy, MalformedAllowListIsRefused) {
  EXPECT_THROW(AddressPolicy(false, "not-an-ip"), ValidationError);
  EXPECT_THROW(AddressPolicy(false, "10.0.0.0/33"), ValidationError);
  EXPECT_THROW(AddressPolicy(false, "10.0.0.0/x"), ValidationError);
  EXPECT_THROW(AddressPolicy(false, "::/129"), ValidationError);
}

// Found by fuzz_url_policy: inet_pton stopped at an embedded NUL, so "10.0.0.1\0junk" parsed.
TEST(AddressPolicy, EmbeddedNulIsNotAnAddress) {
  IpBytes out;
  EXPECT_FALSE(parse_ip(std::string_view("10.0.0.1\0junk", 13), out));
  EXPECT_FALSE(parse_ip(std::string_view("::1\0", 4), out));
  EXPECT_THROW(AddressPolicy(false, std::string_view("10.0.0.1\0/8", 11)), ValidationError);
}
