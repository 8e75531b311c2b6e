#pragma once
// The records the core stores and returns. Times are Unix microseconds; the REST contract
// shows them as float seconds (see to_json).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace brandhooks {

// The topics a webhook can subscribe to (case-sensitive).
inline constexpr std::string_view kTopics[] = {"Deals", "Showings", "Contacts"};

struct Webhook {
  std::string id;     // UUID v4
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  std::optional<std::int64_t> deleted_at;
  std::string brand;  // UUID, lowercase
  std::string topic;
  std::string url;    // exactly as registered
  std::string key;    // 64 lowercase hex characters (32 random bytes)
  std::optional<std::vector<std::string>> tags;
};

// A brand (tenant) and its place in the brand tree.
struct Brand {
  std::string id;                     // UUID, lowercase
  std::optional<std::string> parent;  // empty: a root brand
};

// One page of a list and the number of records matching the query without paging.
template <class T>
struct Page {
  std::vector<T> items;
  std::int64_t total = 0;
};

struct WebhookQuery {
  std::string brand;
  std::optional<std::string> topic;
  std::int64_t start = 0;
  std::optional<std::int64_t> limit;  // no limit when empty
};

// An API token as listed: never the secret itself, which is shown once at creation.
struct TokenInfo {
  std::string id;
  std::optional<std::string> brand;  // empty: admin token (every brand)
  std::string label;
  std::int64_t created_at = 0;
};

struct IssuedToken {
  TokenInfo info;
  std::string secret;  // the bearer token; only its hash is stored
};

// Who a bearer token speaks for.
struct Principal {
  std::string token_id;
  std::optional<std::string> brand;  // empty: admin
  bool is_admin() const { return !brand.has_value(); }
};

// The webhook as the REST contract shows it: fields in contract order, "type":"brand_webhook".
std::string to_json(const Webhook& webhook);

}  // namespace brandhooks
