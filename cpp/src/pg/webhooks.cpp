// Webhooks, their keys and the brand tree on PostgreSQL.
#include <climits>

#include "pg/pg_store.hpp"
#include "pg/rows.hpp"
#include "validation.hpp"

namespace brandhooks {

using pg::Params;

void PgStore::insert_webhook(const Webhook& w) {
  transact([&](Connection& c) {
    ensure_brand(c, w.brand, w.created_at);
    c.exec("INSERT INTO webhooks (id, created_at, updated_at, deleted_at, brand, topic, url, key, tags, "
           "ordered, rate_limit, headers) VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8::jsonb, $9, $10, $11::jsonb)",
           Params().add(w.id).add(w.created_at).add(w.updated_at).add(w.brand).add(w.topic).add(w.url).add(w.key)
               .add(tags_json(w.tags)).add(w.ordered).add(w.rate_limit).add(headers_json(w.headers)));
  });
}

Page<Webhook> PgStore::list_webhooks(const WebhookQuery& query) {
  return read([&](Connection& c) {
    // One statement: the page and the total (a window count over the same filter).
    std::string sql = std::string("SELECT ") + store_sql::kWebhookColumns +
                      ", count(*) OVER () FROM webhooks WHERE brand = $1 AND deleted_at IS NULL "
                      "AND ($2::text IS NULL OR topic = $2) ORDER BY seq LIMIT $3 OFFSET $4";
    Params p;
    p.add(query.brand).add(query.topic);
    if (query.limit) {
      p.add(*query.limit);
    } else {
      p.null();  // LIMIT NULL: no limit
    }
    p.add(query.start);
    auto rows = c.exec(sql, p);
    Page<Webhook> page;
    for (int i = 0; i < rows.rows(); ++i) page.items.push_back(webhook_from_row(pg::Row(rows, i)));
    if (rows.rows() > 0) {
      page.total = rows.int64(0, store_sql::kWebhookColumnCount);
    } else {  // an empty page (start past the end) still reports the total
      page.total = c.exec("SELECT count(*) FROM webhooks WHERE brand = $1 AND deleted_at IS NULL "
                          "AND ($2::text IS NULL OR topic = $2)",
                          Params().add(query.brand).add(query.topic))
                       .int64(0, 0);
    }
    return page;
  });
}

std::optional<Webhook> PgStore::find_live_webhook(const std::string& brand, const std::string& id) {
  return read([&](Connection& c) { return find_webhook_in(c, brand, id, false); });
}

std::optional<Webhook> PgStore::find_webhook(const std::string& brand, const std::string& id) {
  return read([&](Connection& c) { return find_webhook_in(c, brand, id, true); });
}

std::optional<Webhook> PgStore::soft_delete_webhook(const std::string& brand, const std::string& id,
                                                    std::int64_t now) {
  return transact([&](Connection& c) -> std::optional<Webhook> {
    auto rows = c.exec(pg::numbered(store_sql::kSoftDeleteWebhook) + " RETURNING seq", Params().add(now).add(brand).add(id));
    if (rows.rows() == 0) return std::nullopt;
    StateCounts counts;
    cancel_waiting(c, rows.int64(0, 0), now, counts);
    save_counts(c, counts);
    auto w = c.exec(std::string("SELECT ") + store_sql::kWebhookColumns + " FROM webhooks WHERE id = $1", Params().add(id));
    return webhook_from_row(pg::Row(w, 0));
  });
}

std::optional<Webhook> PgStore::update_webhook(const std::string& brand, const std::string& id,
                                               const WebhookPatch& patch, std::int64_t now) {
  return transact([&](Connection& c) -> std::optional<Webhook> {
    auto current = c.exec("SELECT seq FROM webhooks WHERE brand = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
                          Params().add(brand).add(id));
    if (current.rows() == 0) return std::nullopt;
    std::int64_t seq = current.int64(0, 0);
    Params p;
    p.add(now);
    std::string sets = "updated_at = $1";
    auto next = [&] { return "$" + std::to_string(p.size()); };
    if (patch.url) sets += ", url = " + (p.add(*patch.url), next());
    if (patch.topic) sets += ", topic = " + (p.add(*patch.topic), next());
    if (patch.set_tags) sets += ", tags = " + (p.add(tags_json(patch.tags)), next()) + "::jsonb";
    if (patch.ordered) sets += ", ordered = " + (p.add(*patch.ordered), next());
    if (patch.set_rate_limit) sets += ", rate_limit = " + (p.add(patch.rate_limit), next());
    if (patch.headers) sets += ", headers = " + (p.add(headers_json(*patch.headers)), next()) + "::jsonb";
    if (patch.enabled) {
      sets += *patch.enabled ? ", disabled_at = NULL, disabled_reason = NULL, failing_since = NULL"
                             : ", disabled_at = coalesce(disabled_at, $1), "
                               "disabled_reason = coalesce(disabled_reason, 'disabled by an operator')";
    }
    p.add(seq);
    c.exec("UPDATE webhooks SET " + sets + " WHERE seq = " + next(), p);
    if (patch.enabled && !*patch.enabled) {
      StateCounts counts;
      cancel_waiting(c, seq, now, counts);
      save_counts(c, counts);
    }
    return find_webhook_in(c, brand, id, false);
  });
}

std::optional<Webhook> PgStore::rotate_key(const std::string& brand, const std::string& id,
                                           const std::string& new_key, std::int64_t old_valid_until,
                                           std::int64_t now, int max_previous) {
  return transact([&](Connection& c) -> std::optional<Webhook> {
    auto current = c.exec("SELECT seq FROM webhooks WHERE brand = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
                          Params().add(brand).add(id));
    if (current.rows() == 0) return std::nullopt;
    std::int64_t seq = current.int64(0, 0);
    if (old_valid_until > now && max_previous > 0) {
      c.exec("INSERT INTO webhook_keys (webhook_seq, key, expires_at) SELECT seq, key, $1 FROM webhooks WHERE seq = $2",
             Params().add(old_valid_until).add(seq));
    }
    // No grace: every earlier key ends now. Otherwise the expired ones go, and all but the
    // `max_previous` most recently retired.
    std::int64_t ended_before = old_valid_until > now ? now : INT64_MAX;
    c.exec("DELETE FROM webhook_keys WHERE webhook_seq = $2 AND (expires_at <= $1 OR id NOT IN "
           "(SELECT id FROM webhook_keys WHERE webhook_seq = $2 ORDER BY id DESC LIMIT $3))",
           Params().add(ended_before).add(seq).add(max_previous));
    c.exec("UPDATE webhooks SET key = $1, updated_at = $2 WHERE seq = $3", Params().add(new_key).add(now).add(seq));
    return find_webhook_in(c, brand, id, false);
  });
}

void PgStore::set_brand_parent(const std::string& brand, const std::optional<std::string>& parent,
                               std::int64_t now) {
  transact([&](Connection& c) {
    ensure_brand(c, brand, now);
    if (parent) {
      ensure_brand(c, *parent, now);
      // Two nodes re-parenting at once could each pass the cycle check below against the
      // other's old tree: the tree changes one at a time.
      c.exec("LOCK TABLE brands IN SHARE ROW EXCLUSIVE MODE");
      for (const auto& ancestor : lineage_in(c, *parent)) {
        if (ancestor == brand) throw ConflictError("a brand cannot be its own ancestor");
      }
    }
    c.exec(pg::numbered(store_sql::kSetBrandParent), Params().add(parent).add(now).add(brand));
  });
}

std::optional<std::string> PgStore::brand_parent(const std::string& brand) {
  return read([&](Connection& c) -> std::optional<std::string> {
    auto rows = c.exec(pg::numbered(store_sql::kBrandParent), Params().add(brand));
    if (rows.rows() == 0 || rows.is_null(0, 0)) return std::nullopt;
    return rows.text(0, 0);
  });
}

std::vector<std::string> PgStore::brand_lineage(const std::string& brand) {
  return read([&](Connection& c) { return lineage_in(c, brand); });
}

std::vector<Brand> PgStore::brand_descendants(const std::string& brand) {
  return read([&](Connection& c) {
    auto rows = c.exec(pg::numbered(store_sql::kBrandDescendants), Params().add(brand));
    std::vector<Brand> out;
    for (int i = 0; i < rows.rows(); ++i) out.push_back({rows.text(i, 0), rows.text(i, 1)});
    return out;
  });
}

std::optional<Webhook> PgStore::find_webhook_in(Connection& c, const std::string& brand, const std::string& id,
                                                bool include_deleted) {
  auto rows = c.exec(std::string("SELECT ") + store_sql::kWebhookColumns + " FROM webhooks WHERE brand = $1 AND id = $2" +
                         (include_deleted ? "" : " AND deleted_at IS NULL"),
                     Params().add(brand).add(id));
  if (rows.rows() == 0) return std::nullopt;
  return webhook_from_row(pg::Row(rows, 0));
}

// The SQL of a brand's lineage ($1): itself, then its ancestors up to the root. The tree is
// acyclic (set_brand_parent refuses cycles); the depth cap guards a database edited by hand.
static constexpr const char* kLineage =
    "WITH RECURSIVE up(id, depth) AS ("
    "  SELECT $1::text, 0"
    "  UNION ALL SELECT b.parent, up.depth + 1 FROM brands b JOIN up ON b.id = up.id"
    "  WHERE b.parent IS NOT NULL AND up.depth < 1000)"
    " SELECT id FROM up ORDER BY depth";

std::vector<std::string> PgStore::lineage_in(Connection& c, const std::string& brand) {
  auto rows = c.exec(kLineage, Params().add(brand));
  std::vector<std::string> out;
  for (int i = 0; i < rows.rows(); ++i) out.push_back(rows.text(i, 0));
  return out;
}

std::map<std::int64_t, std::shared_ptr<const WebhookTarget>> PgStore::targets_in(
    Connection& c, const std::vector<std::int64_t>& webhooks, std::int64_t now) {
  std::map<std::int64_t, std::shared_ptr<const WebhookTarget>> targets;
  for (std::int64_t seq : webhooks) targets[seq] = nullptr;
  auto rows = c.exec(
      "SELECT seq, id, brand, url, key, "
      "       (SELECT coalesce(json_agg(k.key ORDER BY k.id DESC), '[]') FROM webhook_keys k "
      "        WHERE k.webhook_seq = w.seq AND k.expires_at > $2), headers, ordered "
      "FROM webhooks w WHERE seq = ANY($1::bigint[]) AND deleted_at IS NULL AND disabled_at IS NULL",
      Params().int_array(webhooks).add(now));
  for (int i = 0; i < rows.rows(); ++i) {
    auto target = std::make_shared<WebhookTarget>();
    target->id = rows.text(i, 1);
    target->brand = rows.text(i, 2);
    target->url = rows.text(i, 3);
    target->keys.push_back(rows.text(i, 4));
    for (auto& key : strings_from_json(rows.text(i, 5))) target->keys.push_back(std::move(key));
    if (!rows.is_null(i, 6)) target->header_lines = header_lines_from_json(rows.text(i, 6));
    target->ordered = rows.boolean(i, 7);
    targets[rows.int64(i, 0)] = std::move(target);
  }
  return targets;
}

void PgStore::cancel_waiting(Connection& c, std::int64_t webhook_seq, std::int64_t now, StateCounts& counts) {
  auto cancelled = c.exec(pg::numbered(store_sql::kCancelWaiting), Params().add(now).add(webhook_seq));
  counts.move(DeliveryState::pending, DeliveryState::cancelled, cancelled.affected());
}

}  // namespace brandhooks
