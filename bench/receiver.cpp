// The benchmark receiver: a small Boost.Beast HTTP/1.1 server that verifies every delivery's
// signature (so a wrong one is counted, not hidden) and records each event id with the time it
// arrived. The same server takes wrk's load for the ceiling measurement.
//
//   bench_receiver --port 0 --keys keys.txt [--threads 1] [--delay-ms 0]
//     keys.txt: one "<path> <64-hex key>" per line; requests to other paths count as invalid.
//     --delay-ms: each delivery is answered this long after it was read (a receiver doing real
//     work; the bench's latency-bound case), without holding up the other connections.
//   GET /stats -> {"requests":N,"valid":V,"invalid":I,"unique":U}
//   GET /wait?unique=N&timeout_ms=T -> /stats once U >= N or T ms passed (one request instead
//                 of the driver polling, which would take CPU from the run it measures)
//   GET /ids   -> one "<path> <event id> <unix microseconds>" line per distinct (path, event id),
//                 with the time of its first arrival
//   POST /reset, POST /keys (body: lines as in keys.txt) -> 204
#include <utility>  // before asio/awaitable.hpp: Boost 1.74 + GCC 12 need it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "brandhooks/crypto.hpp"
#include "brandhooks/signer.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct State {
  std::atomic<std::uint64_t> requests{0}, valid{0}, invalid{0};
  std::mutex mutex;
  std::unordered_map<std::string, std::string> keys;     // path -> key bytes
  std::unordered_map<std::string, std::int64_t> first;   // "path id" -> first arrival (unix us)
  std::string signature_header = "X-Webhook-Signature";
  std::chrono::milliseconds delay{0};

  void load_keys(std::istream& in) {
    std::string path, key;
    std::lock_guard lock(mutex);
    while (in >> path >> key) keys[path] = brandhooks::from_hex(key);
  }
};

std::int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

// The top-level "id" of a delivery body: {"topic",...,"payload":{...},"id":"<id>","brand":"..."}
std::string event_id(const std::string& body) {
  auto at = body.rfind(",\"id\":\"");
  if (at == std::string::npos) return {};
  auto start = at + 7;
  auto end = body.find('"', start);
  return end == std::string::npos ? std::string() : body.substr(start, end - start);
}

bool verified(State& state, const http::request<http::string_body>& req) {
  std::string key;
  {
    std::lock_guard lock(state.mutex);
    auto it = state.keys.find(std::string(req.target()));
    if (it == state.keys.end()) return false;
    key = it->second;
  }
  // A keyed context per connection would be faster still; one per request keeps this simple
  // and is what most receivers do.
  brandhooks::Hmac hmac(key);
  auto header = req.find(state.signature_header);
  return header != req.end() &&
         brandhooks::to_hex(hmac.digest({req.body()})) == std::string(header->value());
}

std::string stats(State& state) {
  std::lock_guard lock(state.mutex);
  std::ostringstream out;
  out << "{\"requests\":" << state.requests << ",\"valid\":" << state.valid << ",\"invalid\":" << state.invalid
      << ",\"unique\":" << state.first.size() << "}";
  return out.str();
}

std::size_t unique(State& state) {
  std::lock_guard lock(state.mutex);
  return state.first.size();
}

// The value of `name` in a query string such as "/wait?unique=5&timeout_ms=100" (0 if absent).
long long query_number(const std::string& target, const std::string& name) {
  auto at = target.find(name + "=");
  return at == std::string::npos ? 0 : std::atoll(target.c_str() + at + name.size() + 1);
}

// Answers /stats once `unique` (path, event) pairs arrived or the timeout passed.
asio::awaitable<std::string> wait_for(State& state, const std::string& target) {
  auto wanted = static_cast<std::size_t>(query_number(target, "unique"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(query_number(target, "timeout_ms"));
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (unique(state) < wanted && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(1));
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return stats(state);
}

std::string control(State& state, const http::request<http::string_body>& req, http::status& status) {
  std::string target(req.target());
  if (req.method() == http::verb::get && target == "/stats") return stats(state);
  if (req.method() == http::verb::get && target == "/ids") {
    std::lock_guard lock(state.mutex);
    std::string out;
    out.reserve(state.first.size() * 56);
    for (const auto& [id, at] : state.first) out += id + " " + std::to_string(at) + "\n";
    return out;
  }
  if (req.method() == http::verb::post && target == "/reset") {
    std::lock_guard lock(state.mutex);
    state.first.clear();
    state.requests = state.valid = state.invalid = 0;
    status = http::status::no_content;
    return {};
  }
  if (req.method() == http::verb::post && target == "/keys") {
    std::istringstream in(req.body());
    state.load_keys(in);
    status = http::status::no_content;
    return {};
  }
  status = http::status::not_found;
  return {};
}

asio::awaitable<void> session(tcp::socket socket, State& state) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  while (true) {
    http::request<http::string_body> req;
    co_await http::async_read(socket, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    http::response<http::string_body> res;
    res.version(11);
    res.keep_alive(req.keep_alive());
    std::string target(req.target());
    if (req.method() == http::verb::get && target.rfind("/wait?", 0) == 0) {
      res.body() = co_await wait_for(state, target);
      res.result(http::status::ok);
    } else if (target == "/stats" || target == "/ids" || target == "/reset" || target == "/keys") {
      http::status status = http::status::ok;
      res.body() = control(state, req, status);
      res.result(status);
    } else {
      ++state.requests;
      if (verified(state, req)) {
        ++state.valid;
        std::string id = target + " " + event_id(req.body());
        std::int64_t at = now_us();
        std::lock_guard lock(state.mutex);
        state.first.try_emplace(std::move(id), at);
      } else {
        ++state.invalid;
      }
      if (state.delay.count() > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor, state.delay);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      res.result(http::status::ok);
    }
    res.prepare_payload();
    co_await http::async_write(socket, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !res.keep_alive()) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, State& state) {
  while (true) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), state), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = 0;
  int threads = 1;
  State state;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--port") {
      port = static_cast<unsigned short>(std::stoi(value));
    } else if (flag == "--threads") {
      threads = std::stoi(value);
    } else if (flag == "--keys") {
      std::ifstream in(value);
      state.load_keys(in);
    } else if (flag == "--signature-header") {
      state.signature_header = value;
    } else if (flag == "--delay-ms") {
      state.delay = std::chrono::milliseconds(std::stoi(value));
    } else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  asio::io_context io(threads);
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
  std::printf("%u\n", acceptor.local_endpoint().port());  // the port, for the bench driver
  std::fflush(stdout);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, auto) { io.stop(); });
  asio::co_spawn(io, listen(acceptor, state), asio::detached);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  return 0;
}
