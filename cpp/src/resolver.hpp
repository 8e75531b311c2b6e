#pragma once
// Asynchronous name resolution with c-ares on one thread of its own: a name that resolves slowly
// delays only the requests that need it (getaddrinfo would hold a thread per name). /etc/hosts
// is read first (localhost keeps working), then the DNS servers: the system's
// (/etc/resolv.conf) or the ones configured.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "address_policy.hpp"

namespace brandhooks {

struct Resolved {
  std::vector<IpBytes> addresses;  // in the order to try them; IPv4 as ::ffff:a.b.c.d
  std::string error;               // empty on success, else why the name did not resolve
  bool timed_out = false;          // no DNS server answered in time
};

class Resolver {
 public:
  // `servers`: empty for the system's, or "host[:port],..." ("127.0.0.1:5353", "[::1]:53").
  // `timeout_ms`: how long a name may take in all (one retry after half of it). Throws
  // ValidationError on a malformed server list.
  Resolver(const std::string& servers, int timeout_ms);
  ~Resolver();  // stop()
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Starts resolving `host`; `done` runs once, on the resolver's thread. Thread-safe.
  void resolve(std::string host, std::function<void(Resolved)> done);

  // Ends the resolver's thread; what is still resolving ends with an error.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace brandhooks
