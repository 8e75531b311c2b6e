#pragma once
// The column lists the PostgreSQL backend reads records with, and the readers that go with
// them (shared by its files).
#include <nlohmann/json.hpp>

#include "brandhooks/model.hpp"
#include "pg/connection.hpp"

namespace brandhooks::pg {

inline constexpr const char* kWebhookColumns =
    "id, created_at, updated_at, deleted_at, brand, topic, url, key, tags, disabled_at, disabled_reason";

inline Webhook read_webhook(const Result& r, int row) {
  Webhook w;
  w.id = r.text(row, 0);
  w.created_at = r.int64(row, 1);
  w.updated_at = r.int64(row, 2);
  w.deleted_at = r.optional_int64(row, 3);
  w.brand = r.text(row, 4);
  w.topic = r.text(row, 5);
  w.url = r.text(row, 6);
  w.key = r.text(row, 7);
  if (!r.is_null(row, 8)) w.tags = nlohmann::json::parse(r.text(row, 8)).get<std::vector<std::string>>();
  w.disabled_at = r.optional_int64(row, 9);
  if (!r.is_null(row, 10)) w.disabled_reason = r.text(row, 10);
  return w;
}

inline constexpr const char* kDeliveryColumns =
    "d.seq, d.id, e.id, w.id, w.brand, d.state, d.attempts, d.created_at, d.updated_at, d.next_at, "
    "e.topic, e.event";

inline constexpr const char* kTokenColumns = "id, brand, label, created_at";

inline TokenInfo read_token(const Result& r, int row) {
  TokenInfo t;
  t.id = r.text(row, 0);
  if (!r.is_null(row, 1)) t.brand = r.text(row, 1);
  t.label = r.text(row, 2);
  t.created_at = r.int64(row, 3);
  return t;
}

}  // namespace brandhooks::pg
