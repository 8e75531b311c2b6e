#pragma once
// The SQLite backend of the Store, internal to cpp/src/sqlite/: one connection in WAL mode
// guarded by a mutex (SQLiteCpp statements are not thread-safe), schema versioned with PRAGMA
// user_version. The class is declared here once; its methods live by concern in
// connection.cpp, schema.cpp, brands.cpp, webhooks.cpp, queue.cpp, deliveries.cpp,
// retention.cpp, stats.cpp, tokens.cpp and migrate.cpp.
#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store.hpp"
#include "store_common.hpp"

namespace brandhooks::sqlite {

// The current row of a statement as store_common.hpp's row readers see it.
struct Row {
  SQLite::Statement& q;
  bool is_null(int i) const { return q.getColumn(i).isNull(); }
  std::int64_t int64(int i) const { return q.getColumn(i).getInt64(); }
  // A TEXT or BLOB column as bytes.
  std::string text(int i) const {
    SQLite::Column c = q.getColumn(i);
    return std::string(static_cast<const char*>(c.getBlob()), static_cast<std::size_t>(c.getBytes()));
  }
};

inline std::optional<std::int64_t> optional_int(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt64();
}

template <class T>
void bind_optional(SQLite::Statement& q, int index, const std::optional<T>& value) {
  if (value) {
    q.bind(index, *value);
  } else {
    q.bind(index);
  }
}

inline void bind_text_or_null(SQLite::Statement& q, int index, std::string_view value) {
  if (value.empty()) {
    q.bind(index);
  } else {
    q.bind(index, std::string(value));
  }
}

// A database given as a plain file path (not ":memory:", not a "file:" URI).
inline bool is_file_path(const std::string& db) { return db != ":memory:" && db.rfind("file:", 0) != 0; }

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const Config& config);

  // webhooks.cpp
  void insert_webhook(const Webhook& webhook) override;
  Page<Webhook> list_webhooks(const WebhookQuery& query) override;
  std::optional<Webhook> find_live_webhook(const std::string& brand, const std::string& id) override;
  std::optional<Webhook> soft_delete_webhook(const std::string& brand, const std::string& id,
                                             std::int64_t now) override;
  std::optional<Webhook> update_webhook(const std::string& brand, const std::string& id,
                                        const WebhookPatch& patch, std::int64_t now) override;
  std::optional<Webhook> rotate_key(const std::string& brand, const std::string& id, const std::string& new_key,
                                    std::int64_t old_valid_until, std::int64_t now, int max_previous) override;
  std::optional<Webhook> find_webhook(const std::string& brand, const std::string& id) override;

  // brands.cpp
  void set_brand_parent(const std::string& brand, const std::optional<std::string>& parent,
                        std::int64_t now) override;
  std::optional<std::string> brand_parent(const std::string& brand) override;
  std::vector<std::string> brand_lineage(const std::string& brand) override;
  std::vector<Brand> brand_descendants(const std::string& brand) override;

  // queue.cpp: publishing, leases, claims and recording attempts
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

  // deliveries.cpp: the delivery log and replays
  Page<Delivery> list_deliveries(const DeliveryQuery& query) override;
  std::optional<Delivery> get_delivery(const std::string& brand, const std::string& id) override;
  std::optional<Delivery> redeliver(const std::string& brand, const std::string& id, std::int64_t now) override;
  RecoverResult recover(const std::string& brand, const std::string& webhook_id, std::int64_t since,
                        std::int64_t limit, std::int64_t now) override;

  // retention.cpp: pruning and the operators' counts
  std::int64_t prune(std::int64_t before, Work work) override;
  Gauges gauges(std::int64_t now) override;
  std::int64_t count_events() override;

  // stats.cpp: delivery statistics per minute
  DeliveryStats delivery_stats(const std::string& brand, std::int64_t since, std::int64_t until) override;
  std::int64_t prune_stats(std::int64_t before, Work work) override;

  // tokens.cpp
  bool insert_token(const TokenRecord& token) override;
  std::optional<TokenInfo> find_token(const std::string& hash) override;
  std::vector<TokenInfo> list_tokens() override;
  bool revoke_token(const std::string& id, std::int64_t now) override;
  bool has_tokens() override;

  // connection.cpp
  void check_writable() override;

  // migrate.cpp: moving a database (migration.hpp)
  std::vector<MovedRow> export_rows(const MovedTable& table, const MovedRow& after, std::size_t limit,
                                    std::size_t max_bytes) override;
  void import_rows(const MovedTable& table, const std::vector<MovedRow>& rows) override;
  std::int64_t count_rows(const MovedTable& table) override;
  void finish_import() override;

 private:
  // connection.cpp
  static SQLite::Database open(const Config& config);
  static void refuse_empty_file(const Config& config);
  bool is_full(const SQLite::Exception& e);
  [[noreturn]] void throw_translated(const SQLite::Exception& e);
  SQLite::Statement& prepare(const std::string& sql);

  // Runs `fn` under the connection's lock; SQLite failures become StorageError (or
  // UnavailableError: disk full, database busy), while the core's own errors (e.g.
  // ConflictError from a check inside a transaction) pass through. Statements `fn` prepared
  // are reset afterwards, so none keeps a read snapshot open.
  template <class Fn>
  auto guarded(Fn&& fn) -> decltype(fn()) {
    std::lock_guard lock(mutex_);
    struct ResetUsed {
      std::vector<SQLite::Statement*>& used;
      ~ResetUsed() {
        for (auto* statement : used) statement->tryReset();
        used.clear();
      }
    } reset_used{used_};
    try {
      return fn();
    } catch (const SQLite::Exception& e) {
      throw_translated(e);
    }
  }

  // schema.cpp
  void migrate();

  // brands.cpp
  void ensure_brand(const std::string& id, std::int64_t now);
  std::vector<std::string> lineage_locked(const std::string& brand);

  // webhooks.cpp
  std::optional<Webhook> find_webhook_locked(const std::string& brand, const std::string& id,
                                             bool include_deleted);
  void cancel_waiting(const std::string& webhook_id, std::int64_t now);

  // queue.cpp
  std::shared_ptr<const WebhookTarget> target_locked(std::int64_t webhook_seq, std::int64_t now);
  std::optional<Pace> pace_locked(std::int64_t webhook_seq);
  bool disable_webhook(SQLite::Statement& disable, SQLite::Statement& cancel, std::int64_t webhook,
                       const std::string& reason, std::int64_t now, bool force, std::int64_t failing_before,
                       StateCounts& counts);

  // stats.cpp: adds a batch's rollup (inside record_attempts' transaction)
  void add_attempt_minutes(const MinuteRollup& rollup);

  // deliveries.cpp
  Delivery read_delivery(SQLite::Statement& q);
  std::optional<Delivery> find_delivery_locked(const std::string& brand, const std::string& id);
  void check_deliverable(const std::string& brand, const std::string& webhook_id);

  // retention.cpp
  void save_counts(const StateCounts& counts);

  // Below this many free bytes where the database lives, check_writable reports the store
  // as full: one event body (1 MiB) and its WAL pages would no longer fit.
  static constexpr std::uintmax_t kMinFreeBytes = 2u << 20;

  std::mutex mutex_;
  SQLite::Database db_;
  const LeaseHolder holder_;
  std::filesystem::path db_path_;  // empty for an in-memory database
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> statements_;
  std::vector<SQLite::Statement*> used_;
};

}  // namespace brandhooks::sqlite
