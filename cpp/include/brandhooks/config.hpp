#pragma once
// The one configuration of the service. Python mirrors it field by field (brandhooks.Config)
// and `brandhooks serve` has one flag and one BRANDHOOKS_<NAME> variable per field.
#include <string>

namespace brandhooks {

struct Config {
  // SQLite database file (created when missing). ":memory:" gives a private in-memory store.
  std::string db = "brandhooks.db";
  // SQLite `synchronous` in WAL mode: "normal" survives a crash of the process (kill -9),
  // "full" also survives a power loss at the cost of an fsync per commit.
  std::string synchronous = "normal";
  // How long a writer waits for another process holding the database lock.
  int busy_timeout_ms = 5000;
};

}  // namespace brandhooks
