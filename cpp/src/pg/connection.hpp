#pragma once
// The PostgreSQL backend's link to the server, on libpq: parameters, results, one connection
// (statements prepared once per connection, batches sent in pipeline mode) and a small
// thread-safe pool that re-connects by itself after an outage.
//
// Failures become the core's errors: a server that cannot be reached, a lost connection, a
// lock or statement timeout, a full disk -> UnavailableError (503, try again later); anything
// else -> StorageError.
#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "brandhooks/errors.hpp"

namespace brandhooks::pg {

// The connection broke (server stopped or restarted, backend terminated, network gone): the
// statement's outcome is unknown unless it was sent outside a transaction that never
// committed. Retried on a fresh connection where that is safe.
class ConnectionLost : public UnavailableError {
 public:
  using UnavailableError::UnavailableError;
};

// A serialization failure or a deadlock between concurrent transactions (other threads or
// nodes): the transaction was rolled back and may simply run again.
class TransientConflict : public UnavailableError {
 public:
  using UnavailableError::UnavailableError;
};

// SQL written once for both backends with SQLite's numbered parameters (?1, ?2, ...; see
// lease.hpp) in PostgreSQL's spelling ($1, $2, ...).
std::string numbered(std::string_view sql);

// One statement's parameters in order ($1, $2, ...): text, or binary for bytea.
class Params {
 public:
  Params& add(std::int64_t value);
  Params& add(int value) { return add(static_cast<std::int64_t>(value)); }
  Params& add(bool value) { return text(value ? "t" : "f"); }
  Params& add(const std::string& value) { return text(value); }
  Params& add(const char* value) { return text(value); }
  template <class T>
  Params& add(const std::optional<T>& value) {
    return value ? add(*value) : null();
  }
  Params& null();
  // Binary bytes (a bytea parameter); `value` must stay alive until the statement has run.
  Params& bytes(std::string_view value);
  // A PostgreSQL array literal of integers, e.g. for `= ANY($1::bigint[])`.
  Params& int_array(const std::vector<std::int64_t>& values);
  // A PostgreSQL array literal of strings (quoted and escaped), for `::text[]`.
  Params& text_array(const std::vector<std::string>& values);
  // Array literals with NULL elements: strings (quoted), or integers.
  Params& text_array(const std::vector<std::optional<std::string>>& values);
  Params& int_array(const std::vector<std::optional<std::int64_t>>& values);

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  Params& text(std::string value);
  std::deque<std::string> owned_;  // a deque: growing it never moves the strings
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// A statement's result (text format).
class Result {
 public:
  explicit Result(PGresult* result) : result_(result, &PQclear) {}
  int rows() const { return PQntuples(result_.get()); }
  // Rows an INSERT/UPDATE/DELETE changed.
  std::int64_t affected() const;
  bool is_null(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  std::string text(int row, int col) const;
  std::int64_t int64(int row, int col) const;
  std::optional<std::int64_t> optional_int64(int row, int col) const;
  bool boolean(int row, int col) const { return text(row, col) == "t"; }
  // A bytea column: its raw bytes (decoded from the text format, hex or escape, whichever
  // the session's bytea_output chose).
  std::string bytes(int row, int col) const;
  const PGresult* get() const { return result_.get(); }

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> result_;
};

// How long to wait for the server, and what each session sets (see connection.cpp).
struct ConnectOptions {
  int connect_timeout_s = 5;
  int lock_timeout_ms = 5000;
  std::string application_name = "brandhooks";
};

class Connection {
 public:
  // Throws UnavailableError when the server cannot be reached in time.
  Connection(const std::string& url, const ConnectOptions& options, int shard);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `sql`, prepared on this connection the first time it is used.
  Result exec(const std::string& sql, const Params& params = {});
  // Runs `sql` once per parameter set in one round trip (pipeline mode), in order; the
  // first failure throws after the whole pipeline was read.
  std::vector<Result> pipeline(const std::string& sql, const std::vector<Params>& batch);
  // Plain SQL without parameters (BEGIN, COMMIT, a migration's several statements).
  void run(const std::string& sql);

  // The connection failed (libpq's status says so, or a call failed without a word from the
  // server): never used again.
  bool broken() const { return lost_ || PQstatus(conn_) != CONNECTION_OK; }
  // Connected and outside any transaction: fit to serve the next call.
  bool idle() const { return !broken() && PQtransactionStatus(conn_) == PQTRANS_IDLE; }
  // This connection's slot in the sharded delivery counters (pg/schema.cpp).
  int shard() const { return shard_; }

 private:
  const std::string& prepared(const std::string& sql);
  [[noreturn]] void fail(const PGresult* result, const std::string& what);
  Result check(PGresult* result, const std::string& what);

  PGconn* conn_ = nullptr;
  bool lost_ = false;
  int shard_;
  std::unordered_map<std::string, std::string> statements_;  // SQL -> prepared name
};

// Up to `size` connections shared by some threads of one store (a store keeps one pool for
// the API's calls and one for its dispatcher's). It also keeps how long the server has been out
// of reach, for the Retry-After of its errors.
class Pool {
 public:
  Pool(std::string url, std::size_t size, ConnectOptions options);

  // A connection for one call; back to the pool when it goes out of scope (or dropped, if it
  // broke meanwhile).
  class Lease {
   public:
    Lease(Pool& pool, std::unique_ptr<Connection> connection) : pool_(&pool), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() { return *connection_; }
    Connection* operator->() { return connection_.get(); }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  // Waits while every connection is in use (UnavailableError when that lasts), opens a new
  // one when there is room.
  Lease acquire();
  // A connection broke: closes every idle one (the others most likely broke too) and notes
  // the outage. Returns `lost` again, its Retry-After set from the outage (retry_after_s()).
  ConnectionLost connection_lost(const ConnectionLost& lost);
  // How long an outage that began `down_for_s` seconds ago is likely to last, in seconds: half
  // as long again (a restart or a failover takes well under a second: 1 s; a server that
  // stays away gets fewer tries), between 1 and 10.
  static int retry_after_s(double down_for_s);

 private:
  void give_back(std::unique_ptr<Connection> connection);
  int outage_retry_after_s();

  const std::string url_;
  const std::size_t size_;
  const ConnectOptions options_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;  // idle, in use, or being opened
  int next_shard_;
  // Since when no connection could be opened or kept (steady clock); unset while the server answers.
  std::optional<std::chrono::steady_clock::time_point> down_since_;
};

}  // namespace brandhooks::pg
