// The brand tree: parents, a brand's lineage up to its root, and its descendants.
#include "brandhooks/errors.hpp"
#include "sqlite/sqlite_store.hpp"

namespace brandhooks::sqlite {

void SqliteStore::set_brand_parent(const std::string& brand, const std::optional<std::string>& parent,
                                   std::int64_t now) {
  guarded([&] {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    ensure_brand(brand, now);
    if (parent) {
      ensure_brand(*parent, now);
      for (const auto& ancestor : lineage_locked(*parent)) {
        if (ancestor == brand) {
          throw ConflictError("a brand cannot be its own ancestor");
        }
      }
    }
    SQLite::Statement& q = prepare(store_sql::kSetBrandParent);
    bind_optional(q, 1, parent);
    q.bind(2, now);
    q.bind(3, brand);
    q.exec();
    tx.commit();
  });
}

std::optional<std::string> SqliteStore::brand_parent(const std::string& brand) {
  return guarded([&]() -> std::optional<std::string> {
    SQLite::Statement& q = prepare(store_sql::kBrandParent);
    q.bind(1, brand);
    if (!q.executeStep() || q.getColumn(0).isNull()) return std::nullopt;
    return q.getColumn(0).getString();
  });
}

std::vector<std::string> SqliteStore::brand_lineage(const std::string& brand) {
  return guarded([&] { return lineage_locked(brand); });
}

std::vector<Brand> SqliteStore::brand_descendants(const std::string& brand) {
  return guarded([&] {
    SQLite::Statement& q = prepare(store_sql::kBrandDescendants);
    q.bind(1, brand);
    std::vector<Brand> out;
    while (q.executeStep()) out.push_back({q.getColumn(0).getString(), q.getColumn(1).getString()});
    return out;
  });
}

void SqliteStore::ensure_brand(const std::string& id, std::int64_t now) {
  SQLite::Statement& q = prepare("INSERT OR IGNORE INTO brands (id, parent, created_at, updated_at) "
                                 "VALUES (?, NULL, ?, ?)");
  q.bind(1, id);
  q.bind(2, now);
  q.bind(3, now);
  q.exec();
}

std::vector<std::string> SqliteStore::lineage_locked(const std::string& brand) {
  // The tree is acyclic (set_brand_parent refuses cycles); the depth cap guards a file
  // edited by hand.
  SQLite::Statement& q = prepare("WITH RECURSIVE up(id, depth) AS ("
                                 "  SELECT ?, 0"
                                 "  UNION ALL SELECT b.parent, up.depth + 1 FROM brands b JOIN up ON b.id = up.id"
                                 "  WHERE b.parent IS NOT NULL AND up.depth < 1000)"
                                 " SELECT id FROM up ORDER BY depth");
  q.bind(1, brand);
  std::vector<std::string> out;
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  return out;
}

}  // namespace brandhooks::sqlite
