#pragma once
// PostgreSQL backend of the Store, for many nodes sharing one database. One class; its
// methods live by concern in this folder: schema.cpp (opening, migrations, the transaction
// wrappers' helpers), webhooks.cpp (webhooks, keys, the brand tree), queue.cpp (publish,
// claims, leases, attempt outcomes), deliveries.cpp (the delivery log, redeliver, recover),
// retention.cpp (prune, stats), stats.cpp (delivery statistics), tokens.cpp (API tokens, check_writable), migrate.cpp (moving a
// database).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "pg/connection.hpp"
#include "store.hpp"
#include "store_common.hpp"

namespace brandhooks {

class PgStore final : public Store {
 public:
  explicit PgStore(const Config& config);

  void insert_webhook(const Webhook& webhook) override;
  Page<Webhook> list_webhooks(const WebhookQuery& query) override;
  std::optional<Webhook> find_live_webhook(const std::string& brand, const std::string& id) override;
  std::optional<Webhook> soft_delete_webhook(const std::string& brand, const std::string& id,
                                             std::int64_t now) override;
  void set_brand_parent(const std::string& brand, const std::optional<std::string>& parent,
                        std::int64_t now) override;
  std::optional<std::string> brand_parent(const std::string& brand) override;
  std::vector<std::string> brand_lineage(const std::string& brand) override;
  std::vector<Brand> brand_descendants(const std::string& brand) override;

  std::string insert_test_event(const EventRecord& event, const std::string& webhook_id) override;
  std::vector<PublishResult> insert_events(const std::vector<EventRecord>& events, LeaseRoom room,
                                           std::vector<DueDelivery>* leased,
                                           std::vector<IdempotencyClaim>* claims) override;
  std::int64_t release_leases(std::int64_t now) override;
  LeaseUpkeep renew_leases(std::int64_t now, const std::vector<std::int64_t>& held, bool take_back) override;
  std::vector<DueDelivery> claim_due(std::int64_t now, std::size_t limit,
                                     const std::vector<std::int64_t>& skip_webhooks,
                                     std::size_t max_bytes) override;
  std::optional<std::int64_t> next_due_at() override;
  RecordResult record_attempts(const std::vector<AttemptRecord>& records, std::int64_t now,
                               std::int64_t disable_before) override;
  Page<Delivery> list_deliveries(const DeliveryQuery& query) override;
  std::optional<Delivery> get_delivery(const std::string& brand, const std::string& id) override;
  std::optional<Delivery> redeliver(const std::string& brand, const std::string& id, std::int64_t now) override;
  RecoverResult recover(const std::string& brand, const std::string& webhook_id, std::int64_t since,
                        std::int64_t limit, std::int64_t now) override;
  std::int64_t prune(std::int64_t before, Work work) override;
  Gauges gauges(std::int64_t now) override;
  std::int64_t count_events() override;
  // stats.cpp: delivery statistics per minute
  DeliveryStats delivery_stats(const std::string& brand, std::int64_t since, std::int64_t until) override;
  std::int64_t prune_stats(std::int64_t before, Work work) override;

  std::optional<Webhook> update_webhook(const std::string& brand, const std::string& id,
                                        const WebhookPatch& patch, std::int64_t now) override;
  std::optional<Webhook> rotate_key(const std::string& brand, const std::string& id, const std::string& new_key,
                                    std::int64_t old_valid_until, std::int64_t now, int max_previous) override;
  std::optional<Webhook> find_webhook(const std::string& brand, const std::string& id) override;

  bool insert_token(const TokenRecord& token) override;
  std::optional<TokenInfo> find_token(const std::string& hash) override;
  std::vector<TokenInfo> list_tokens() override;
  bool revoke_token(const std::string& id, std::int64_t now) override;
  bool has_tokens() override;
  void check_writable() override;

  // migrate.cpp: moving a database (migration.hpp)
  std::vector<MovedRow> export_rows(const MovedTable& table, const MovedRow& after, std::size_t limit,
                                    std::size_t max_bytes) override;
  void import_rows(const MovedTable& table, const std::vector<MovedRow>& rows) override;
  std::int64_t count_rows(const MovedTable& table) override;
  void finish_import() override;

 private:
  using Connection = pg::Connection;

  // Runs `fn(connection)` in one transaction on a connection of `pool` (pool_ for the API's
  // calls, dispatch_pool_ for the dispatcher's). A deadlock or serialization failure runs it
  // again (a few times); a connection found broken before COMMIT was sent runs it again on a
  // fresh connection (the server rolled it back). `fn` must keep its effects local until it
  // returns (it may run more than once). A connection lost during the COMMIT throws
  // ConnectionLost: whether it committed is unknown, and the caller must be right either way.
  template <class Fn>
  auto transact(pg::Pool& pool, Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    for (int attempt = 0;; ++attempt) {
      auto connection = pool.acquire();
      bool committing = false;
      try {
        connection->run("BEGIN");
        if constexpr (std::is_void_v<decltype(fn(*connection))>) {
          fn(*connection);
          committing = true;
          connection->run("COMMIT");
          return;
        } else {
          auto result = fn(*connection);
          committing = true;
          connection->run("COMMIT");
          return result;
        }
      } catch (const pg::ConnectionLost& e) {
        auto lost = pool.connection_lost(e);
        if (committing || attempt >= 1) throw lost;
      } catch (const pg::TransientConflict&) {
        rollback(*connection);
        if (attempt >= kConflictRetries) throw;
      } catch (...) {
        rollback(*connection);
        throw;
      }
    }
  }
  template <class Fn>
  auto transact(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    return transact(pool_, std::forward<Fn>(fn));
  }

  // Runs `fn(connection)` outside a transaction (reads), again on a fresh connection when a
  // pooled one turns out to be broken (the server restarted since it was last used).
  template <class Fn>
  auto read(pg::Pool& pool, Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    for (int attempt = 0;; ++attempt) {
      auto connection = pool.acquire();
      try {
        return fn(*connection);
      } catch (const pg::ConnectionLost& e) {
        auto lost = pool.connection_lost(e);
        if (attempt >= 1) throw lost;
      }
    }
  }
  template <class Fn>
  auto read(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    return read(pool_, std::forward<Fn>(fn));
  }

  static void rollback(Connection& connection) noexcept;
  void migrate();

  // --- helpers, inside a transaction or read ------------------------------------------------
  void ensure_brand(Connection& c, const std::string& id, std::int64_t now);
  std::optional<Webhook> find_webhook_in(Connection& c, const std::string& brand, const std::string& id,
                                         bool include_deleted);
  std::vector<std::string> lineage_in(Connection& c, const std::string& brand);
  // Where each webhook's deliveries attempted at `now` go; null for a deleted or disabled one.
  void keep_controlled(Connection& c, std::int64_t now, std::vector<std::int64_t> controlled_seqs,
                       std::vector<DueDelivery>& found, std::vector<std::int64_t>& event_of);
  std::map<std::int64_t, std::shared_ptr<const WebhookTarget>> targets_in(Connection& c,
                                                                         const std::vector<std::int64_t>& webhooks,
                                                                         std::int64_t now);
  void save_counts(Connection& c, const StateCounts& counts);
  // stats.cpp: adds a batch's rollup to this connection's shard (inside record_attempts).
  void add_attempt_minutes(Connection& c, const MinuteRollup& rollup);
  // Cancels the waiting (not held) deliveries of the webhook; adds them to `counts`.
  void cancel_waiting(Connection& c, std::int64_t webhook_seq, std::int64_t now, StateCounts& counts);
  std::optional<Delivery> find_delivery_in(Connection& c, const std::string& brand, const std::string& id);
  std::vector<Delivery> read_deliveries(Connection& c, const pg::Result& rows);
  void check_deliverable(Connection& c, const std::string& brand, const std::string& webhook_id);

  static constexpr int kConflictRetries = 5;

  const LeaseHolder holder_;
  pg::Pool pool_;           // the API's calls (Config::api_connections)
  pg::Pool dispatch_pool_;  // the dispatcher's: claims, outcomes, leases, its pruning (dispatcher_connections)
};

}  // namespace brandhooks
