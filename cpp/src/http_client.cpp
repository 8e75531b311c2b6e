// The one translation unit that includes Boost.Beast (it is costly to compile).
#include <utility>  // before asio/awaitable.hpp: Boost 1.74 + GCC 12 need it

#include "http_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "brandhooks/errors.hpp"
#include "resolver.hpp"
#include "brandhooks/version.hpp"
#include "system_cas.hpp"
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

constexpr std::size_t kReadBufferBytes = 64 * 1024;  // a header is at most 8 KiB

// Every request runs on a strand, and so do its connection's streams and timers: with several
// client threads, Beast's stream timer and the request code would otherwise race. A concrete
// executor type rather than the type-erased default (any_io_executor showed up per operation
// in profiles).
using Executor = asio::strand<asio::io_context::executor_type>;
template <class T>
using Task = asio::awaitable<T, Executor>;
constexpr asio::use_awaitable_t<Executor> use_task;
using TcpStream = beast::basic_stream<tcp, Executor>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;

// One keep-alive connection: plain TCP or TLS over TCP. A pooled connection keeps its strand:
// the next request on it runs there too, and so does its closing.
struct Connection {
  explicit Connection(Executor executor) : strand(std::move(executor)) {}
  Executor strand;
  std::unique_ptr<TcpStream> plain;
  std::unique_ptr<beast::ssl_stream<TcpStream>> tls;
  beast::flat_buffer buffer{kReadBufferBytes};

  TcpStream& tcp() { return plain ? *plain : beast::get_lowest_layer(*tls); }
};
using ConnectionPtr = std::shared_ptr<Connection>;

// A response body that keeps its first kCapturedResponseBytes (what the attempt log stores)
// and reads the rest away: a 1 MiB answer costs 4 KiB, not 1 MiB.
struct CapturedBody {
  using value_type = std::string;

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>&, error_code& ec) { ec = {}; }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, error_code& ec) {
      ec = {};
      std::size_t total = 0;
      for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
        asio::const_buffer piece = *it;
        std::size_t room = kCapturedResponseBytes - std::min(kCapturedResponseBytes, body_.size());
        body_.append(static_cast<const char*>(piece.data()), std::min(room, piece.size()));
        total += piece.size();
      }
      return total;
    }

    void finish(error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

std::string host_header(const Url& url) {
  bool v6 = url.host.find(':') != std::string::npos;
  std::string host = v6 ? "[" + url.host + "]" : url.host;
  bool default_port = (url.scheme == "https" && url.port == 443) || (url.scheme == "http" && url.port == 80);
  return default_port ? host : host + ":" + std::to_string(url.port);
}

asio::ip::address address_of(const IpBytes& bytes) {
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(std::begin(kMapped), std::end(kMapped), bytes.begin())) {
    return asio::ip::address_v4({bytes[12], bytes[13], bytes[14], bytes[15]});
  }
  asio::ip::address_v6::bytes_type v6;
  std::copy(bytes.begin(), bytes.end(), v6.begin());
  return asio::ip::address_v6(v6);
}

// Why an address was refused, and how an operator allows it.
std::string blocked_detail(const Url& url, const std::vector<asio::ip::address>& refused) {
  std::string list;
  for (const auto& a : refused) list += (list.empty() ? "" : ", ") + a.to_string();
  const auto& first = refused.front();
  std::string cidr = first.to_string() + (first.is_v4() ? "/32" : "/128");
  std::string what = refused.size() == 1 && list == url.host
                         ? url.host + " is a loopback, private or reserved address"
                         : url.host + " resolves only to loopback, private or reserved addresses (" + list + ")";
  return what + ", where deliveries may not go; to deliver there, start brandhooks with --allow-private, or --allow-cidrs " +
         cidr + " for this address alone (Config allow_private, allow_cidrs)";
}

}  // namespace

struct HttpClient::Impl {
  explicit Impl(HttpClientOptions opts)
      : options(std::move(opts)),
        tls_context(ssl::context::tls_client),
        work(asio::make_work_guard(io)),
        reaper(asio::make_strand(io)),
        resolver(options.dns_servers, options.connect_timeout_ms) {
    load_system_cas(tls_context.native_handle());
    if (!options.ca_file.empty()) {
      error_code ec;
      tls_context.load_verify_file(options.ca_file, ec);
      if (ec) throw ValidationError("ca_file: cannot load " + options.ca_file + ": " + ec.message());
    }
    tls_context.set_verify_mode(ssl::verify_peer);
    tls_context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                            ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    reap_later();
    for (int i = 0; i < std::max(1, options.threads); ++i) {
      threads.emplace_back([this] {
        name_this_thread("bh-http");
        io.run();
      });
    }
  }

  // --- the pool of idle connections ----------------------------------------------------------
  // One list, longest idle first, and per origin the positions in it, newest last: a request
  // takes its origin's newest, the reaper and the total cap close the oldest.
  struct Idle {
    std::string origin;
    ConnectionPtr conn;
    Clock::time_point since;
  };
  using IdleList = std::list<Idle>;

  std::chrono::milliseconds idle_timeout() const { return std::chrono::milliseconds(options.idle_timeout_ms); }

  // A connection is closed on its own strand, where Beast's timers may still hold it.
  static void close(std::vector<ConnectionPtr>& conns) {
    for (auto& conn : conns) {
      Executor strand = conn->strand;
      asio::post(strand, [c = std::move(conn)]() mutable { c.reset(); });
    }
    conns.clear();
  }

  // Removes the oldest idle connection (the lock held), adding it to `closing`.
  void drop_oldest(std::vector<ConnectionPtr>& closing) {
    auto it = idle.begin();
    auto& positions = idle_by_origin[it->origin];
    positions.pop_front();  // the oldest of its origin too
    if (positions.empty()) idle_by_origin.erase(it->origin);
    closing.push_back(std::move(it->conn));
    idle.erase(it);
  }

  ConnectionPtr take(const std::string& origin) {
    std::vector<ConnectionPtr> closing;
    ConnectionPtr found;
    {
      std::lock_guard lock(pool_mutex);
      auto entry = idle_by_origin.find(origin);
      if (entry == idle_by_origin.end()) return nullptr;
      auto& positions = entry->second;
      auto now = Clock::now();
      while (!positions.empty() && !found) {
        auto it = positions.back();
        positions.pop_back();
        if (now - it->since < idle_timeout()) {
          found = std::move(it->conn);
        } else {
          closing.push_back(std::move(it->conn));
        }
        idle.erase(it);
      }
      if (positions.empty()) idle_by_origin.erase(entry);
    }
    close(closing);
    return found;
  }

  void give_back(const std::string& origin, ConnectionPtr conn) {
    std::vector<ConnectionPtr> closing;
    {
      std::lock_guard lock(pool_mutex);
      auto& positions = idle_by_origin[origin];
      if (positions.size() < options.max_idle_per_origin) {
        positions.push_back(idle.insert(idle.end(), Idle{origin, std::move(conn), Clock::now()}));
      } else {
        closing.push_back(std::move(conn));
      }
      if (positions.empty()) idle_by_origin.erase(origin);
      while (idle.size() > options.max_idle_total) drop_oldest(closing);
    }
    close(closing);
  }

  // Closes the connections idle for idle_timeout, checking a few times per timeout (at most
  // once a second), so that an idle socket is gone shortly after its timeout even if no request
  // ever goes to its origin again.
  void reap_later() {
    auto every = std::chrono::milliseconds(std::clamp(options.idle_timeout_ms / 4, 10, 1000));
    reaper.expires_after(every);
    reaper.async_wait([this](error_code ec) {
      if (ec) return;
      std::vector<ConnectionPtr> closing;
      {
        std::lock_guard lock(pool_mutex);
        auto now = Clock::now();
        while (!idle.empty() && now - idle.front().since >= idle_timeout()) drop_oldest(closing);
      }
      close(closing);
      reap_later();
    });
  }

  // --- one attempt ---------------------------------------------------------------------------
  // The addresses of `host`, resolved on the resolver's thread and handed back to this
  // request's strand; nullopt when `deadline` comes first.
  Task<std::optional<Resolved>> resolve(const std::string& host, Clock::time_point deadline) {
    struct Wait {
      explicit Wait(Executor executor) : timer(std::move(executor)) {}
      Timer timer;
      std::optional<Resolved> answer;
    };
    auto executor = co_await asio::this_coro::executor;
    auto wait = std::make_shared<Wait>(executor);
    wait->timer.expires_at(deadline);
    resolver.resolve(host, [wait, executor](Resolved answer) {
      asio::post(executor, [wait, answer = std::move(answer)]() mutable {
        wait->answer = std::move(answer);
        wait->timer.cancel();
      });
    });
    // The answer is posted to this strand, so it cannot arrive before this wait begins.
    error_code ec;
    co_await wait->timer.async_wait(asio::redirect_error(use_task, ec));
    co_return std::move(wait->answer);
  }

  Task<ConnectionPtr> connect(const HttpTarget& target, Clock::time_point deadline, HttpOutcome& out) {
    const Url& url = target.url;
    auto executor = co_await asio::this_coro::executor;
    auto connect_deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(options.connect_timeout_ms));
    error_code ec;

    // Resolve (an IP literal needs nothing), within the connect timeout.
    std::vector<IpBytes> addresses(1);
    if (!parse_ip(url.host, addresses[0])) {
      auto resolved = co_await resolve(url.host, connect_deadline);
      if (!resolved || resolved->timed_out) {
        out.error = AttemptError::timeout;
        out.detail = "cannot resolve " + url.host + ": no answer within the connect timeout";
        co_return nullptr;
      }
      if (!resolved->error.empty()) {
        out.error = AttemptError::dns;
        out.detail = "cannot resolve " + url.host + ": " + resolved->error;
        co_return nullptr;
      }
      addresses = std::move(resolved->addresses);
    }

    // The SSRF policy applies to the addresses we are about to connect to.
    std::vector<tcp::endpoint> allowed;
    std::vector<asio::ip::address> refused;
    for (const auto& bytes : addresses) {
      if (options.policy.allowed(bytes)) {
        allowed.emplace_back(address_of(bytes), url.port);
      } else {
        refused.push_back(address_of(bytes));
      }
    }
    if (allowed.empty()) {
      out.error = AttemptError::blocked;
      out.detail = blocked_detail(url, refused);
      co_return nullptr;
    }

    auto conn = std::make_shared<Connection>(executor);
    if (url.scheme == "https") {
      conn->tls = std::make_unique<beast::ssl_stream<TcpStream>>(executor, tls_context);
    } else {
      conn->plain = std::make_unique<TcpStream>(executor);
    }
    conn->tcp().expires_at(connect_deadline);
    co_await conn->tcp().async_connect(allowed, asio::redirect_error(use_task, ec));
    if (ec) {
      out.error = ec == beast::error::timeout ? AttemptError::timeout : AttemptError::connect;
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
        out.error = ec == beast::error::timeout ? AttemptError::timeout : AttemptError::tls;
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
    head.append("\r\nUser-Agent: brandhooks/" BRANDHOOKS_VERSION "\r\nContent-Type: application/json\r\nContent-Length: ");
    head.append(std::to_string(request.body->size())).append("\r\n");
    head.append(request.headers).append("\r\n");
    return head;
  }

  // Sends the request and reads the response: the header first, so that a declared length over
  // kMaxResponseBytes is refused before any of the body is read (Boost 1.74's eager parser
  // loses that error when body bytes come in the header's packet), then the body under the
  // same limit (chunked, or up to the connection's end), keeping only what is stored.
  template <class Stream>
  Task<bool> exchange(Stream& stream, Connection& conn, const HttpRequest& request, const std::string& head,
                      Clock::time_point deadline, HttpOutcome& out, bool& got_bytes, bool& keep_alive) {
    error_code ec;
    conn.tcp().expires_at(deadline);
    std::array<asio::const_buffer, 2> parts{asio::buffer(head), asio::buffer(*request.body)};
    co_await asio::async_write(stream, parts, asio::redirect_error(use_task, ec));
    if (!ec) {
      http::response_parser<CapturedBody> parser;
      // Checked below, once the header is known (not boost::none: Boost 1.74 then refuses
      // every Content-Length).
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      co_await http::async_read_header(stream, conn.buffer, parser, asio::redirect_error(use_task, ec));
      got_bytes = parser.got_some();
      if (!ec) {
        auto& res = parser.get();
        auto status = [&res] { return "status " + std::to_string(res.result_int()); };  // errors only
        if (auto length = parser.content_length(); length && *length > kMaxResponseBytes) {
          out.error = AttemptError::protocol;
          out.detail = status() + ", but the response body declares " + std::to_string(*length) +
                       " bytes, over the 1 MiB limit: not read, connection closed";
          co_return false;
        }
        parser.body_limit(kMaxResponseBytes);
        co_await http::async_read(stream, conn.buffer, parser, asio::redirect_error(use_task, ec));
        if (ec == http::error::body_limit) {
          out.error = AttemptError::protocol;
          out.detail = status() + ", but the response body is over the 1 MiB limit: connection closed";
          co_return false;
        }
        if (!ec) {
          out.status = static_cast<int>(res.result_int());
          out.response = std::move(res.body());
          if (auto it = res.find(http::field::retry_after); it != res.end()) {
            out.retry_after = std::string(it->value());
          }
          keep_alive = res.keep_alive();
          co_return true;
        }
      }
    }
    // Beast's parse errors share one category: the peer did not speak HTTP/1.1 properly.
    bool parse_error = ec.category() == http::make_error_code(http::error::bad_version).category() &&
                       ec != http::error::end_of_stream;
    out.error = ec == beast::error::timeout ? AttemptError::timeout
                : parse_error                   ? AttemptError::protocol
                                                : AttemptError::network;
    out.detail = ec.message();
    co_return false;
  }

  // Runs on `conn`'s strand when a pooled connection was taken, else on a new strand.
  Task<void> run(HttpRequest request, ConnectionPtr conn, std::function<void(HttpOutcome)> done) {
    auto started = Clock::now();
    auto deadline = started + std::chrono::milliseconds(options.request_timeout_ms);
    HttpOutcome out;
    try {
      const std::string& origin = request.target->origin;
      std::string head = request_head(request);
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
      out.error = AttemptError::network;
      out.detail = e.what();
    }
    out.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
    done(std::move(out));
  }

  void send(HttpRequest request, std::function<void(HttpOutcome)> done) {
    auto conn = take(request.target->origin);
    Executor strand = conn ? conn->strand : asio::make_strand(io);
    asio::co_spawn(strand, run(std::move(request), std::move(conn), std::move(done)), asio::detached);
  }

  std::size_t idle_count() {
    std::lock_guard lock(pool_mutex);
    return idle.size();
  }

  void stop() {
    std::call_once(stopped, [this] {
      work.reset();
      io.stop();
      for (auto& t : threads) t.join();
      resolver.stop();  // its last answers go to the stopped io_context, which drops them
      std::lock_guard lock(pool_mutex);
      idle_by_origin.clear();
      idle.clear();
    });
  }

  HttpClientOptions options;
  asio::io_context io;
  ssl::context tls_context;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  Timer reaper;
  Resolver resolver;
  std::vector<std::thread> threads;
  std::mutex pool_mutex;
  IdleList idle;
  std::unordered_map<std::string, std::deque<IdleList::iterator>> idle_by_origin;
  std::once_flag stopped;
};

HttpTarget::HttpTarget(Url parsed)
    : url(std::move(parsed)),
      origin(url.scheme + "://" + url.host + ":" + std::to_string(url.port)),
      host(host_header(url)) {}

HttpClient::HttpClient(HttpClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpClient::~HttpClient() { stop(); }

void HttpClient::send(HttpRequest request, std::function<void(HttpOutcome)> done) {
  impl_->send(std::move(request), std::move(done));
}

void HttpClient::stop() { impl_->stop(); }

std::size_t HttpClient::idle_connections() const { return impl_->idle_count(); }

}  // namespace brandhooks
