#pragma once
// The persistence interface of the Hub. SqliteStore is the one backend today; the interface
// is what a second backend (e.g. PostgreSQL) would implement. Implementations are thread-safe.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "brandhooks/config.hpp"
#include "brandhooks/model.hpp"

namespace brandhooks {

struct TokenRecord {
  TokenInfo info;
  std::string hash;  // SHA-256 of the secret, raw bytes
};

class Store {
 public:
  virtual ~Store() = default;

  virtual void insert_webhook(const Webhook& webhook) = 0;
  virtual Page<Webhook> list_webhooks(const WebhookQuery& query) = 0;
  virtual std::optional<Webhook> find_live_webhook(const std::string& brand,
                                                   const std::string& id) = 0;
  // Sets deleted_at/updated_at on a live webhook of the brand; the updated row, or nullopt.
  virtual std::optional<Webhook> soft_delete_webhook(const std::string& brand,
                                                     const std::string& id,
                                                     std::int64_t now) = 0;

  // Throws ConflictError when `parent` is `brand` or one of its descendants.
  virtual void set_brand_parent(const std::string& brand, const std::optional<std::string>& parent,
                                std::int64_t now) = 0;
  virtual std::optional<std::string> brand_parent(const std::string& brand) = 0;
  // `brand` itself first, then its parent, grandparent, ... up to the root.
  virtual std::vector<std::string> brand_lineage(const std::string& brand) = 0;

  // Returns false when a token with the same hash exists already.
  virtual bool insert_token(const TokenRecord& token) = 0;
  virtual std::optional<TokenInfo> find_token(const std::string& hash) = 0;
  virtual std::vector<TokenInfo> list_tokens() = 0;
  virtual bool revoke_token(const std::string& id, std::int64_t now) = 0;
  virtual bool has_tokens() = 0;
};

std::unique_ptr<Store> open_sqlite_store(const Config& config);

// The schema version this build writes; a file with a higher version is refused.
int sqlite_schema_version();
// The SQL that upgrades a file from `version` to `version + 1` (tests build old files with it).
const char* sqlite_migration(int version);

}  // namespace brandhooks
