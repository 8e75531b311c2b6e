// The one place that picks a Store backend from Config::db.
#include "store.hpp"

#include "pg/pg_store.hpp"

namespace brandhooks {

bool is_postgres_url(std::string_view db) {
  return db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0;
}

Stats Store::stats(std::int64_t now) {
  Stats st;
  static_cast<StoreCounts&>(st) = gauges(now);
  st.events = count_events();
  return st;
}

std::unique_ptr<Store> open_store(const Config& config) {
  if (is_postgres_url(config.db)) return std::make_unique<PgStore>(config);
  return open_sqlite_store(config);
}

}  // namespace brandhooks
