#pragma once
// The delivery engine. One store thread owns all scheduling state: it leases due deliveries
// from the store in batches, signs and hands them to the HTTP client (its own threads), and
// writes the outcomes back in batches (group commit). One dispatcher per database file.
#include <memory>

#include "brandhooks/config.hpp"
#include "brandhooks/metrics.hpp"

namespace brandhooks {

class Store;

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
  // Stops leasing, lets in-flight attempts finish (up to the request timeout), records them,
  // and returns every delivery still leased to the queue.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace brandhooks
