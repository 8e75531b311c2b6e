#pragma once
// The delivery HTTP client behind a small interface: the only translation unit that includes
// Boost.Beast is http_client.cpp. HTTP/1.1 and HTTPS (system CA store + optional CA file, SNI,
// host-name verification), a keep-alive pool per origin, connect and total timeouts, no
// redirects, the SSRF policy applied to every resolved address before connecting. Names resolve
// asynchronously (c-ares, resolver.hpp); responses are capped (kMaxResponseBytes) and only
// their first kCapturedResponseBytes are kept; idle connections close after a timeout.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "address_policy.hpp"
#include "brandhooks/model.hpp"
#include "validation.hpp"

namespace brandhooks {

struct HttpClientOptions {
  int connect_timeout_ms = 5000;
  int request_timeout_ms = 15000;
  int threads = 1;
  std::string ca_file;  // extra trusted CAs (PEM), besides the system store
  AddressPolicy policy{false, ""};
  std::string dns_servers;  // "host[:port],...", empty for the system's (/etc/resolv.conf)
  // Idle keep-alive connections: closed after idle_timeout_ms, at most max_idle_per_origin
  // per origin and max_idle_total in all (the longest idle close first).
  int idle_timeout_ms = 30000;
  std::size_t max_idle_per_origin = 64;
  std::size_t max_idle_total = 256;
};

// Where requests go, prepared once per URL: the parsed URL, the keep-alive pool's key, the
// Host header.
struct HttpTarget {
  explicit HttpTarget(Url parsed);
  Url url;
  std::string origin;
  std::string host;
};

struct HttpRequest {
  std::shared_ptr<const HttpTarget> target;  // shared by a webhook's requests
  std::string headers;                       // extra header lines, see add_header
  std::shared_ptr<const std::string> body;   // shared by every webhook of an event
};

// Appends "name: value\r\n" to HttpRequest::headers. Both must be valid already: a checked
// header name, and values without control characters.
inline void add_header(std::string& headers, std::string_view name, std::string_view value) {
  headers.append(name).append(": ").append(value).append("\r\n");
}

// What an attempt came to. `error` is none when a response (any status) was read.
struct HttpOutcome {
  int status = 0;
  AttemptError error = AttemptError::none;
  std::string detail;    // human-readable cause of `error`
  std::string response;  // the first 4 KiB of the response body
  std::optional<std::string> retry_after;
  std::int64_t duration_us = 0;
};

inline constexpr std::size_t kCapturedResponseBytes = 4096;
// A response whose body is larger fails the attempt ("protocol") and closes the connection;
// a declared Content-Length over it is refused before any of the body is read.
inline constexpr std::size_t kMaxResponseBytes = 1 << 20;

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);
  ~HttpClient();  // stop()
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts one request; `done` runs on a client thread when it ends. Thread-safe.
  void send(HttpRequest request, std::function<void(HttpOutcome)> done);

  // Abandons what is still running (its `done` is never called) and joins the threads.
  void stop();

  // Keep-alive connections waiting in the pool (for tests and metrics).
  std::size_t idle_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace brandhooks
