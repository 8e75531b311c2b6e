#include "resolver.hpp"

#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "brandhooks/errors.hpp"
#include "thread_name.hpp"

namespace brandhooks {

namespace {

std::once_flag library_ready;

struct Query {
  std::string host;
  std::function<void(Resolved)> done;
};

// c-ares' answer, as addresses in its order.
void on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  std::unique_ptr<Query> query(static_cast<Query*>(arg));
  Resolved out;
  if (status == ARES_SUCCESS && result) {
    for (const ares_addrinfo_node* node = result->nodes; node; node = node->ai_next) {
      if (node->ai_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(node->ai_addr);
        out.addresses.push_back(ipv4_bytes(ntohl(in->sin_addr.s_addr)));
      } else if (node->ai_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(node->ai_addr);
        IpBytes bytes;
        std::memcpy(bytes.data(), in6->sin6_addr.s6_addr, bytes.size());
        out.addresses.push_back(bytes);
      }
    }
  }
  if (result) ares_freeaddrinfo(result);
  if (out.addresses.empty()) out.error = status == ARES_SUCCESS ? "no address" : ares_strerror(status);
  out.timed_out = status == ARES_ETIMEOUT;
  query->done(std::move(out));
}

}  // namespace

// One thread owns the c-ares channel (a channel is not thread-safe in every c-ares version):
// it takes new names from a queue, waits on c-ares' sockets with poll(), and hands the answers
// to the callbacks. An eventfd wakes it for new names and for stop().
struct Resolver::Impl {
  Impl(const std::string& servers, int timeout_ms) {
    std::call_once(library_ready, [] { ares_library_init(ARES_LIB_INIT_ALL); });
    ares_options options{};
    options.sock_state_cb = &Impl::on_socket_state;
    options.sock_state_cb_data = this;
    options.timeout = std::max(1, timeout_ms / 3);  // in ms with ARES_OPT_TIMEOUTMS
    options.tries = 2;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    if (int rc = ares_init_options(&channel, &options, mask); rc != ARES_SUCCESS) {
      throw Error(std::string("cannot start the DNS resolver: ") + ares_strerror(rc));
    }
    if (!servers.empty()) {
      if (int rc = ares_set_servers_ports_csv(channel, servers.c_str()); rc != ARES_SUCCESS) {
        ares_destroy(channel);
        throw ValidationError("dns_servers: cannot use '" + servers + "' (" + ares_strerror(rc) +
                              "); expected host[:port],... e.g. 127.0.0.1:5353");
      }
    }
    wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0) {
      ares_destroy(channel);
      throw Error("cannot start the DNS resolver: eventfd failed");
    }
    thread = std::thread([this] {
      name_this_thread("bh-dns");
      loop();
    });
  }

  static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Impl*>(data);
    short events = static_cast<short>((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
    if (events) {
      self->sockets[fd] = events;
    } else {
      self->sockets.erase(fd);
    }
  }

  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }

  void loop() {
    std::vector<pollfd> fds;
    while (true) {
      std::deque<std::unique_ptr<Query>> fresh;
      {
        std::lock_guard lock(mutex);
        if (stopping) break;
        fresh.swap(queued);
      }
      for (auto& query : fresh) {
        ares_addrinfo_hints hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        Query* raw = query.release();
        ares_getaddrinfo(channel, raw->host.c_str(), nullptr, &hints, &on_addrinfo, raw);
      }

      fds.assign(1, pollfd{wake_fd, POLLIN, 0});
      for (auto [fd, events] : sockets) fds.push_back(pollfd{fd, events, 0});
      timeval tv{};
      int wait_ms = -1;
      if (ares_timeout(channel, nullptr, &tv)) {
        wait_ms = static_cast<int>(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
      }
      ::poll(fds.data(), fds.size(), wait_ms);
      if (fds[0].revents) {
        std::uint64_t count;
        [[maybe_unused]] auto n = ::read(wake_fd, &count, sizeof count);
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        bool in = fds[i].revents & (POLLIN | POLLERR | POLLHUP), out = fds[i].revents & POLLOUT;
        ares_process_fd(channel, in ? fds[i].fd : ARES_SOCKET_BAD, out ? fds[i].fd : ARES_SOCKET_BAD);
      }
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // time-outs
    }
    ares_destroy(channel);  // ends every query still running (ARES_EDESTRUCTION)
    std::lock_guard lock(mutex);
    for (auto& query : queued) query->done(Resolved{{}, "the resolver stopped"});
    queued.clear();
  }

  void resolve(std::string host, std::function<void(Resolved)> done) {
    {
      std::lock_guard lock(mutex);
      if (!stopping) {
        queued.push_back(std::make_unique<Query>(Query{std::move(host), std::move(done)}));
        wake();
        return;
      }
    }
    done(Resolved{{}, "the resolver stopped"});
  }

  void stop() {
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
      stopping = true;
    }
    wake();
    thread.join();
    ::close(wake_fd);
  }

  ares_channel channel = nullptr;
  std::map<ares_socket_t, short> sockets;  // the thread's only
  int wake_fd = -1;
  std::mutex mutex;
  bool stopping = false;
  std::deque<std::unique_ptr<Query>> queued;
  std::thread thread;
};

Resolver::Resolver(const std::string& servers, int timeout_ms)
    : impl_(std::make_unique<Impl>(servers, timeout_ms)) {}

Resolver::~Resolver() { stop(); }

void Resolver::resolve(std::string host, std::function<void(Resolved)> done) {
  impl_->resolve(std::move(host), std::move(done));
}

void Resolver::stop() { impl_->stop(); }

}  // namespace brandhooks
