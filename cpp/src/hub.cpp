#include "brandhooks/hub.hpp"

#include "brandhooks/crypto.hpp"
#include "clock.hpp"
#include "store.hpp"
#include "validation.hpp"

namespace brandhooks {

namespace {
std::string check_synchronous(const std::string& value) {
  if (value != "normal" && value != "full") {
    throw ValidationError("synchronous must be \"normal\" or \"full\"");
  }
  return value;
}
}  // namespace

Hub::Hub(Config config) : config_(std::move(config)) {
  check_synchronous(config_.synchronous);
  store_ = open_sqlite_store(config_);
}

Hub::~Hub() = default;

Webhook Hub::create_webhook(const std::string& brand, const std::string& topic,
                            const std::string& url,
                            const std::optional<std::vector<std::string>>& tags) {
  Webhook w;
  w.brand = normalize_uuid(brand, "brand id");
  check_topic(topic);
  parse_url(url);
  check_tags(tags);
  w.id = uuid_v4();
  w.created_at = w.updated_at = now_micros();
  w.topic = topic;
  w.url = url;
  w.key = generate_key();
  w.tags = tags;
  store_->insert_webhook(w);
  return w;
}

Page<Webhook> Hub::list_webhooks(const WebhookQuery& query) {
  WebhookQuery q = query;
  q.brand = normalize_uuid(query.brand, "brand id");
  if (q.topic) check_topic(*q.topic);
  if (q.start < 0) throw ValidationError("start must not be negative");
  if (q.limit && *q.limit < 0) throw ValidationError("limit must not be negative");
  return store_->list_webhooks(q);
}

Webhook Hub::get_webhook(const std::string& brand, const std::string& webhook_id) {
  auto found = store_->find_live_webhook(normalize_uuid(brand, "brand id"),
                                         normalize_uuid(webhook_id, "webhook id"));
  if (!found) throw NotFoundError("webhook not found");
  return *found;
}

Webhook Hub::delete_webhook(const std::string& brand, const std::string& webhook_id) {
  auto deleted = store_->soft_delete_webhook(normalize_uuid(brand, "brand id"),
                                             normalize_uuid(webhook_id, "webhook id"),
                                             now_micros());
  if (!deleted) throw NotFoundError("webhook not found");
  return *deleted;
}

Brand Hub::set_brand_parent(const std::string& brand, const std::optional<std::string>& parent) {
  std::string id = normalize_uuid(brand, "brand id");
  std::optional<std::string> parent_id;
  if (parent) parent_id = normalize_uuid(*parent, "parent");
  if (parent_id == id) throw ConflictError("a brand cannot be its own parent");
  store_->set_brand_parent(id, parent_id, now_micros());
  return Brand{id, parent_id};
}

std::optional<std::string> Hub::brand_parent(const std::string& brand) {
  return store_->brand_parent(normalize_uuid(brand, "brand id"));
}

IssuedToken Hub::create_token(const std::optional<std::string>& brand, const std::string& label) {
  IssuedToken issued;
  if (brand) issued.info.brand = normalize_uuid(*brand, "brand id");
  issued.info.id = uuid_v4();
  issued.info.label = label;
  issued.info.created_at = now_micros();
  // "bh_" makes a leaked token easy to recognise (secret scanners, logs).
  issued.secret = "bh_" + to_hex(random_bytes(32));
  store_->insert_token({issued.info, sha256(issued.secret)});
  return issued;
}

TokenInfo Hub::ensure_admin_token(const std::string& secret, const std::string& label) {
  if (secret.size() < 16) throw ValidationError("an admin token needs at least 16 characters");
  std::string hash = sha256(secret);
  TokenInfo info{uuid_v4(), std::nullopt, label, now_micros()};
  store_->insert_token({info, hash});
  auto stored = store_->find_token(hash);
  if (!stored) throw ConflictError("this token was revoked");
  if (stored->brand) throw ConflictError("this token exists as a brand token");
  return *stored;
}

std::vector<TokenInfo> Hub::list_tokens() { return store_->list_tokens(); }

void Hub::revoke_token(const std::string& token_id) {
  if (!store_->revoke_token(normalize_uuid(token_id, "token id"), now_micros())) {
    throw NotFoundError("token not found");
  }
}

bool Hub::has_tokens() { return store_->has_tokens(); }

Principal Hub::authenticate(const std::string& secret) {
  if (secret.empty()) throw UnauthorizedError("missing bearer token");
  auto token = store_->find_token(sha256(secret));
  if (!token) throw UnauthorizedError("invalid or revoked token");
  return Principal{token->id, token->brand};
}

Principal Hub::authorize(const std::string& secret, const std::string& brand) {
  Principal who = authenticate(secret);  // 401 before any other answer
  std::string id = normalize_uuid(brand, "brand id");
  if (who.is_admin()) return who;
  for (const auto& ancestor : store_->brand_lineage(id)) {
    if (ancestor == *who.brand) return who;
  }
  throw ForbiddenError("this token has no access to brand " + id);
}

Principal Hub::authorize_admin(const std::string& secret) {
  Principal who = authenticate(secret);
  if (!who.is_admin()) throw ForbiddenError("this operation needs an admin token");
  return who;
}

}  // namespace brandhooks
