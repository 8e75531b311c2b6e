// URL parsing and the SSRF address policy: any text is either a ValidationError or a URL whose
// parts delivery can use; any address or CIDR list either parses or is refused, and an address
// is always allowed by a policy that lists it.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <string>

#include "address_policy.hpp"
#include "brandhooks/errors.hpp"
#include "fuzz_check.hpp"
#include "validation.hpp"

using namespace brandhooks;

namespace {
void url(const std::string& text) {
  Url parsed;
  try {
    parsed = parse_url(text);
  } catch (const ValidationError&) {
    return;
  }
  check(text.size() <= kMaxUrlLength);
  check(parsed.scheme == "http" || parsed.scheme == "https");
  check(!parsed.host.empty());
  check(parsed.port != 0);
  check(!parsed.target.empty() && parsed.target.front() == '/');
  check(parsed.target.find('#') == std::string::npos);
  for (char c : parsed.host + parsed.target) check(static_cast<unsigned char>(c) > 0x20 && c != 0x7f);
  IpBytes address;
  if (parse_ip(parsed.host, address)) {
    check(AddressPolicy(true, "").allowed(address));
    check(AddressPolicy(false, "").allowed(address) == !AddressPolicy::is_special(address));
  }
}

void policy(const std::string& cidrs, const std::string& ip) {
  try {
    AddressPolicy with(false, cidrs);
    IpBytes address;
    if (parse_ip(ip, address)) {
      bool allowed = with.allowed(address);
      if (!AddressPolicy::is_special(address)) check(allowed);
    }
  } catch (const ValidationError&) {
  }
  IpBytes address;
  if (parse_ip(ip, address)) {
    // The address alone, and as its own host network, is allowed however special it is.
    bool v6 = ip.find(':') != std::string::npos;
    check(AddressPolicy(false, ip).allowed(address));
    check(AddressPolicy(false, ip + (v6 ? "/128" : "/32")).allowed(address));
    check(AddressPolicy(false, " " + ip + " ,").allowed(address));
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  std::string first = in.ConsumeRandomLengthString(4096);
  std::string second = in.ConsumeRemainingBytesAsString();
  url(first);
  url(second);
  policy(first, second);
  return 0;
}
