// The connection: opening a file, the lock every call runs under, prepared statements, and
// what SQLite failures mean to callers.
#include <sqlite3.h>

#include <algorithm>
#include <cerrno>

#include "brandhooks/errors.hpp"
#include "sqlite/sqlite_store.hpp"

namespace brandhooks {

std::unique_ptr<Store> open_sqlite_store(const Config& config) {
  return std::make_unique<sqlite::SqliteStore>(config);
}

namespace sqlite {

SqliteStore::SqliteStore(const Config& config)
    : db_(open(config)),
      holder_{config.node_id.empty() ? default_node_id() : config.node_id, config.lease_timeout_s * 1'000'000} {
  if (is_file_path(config.db)) db_path_ = std::filesystem::absolute(config.db);
  guarded([&] {
    db_.setBusyTimeout(config.busy_timeout_ms);
    if (config.db != ":memory:") db_.exec("PRAGMA journal_mode=WAL");
    db_.exec(config.synchronous == "full" ? "PRAGMA synchronous=FULL"
                                          : "PRAGMA synchronous=NORMAL");
    db_.exec("PRAGMA foreign_keys=ON");
  });
  migrate();
}

SQLite::Database SqliteStore::open(const Config& config) {
  refuse_empty_file(config);
  try {
    // NOMUTEX: the connection is only used under mutex_, so SQLite's own lock around every
    // call would be taken for nothing (it showed in profiles of the store thread).
    return SQLite::Database(config.db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX);
  } catch (const SQLite::Exception& e) {
    throw StorageError("cannot open database " + config.db + ": " + e.what());
  }
}

// An existing 0-byte file is what a truncated copy, a failed restore or a mistyped path
// to a placeholder looks like; taking it as a new database would silently lose every
// webhook and token. Only Config::init_db makes a new database in it.
void SqliteStore::refuse_empty_file(const Config& config) {
  if (config.init_db || !is_file_path(config.db)) return;
  auto empty = [](const std::string& path) {
    std::error_code ec;
    return std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) == 0 && !ec;
  };
  // A database that never left its WAL has a 0-byte main file next to a non-empty -wal.
  std::error_code ec;
  bool wal_has_data = std::filesystem::exists(config.db + "-wal", ec) && !empty(config.db + "-wal");
  if (empty(config.db) && !wal_has_data) {
    throw StorageError("database file " + config.db +
                       " is empty (0 bytes): refusing to take it as a new database; to create a new "
                       "database in it, set init_db (brandhooks serve --init-db, BRANDHOOKS_INIT_DB=1)");
  }
}

// Whether a failure means that the disk (or the file-size limit) is full: SQLite says so
// with SQLITE_FULL, or with an I/O error whose system error is ENOSPC/EDQUOT.
bool SqliteStore::is_full(const SQLite::Exception& e) {
  if ((e.getExtendedErrorCode() & 0xff) == SQLITE_FULL) return true;
  int system = sqlite3_system_errno(db_.getHandle());
  return (e.getExtendedErrorCode() & 0xff) == SQLITE_IOERR && (system == ENOSPC || system == EDQUOT);
}

void SqliteStore::throw_translated(const SQLite::Exception& e) {
  if (is_full(e)) {
    throw UnavailableError(std::string("storage is full: the database cannot be written (") + e.what() +
                           "); nothing was changed, try again when space is freed");
  }
  int primary = e.getExtendedErrorCode() & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    throw UnavailableError(std::string("database is busy: another process held its lock for longer than "
                                       "busy_timeout_ms (") + e.what() + "); nothing was changed, try again",
                           1);  // another process's transaction: over in moments
  }
  throw StorageError(std::string("database error: ") + e.what());
}

// A prepared statement for `sql`, compiled once per connection and reused (compiling costs
// more than running most of these). Only under the lock, inside guarded().
SQLite::Statement& SqliteStore::prepare(const std::string& sql) {
  auto& slot = statements_[sql];
  if (!slot) slot = std::make_unique<SQLite::Statement>(db_, sql);
  slot->reset();
  slot->clearBindings();
  // Once per statement: a loop that prepares the same one per row keeps the list short.
  if (std::find(used_.begin(), used_.end(), slot.get()) == used_.end()) used_.push_back(slot.get());
  return *slot;
}

void SqliteStore::check_writable() {
  guarded([&] {
    // Takes the write lock and lets it go: fails on a read-only or locked database.
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  });
  if (db_path_.empty()) return;
  std::error_code ec;
  auto space = std::filesystem::space(db_path_.parent_path(), ec);
  if (!ec && space.available < kMinFreeBytes) {
    throw UnavailableError("storage is full: " + std::to_string(space.available / 1024) +
                           " KiB free where the database lives; writes may fail until space is freed");
  }
}

}  // namespace sqlite
}  // namespace brandhooks
