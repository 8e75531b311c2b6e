// The one translation unit that includes Boost.Beast (it is costly to compile).
#include <utility>  // before asio/awaitable.hpp: Boost 1.74 + GCC 12 need it

#include "http_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/x509v3.h>

#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "brandhooks/errors.hpp"
#include "thread_name.hpp"

namespace brandhooks {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxResponseBytes = 1 << 20;  // larger bodies end the connection
constexpr auto kMaxIdle = std::chrono::seconds(30);  // older idle connections are not reused

// Coroutines and streams on the io_context's own executor type: the type-erased default
// (any_io_executor) showed up per operation in profiles.
using Executor = asio::io_context::executor_type;
template <class T>
using Task = asio::awaitable<T, Executor>;
constexpr asio::use_awaitable_t<Executor> use_task;
using TcpStream = beast::basic_stream<tcp, Executor>;

// One keep-alive connection: plain TCP or TLS over TCP.
struct Connection {
  std::unique_ptr<TcpStream> plain;
  std::unique_ptr<beast::ssl_stream<TcpStream>> tls;
  beast::flat_buffer buffer;
  Clock::time_point idle_since;

  TcpStream& tcp() { return plain ? *plain : beast::get_lowest_layer(*tls); }
};

std::string host_header(const Url& url) {
  bool v6 = url.host.find(':') != std::string::npos;
  std::string host = v6 ? "[" + url.host + "]" : url.host;
  bool default_port = (url.scheme == "https" && url.port == 443) || (url.scheme == "http" && url.port == 80);
  return default_port ? host : host + ":" + std::to_string(url.port);
}

IpBytes bytes_of(const asio::ip::address& a) {
  if (a.is_v4()) return ipv4_bytes(a.to_v4().to_uint());
  IpBytes out;
  auto v6 = a.to_v6().to_bytes();
  std::copy(v6.begin(), v6.end(), out.begin());
  return out;
}

}  // namespace

struct HttpClient::Impl {
  explicit Impl(HttpClientOptions opts)
      : options(std::move(opts)), tls_context(ssl::context::tls_client), work(asio::make_work_guard(io)) {
    tls_context.set_default_verify_paths();
    if (!options.ca_file.empty()) {
      error_code ec;
      tls_context.load_verify_file(options.ca_file, ec);
      if (ec) throw ValidationError("ca_file: cannot load " + options.ca_file + ": " + ec.message());
    }
    tls_context.set_verify_mode(ssl::verify_peer);
    tls_context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                            ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    for (int i = 0; i < std::max(1, options.threads); ++i) {
      threads.emplace_back([this] {
        name_this_thread("bh-http");
        io.run();
      });
    }
  }

  // --- the pool ----------------------------------------------------------------------------
  std::unique_ptr<Connection> take(const std::string& origin) {
    std::lock_guard lock(pool_mutex);
    auto& idle = pool[origin];
    while (!idle.empty()) {
      auto conn = std::move(idle.back());
      idle.pop_back();
      if (Clock::now() - conn->idle_since < kMaxIdle) return conn;
    }
    return nullptr;
  }

  void give_back(const std::string& origin, std::unique_ptr<Connection> conn) {
    conn->idle_since = Clock::now();
    std::lock_guard lock(pool_mutex);
    auto& idle = pool[origin];
    if (idle.size() < options.max_idle_per_origin) idle.push_back(std::move(conn));
  }

  // --- one attempt ---------------------------------------------------------------------------
  Task<std::unique_ptr<Connection>> connect(const HttpTarget& target, Clock::time_point deadline,
                                            HttpOutcome& out) {
    const Url& url = target.url;
    auto executor = co_await asio::this_coro::executor;
    auto connect_deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(options.connect_timeout_ms));
    error_code ec;

    // Resolve, with the connect timeout (the resolver has none of its own).
    tcp::resolver resolver(executor);
    asio::steady_timer timer(executor, connect_deadline);
    bool resolve_timed_out = false;
    timer.async_wait([&](error_code e) {
      if (!e) {
        resolve_timed_out = true;
        resolver.cancel();
      }
    });
    auto results = co_await resolver.async_resolve(url.host, std::to_string(url.port),
                                                   asio::redirect_error(use_task, ec));
    timer.cancel();
    if (ec) {
      out.error = resolve_timed_out ? "timeout" : "dns";
      out.detail = "cannot resolve " + url.host + ": " + ec.message();
      co_return nullptr;
    }

    // The SSRF policy applies to the addresses we are about to connect to.
    std::vector<tcp::endpoint> allowed;
    for (const auto& entry : results) {
      if (options.policy.allowed(bytes_of(entry.endpoint().address()))) allowed.push_back(entry.endpoint());
    }
    if (allowed.empty()) {
      out.error = "blocked";
      out.detail = url.host + " resolves only to loopback, private or reserved addresses, which deliveries may "
                   "not reach (allow them with --allow-private or --allow-cidrs)";
      co_return nullptr;
    }

    auto conn = std::make_unique<Connection>();
    if (url.scheme == "https") {
      conn->tls = std::make_unique<beast::ssl_stream<TcpStream>>(io.get_executor(), tls_context);
    } else {
      conn->plain = std::make_unique<TcpStream>(io.get_executor());
    }
    conn->tcp().expires_at(connect_deadline);
    co_await conn->tcp().async_connect(allowed, asio::redirect_error(use_task, ec));
    if (ec) {
      out.error = ec == beast::error::timeout ? "timeout" : "connect";
      out.detail = "cannot connect to " + target.host + ": " + ec.message();
      co_return nullptr;
    }
    conn->tcp().socket().set_option(tcp::no_delay(true), ec);

    if (conn->tls) {
      SSL* handle = conn->tls->native_handle();
      IpBytes literal;
      if (parse_ip(url.host, literal)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), url.host.c_str());
      } else {
        SSL_set_tlsext_host_name(handle, url.host.c_str());
        SSL_set1_host(handle, url.host.c_str());
      }
      conn->tcp().expires_at(deadline);
      co_await conn->tls->async_handshake(ssl::stream_base::client,
                                          asio::redirect_error(use_task, ec));
      if (ec) {
        out.error = ec == beast::error::timeout ? "timeout" : "tls";
        out.detail = "TLS handshake with " + target.host + " failed: " + ec.message();
        co_return nullptr;
      }
    }
    co_return conn;
  }

  // The request head, written directly: every part is known to be valid (a parsed URL, a
  // checked header name, values of hex, base64, digits and ids), and Beast's generic
  // serializer cost more per delivery than the rest of the exchange.
  static std::string request_head(const HttpRequest& request) {
    const HttpTarget& target = *request.target;
    std::string head;
    head.reserve(128 + target.url.target.size() + target.host.size() + request.headers.size());
    head.append("POST ").append(target.url.target).append(" HTTP/1.1\r\nHost: ").append(target.host);
    head.append("\r\nUser-Agent: brandhooks/0.1\r\nContent-Type: application/json\r\nContent-Length: ");
    head.append(std::to_string(request.body->size())).append("\r\n");
    head.append(request.headers).append("\r\n");
    return head;
  }

  template <class Stream>
  Task<bool> exchange(Stream& stream, Connection& conn, const HttpRequest& request, const std::string& head,
                      Clock::time_point deadline, HttpOutcome& out, bool& got_bytes, bool& keep_alive) {
    error_code ec;
    conn.tcp().expires_at(deadline);
    std::array<asio::const_buffer, 2> parts{asio::buffer(head), asio::buffer(*request.body)};
    co_await asio::async_write(stream, parts, asio::redirect_error(use_task, ec));
    if (!ec) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(kMaxResponseBytes);
      co_await http::async_read(stream, conn.buffer, parser, asio::redirect_error(use_task, ec));
      got_bytes = parser.got_some();
      // Over the body limit the status is known all the same; only the rest of the body (and
      // so the connection) is dropped.
      if (!ec || ec == http::error::body_limit) {
        auto& res = parser.get();
        out.status = static_cast<int>(res.result_int());
        out.response = res.body().substr(0, kCapturedResponseBytes);
        if (auto it = res.find(http::field::retry_after); it != res.end()) {
          out.retry_after = std::string(it->value());
        }
        keep_alive = !ec && res.keep_alive();
        co_return true;
      }
    }
    // Beast's parse errors share one category: the peer did not speak HTTP/1.1 properly.
    bool parse_error = ec.category() == http::make_error_code(http::error::bad_version).category() &&
                       ec != http::error::end_of_stream;
    out.error = ec == beast::error::timeout ? "timeout" : parse_error ? "protocol" : "network";
    out.detail = ec.message();
    co_return false;
  }

  Task<void> run(HttpRequest request, std::function<void(HttpOutcome)> done) {
    auto started = Clock::now();
    auto deadline = started + std::chrono::milliseconds(options.request_timeout_ms);
    HttpOutcome out;
    try {
      const std::string& origin = request.target->origin;
      std::string head = request_head(request);
      auto conn = take(origin);
      bool reused = conn != nullptr;
      while (true) {
        if (!conn) {
          conn = co_await connect(*request.target, deadline, out);
          if (!conn) break;
        }
        bool got_bytes = false, keep_alive = false, ok = false;
        if (conn->tls) {
          ok = co_await exchange(*conn->tls, *conn, request, head, deadline, out, got_bytes, keep_alive);
        } else {
          ok = co_await exchange(*conn->plain, *conn, request, head, deadline, out, got_bytes, keep_alive);
        }
        if (!ok && reused && !got_bytes && Clock::now() < deadline) {
          // A pooled connection the server had already closed: try once on a fresh one.
          out = HttpOutcome{};
          conn.reset();
          reused = false;
          continue;
        }
        if (ok && keep_alive) give_back(origin, std::move(conn));
        break;
      }
    } catch (const std::exception& e) {
      out.error = "network";
      out.detail = e.what();
    }
    out.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
    done(std::move(out));
  }

  void stop() {
    std::call_once(stopped, [this] {
      work.reset();
      io.stop();
      for (auto& t : threads) t.join();
      std::lock_guard lock(pool_mutex);
      pool.clear();
    });
  }

  HttpClientOptions options;
  asio::io_context io;
  ssl::context tls_context;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::vector<std::thread> threads;
  std::mutex pool_mutex;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> pool;
  std::once_flag stopped;
};

HttpTarget::HttpTarget(Url parsed)
    : url(std::move(parsed)),
      origin(url.scheme + "://" + url.host + ":" + std::to_string(url.port)),
      host(host_header(url)) {}

HttpClient::HttpClient(HttpClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpClient::~HttpClient() { stop(); }

void HttpClient::send(HttpRequest request, std::function<void(HttpOutcome)> done) {
  asio::co_spawn(impl_->io, impl_->run(std::move(request), std::move(done)), asio::detached);
}

void HttpClient::stop() { impl_->stop(); }

}  // namespace brandhooks
