#pragma once
// Moving a brandhooks database to another (`brandhooks migrate`): a SQLite file to PostgreSQL
// (or to a new SQLite file), everything it holds, batch by batch so that the caller can show
// progress, then the row counts of both for a check.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace brandhooks {

class Migration {
 public:
  struct TableCount {
    std::string table;
    std::int64_t source = 0;
    std::int64_t target = 0;
  };

  // Opens both databases. ValidationError when `from` is not a brandhooks SQLite file or `to`
  // is an existing file; ConflictError when `to` holds data already. `from` is upgraded to
  // this build's schema first, as `brandhooks serve` would. Nothing may write to `from` while
  // the migration runs (stop the nodes that use it).
  Migration(const std::string& from, const std::string& to, std::size_t batch_rows = 1000,
            std::size_t batch_bytes = 16u << 20);
  ~Migration();
  Migration(const Migration&) = delete;
  Migration& operator=(const Migration&) = delete;

  // Rows to move in all (counted when the migration opened), and moved so far.
  std::int64_t total_rows() const;
  std::int64_t moved_rows() const;
  // Moves the next batch: up to batch_rows rows of one table, fewer once their text and
  // bodies reach batch_bytes (events carry up to 1 MiB each), in one transaction of the
  // target. Returns false once everything has moved and the target is finished.
  bool step();
  bool done() const;
  // Rows per table in both databases, counted now: after the last step they must match.
  std::vector<TableCount> counts();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace brandhooks
