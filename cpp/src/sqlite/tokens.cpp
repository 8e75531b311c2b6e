// API tokens, stored hashed.
#include "sqlite/sqlite_store.hpp"

namespace brandhooks::sqlite {

bool SqliteStore::insert_token(const TokenRecord& t) {
  return guarded([&] {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    if (t.info.brand) ensure_brand(*t.info.brand, t.info.created_at);
    SQLite::Statement& q = prepare(store_sql::kInsertToken);
    q.bind(1, t.info.id);
    q.bind(2, t.hash.data(), static_cast<int>(t.hash.size()));
    bind_optional(q, 3, t.info.brand);
    q.bind(4, t.info.label);
    q.bind(5, t.info.created_at);
    bind_optional(q, 6, t.info.expires_at);
    bool inserted = q.exec() == 1;
    tx.commit();
    return inserted;
  });
}

std::optional<TokenInfo> SqliteStore::find_token(const std::string& hash) {
  return guarded([&]() -> std::optional<TokenInfo> {
    SQLite::Statement& q = prepare(store_sql::kFindToken);
    q.bind(1, hash.data(), static_cast<int>(hash.size()));
    if (!q.executeStep()) return std::nullopt;
    return token_from_row(Row{q});
  });
}

std::vector<TokenInfo> SqliteStore::list_tokens() {
  return guarded([&] {
    SQLite::Statement& q = prepare(store_sql::kListTokens);
    std::vector<TokenInfo> out;
    while (q.executeStep()) out.push_back(token_from_row(Row{q}));
    return out;
  });
}

bool SqliteStore::revoke_token(const std::string& id, std::int64_t now) {
  return guarded([&] {
    SQLite::Statement& q = prepare(store_sql::kRevokeToken);
    q.bind(1, now);
    q.bind(2, id);
    return q.exec() == 1;
  });
}

bool SqliteStore::has_tokens() {
  return guarded([&] {
    SQLite::Statement& q = prepare("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL)");
    q.executeStep();
    return q.getColumn(0).getInt() == 1;
  });
}

}  // namespace brandhooks::sqlite
