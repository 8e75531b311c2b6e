#pragma once
// brandhooks::Hub — the one public entry point of the core. Python bindings, the REST API,
// the CLI and C++ programs all go through it. Every method is safe to call from any thread.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "brandhooks/config.hpp"
#include "brandhooks/errors.hpp"
#include "brandhooks/model.hpp"

namespace brandhooks {

class Store;
class Dispatcher;
class RetryPolicy;

class Hub {
 public:
  // Opens (or creates) the store. With config.deliver, also starts the dispatcher. Throws
  // ValidationError for a bad setting, StorageError when the database cannot be used.
  explicit Hub(Config config);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  const Config& config() const { return config_; }

  // --- webhooks -------------------------------------------------------------------------
  // Registers `url` for `topic` events of `brand` (and, with a brand tree, its descendants).
  // Throws ValidationError for a non-UUID brand, an unknown topic, a bad url or bad tags.
  Webhook create_webhook(const std::string& brand, const std::string& topic,
                         const std::string& url,
                         const std::optional<std::vector<std::string>>& tags = std::nullopt);
  // The brand's live (not deleted) webhooks, oldest first, optionally of one topic.
  Page<Webhook> list_webhooks(const WebhookQuery& query);
  // A live webhook of the brand; NotFoundError otherwise (deleted, unknown, other brand).
  Webhook get_webhook(const std::string& brand, const std::string& webhook_id);
  // Soft delete: sets deleted_at. NotFoundError if not a live webhook of the brand.
  Webhook delete_webhook(const std::string& brand, const std::string& webhook_id);

  // --- events and deliveries ------------------------------------------------------------
  // Commits the event and one pending delivery per matching webhook (the brand's and its
  // ancestors' live webhooks of the topic) in one transaction, then wakes the dispatcher.
  // `payload_json` must be a JSON object. The receiver gets
  // {"topic","event","timestamp"(ms),"payload","id","brand"} in that order.
  PublishResult publish(const std::string& brand, const std::string& topic,
                        const std::string& event, const std::string& payload_json);
  // Many events in one transaction (all or nothing).
  std::vector<PublishResult> publish_many(const std::vector<EventInput>& events);
  // A webhook's deliveries, newest first, each with its attempts. NotFoundError when the
  // brand has no such webhook (deleted ones still show their deliveries).
  Page<Delivery> list_deliveries(const DeliveryQuery& query);
  // Stops the dispatcher, if running: in-flight attempts finish or return to the queue.
  void stop_delivery();

  // --- brand tree -----------------------------------------------------------------------
  // Sets (or clears, with nullopt) the parent of a brand. ConflictError on a cycle.
  Brand set_brand_parent(const std::string& brand, const std::optional<std::string>& parent);
  std::optional<std::string> brand_parent(const std::string& brand);

  // --- API tokens -----------------------------------------------------------------------
  // A new random token, admin when `brand` is empty. The secret is returned only here.
  IssuedToken create_token(const std::optional<std::string>& brand, const std::string& label = "");
  // Registers a caller-chosen secret as an admin token (idempotent); e.g. --admin-token.
  TokenInfo ensure_admin_token(const std::string& secret, const std::string& label = "");
  std::vector<TokenInfo> list_tokens();
  void revoke_token(const std::string& token_id);
  bool has_tokens();
  // Who `secret` speaks for; UnauthorizedError when it matches no live token.
  Principal authenticate(const std::string& secret);
  // authenticate + the brand check: ForbiddenError unless admin, the token's brand, or a
  // descendant of it. A bad token is reported before a bad brand id.
  Principal authorize(const std::string& secret, const std::string& brand);
  // authenticate + admin check (ForbiddenError for brand tokens).
  Principal authorize_admin(const std::string& secret);

 private:
  Config config_;
  std::unique_ptr<RetryPolicy> retry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Dispatcher> dispatcher_;  // declared last: stopped before the store closes
};

}  // namespace brandhooks
