#include "pg/connection.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <random>

namespace brandhooks::pg {

namespace {

// A statement or a session that must not wait on the server for longer than this: a hung
// server answers 503 instead of holding API threads (prune works in short chunks below it).
constexpr int kStatementTimeoutMs = 60'000;
// Pipelines are sent in chunks: in blocking mode a long one could fill both sockets' buffers
// (the server blocked writing results we have not read yet, we blocked writing queries).
constexpr std::size_t kPipelineChunk = 256;

std::string error_text(PGconn* conn, const PGresult* result) {
  std::string text = result ? PQresultErrorMessage(result) : "";
  if (text.empty() && conn) text = PQerrorMessage(conn);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// The SQLSTATE classes that mean "not now" rather than "never": connection exceptions (08),
// operator intervention (57: shutdown, cancelled by statement_timeout), insufficient resources
// (53: disk full, too many connections), lock_not_available (55P03, lock_timeout).
bool is_unavailable(std::string_view state) {
  return state.substr(0, 2) == "08" || state.substr(0, 2) == "57" || state.substr(0, 2) == "53" ||
         state == "55P03";
}

}  // namespace

std::string numbered(std::string_view sql) {
  std::string out(sql);
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '?' && out[i + 1] >= '1' && out[i + 1] <= '9') out[i] = '$';
  }
  return out;
}

// --- Params ---------------------------------------------------------------------------------

Params& Params::text(std::string value) {
  owned_.push_back(std::move(value));
  values_.push_back(owned_.back().c_str());
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

Params& Params::add(std::int64_t value) { return text(std::to_string(value)); }

Params& Params::null() {
  values_.push_back(nullptr);
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

Params& Params::bytes(std::string_view value) {
  values_.push_back(value.data());
  lengths_.push_back(static_cast<int>(value.size()));
  formats_.push_back(1);
  return *this;
}

namespace {
void append_quoted(std::string& literal, const std::string& value) {
  literal += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') literal += '\\';
    literal += c;
  }
  literal += '"';
}
}  // namespace

Params& Params::int_array(const std::vector<std::int64_t>& values) {
  std::string literal = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) literal += ',';
    literal += std::to_string(values[i]);
  }
  return text(literal + "}");
}

Params& Params::int_array(const std::vector<std::optional<std::int64_t>>& values) {
  std::string literal = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) literal += ',';
    literal += values[i] ? std::to_string(*values[i]) : "NULL";
  }
  return text(literal + "}");
}

Params& Params::text_array(const std::vector<std::string>& values) {
  std::string literal = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) literal += ',';
    append_quoted(literal, values[i]);
  }
  return text(literal + "}");
}

Params& Params::text_array(const std::vector<std::optional<std::string>>& values) {
  std::string literal = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) literal += ',';
    if (values[i]) {
      append_quoted(literal, *values[i]);
    } else {
      literal += "NULL";
    }
  }
  return text(literal + "}");
}

// --- Result ---------------------------------------------------------------------------------

std::int64_t Result::affected() const {
  const char* n = PQcmdTuples(result_.get());
  return *n ? std::stoll(n) : 0;
}

std::string Result::text(int row, int col) const {
  return std::string(PQgetvalue(result_.get(), row, col),
                     static_cast<std::size_t>(PQgetlength(result_.get(), row, col)));
}

std::int64_t Result::int64(int row, int col) const {
  const char* value = PQgetvalue(result_.get(), row, col);
  std::int64_t out = 0;
  std::from_chars(value, value + PQgetlength(result_.get(), row, col), out);
  return out;
}

std::optional<std::int64_t> Result::optional_int64(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return int64(row, col);
}

// A bytea value in either text format: hex ("\x" then two digits per byte, the default since
// PostgreSQL 9.0) or escape (a database or role may still set bytea_output = 'escape': bytes
// as they are, a backslash doubled, others as \ooo in octal).
std::string Result::bytes(int row, int col) const {
  const char* value = PQgetvalue(result_.get(), row, col);
  auto length = static_cast<std::size_t>(PQgetlength(result_.get(), row, col));
  if (length >= 2 && value[0] == '\\' && value[1] == 'x') {
    auto nibble = [](char c) -> int { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    std::string out((length - 2) / 2, '\0');
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i] = static_cast<char>(nibble(value[2 + 2 * i]) << 4 | nibble(value[3 + 2 * i]));
    }
    return out;
  }
  std::string out;
  out.reserve(length);
  for (std::size_t i = 0; i < length; ++i) {
    if (value[i] != '\\') {
      out += value[i];
    } else if (i + 1 < length && value[i + 1] == '\\') {
      out += '\\';
      ++i;
    } else if (i + 3 < length) {  // \ooo
      out += static_cast<char>((value[i + 1] - '0') << 6 | (value[i + 2] - '0') << 3 | (value[i + 3] - '0'));
      i += 3;
    } else {
      throw StorageError("database error: a bytea value in an unknown format");
    }
  }
  return out;
}

// --- Connection -----------------------------------------------------------------------------

Connection::Connection(const std::string& url, const ConnectOptions& options, int shard) : shard_(shard) {
  // Our defaults first: the URL's own settings (given last) override them.
  std::string timeout = std::to_string(std::max(2, options.connect_timeout_s));
  std::string session = "-c statement_timeout=" + std::to_string(kStatementTimeoutMs) +
                        " -c lock_timeout=" + std::to_string(options.lock_timeout_ms) +
                        " -c idle_in_transaction_session_timeout=" + std::to_string(kStatementTimeoutMs) +
                        " -c client_min_messages=warning";
  // Keepalives and tcp_user_timeout: a server that vanished without a word (a network cut)
  // is noticed within seconds instead of the system's default hours.
  const char* keys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "application_name", "options",
                        "client_encoding", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "1", "5", "2", "3", "10000", options.application_name.c_str(),
                          session.c_str(), "UTF8", url.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn_ == nullptr) throw UnavailableError("database unavailable: out of memory for a connection");
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = error_text(conn_, nullptr);
    PQfinish(conn_);
    conn_ = nullptr;
    throw UnavailableError("database unavailable: cannot connect to PostgreSQL (" + message +
                           "); try again when it is back");
  }
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

void Connection::fail(const PGresult* result, const std::string& what) {
  std::string message = error_text(conn_, result);
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string_view sqlstate = state ? state : "";
  // Lost: libpq says so; or it failed on its own, without a word from the server (a failed
  // send or read: its status may still say OK for a moment); or the server is ending this
  // session (terminated, shutting down, crashing: 57P01, 57P02, 57P03).
  if (broken() || sqlstate.empty() || sqlstate.substr(0, 2) == "08" || sqlstate == "57P01" ||
      sqlstate == "57P02" || sqlstate == "57P03") {
    lost_ = true;
    throw ConnectionLost("database unavailable: the connection to PostgreSQL was lost (" + message +
                         "); try again when it is back", 1);
  }
  if (sqlstate == "40001" || sqlstate == "40P01") {
    throw TransientConflict("database busy: " + message + "; try again", 1);
  }
  if (is_unavailable(sqlstate)) {
    // A full disk (53100) or a limit of the server's configuration (53400) waits for an
    // operator, a cancelled statement (57014, statement_timeout) for a server that answers
    // again; a lock timeout or too many connections pass in moments.
    bool lasting = sqlstate == "53100" || sqlstate == "53400" || sqlstate == "57014";
    throw UnavailableError("database unavailable: " + message + "; try again later",
                           lasting ? UnavailableError::kDefaultRetryAfterS : 1);
  }
  throw StorageError("database error (" + what + "): " + message);
}

Result Connection::check(PGresult* raw, const std::string& what) {
  Result result(raw);
  auto status = PQresultStatus(raw);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(raw, what);
  return result;
}

const std::string& Connection::prepared(const std::string& sql) {
  auto found = statements_.find(sql);
  if (found != statements_.end()) return found->second;
  std::string name = "s" + std::to_string(statements_.size());
  check(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr), "prepare");
  return statements_.emplace(sql, std::move(name)).first->second;
}

Result Connection::exec(const std::string& sql, const Params& params) {
  const std::string& name = prepared(sql);
  return check(PQexecPrepared(conn_, name.c_str(), params.size(), params.values(), params.lengths(),
                              params.formats(), 0),
               "statement");
}

void Connection::run(const std::string& sql) { check(PQexec(conn_, sql.c_str()), "statement"); }

std::vector<Result> Connection::pipeline(const std::string& sql, const std::vector<Params>& batch) {
  std::vector<Result> results;
  results.reserve(batch.size());
  if (batch.size() == 1) {  // no pipeline for one
    results.push_back(exec(sql, batch.front()));
    return results;
  }
  const std::string& name = prepared(sql);
  for (std::size_t from = 0; from < batch.size(); from += kPipelineChunk) {
    std::size_t to = std::min(batch.size(), from + kPipelineChunk);
    if (PQenterPipelineMode(conn_) != 1) fail(nullptr, "pipeline");
    for (std::size_t i = from; i < to; ++i) {
      const Params& p = batch[i];
      if (PQsendQueryPrepared(conn_, name.c_str(), p.size(), p.values(), p.lengths(), p.formats(), 0) != 1) {
        fail(nullptr, "pipeline send");
      }
    }
    if (PQpipelineSync(conn_) != 1) fail(nullptr, "pipeline sync");
    // Read every result up to the sync point, then report the first failure.
    std::optional<Result> failed;
    for (std::size_t i = from; i < to; ++i) {
      PGresult* raw = PQgetResult(conn_);
      if (raw == nullptr) fail(nullptr, "pipeline result");
      Result result(raw);
      auto status = PQresultStatus(raw);
      if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && !failed) failed.emplace(std::move(result));
      else if (!failed) results.push_back(std::move(result));
      while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);  // the NULL that ends each query
    }
    PGresult* sync = PQgetResult(conn_);
    bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    if (sync) PQclear(sync);
    PQexitPipelineMode(conn_);
    if (failed) fail(failed->get(), "pipeline");
    if (!synced) fail(nullptr, "pipeline sync");
  }
  return results;
}

// --- Pool -----------------------------------------------------------------------------------

Pool::Pool(std::string url, std::size_t size, ConnectOptions options)
    : url_(std::move(url)), size_(size), options_(std::move(options)) {
  // Nodes start at different counter shards, so that their transactions rarely share a row.
  next_shard_ = static_cast<int>(std::random_device{}() % 64);
}

Pool::Lease::~Lease() {
  if (connection_) pool_->give_back(std::move(connection_));
}

Pool::Lease Pool::acquire() {
  int shard = 0;
  {
    std::unique_lock lock(mutex_);
    // Every connection busy for this long means a server that stopped answering (each of
    // them is bounded by the timeouts above): answer "unavailable" instead of queueing on.
    auto patience = std::chrono::seconds(std::max(10, 2 * options_.connect_timeout_s));
    if (!freed_.wait_for(lock, patience, [&] { return !idle_.empty() || open_ < size_; })) {
      throw UnavailableError("database unavailable: all " + std::to_string(size_) +
                             " connections to PostgreSQL stayed busy; try again later", 2);
    }
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(connection));
    }
    ++open_;
    shard = next_shard_++ % 64;
  }
  try {  // connect outside the lock: others may use the idle ones meanwhile
    auto connection = std::make_unique<Connection>(url_, options_, shard);
    std::lock_guard lock(mutex_);
    down_since_.reset();  // the server answers again
    return Lease(*this, std::move(connection));
  } catch (const UnavailableError& e) {
    std::lock_guard lock(mutex_);
    --open_;
    freed_.notify_one();
    if (!down_since_) down_since_ = std::chrono::steady_clock::now();
    throw UnavailableError(e.what(), outage_retry_after_s());
  } catch (...) {
    std::lock_guard lock(mutex_);
    --open_;
    freed_.notify_one();
    throw;
  }
}

void Pool::give_back(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(mutex_);
  if (!connection->idle()) {  // broken, or left inside a transaction: never reused
    --open_;
    connection.reset();
  } else {
    idle_.push_back(std::move(connection));
  }
  freed_.notify_one();
}

ConnectionLost Pool::connection_lost(const ConnectionLost& lost) {
  std::vector<std::unique_ptr<Connection>> closing;
  int retry_after = 1;
  {
    std::lock_guard lock(mutex_);
    closing.swap(idle_);
    open_ -= closing.size();
    freed_.notify_all();
    if (!down_since_) down_since_ = std::chrono::steady_clock::now();
    retry_after = outage_retry_after_s();
  }
  return ConnectionLost(lost.what(), retry_after);
}

int Pool::retry_after_s(double down_for_s) {
  return static_cast<int>(std::clamp(down_for_s / 2, 1.0, 10.0));
}

int Pool::outage_retry_after_s() {  // under mutex_
  std::chrono::duration<double> down = std::chrono::steady_clock::now() - *down_since_;
  return retry_after_s(down.count());
}

}  // namespace brandhooks::pg
