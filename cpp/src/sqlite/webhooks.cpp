// Webhooks: registration, listing, changes, key rotation and soft deletion.
#include <cstdint>

#include "brandhooks/errors.hpp"
#include "sqlite/sqlite_store.hpp"
#include "validation.hpp"

namespace brandhooks::sqlite {

void SqliteStore::insert_webhook(const Webhook& w) {
  guarded([&] {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    ensure_brand(w.brand, w.created_at);
    SQLite::Statement& q = prepare("INSERT INTO webhooks (id, created_at, updated_at, deleted_at, brand, "
                                   "topic, url, key, tags, ordered, rate_limit, headers) "
                                   "VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)");
    q.bind(1, w.id);
    q.bind(2, w.created_at);
    q.bind(3, w.updated_at);
    q.bind(4, w.brand);
    q.bind(5, w.topic);
    q.bind(6, w.url);
    q.bind(7, w.key);
    bind_optional(q, 8, tags_json(w.tags));
    q.bind(9, w.ordered ? 1 : 0);
    bind_optional(q, 10, w.rate_limit);
    bind_optional(q, 11, headers_json(w.headers));
    q.exec();
    tx.commit();
  });
}

Page<Webhook> SqliteStore::list_webhooks(const WebhookQuery& query) {
  return guarded([&] {
    std::string where = " FROM webhooks WHERE brand = ? AND deleted_at IS NULL";
    if (query.topic) where += " AND topic = ?";
    auto bind_filters = [&](SQLite::Statement& q) {
      q.bind(1, query.brand);
      if (query.topic) q.bind(2, *query.topic);
    };
    Page<Webhook> page;
    SQLite::Statement& count = prepare("SELECT count(*)" + where);
    bind_filters(count);
    count.executeStep();
    page.total = count.getColumn(0).getInt64();

    SQLite::Statement& q =
        prepare(std::string("SELECT ") + store_sql::kWebhookColumns + where + " ORDER BY seq LIMIT ? OFFSET ?");
    bind_filters(q);
    int next = query.topic ? 3 : 2;
    q.bind(next, query.limit.value_or(-1));  // -1: no limit in SQLite
    q.bind(next + 1, query.start);
    while (q.executeStep()) page.items.push_back(webhook_from_row(Row{q}));
    return page;
  });
}

std::optional<Webhook> SqliteStore::find_live_webhook(const std::string& brand, const std::string& id) {
  return guarded([&] { return find_webhook_locked(brand, id, false); });
}

std::optional<Webhook> SqliteStore::find_webhook(const std::string& brand, const std::string& id) {
  return guarded([&] { return find_webhook_locked(brand, id, true); });
}

std::optional<Webhook> SqliteStore::soft_delete_webhook(const std::string& brand, const std::string& id,
                                                        std::int64_t now) {
  return guarded([&]() -> std::optional<Webhook> {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement& q = prepare(store_sql::kSoftDeleteWebhook);
    q.bind(1, now);
    q.bind(2, brand);
    q.bind(3, id);
    if (q.exec() == 0) return std::nullopt;
    cancel_waiting(id, now);
    SQLite::Statement& r = prepare(std::string("SELECT ") + store_sql::kWebhookColumns + " FROM webhooks WHERE id = ?");
    r.bind(1, id);
    r.executeStep();
    Webhook w = webhook_from_row(Row{r});
    tx.commit();
    return w;
  });
}

std::optional<Webhook> SqliteStore::update_webhook(const std::string& brand, const std::string& id,
                                                   const WebhookPatch& patch, std::int64_t now) {
  return guarded([&]() -> std::optional<Webhook> {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    auto current = find_webhook_locked(brand, id, false);
    if (!current) return std::nullopt;
    std::string sets = "updated_at = ?";
    if (patch.url) sets += ", url = ?";
    if (patch.topic) sets += ", topic = ?";
    if (patch.set_tags) sets += ", tags = ?";
    if (patch.ordered) sets += ", ordered = ?";
    if (patch.set_rate_limit) sets += ", rate_limit = ?";
    if (patch.headers) sets += ", headers = ?";
    if (patch.enabled) {
      sets += *patch.enabled ? ", disabled_at = NULL, disabled_reason = NULL, failing_since = NULL"
                             : ", disabled_at = coalesce(disabled_at, ?), "
                               "disabled_reason = coalesce(disabled_reason, 'disabled by an operator')";
    }
    SQLite::Statement& q = prepare("UPDATE webhooks SET " + sets + " WHERE id = ?");
    int i = 1;
    q.bind(i++, now);
    if (patch.url) q.bind(i++, *patch.url);
    if (patch.topic) q.bind(i++, *patch.topic);
    if (patch.set_tags) bind_optional(q, i++, tags_json(patch.tags));
    if (patch.ordered) q.bind(i++, *patch.ordered ? 1 : 0);
    if (patch.set_rate_limit) bind_optional(q, i++, patch.rate_limit);
    if (patch.headers) bind_optional(q, i++, headers_json(*patch.headers));
    if (patch.enabled && !*patch.enabled) q.bind(i++, now);
    q.bind(i, id);
    q.exec();
    if (patch.enabled && !*patch.enabled) cancel_waiting(id, now);
    auto updated = find_webhook_locked(brand, id, false);
    tx.commit();
    return updated;
  });
}

std::optional<Webhook> SqliteStore::rotate_key(const std::string& brand, const std::string& id,
                                               const std::string& new_key, std::int64_t old_valid_until,
                                               std::int64_t now, int max_previous) {
  return guarded([&]() -> std::optional<Webhook> {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    auto current = find_webhook_locked(brand, id, false);
    if (!current) return std::nullopt;
    if (old_valid_until > now && max_previous > 0) {
      SQLite::Statement& keep = prepare(store_sql::kKeepOldKey);
      keep.bind(1, old_valid_until);
      keep.bind(2, id);
      keep.exec();
    }
    // No grace: every earlier key ends now (expires_at <= ?1 matches all). Otherwise the
    // expired ones go, and all but the `max_previous` most recently retired.
    std::int64_t ended_before = old_valid_until > now ? now : INT64_MAX;
    SQLite::Statement& forget = prepare(
        "DELETE FROM webhook_keys WHERE webhook_seq = (SELECT seq FROM webhooks WHERE id = ?2) "
        "AND (expires_at <= ?1 OR rowid NOT IN (SELECT rowid FROM webhook_keys "
        "WHERE webhook_seq = (SELECT seq FROM webhooks WHERE id = ?2) ORDER BY rowid DESC LIMIT ?3))");
    forget.bind(1, ended_before);
    forget.bind(2, id);
    forget.bind(3, max_previous);
    forget.exec();
    SQLite::Statement& q = prepare(store_sql::kSetKey);
    q.bind(1, new_key);
    q.bind(2, now);
    q.bind(3, id);
    q.exec();
    auto updated = find_webhook_locked(brand, id, false);
    tx.commit();
    return updated;
  });
}

std::optional<Webhook> SqliteStore::find_webhook_locked(const std::string& brand, const std::string& id,
                                                        bool include_deleted) {
  SQLite::Statement& q = prepare(std::string("SELECT ") + store_sql::kWebhookColumns +
                                 " FROM webhooks WHERE brand = ? AND id = ?" +
                                 (include_deleted ? "" : " AND deleted_at IS NULL"));
  q.bind(1, brand);
  q.bind(2, id);
  if (!q.executeStep()) return std::nullopt;
  return webhook_from_row(Row{q});
}

// The webhook's deliveries that wait for an attempt will never get one.
void SqliteStore::cancel_waiting(const std::string& webhook_id, std::int64_t now) {
  SQLite::Statement& cancel = prepare(store_sql::kCancelWaitingById);
  cancel.bind(1, now);
  cancel.bind(2, webhook_id);
  StateCounts counts;
  counts.move(DeliveryState::pending, DeliveryState::cancelled, cancel.exec());
  save_counts(counts);
}

}  // namespace brandhooks::sqlite
