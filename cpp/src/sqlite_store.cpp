// SQLite backend of the Store: one connection in WAL mode guarded by a mutex (SQLiteCpp
// statements are not thread-safe), schema versioned with PRAGMA user_version.
#include <SQLiteCpp/SQLiteCpp.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "brandhooks/errors.hpp"
#include "store.hpp"

namespace brandhooks {

namespace {

// Migrations in order: entry i upgrades a file from version i to version i + 1. Never edit
// a released entry; append a new one.
const char* const kMigrations[] = {
    // 1: brands (with an optional parent), webhooks (soft delete), API tokens (hashed).
    R"sql(
    CREATE TABLE brands (
      id         TEXT PRIMARY KEY,
      parent     TEXT REFERENCES brands(id),
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    );
    CREATE INDEX brands_by_parent ON brands(parent);
    CREATE TABLE webhooks (
      seq        INTEGER PRIMARY KEY AUTOINCREMENT,
      id         TEXT NOT NULL UNIQUE,
      brand      TEXT NOT NULL REFERENCES brands(id),
      topic      TEXT NOT NULL,
      url        TEXT NOT NULL,
      key        TEXT NOT NULL,
      tags       TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      deleted_at INTEGER
    );
    CREATE INDEX webhooks_live ON webhooks(brand, topic) WHERE deleted_at IS NULL;
    CREATE TABLE api_tokens (
      id         TEXT PRIMARY KEY,
      hash       BLOB NOT NULL UNIQUE,
      brand      TEXT,
      label      TEXT NOT NULL DEFAULT '',
      created_at INTEGER NOT NULL,
      revoked_at INTEGER
    );
    )sql",
};

constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

constexpr const char* kWebhookColumns =
    "id, created_at, updated_at, deleted_at, brand, topic, url, key, tags";

Webhook read_webhook(SQLite::Statement& q) {
  Webhook w;
  w.id = q.getColumn(0).getString();
  w.created_at = q.getColumn(1).getInt64();
  w.updated_at = q.getColumn(2).getInt64();
  if (!q.getColumn(3).isNull()) w.deleted_at = q.getColumn(3).getInt64();
  w.brand = q.getColumn(4).getString();
  w.topic = q.getColumn(5).getString();
  w.url = q.getColumn(6).getString();
  w.key = q.getColumn(7).getString();
  if (!q.getColumn(8).isNull()) {
    w.tags = nlohmann::json::parse(q.getColumn(8).getString()).get<std::vector<std::string>>();
  }
  return w;
}

TokenInfo read_token(SQLite::Statement& q) {
  TokenInfo t;
  t.id = q.getColumn(0).getString();
  if (!q.getColumn(1).isNull()) t.brand = q.getColumn(1).getString();
  t.label = q.getColumn(2).getString();
  t.created_at = q.getColumn(3).getInt64();
  return t;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const Config& config) : db_(open(config)) {
    guarded([&] {
      db_.setBusyTimeout(config.busy_timeout_ms);
      if (config.db != ":memory:") db_.exec("PRAGMA journal_mode=WAL");
      db_.exec(config.synchronous == "full" ? "PRAGMA synchronous=FULL"
                                            : "PRAGMA synchronous=NORMAL");
      db_.exec("PRAGMA foreign_keys=ON");
    });
    migrate();
  }

  void insert_webhook(const Webhook& w) override {
    guarded([&] {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      ensure_brand(w.brand, w.created_at);
      SQLite::Statement q(db_,
                          "INSERT INTO webhooks (id, created_at, updated_at, deleted_at, brand, "
                          "topic, url, key, tags) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?)");
      q.bind(1, w.id);
      q.bind(2, w.created_at);
      q.bind(3, w.updated_at);
      q.bind(4, w.brand);
      q.bind(5, w.topic);
      q.bind(6, w.url);
      q.bind(7, w.key);
      if (w.tags) {
        q.bind(8, nlohmann::json(*w.tags).dump());
      } else {
        q.bind(8);
      }
      q.exec();
      tx.commit();
    });
  }

  Page<Webhook> list_webhooks(const WebhookQuery& query) override {
    return guarded([&] {
      std::string where = " FROM webhooks WHERE brand = ? AND deleted_at IS NULL";
      if (query.topic) where += " AND topic = ?";
      auto bind_filters = [&](SQLite::Statement& q) {
        q.bind(1, query.brand);
        if (query.topic) q.bind(2, *query.topic);
      };
      Page<Webhook> page;
      SQLite::Statement count(db_, "SELECT count(*)" + where);
      bind_filters(count);
      count.executeStep();
      page.total = count.getColumn(0).getInt64();

      SQLite::Statement q(db_, std::string("SELECT ") + kWebhookColumns + where +
                                   " ORDER BY seq LIMIT ? OFFSET ?");
      bind_filters(q);
      int next = query.topic ? 3 : 2;
      q.bind(next, query.limit.value_or(-1));  // -1: no limit in SQLite
      q.bind(next + 1, query.start);
      while (q.executeStep()) page.items.push_back(read_webhook(q));
      return page;
    });
  }

  std::optional<Webhook> find_live_webhook(const std::string& brand,
                                           const std::string& id) override {
    return guarded([&] { return find_live_locked(brand, id); });
  }

  std::optional<Webhook> soft_delete_webhook(const std::string& brand, const std::string& id,
                                             std::int64_t now) override {
    return guarded([&]() -> std::optional<Webhook> {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement q(db_,
                          "UPDATE webhooks SET deleted_at = ?, updated_at = ? "
                          "WHERE brand = ? AND id = ? AND deleted_at IS NULL");
      q.bind(1, now);
      q.bind(2, now);
      q.bind(3, brand);
      q.bind(4, id);
      if (q.exec() == 0) return std::nullopt;
      SQLite::Statement r(db_, std::string("SELECT ") + kWebhookColumns +
                                   " FROM webhooks WHERE id = ?");
      r.bind(1, id);
      r.executeStep();
      Webhook w = read_webhook(r);
      tx.commit();
      return w;
    });
  }

  void set_brand_parent(const std::string& brand, const std::optional<std::string>& parent,
                        std::int64_t now) override {
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
      SQLite::Statement q(db_, "UPDATE brands SET parent = ?, updated_at = ? WHERE id = ?");
      if (parent) {
        q.bind(1, *parent);
      } else {
        q.bind(1);
      }
      q.bind(2, now);
      q.bind(3, brand);
      q.exec();
      tx.commit();
    });
  }

  std::optional<std::string> brand_parent(const std::string& brand) override {
    return guarded([&]() -> std::optional<std::string> {
      SQLite::Statement q(db_, "SELECT parent FROM brands WHERE id = ?");
      q.bind(1, brand);
      if (!q.executeStep() || q.getColumn(0).isNull()) return std::nullopt;
      return q.getColumn(0).getString();
    });
  }

  std::vector<std::string> brand_lineage(const std::string& brand) override {
    return guarded([&] { return lineage_locked(brand); });
  }

  bool insert_token(const TokenRecord& t) override {
    return guarded([&] {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      if (t.info.brand) ensure_brand(*t.info.brand, t.info.created_at);
      SQLite::Statement q(db_,
                          "INSERT OR IGNORE INTO api_tokens (id, hash, brand, label, created_at) "
                          "VALUES (?, ?, ?, ?, ?)");
      q.bind(1, t.info.id);
      q.bind(2, t.hash.data(), static_cast<int>(t.hash.size()));
      if (t.info.brand) {
        q.bind(3, *t.info.brand);
      } else {
        q.bind(3);
      }
      q.bind(4, t.info.label);
      q.bind(5, t.info.created_at);
      bool inserted = q.exec() == 1;
      tx.commit();
      return inserted;
    });
  }

  std::optional<TokenInfo> find_token(const std::string& hash) override {
    return guarded([&]() -> std::optional<TokenInfo> {
      SQLite::Statement q(db_,
                          "SELECT id, brand, label, created_at FROM api_tokens "
                          "WHERE hash = ? AND revoked_at IS NULL");
      q.bind(1, hash.data(), static_cast<int>(hash.size()));
      if (!q.executeStep()) return std::nullopt;
      return read_token(q);
    });
  }

  std::vector<TokenInfo> list_tokens() override {
    return guarded([&] {
      SQLite::Statement q(db_,
                          "SELECT id, brand, label, created_at FROM api_tokens "
                          "WHERE revoked_at IS NULL ORDER BY created_at, id");
      std::vector<TokenInfo> out;
      while (q.executeStep()) out.push_back(read_token(q));
      return out;
    });
  }

  bool revoke_token(const std::string& id, std::int64_t now) override {
    return guarded([&] {
      SQLite::Statement q(db_,
                          "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL");
      q.bind(1, now);
      q.bind(2, id);
      return q.exec() == 1;
    });
  }

  bool has_tokens() override {
    return guarded([&] {
      SQLite::Statement q(db_, "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL)");
      q.executeStep();
      return q.getColumn(0).getInt() == 1;
    });
  }

 private:
  static SQLite::Database open(const Config& config) {
    try {
      return SQLite::Database(config.db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    } catch (const SQLite::Exception& e) {
      throw StorageError("cannot open database " + config.db + ": " + e.what());
    }
  }

  // Runs `fn` under the connection's lock; SQLite failures become StorageError, while the
  // core's own errors (e.g. ConflictError from a check inside a transaction) pass through.
  template <class Fn>
  auto guarded(Fn&& fn) -> decltype(fn()) {
    std::lock_guard lock(mutex_);
    try {
      return fn();
    } catch (const SQLite::Exception& e) {
      throw StorageError(std::string("database error: ") + e.what());
    }
  }

  void migrate() {
    guarded([&] {
      int version = db_.execAndGet("PRAGMA user_version").getInt();
      if (version > kSchemaVersion) {
        throw StorageError("database schema version " + std::to_string(version) +
                           " is newer than this build supports (" +
                           std::to_string(kSchemaVersion) + "); upgrade brandhooks");
      }
      for (; version < kSchemaVersion; ++version) {
        SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
        // Re-read under the write lock: another process may have migrated meanwhile.
        int current = db_.execAndGet("PRAGMA user_version").getInt();
        if (current > version) {
          version = current - 1;
          continue;
        }
        db_.exec(kMigrations[version]);
        db_.exec("PRAGMA user_version = " + std::to_string(version + 1));
        tx.commit();
      }
    });
  }

  void ensure_brand(const std::string& id, std::int64_t now) {
    SQLite::Statement q(db_,
                        "INSERT OR IGNORE INTO brands (id, parent, created_at, updated_at) "
                        "VALUES (?, NULL, ?, ?)");
    q.bind(1, id);
    q.bind(2, now);
    q.bind(3, now);
    q.exec();
  }

  std::optional<Webhook> find_live_locked(const std::string& brand, const std::string& id) {
    SQLite::Statement q(db_, std::string("SELECT ") + kWebhookColumns +
                                 " FROM webhooks WHERE brand = ? AND id = ? AND deleted_at IS NULL");
    q.bind(1, brand);
    q.bind(2, id);
    if (!q.executeStep()) return std::nullopt;
    return read_webhook(q);
  }

  std::vector<std::string> lineage_locked(const std::string& brand) {
    // The tree is acyclic (set_brand_parent refuses cycles); the depth cap guards a file
    // edited by hand.
    SQLite::Statement q(db_,
                        "WITH RECURSIVE up(id, depth) AS ("
                        "  SELECT ?, 0"
                        "  UNION ALL SELECT b.parent, up.depth + 1 FROM brands b JOIN up ON b.id = up.id"
                        "  WHERE b.parent IS NOT NULL AND up.depth < 1000)"
                        " SELECT id FROM up ORDER BY depth");
    q.bind(1, brand);
    std::vector<std::string> out;
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  }

  std::mutex mutex_;
  SQLite::Database db_;
};

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const Config& config) {
  return std::make_unique<SqliteStore>(config);
}

int sqlite_schema_version() { return kSchemaVersion; }

const char* sqlite_migration(int version) { return kMigrations[version]; }

}  // namespace brandhooks
