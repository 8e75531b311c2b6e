#include "brandhooks/migration.hpp"

#include <filesystem>

#include "brandhooks/config.hpp"
#include "brandhooks/errors.hpp"
#include "store.hpp"
#include "store_common.hpp"

namespace brandhooks {

namespace {

Config store_config(const std::string& db, bool init_db) {
  Config config;
  config.db = db;
  config.init_db = init_db;
  config.node_id = "brandhooks-migrate";  // holds no lease: nothing is delivered
  return config;
}

std::unique_ptr<Store> open_target(const std::string& to) {
  std::error_code ec;
  if (!is_postgres_url(to) && std::filesystem::exists(to, ec)) {
    throw ValidationError(to + " exists already: migrate into a new file (or a PostgreSQL database)");
  }
  return open_store(store_config(to, true));
}

}  // namespace

struct Migration::Impl {
  std::unique_ptr<Store> source;
  std::unique_ptr<Store> target;
  std::size_t batch_rows;
  std::size_t batch_bytes;
  std::int64_t total = 0;
  std::int64_t moved = 0;
  std::size_t table = 0;  // index in moved_tables()
  MovedRow after;         // the last moved key of that table
  bool done = false;
};

Migration::Migration(const std::string& from, const std::string& to, std::size_t batch_rows,
                     std::size_t batch_bytes)
    : impl_(std::make_unique<Impl>()) {
  if (batch_rows == 0 || batch_bytes == 0) throw ValidationError("batch_rows and batch_bytes must be at least 1");
  check_sqlite_database(from);
  impl_->batch_rows = batch_rows;
  impl_->batch_bytes = batch_bytes;
  impl_->source = open_sqlite_store(store_config(from, false));
  impl_->target = open_target(to);
  std::string held;
  for (const auto& t : moved_tables()) {
    impl_->total += impl_->source->count_rows(t);
    if (std::int64_t n = t.update ? 0 : impl_->target->count_rows(t)) {
      held += (held.empty() ? "" : ", ") + std::to_string(n) + " " + t.label;
    }
  }
  if (!held.empty()) {
    throw ConflictError("the target database is not empty (" + held + "): migrate only into an empty database");
  }
}

Migration::~Migration() = default;

std::int64_t Migration::total_rows() const { return impl_->total; }
std::int64_t Migration::moved_rows() const { return impl_->moved; }
bool Migration::done() const { return impl_->done; }

bool Migration::step() {
  Impl& m = *impl_;
  const auto& tables = moved_tables();
  while (!m.done) {
    if (m.table == tables.size()) {
      m.target->finish_import();
      m.done = true;
      break;
    }
    const MovedTable& t = tables[m.table];
    auto rows = m.source->export_rows(t, m.after, m.batch_rows, m.batch_bytes);
    if (rows.empty()) {
      ++m.table;
      m.after.clear();
      continue;
    }
    m.target->import_rows(t, rows);
    m.after = key_of(t, rows.back());
    m.moved += static_cast<std::int64_t>(rows.size());
    return true;
  }
  return false;
}

std::vector<Migration::TableCount> Migration::counts() {
  std::vector<TableCount> out;
  for (const auto& t : moved_tables()) {
    out.push_back({t.label, impl_->source->count_rows(t), impl_->target->count_rows(t)});
  }
  return out;
}

}  // namespace brandhooks
