#pragma once
// The delivery engine. Deliveries are leased from the store (handed over by publishes, or
// claimed in batches), wait in a lane per webhook, and are signed and sent by the HTTP client's
// threads, which also schedule the next ones as attempts end. A store thread writes outcomes
// back in batches (group commit), claims, renews this node's leases, and prunes. Several
// dispatchers (nodes, Config::node_id) may share a database: leases are owned (lease.hpp).
#include <memory>
#include <vector>

#include "brandhooks/config.hpp"
#include "brandhooks/metrics.hpp"

namespace brandhooks {

class Store;
class AttemptSpanQueue;
struct DueDelivery;
struct LeaseRoom;

class Dispatcher {
 public:
  // Starts the threads. Deliveries leased by an earlier run of this node id become due again
  // (other nodes' leases stay theirs). Also prunes
  // finished deliveries older than config.retention_s every config.prune_interval_s.
  // Attempts of traced events send their event's traceparent; once `spans` is enabled, each
  // is a span of its own, queued there when it ends.
  Dispatcher(Store& store, const Config& config, Metrics& metrics, AttemptSpanQueue& spans);
  ~Dispatcher();  // stop()
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // New deliveries may be due now (called after a publish commits).
  void notify();
  // All the room there is for freshly published deliveries handed over directly (none when
  // full, stopping, or while a take-back of leases waits). Every reservation is settled by one hand_over() or publish_failed() call.
  LeaseRoom reserve();
  // The deliveries a publish stored already leased (at most what was reserved; the rest of
  // the reservation is returned).
  void hand_over(std::vector<DueDelivery> deliveries, LeaseRoom reserved);
  // The publish failed, after reserve(): the reservation is returned, and since its COMMIT may
  // have committed all the same, this node's leases it does not hold are taken back soon.
  void publish_failed(LeaseRoom reserved);
  // Stops leasing, lets in-flight attempts finish (up to the request timeout), records them,
  // and returns every delivery this node still holds to the queue.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace brandhooks
