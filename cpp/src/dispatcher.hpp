#pragma once
// The delivery engine. Deliveries are leased from the store (handed over by publishes, or
// claimed in batches), wait in a lane per webhook, and are signed and sent by the HTTP client's
// threads, which also schedule the next ones as attempts end. A store thread writes outcomes
// back in batches (group commit), claims, and prunes. One dispatcher per database file.
#include <memory>
#include <vector>

#include "brandhooks/config.hpp"
#include "brandhooks/metrics.hpp"

namespace brandhooks {

class Store;
struct DueDelivery;
struct LeaseRoom;

class Dispatcher {
 public:
  // Starts the threads. Deliveries leased by an earlier run become due again. Also prunes
  // finished deliveries older than config.retention_s every config.prune_interval_s.
  Dispatcher(Store& store, const Config& config, Metrics& metrics);
  ~Dispatcher();  // stop()
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // New deliveries may be due now (called after a publish commits).
  void notify();
  // All the room there is for freshly published deliveries handed over directly (none when
  // full or stopping). Every reservation is settled by one hand_over() call.
  LeaseRoom reserve();
  // The deliveries a publish stored already leased (at most what was reserved; the rest of
  // the reservation is returned).
  void hand_over(std::vector<DueDelivery> deliveries, LeaseRoom reserved);
  // Stops leasing, lets in-flight attempts finish (up to the request timeout), records them,
  // and returns every delivery still leased to the queue.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace brandhooks
