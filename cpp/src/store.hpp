#pragma once
// The persistence interface of the Hub, one implementation per backend (cpp/src/sqlite/,
// cpp/src/pg/); what they share is written once in store_common.hpp and lease.hpp.
// Implementations are thread-safe.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "brandhooks/config.hpp"
#include "brandhooks/model.hpp"
#include "lease.hpp"

namespace brandhooks {

struct TokenRecord {
  TokenInfo info;
  std::string hash;  // SHA-256 of the secret, raw bytes
};

// An event ready to store: the body is the exact bytes every attempt sends.
struct EventRecord {
  std::string id;
  std::string brand;
  std::string topic;
  std::string event;
  std::string body;
  std::int64_t created_at = 0;
  std::int64_t first_attempt_at = 0;
  std::optional<std::string> tags_json;  // JSON array, or none
  std::optional<TraceContext> trace;     // as accept_trace_context (trace_context.hpp) kept it
};

// A publish request that carries an idempotency key: its events are records [first, first +
// count) of one insert_events call. Keys are per brand; one stored before `expired_before`
// no longer counts (it is taken afresh).
struct IdempotencyClaim {
  std::string brand;
  std::string key;
  std::string request_hash;  // SHA-256 of what the request asks to publish (raw bytes)
  std::size_t first = 0;
  std::size_t count = 0;
  std::int64_t now = 0;
  std::int64_t expired_before = 0;
  // A conflict throws ConflictError and nothing of the call commits (publish_many: all or
  // nothing); otherwise only this request's events are left out (group commit).
  bool conflict_aborts = false;
  // Set by insert_events: fresh (its events were stored and the key with them), replayed (the
  // key was used for the same request: nothing stored, the first answer's results returned),
  // conflict (used for another request: nothing stored, its results left empty).
  enum class Outcome { fresh, replayed, conflict } outcome = Outcome::fresh;
};

// Where and how a webhook's deliveries go, read once per webhook per claim or publish and
// shared by its deliveries in that batch.
struct WebhookTarget {
  std::string id;     // the webhook's UUID and brand, for the delivery log
  std::string brand;
  std::string url;
  std::vector<std::string> keys;  // hex: the newest first, then those still valid after a rotation
  std::string header_lines;       // the custom headers, "Name: value\r\n" each (checked when set)
  bool ordered = false;  // one delivery at a time, in publish order (claims enforce it)
};

// A delivery handed to the dispatcher (leased by this node until its attempt is recorded).
struct DueDelivery {
  std::int64_t seq = 0;
  std::string id;
  int attempts_made = 0;
  std::string taken_from;  // the node whose lease this claim took over (it stopped renewing); empty: none
  std::int64_t webhook_seq = 0;
  std::shared_ptr<const WebhookTarget> target;
  std::shared_ptr<const std::string> body;
  std::shared_ptr<const TraceContext> trace;  // the event's, shared like its body; null: none
  std::int64_t event_created_at = 0;
  std::int64_t not_before = 0;  // a throttled webhook's send slot (store_common.hpp Pace)
};

// How much more a dispatcher may hold leased: deliveries, and bytes of their bodies (a body
// shared by several deliveries counts for each).
struct LeaseRoom {
  std::size_t deliveries = 0;
  std::size_t bytes = 0;
};

// The outcome of one attempt as the dispatcher decided it.
struct AttemptRecord {
  std::int64_t delivery_seq = 0;
  std::int64_t webhook_seq = 0;
  Attempt attempt;
  DeliveryState new_state = DeliveryState::pending;  // pending (a retry), delivered or failed
  std::optional<std::int64_t> next_at;  // with pending
  std::string disable_reason;           // non-empty: disable the webhook now (410 Gone)
  bool ordered = false;                 // its webhook's next delivery waits for this commit
};

struct RecordResult {
  std::int64_t disabled = 0;  // webhooks disabled
  std::int64_t lost = 0;      // outcomes dropped: another node had taken the delivery's lease over
  // Outcomes found recorded already: an earlier call wrote them, but its COMMIT's answer was
  // lost (the caller could not know that it had committed).
  std::int64_t already_recorded = 0;
};

// What renew_leases did.
struct LeaseUpkeep {
  std::int64_t renewed = 0;     // leases the dispatcher holds, pushed forward
  std::int64_t taken_back = 0;  // this node's leases it did not hold, returned to the queue
};

// Whose connections a call uses where the backend pools them (PostgreSQL): the API's, or the
// dispatcher's own, which no API call can take (Config::api_connections and
// dispatcher_connections). Claims, outcomes and leases are always the dispatcher's.
enum class Work { api, dispatcher };

// What a migration (migration.hpp) moves: a table's columns, the key first, and its rows.
// store_common.cpp lists the tables and builds the SQL both backends run for them.
// json: text on SQLite, jsonb on PostgreSQL; counts: a JSON array of integers on SQLite, an
// integer[] on PostgreSQL (moved as the JSON text).
enum class ColumnType { integer, text, bytes, json, counts };

struct MovedColumn {
  const char* name;
  ColumnType type;
  const char* sqlite_name = nullptr;  // when SQLite's differs (webhook_keys' id is its rowid)
};

struct MovedTable {
  const char* label;  // as the counts show it
  const char* table;
  std::vector<MovedColumn> columns;
  std::size_t keys = 1;    // the first `keys` columns: rows are exported in their order
  const char* where = "";  // which rows move (empty: all)
  bool update = false;     // imported by updating rows (matched by key) an earlier table made
};

// A stored value: NULL, an integer, or text or bytes (as the column's type says).
using MovedValue = std::variant<std::monostate, std::int64_t, std::string>;
using MovedRow = std::vector<MovedValue>;

// Leases (see lease.hpp): every lease a store takes names the node it was opened for
// (Config::node_id, or default_node_id()) and expires Config::lease_timeout_s after it was
// taken or last renewed.
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
  // Every brand below `brand` (not itself), breadth first, a level in id order
  // (store_sql::kBrandDescendants).
  virtual std::vector<Brand> brand_descendants(const std::string& brand) = 0;

  // --- events and deliveries ----------------------------------------------------------------
  // Stores each event and one pending delivery per matching webhook (live, enabled, of the
  // event's topic, of the brand or one of its ancestors) in one transaction.
  // Deliveries that are due at once (and not of an ordered or throttled webhook, which only
  // claims may lease) are stored already leased and returned in `leased`, as
  // far as `room` goes, for a dispatcher in this process that has room for them: they skip
  // the claim round trip. (A crash before they are sent: another node takes them over once
  // the lease expires, or this node releases them when it starts again.)
  // With `claims`, the idempotency keys are stored (or found) in the same transaction, under a
  // unique constraint: of two concurrent requests with one key, on any nodes, one commits its
  // events and the other replays its answer (see IdempotencyClaim).
  // A test event (Hub::send_test_event) and one delivery of it to webhook `webhook_id` only,
  // due at the event's first_attempt_at, in one transaction; returns the delivery's id.
  // NotFoundError unless the webhook is a live webhook of the event's brand, ConflictError
  // when it is disabled.
  virtual std::string insert_test_event(const EventRecord& event, const std::string& webhook_id) = 0;
  virtual std::vector<PublishResult> insert_events(const std::vector<EventRecord>& events,
                                                   LeaseRoom room = {},
                                                   std::vector<DueDelivery>* leased = nullptr,
                                                   std::vector<IdempotencyClaim>* claims = nullptr) = 0;
  // This node's leases end (at start: those of a previous run under the same node id; at
  // shutdown: what was never attempted); their deliveries are due at `now`. Other nodes'
  // leases stay. Returns how many were released.
  virtual std::int64_t release_leases(std::int64_t now) = 0;
  // The leases of the deliveries in `held` (the seqs the dispatcher holds: waiting, in
  // flight, or with an outcome not yet committed) now expire lease_timeout_s after `now`.
  // With `take_back`, this node's other leases end, their deliveries due at `now`: rows the
  // database gives this node that its dispatcher never got, because the COMMIT of the claim or
  // publish that leased them lost its answer (lease.hpp). The caller makes sure that no
  // publish is handing deliveries over meanwhile.
  virtual LeaseUpkeep renew_leases(std::int64_t now, const std::vector<std::int64_t>& held, bool take_back) = 0;
  // Leases up to `limit` due deliveries (oldest due first) whose bodies add up to at most
  // `max_bytes` (the first is always taken), skipping `skip_webhooks`; those of deleted or
  // disabled webhooks are cancelled instead. Due: pending with next_at <= now, which includes
  // deliveries whose lease expired (taken over, taken_from names the node). An ordered webhook gives
  // at most its oldest pending delivery, and only while no other of its deliveries is held; a
  // throttled one gives those whose send slot (not_before) is near and leaves the rest
  // waiting until their slot comes (store_common.hpp, kOrderedTurn and Pace).
  virtual std::vector<DueDelivery> claim_due(std::int64_t now, std::size_t limit,
                                             const std::vector<std::int64_t>& skip_webhooks,
                                             std::size_t max_bytes = SIZE_MAX) = 0;
  // The earliest time a claim may find something: the earliest due time of a free pending
  // delivery, or the earliest expiry of another node's lease (an ordered webhook's delivery
  // counts only when it is that webhook's turn).
  virtual std::optional<std::int64_t> next_due_at() = 0;
  // Writes attempts and delivery states in one transaction (group commit), keeps each
  // webhook's failure streak, and disables webhooks failing since before `disable_before`.
  // An outcome is written only while this node holds the delivery's lease for that attempt;
  // one already written (the same attempt, started at the same time: an earlier call's COMMIT
  // lost its answer) is counted in `already_recorded`, the others (the lease was taken over)
  // are dropped and counted in `lost`. The written ones are added to the per-minute statistics
  // (attempt_minutes, MinuteRollup) in the same transaction.
  virtual RecordResult record_attempts(const std::vector<AttemptRecord>& records, std::int64_t now,
                                       std::int64_t disable_before) = 0;
  virtual Page<Delivery> list_deliveries(const DeliveryQuery& query) = 0;
  // A delivery of one of the brand's webhooks.
  virtual std::optional<Delivery> get_delivery(const std::string& brand, const std::string& id) = 0;
  // Makes the delivery pending and due now, whatever its state; ConflictError while a node
  // holds its lease (an attempt is under way).
  virtual std::optional<Delivery> redeliver(const std::string& brand, const std::string& id,
                                            std::int64_t now) = 0;
  // Queues again up to `limit` failed deliveries of the webhook created at or after `since`.
  virtual RecoverResult recover(const std::string& brand, const std::string& webhook_id,
                                std::int64_t since, std::int64_t limit, std::int64_t now) = 0;
  // Removes finished deliveries (and their attempts) last updated before `before`, events
  // created before it that have no delivery left, idempotency keys stored before it, and
  // tokens that expired before it. Returns how many deliveries went.
  virtual std::int64_t prune(std::int64_t before, Work work = Work::api) = 0;
  // What a scrape reads (Gauges): never a count over a whole table.
  virtual Gauges gauges(std::int64_t now) = 0;
  // Events stored: a count over the table, for /stats only.
  virtual std::int64_t count_events() = 0;
  // The gauges' counts and the events stored.
  Stats stats(std::int64_t now);
  // The attempts of the brand's live webhooks in the minutes [since, until) (minute starts);
  // p50/p99 from the summed histograms. Every live webhook is listed, in listing order.
  virtual DeliveryStats delivery_stats(const std::string& brand, std::int64_t since, std::int64_t until) = 0;
  // Removes the statistics of minutes before `before`. Returns how many rows went.
  virtual std::int64_t prune_stats(std::int64_t before, Work work = Work::api) = 0;

  // --- webhook changes ------------------------------------------------------------------------
  virtual std::optional<Webhook> update_webhook(const std::string& brand, const std::string& id,
                                                const WebhookPatch& patch, std::int64_t now) = 0;
  // Replaces the key; the old one stays valid (signs too) until `old_valid_until`, and so do
  // the `max_previous` most recently retired keys still valid. `old_valid_until <= now` ends
  // every earlier key at once.
  virtual std::optional<Webhook> rotate_key(const std::string& brand, const std::string& id,
                                            const std::string& new_key, std::int64_t old_valid_until,
                                            std::int64_t now, int max_previous) = 0;
  // Any webhook of the brand, deleted ones included (their deliveries stay visible).
  virtual std::optional<Webhook> find_webhook(const std::string& brand, const std::string& id) = 0;

  // Returns false when a token with the same hash exists already.
  virtual bool insert_token(const TokenRecord& token) = 0;
  virtual std::optional<TokenInfo> find_token(const std::string& hash) = 0;
  virtual std::vector<TokenInfo> list_tokens() = 0;
  virtual bool revoke_token(const std::string& id, std::int64_t now) = 0;
  virtual bool has_tokens() = 0;
  // Throws UnavailableError when the database's disk is (nearly) full, StorageError when
  // the database cannot start a write transaction.
  virtual void check_writable() = 0;

  // --- moving a database (migration.hpp) ----------------------------------------------------
  // Up to `limit` rows of `table` whose key comes after `after` (empty: from the first), in
  // key order, exactly as stored; fewer once their text and bytes reach `max_bytes` (the
  // first row always comes).
  virtual std::vector<MovedRow> export_rows(const MovedTable& table, const MovedRow& after, std::size_t limit,
                                            std::size_t max_bytes) = 0;
  // Stores rows exactly as another store exported them (keys included), in one transaction.
  virtual void import_rows(const MovedTable& table, const std::vector<MovedRow>& rows) = 0;
  virtual std::int64_t count_rows(const MovedTable& table) = 0;
  // After the last import_rows: what the store derives from the rows (counts per state, the
  // next keys) follows them, and no lease of the old database remains.
  virtual void finish_import() = 0;
};

// The backend Config::db names: PostgreSQL for a URL, SQLite otherwise. Throws
// UnavailableError when the PostgreSQL server cannot be reached.
std::unique_ptr<Store> open_store(const Config& config);
std::unique_ptr<Store> open_sqlite_store(const Config& config);
// ValidationError unless `path` is an existing SQLite file with brandhooks' tables (checked
// read-only, before opening it as a store would migrate or create it).
void check_sqlite_database(const std::string& path);

// Retention: prunes what finished more than `retention_s` before `now` (microseconds).
// The delivery statistics are kept 24 h (the longest window) and a margin, whatever the
// retention, and pruned with it.
inline constexpr std::int64_t kAttemptMinutesKeptUs = 25 * 3600 * 1'000'000LL;
inline std::int64_t prune_expired(Store& store, std::int64_t retention_s, std::int64_t now, Work work) {
  std::int64_t removed = store.prune(now - retention_s * 1'000'000, work);
  store.prune_stats(now - kAttemptMinutesKeptUs, work);
  return removed;
}

// The schema version this build writes; a file with a higher version is refused.
int sqlite_schema_version();
// The SQL that upgrades a file from `version` to `version + 1` (tests build old files with it).
const char* sqlite_migration(int version);
// The schema version the PostgreSQL backend writes.
int pg_schema_version();

}  // namespace brandhooks
