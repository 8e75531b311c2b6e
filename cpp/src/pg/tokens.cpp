// API tokens on PostgreSQL (stored hashed), and the store's health check.
#include "pg/pg_store.hpp"
#include "pg/rows.hpp"

namespace brandhooks {

using pg::Params;

bool PgStore::insert_token(const TokenRecord& t) {
  return transact([&](Connection& c) {
    if (t.info.brand) ensure_brand(c, *t.info.brand, t.info.created_at);
    return c.exec(pg::numbered(store_sql::kInsertToken), Params()
                                                             .add(t.info.id)
                                                             .bytes(t.hash)
                                                             .add(t.info.brand)
                                                             .add(t.info.label)
                                                             .add(t.info.created_at)
                                                             .add(t.info.expires_at))
               .affected() == 1;
  });
}

std::optional<TokenInfo> PgStore::find_token(const std::string& hash) {
  return read([&](Connection& c) -> std::optional<TokenInfo> {
    auto rows = c.exec(pg::numbered(store_sql::kFindToken), Params().bytes(hash));
    if (rows.rows() == 0) return std::nullopt;
    return token_from_row(pg::Row(rows, 0));
  });
}

std::vector<TokenInfo> PgStore::list_tokens() {
  return read([&](Connection& c) {
    auto rows = c.exec(store_sql::kListTokens);
    std::vector<TokenInfo> out;
    for (int i = 0; i < rows.rows(); ++i) out.push_back(token_from_row(pg::Row(rows, i)));
    return out;
  });
}

bool PgStore::revoke_token(const std::string& id, std::int64_t now) {
  return transact([&](Connection& c) {
    return c.exec(pg::numbered(store_sql::kRevokeToken), Params().add(now).add(id))
               .affected() == 1;
  });
}

bool PgStore::has_tokens() {
  return read([&](Connection& c) {
    return c.exec("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL)").boolean(0, 0);
  });
}

void PgStore::check_writable() {
  // Reachable (a connection, or UnavailableError), and not a read-only standby.
  bool read_only = read([&](Connection& c) { return c.exec("SELECT pg_is_in_recovery()").boolean(0, 0); });
  if (read_only) {
    throw UnavailableError("database unavailable: the PostgreSQL server is a read-only standby; "
                           "point --db at the primary");
  }
}

}  // namespace brandhooks
