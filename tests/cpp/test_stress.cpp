// The dispatcher and the HTTP client under load, with several HTTP threads and receivers that
// answer, fail, hang, reset and declare huge answers, while other threads publish, rotate keys,
// redeliver and recover. It checks what must hold whatever the timing: every delivery to the
// healthy receiver arrives exactly once per send (once, plus once per redelivery), correctly
// signed; the store's counts agree with each other; stopping is clean. `make sanitize` runs it
// under AddressSanitizer + UndefinedBehaviorSanitizer and under ThreadSanitizer.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "brandhooks/hub.hpp"
#include "brandhooks/signer.hpp"

using namespace brandhooks;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

enum class Behaviour { Ok, Fail, Hang, Reset, Huge };

struct Received {
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool read_more(int fd, std::string& buffer) {
  char chunk[16384];
  ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
  if (n <= 0) return false;
  buffer.append(chunk, static_cast<std::size_t>(n));
  return true;
}

// A receiver on 127.0.0.1 with plain sockets and one thread per connection, so that nothing in
// it shares code with the client under test.
class Receiver {
 public:
  explicit Receiver(Behaviour behaviour) : behaviour_(behaviour) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(listen_fd_, 256) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~Receiver() { stop(); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook?b=1"; }

  std::vector<Received> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::size_t count() {
    std::lock_guard lock(mutex_);
    return received_.size();
  }

  void stop() {
    if (stopping_.exchange(true)) return;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    acceptor_.join();
    ::close(listen_fd_);
    std::vector<Connection> connections;
    {
      std::lock_guard lock(mutex_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);  // wakes every recv()
      connections.swap(connections_);
    }
    for (auto& c : connections) c.thread.join();
  }

 private:
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  void accept_loop() {
    while (true) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard lock(mutex_);
      if (stopping_) {
        ::close(fd);
        return;
      }
      // Join the connections that ended, so that thousands of short ones do not pile up.
      std::erase_if(connections_, [](Connection& c) {
        if (!c.done->load()) return false;
        c.thread.join();
        return true;
      });
      open_.insert(fd);
      auto done = std::make_shared<std::atomic<bool>>(false);
      connections_.push_back({std::thread([this, fd, done] {
                                serve(fd);
                                {
                                  std::lock_guard lock(mutex_);
                                  open_.erase(fd);
                                  ::close(fd);
                                }
                                done->store(true);
                              }),
                              done});
    }
  }

  void serve(int fd) {
    std::string buffer;
    while (true) {
      std::size_t head_end;
      while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
        if (!read_more(fd, buffer)) return;
      }
      Received r;
      std::size_t pos = buffer.find("\r\n") + 2;  // after the request line
      while (pos < head_end) {
        std::size_t eol = buffer.find("\r\n", pos);
        std::string line = buffer.substr(pos, eol - pos);
        std::size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::size_t value = line.find_first_not_of(' ', colon + 1);
          r.headers[lower(line.substr(0, colon))] = value == std::string::npos ? "" : line.substr(value);
        }
        pos = eol + 2;
      }
      std::size_t length = std::stoul(r.headers["content-length"]);
      std::size_t end = head_end + 4 + length;
      while (buffer.size() < end) {
        if (!read_more(fd, buffer)) return;
      }
      r.body = buffer.substr(head_end + 4, length);
      buffer.erase(0, end);
      {
        std::lock_guard lock(mutex_);
        received_.push_back(std::move(r));
      }
      switch (behaviour_) {
        case Behaviour::Ok:
          if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) return;
          break;
        case Behaviour::Fail:
          if (!send_all(fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail")) return;
          break;
        case Behaviour::Hang:  // never answers; the client's request timeout ends it
          while (read_more(fd, buffer)) {
          }
          return;
        case Behaviour::Reset: {  // an RST instead of an answer
          linger hard{1, 0};
          ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
          return;
        }
        case Behaviour::Huge: {
          // 1 GiB declared, the first body bytes in the same packet as the head, then more
          // until the client leaves (bounded here, so a client that buffers is caught by its
          // timeout rather than by this test's memory).
          std::string chunk(64 * 1024, 'x');
          if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n" + chunk)) return;
          for (int i = 0; i < 64 && !stopping_; ++i) {
            if (!send_all(fd, chunk)) return;
          }
          while (read_more(fd, buffer)) {
          }
          return;
        }
      }
    }
  }

  Behaviour behaviour_;
  int listen_fd_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mutex_;
  std::set<int> open_;
  std::vector<Connection> connections_;
  std::vector<Received> received_;
};

struct TempDir {
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "brandhooks-stress-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

const std::string kBrand = "5a1e0c3b-7d2f-4e6a-9b8c-1d2e3f4a5b6c";
constexpr int kPublishers = 2;
constexpr int kEventsEach = 100;

// Runs `step` every `period` until `done`, in a thread; exceptions fail the test.
std::thread every(std::chrono::milliseconds period, const std::atomic<bool>& done,
                  std::function<void()> step) {
  return std::thread([period, &done, step = std::move(step)] {
    while (!done) {
      try {
        step();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "unexpected exception: " << e.what();
      }
      std::this_thread::sleep_for(period);
    }
  });
}

std::int64_t total_of(Hub& hub, const std::string& webhook, std::optional<std::string> state) {
  return hub.list_deliveries({kBrand, webhook, std::move(state), 0, 1}).total;
}

}  // namespace

TEST(Stress, HostileReceiversWhileEverythingRunsAtOnce) {
  TempDir dir;
  Receiver ok(Behaviour::Ok), fail(Behaviour::Fail), hang(Behaviour::Hang), reset(Behaviour::Reset),
      huge(Behaviour::Huge);

  Config config;
  config.db = (dir.path / "stress.db").string();
  config.deliver = true;
  config.allow_private = true;
  config.delivery_threads = 3;
  config.retry_schedule = "0,100ms,200ms";
  config.retry_jitter = 0;
  config.connect_timeout_ms = 2000;
  config.request_timeout_ms = 1000;
  auto hub = std::make_unique<Hub>(config);

  Webhook healthy = hub->create_webhook(kBrand, "Deals", ok.url());
  Webhook failing = hub->create_webhook(kBrand, "Deals", fail.url());
  Webhook hanging = hub->create_webhook(kBrand, "Deals", hang.url());
  Webhook resetting = hub->create_webhook(kBrand, "Deals", reset.url());
  Webhook huge_answer = hub->create_webhook(kBrand, "Deals", huge.url());
  const std::vector<std::string> webhooks = {healthy.id, failing.id, hanging.id, resetting.id, huge_answer.id};

  std::mutex mutex;  // guards the three below
  std::set<std::string> events;
  std::vector<std::string> healthy_keys = {healthy.key};
  std::map<std::string, int> redelivered;  // healthy delivery id -> extra sends asked

  std::atomic<bool> done{false};
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      for (int i = 0; i < kEventsEach; ++i) {
        std::string payload = R"({"publisher":)" + std::to_string(p) + R"(,"n":)" + std::to_string(i) + "}";
        try {
          PublishResult r = hub->publish(kBrand, "Deals", "Created", payload);
          EXPECT_EQ(r.deliveries, 5);
          std::lock_guard lock(mutex);
          events.insert(r.event_id);
        } catch (const std::exception& e) {
          ADD_FAILURE() << "publish: " << e.what();
        }
        std::this_thread::sleep_for(15ms);  // a stream over a few seconds, not one burst
      }
    });
  }
  std::vector<std::thread> others;
  others.push_back(every(30ms, done, [&] {
    // Old keys stay valid for an hour: whichever key signed, the receiver can verify it.
    Webhook w = hub->rotate_key(kBrand, healthy.id, 3600);
    {
      std::lock_guard lock(mutex);
      healthy_keys.push_back(w.key);
    }
    hub->rotate_key(kBrand, failing.id, 0);
  }));
  others.push_back(every(40ms, done, [&] {
    // A delivered delivery sent again arrives once more; each is redelivered once at most.
    auto page = hub->list_deliveries({kBrand, healthy.id, "delivered", 0, 5});
    for (const auto& d : page.items) {
      {
        std::lock_guard lock(mutex);
        if (redelivered.count(d.id) || redelivered.size() >= 20) continue;
      }
      hub->redeliver(kBrand, d.id);
      std::lock_guard lock(mutex);
      redelivered[d.id] = 1;
    }
    for (const auto& id : {failing.id, resetting.id, huge_answer.id}) {
      for (const auto& d : hub->list_deliveries({kBrand, id, std::nullopt, 0, 3}).items) {
        try {
          hub->redeliver(kBrand, d.id);
        } catch (const ConflictError&) {
          // an attempt is under way
        }
      }
    }
  }));
  others.push_back(every(60ms, done, [&] {
    hub->recover(kBrand, failing.id, 0);
    hub->recover(kBrand, resetting.id, 0, 50);
  }));
  others.push_back(every(50ms, done, [&] {
    Stats s = hub->stats();
    EXPECT_GE(s.pending + s.delivered + s.failed + s.cancelled, 0);
  }));

  for (auto& t : publishers) t.join();
  std::this_thread::sleep_for(500ms);  // rotations, redeliveries and recovers go on a while
  done = true;
  for (auto& t : others) t.join();
  const std::size_t published = events.size();
  ASSERT_EQ(published, static_cast<std::size_t>(kPublishers * kEventsEach));

  // Every healthy delivery and redelivery arrives (generous bound: sanitizers are slow).
  std::size_t expected_sends = published + redelivered.size();
  auto give_up = std::chrono::steady_clock::now() + 120s;
  while ((ok.count() < expected_sends || total_of(*hub, healthy.id, "pending") > 0) &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(50ms);
  }

  // Stopping is clean: in-flight attempts (the hanging ones) end within the request timeout.
  auto stop_started = std::chrono::steady_clock::now();
  hub->stop_delivery();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_started, 60s);

  // The healthy receiver: each delivery exactly once per send, each correctly signed.
  std::vector<Received> got = ok.received();
  EXPECT_EQ(got.size(), expected_sends);
  std::map<std::string, int> sends;  // delivery id -> arrivals
  std::set<std::string> arrived_events;
  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count();
  for (auto& r : got) {
    const std::string& id = r.headers["webhook-id"];
    ++sends[id];
    auto body = nlohmann::json::parse(r.body);
    arrived_events.insert(body["id"].get<std::string>());
    EXPECT_EQ(body["topic"], "Deals");
    EXPECT_EQ(body["brand"], kBrand);
    bool simple_ok = false, standard_ok = false;
    for (const auto& key : healthy_keys) {
      simple_ok = simple_ok || verify_simple(key, r.body, r.headers["x-webhook-signature"]);
      standard_ok = standard_ok || verify_standard(key, r.body, id, r.headers["webhook-timestamp"],
                                                   r.headers["webhook-signature"], now_s, 600);
    }
    EXPECT_TRUE(simple_ok) << "simple signature of delivery " << id;
    EXPECT_TRUE(standard_ok) << "Standard Webhooks signature of delivery " << id;
  }
  EXPECT_EQ(arrived_events, events);
  EXPECT_EQ(sends.size(), published);
  for (const auto& [id, n] : sends) {
    EXPECT_EQ(n, 1 + (redelivered.count(id) ? 1 : 0)) << "delivery " << id;
  }

  // The counts agree: per webhook, per state, and with stats().
  Stats stats = hub->stats();
  EXPECT_EQ(stats.events, static_cast<std::int64_t>(published));
  EXPECT_EQ(stats.webhooks, 5);
  std::map<std::string, std::int64_t> by_state;
  for (const auto& webhook : webhooks) {
    std::int64_t all = total_of(*hub, webhook, std::nullopt), sum = 0;
    EXPECT_EQ(all, static_cast<std::int64_t>(published)) << webhook;
    for (const char* state : {"pending", "delivered", "failed", "cancelled"}) {
      std::int64_t n = total_of(*hub, webhook, state);
      by_state[state] += n;
      sum += n;
    }
    EXPECT_EQ(sum, all) << webhook;
  }
  EXPECT_EQ(total_of(*hub, healthy.id, "delivered"), static_cast<std::int64_t>(published));
  EXPECT_EQ(total_of(*hub, failing.id, "delivered"), 0);
  EXPECT_EQ(total_of(*hub, hanging.id, "delivered"), 0);
  EXPECT_EQ(total_of(*hub, resetting.id, "delivered"), 0);
  EXPECT_EQ(stats.pending, by_state["pending"]);
  EXPECT_EQ(stats.delivered, by_state["delivered"]);
  EXPECT_EQ(stats.failed, by_state["failed"]);
  EXPECT_EQ(stats.cancelled, by_state["cancelled"]);
  EXPECT_EQ(stats.pending + stats.delivered + stats.failed + stats.cancelled,
            static_cast<std::int64_t>(5 * published));
  // Stopped: nothing is leased any more, so whatever is pending and due is in the queue.
  EXPECT_LE(stats.due_now, stats.pending);

  std::cout << "requests received: ok " << got.size() << " (" << redelivered.size() << " redelivered), fail "
            << fail.count() << ", hang " << hang.count() << ", reset " << reset.count() << ", huge "
            << huge.count() << "; keys " << healthy_keys.size() << "; pending " << stats.pending
            << ", failed " << stats.failed << "\n";
  hub.reset();
  for (Receiver* r : {&ok, &fail, &hang, &reset, &huge}) r->stop();
}
