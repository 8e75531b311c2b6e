// Moving a database (migration.hpp): rows out in key order, rows in as they were, and a check
// that a file is a brandhooks database before anything opens it as one.
#include <filesystem>

#include "brandhooks/errors.hpp"
#include "sqlite/sqlite_store.hpp"

namespace brandhooks {

namespace sqlite {

namespace {

void bind_value(SQLite::Statement& q, int index, const MovedValue& value, ColumnType type) {
  if (std::holds_alternative<std::monostate>(value)) {
    q.bind(index);
  } else if (const auto* n = std::get_if<std::int64_t>(&value)) {
    q.bind(index, *n);
  } else if (type == ColumnType::bytes) {
    const auto& bytes = std::get<std::string>(value);
    q.bind(index, bytes.data(), static_cast<int>(bytes.size()));
  } else {
    q.bind(index, std::get<std::string>(value));
  }
}

MovedValue column_value(SQLite::Statement& q, int index, ColumnType type) {
  SQLite::Column c = q.getColumn(index);
  if (c.isNull()) return std::monostate{};
  if (type == ColumnType::integer) return c.getInt64();
  return Row{q}.text(index);
}

}  // namespace

std::vector<MovedRow> SqliteStore::export_rows(const MovedTable& table, const MovedRow& after, std::size_t limit,
                                               std::size_t max_bytes) {
  return guarded([&] {
    SQLite::Statement& q = prepare(export_sql(table, after.empty(), Dialect::sqlite));
    int i = 1;
    for (std::size_t k = 0; k < after.size(); ++k) bind_value(q, i++, after[k], table.columns[k].type);
    q.bind(i, static_cast<std::int64_t>(limit));
    std::vector<MovedRow> rows;
    std::size_t bytes = 0;
    while (bytes < max_bytes && q.executeStep()) {
      MovedRow row;
      row.reserve(table.columns.size());
      for (std::size_t c = 0; c < table.columns.size(); ++c) {
        row.push_back(column_value(q, static_cast<int>(c), table.columns[c].type));
      }
      bytes += moved_bytes(row);
      rows.push_back(std::move(row));
    }
    return rows;
  });
}

void SqliteStore::import_rows(const MovedTable& table, const std::vector<MovedRow>& rows) {
  guarded([&] {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement& q = prepare(import_sql(table, Dialect::sqlite));
    for (const auto& row : rows) {
      for (std::size_t c = 0; c < row.size(); ++c) {
        bind_value(q, static_cast<int>(c + 1), row[c], table.columns[c].type);
      }
      q.exec();
      q.reset();
    }
    tx.commit();
  });
}

std::int64_t SqliteStore::count_rows(const MovedTable& table) {
  return guarded([&] {
    SQLite::Statement& q = prepare(count_sql(table));
    q.executeStep();
    return q.getColumn(0).getInt64();
  });
}

void SqliteStore::finish_import() {
  // AUTOINCREMENT's counters followed the inserted seqs by themselves (sqlite_sequence).
  guarded([&] {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    db_.exec("UPDATE delivery_counts SET n = (SELECT count(*) FROM deliveries d WHERE d.state = delivery_counts.state)");
    db_.exec(store_sql::kReleaseImportedLeases);
    tx.commit();
  });
}

}  // namespace sqlite

void check_sqlite_database(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw ValidationError(path + " is not a file (a brandhooks SQLite database was expected)");
  }
  auto not_ours = [&](const std::string& why) {
    return ValidationError(path + " is not a brandhooks SQLite database (" + why + ")");
  };
  try {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    int version = db.execAndGet("PRAGMA user_version").getInt();
    bool has_tables = db.execAndGet("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                    "name IN ('brands', 'webhooks', 'api_tokens')")
                          .getInt() == 3;
    if (version < 1 || !has_tables) throw not_ours("it has no brandhooks tables");
  } catch (const SQLite::Exception& e) {
    throw not_ours(e.what());
  }
}

}  // namespace brandhooks
