// Moving a database (migration.hpp): rows out in key order, rows in exactly as another store
// exported them, then the identity sequences and the delivery counts made to follow them.
#include "pg/pg_store.hpp"
#include "store_common.hpp"

namespace brandhooks {

namespace {

void add_value(pg::Params& params, const MovedValue& value, ColumnType type) {
  if (std::holds_alternative<std::monostate>(value)) {
    params.null();
  } else if (const auto* n = std::get_if<std::int64_t>(&value)) {
    params.add(*n);
  } else if (type == ColumnType::bytes) {
    params.bytes(std::get<std::string>(value));  // the row outlives the statement
  } else {
    params.add(std::get<std::string>(value));
  }
}

MovedValue value_of(const pg::Result& result, int row, int col, ColumnType type) {
  if (result.is_null(row, col)) return std::monostate{};
  if (type == ColumnType::integer) return result.int64(row, col);
  if (type == ColumnType::bytes) return result.bytes(row, col);
  return result.text(row, col);
}

// The columns PostgreSQL generates (GENERATED ALWAYS AS IDENTITY, pg/schema.cpp) and that an
// import filled with given values: their sequences must continue after the largest.
constexpr std::pair<const char*, const char*> kIdentities[] = {
    {"webhooks", "seq"}, {"webhook_keys", "id"}, {"events", "seq"}, {"deliveries", "seq"}};

}  // namespace

std::vector<MovedRow> PgStore::export_rows(const MovedTable& table, const MovedRow& after, std::size_t limit,
                                           std::size_t max_bytes) {
  return read([&](Connection& c) {
    pg::Params params;
    for (std::size_t k = 0; k < after.size(); ++k) add_value(params, after[k], table.columns[k].type);
    params.add(static_cast<std::int64_t>(limit));
    auto result = c.exec(pg::numbered(export_sql(table, after.empty(), Dialect::postgres)), params);
    std::vector<MovedRow> rows;
    std::size_t bytes = 0;
    for (int r = 0; r < result.rows() && bytes < max_bytes; ++r) {
      MovedRow row;
      for (std::size_t col = 0; col < table.columns.size(); ++col) {
        row.push_back(value_of(result, r, static_cast<int>(col), table.columns[col].type));
      }
      bytes += moved_bytes(row);
      rows.push_back(std::move(row));
    }
    return rows;
  });
}

void PgStore::import_rows(const MovedTable& table, const std::vector<MovedRow>& rows) {
  if (rows.empty()) return;
  // Sized once: Params point into themselves, so they must not move once filled.
  std::vector<pg::Params> batch(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t col = 0; col < rows[r].size(); ++col) add_value(batch[r], rows[r][col], table.columns[col].type);
  }
  std::string sql = pg::numbered(import_sql(table, Dialect::postgres));
  transact([&](Connection& c) { c.pipeline(sql, batch); });
}

std::int64_t PgStore::count_rows(const MovedTable& table) {
  return read([&](Connection& c) { return c.exec(count_sql(table)).int64(0, 0); });
}

void PgStore::finish_import() {
  transact([&](Connection& c) {
    for (const auto& [table, column] : kIdentities) {
      c.exec(std::string("SELECT setval(pg_get_serial_sequence('") + table + "', '" + column + "'), " +
             "coalesce((SELECT max(" + column + ") FROM " + table + "), 0) + 1, false)");
    }
    // The imported deliveries, counted once, in one shard (stats() sums the shards).
    c.run("DELETE FROM delivery_counts");
    c.run("INSERT INTO delivery_counts (state, shard, n) SELECT state, 0, count(*) FROM deliveries GROUP BY state");
    c.run(store_sql::kReleaseImportedLeases);
  });
}

}  // namespace brandhooks
