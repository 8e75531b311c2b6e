#pragma once
// What every Store backend shares, written once: the SQL that is the same on SQLite and
// PostgreSQL, how a result row becomes a model record, the per-state delivery counts and the
// failure streaks a batch of attempts folds into. The lease rules are in lease.hpp.
//
// SQL here uses numbered parameters ?N only (PostgreSQL spells them $N) and nothing that one
// of the two dialects lacks.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brandhooks/errors.hpp"
#include "brandhooks/model.hpp"
#include "latency.hpp"
#include "lease.hpp"
#include "store.hpp"

namespace brandhooks {

namespace store_sql {

// The columns a Webhook is read from (webhook_from_row), in that order.
inline constexpr const char* kWebhookColumns =
    "id, created_at, updated_at, deleted_at, brand, topic, url, key, tags, disabled_at, disabled_reason, "
    "CAST(ordered AS integer), rate_limit, headers, failing_since, last_success_at";
inline constexpr int kWebhookColumnCount = 16;
// The columns a Delivery is read from (delivery_from_row), over kDeliveryJoins.
inline constexpr const char* kDeliveryColumns =
    "d.seq, d.id, e.id, w.id, w.brand, d.state, d.attempts, d.created_at, d.updated_at, d.next_at, "
    "e.topic, e.event";
inline constexpr const char* kDeliveryJoins =
    " FROM deliveries d JOIN events e ON e.seq = d.event_seq JOIN webhooks w ON w.seq = d.webhook_seq";
// ?1 delivery seq: its attempts (attempt_from_row), oldest first.
inline constexpr const char* kAttemptsOfDelivery =
    "SELECT number, started_at, duration_us, status, error, detail, response "
    "FROM attempts WHERE delivery_seq = ?1 ORDER BY number";

// --- webhooks ---
// ?1 now: soft-deletes webhook ?3 of brand ?2 if live.
inline constexpr const char* kSoftDeleteWebhook =
    "UPDATE webhooks SET deleted_at = ?1, updated_at = ?1 WHERE brand = ?2 AND id = ?3 AND deleted_at IS NULL";
// ?1 new key at ?2 (now) for webhook ?3.
inline constexpr const char* kSetKey = "UPDATE webhooks SET key = ?1, updated_at = ?2 WHERE id = ?3";
// Keeps webhook ?2's current key valid until ?1 (before a rotation replaces it).
inline constexpr const char* kKeepOldKey =
    "INSERT INTO webhook_keys (webhook_seq, key, expires_at) SELECT seq, key, ?1 FROM webhooks WHERE id = ?2";
// Brand ?3's parent becomes ?1 at ?2.
inline constexpr const char* kSetBrandParent = "UPDATE brands SET parent = ?1, updated_at = ?2 WHERE id = ?3";
inline constexpr const char* kBrandParent = "SELECT parent FROM brands WHERE id = ?1";
// Every brand below brand ?1, breadth first (by depth, then id). The tree is acyclic
// (set_brand_parent refuses cycles); the depth cap guards a database edited by hand.
inline constexpr const char* kBrandDescendants =
    "WITH RECURSIVE down(id, parent, depth) AS ("
    "  SELECT id, parent, 1 FROM brands WHERE parent = ?1"
    "  UNION ALL SELECT b.id, b.parent, down.depth + 1 FROM brands b JOIN down ON b.parent = down.id"
    "  WHERE down.depth < 1000)"
    " SELECT id, parent FROM down ORDER BY depth, id";

// --- failure streaks and disabling (record_attempts) ---
// Webhook ?1 succeeded: its failure streak ends.
inline constexpr const char* kStreakEnded =
    "UPDATE webhooks SET failing_since = NULL WHERE seq = ?1 AND failing_since IS NOT NULL";
// Webhook ?2 failed at ?1: a streak starts unless one is under way.
inline constexpr const char* kStreakFailed =
    "UPDATE webhooks SET failing_since = coalesce(failing_since, ?1) WHERE seq = ?2";
// Webhook ?2 succeeded, then failed again at ?1 within one batch: a new streak.
inline constexpr const char* kStreakRestarted = "UPDATE webhooks SET failing_since = ?1 WHERE seq = ?2";
// Webhook ?2's newest success started at ?1 (whole seconds, in microseconds). Writes at most
// once per webhook and second: an older or equal time matches no row, and on PostgreSQL an
// UPDATE that matches nothing locks nothing, so a busy webhook is no hot row across nodes.
inline constexpr const char* kLastSuccess =
    "UPDATE webhooks SET last_success_at = ?1 WHERE seq = ?2 AND (last_success_at IS NULL OR last_success_at < ?1)";
// Disables webhook ?4 at ?1 (reason ?2, updated ?3) when ?5 = 1 (forced), or when it has been
// failing since at or before ?6.
inline constexpr const char* kDisableWebhook =
    "UPDATE webhooks SET disabled_at = ?1, disabled_reason = ?2, updated_at = ?3 "
    "WHERE seq = ?4 AND disabled_at IS NULL AND (?5 = 1 OR failing_since <= ?6)";

// --- deliveries ---
// Cancels delivery ?2 at ?1 (its webhook is gone or disabled).
inline constexpr const char* kCancelDelivery =
    "UPDATE deliveries SET state = 'cancelled', next_at = NULL, lease_owner = NULL, updated_at = ?1 WHERE seq = ?2";
// Cancels at ?1 webhook ?2's (seq) pending deliveries that no node holds.
inline const std::string kCancelWaiting =
    std::string("UPDATE deliveries SET state = 'cancelled', next_at = NULL, lease_owner = NULL, updated_at = ?1 "
                "WHERE webhook_seq = ?2 AND state = 'pending' AND ") + lease_sql::kNotHeld;
// The same for the webhook whose id is ?2.
inline const std::string kCancelWaitingById =
    std::string("UPDATE deliveries SET state = 'cancelled', next_at = NULL, lease_owner = NULL, updated_at = ?1 "
                "WHERE webhook_seq = (SELECT seq FROM webhooks WHERE id = ?2) AND state = 'pending' AND ") +
    lease_sql::kNotHeld;
// Makes delivery ?2 pending and due at ?1 unless a node holds it.
inline const std::string kRedeliver =
    std::string("UPDATE deliveries SET state = 'pending', next_at = ?1, lease_owner = NULL, updated_at = ?1 "
                "WHERE id = ?2 AND ") + lease_sql::kNotHeld;
// Up to ?3 failed deliveries of webhook ?1 (id) created at or after ?2, oldest first.
inline constexpr const char* kFailedSince =
    "SELECT d.seq, d.id FROM deliveries d JOIN webhooks w ON w.seq = d.webhook_seq "
    "WHERE w.id = ?1 AND d.state = 'failed' AND d.created_at >= ?2 ORDER BY d.seq LIMIT ?3";
// Delivery ?2 pending and due at ?1 again.
inline constexpr const char* kRequeue =
    "UPDATE deliveries SET state = 'pending', next_at = ?1, updated_at = ?1 WHERE seq = ?2";

// Attempt ?2 of delivery ?1 that started at ?3 is in the log: an outcome recorded already
// (record_attempts; PostgreSQL asks the same of a batch at once).
inline constexpr const char* kAttemptRecorded =
    "SELECT 1 FROM attempts WHERE delivery_seq = ?1 AND number = ?2 AND started_at = ?3";

// --- delivery controls (docs/delivery.md, "Ordered webhooks" and "Throttled webhooks") ---
// An ordered webhook's delivery d may be claimed at ?1 (now) only when no earlier delivery of
// its webhook is pending (publish order = delivery seq order) and no later one is held (leased
// by a node that still renews it, e.g. claimed before an older one was redelivered). So one
// delivery per ordered webhook is in flight, across all nodes; the claim applies it to the
// deliveries of webhooks in kOrderedWebhooks only.
inline constexpr const char* kOrderedTurn =
    "(NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.webhook_seq = d.webhook_seq AND o.state = 'pending' "
    "             AND o.seq < d.seq) "
    " AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.webhook_seq = d.webhook_seq AND o.state = 'pending' "
    "             AND o.seq > d.seq AND o.lease_owner IS NOT NULL AND o.next_at > ?1))";
inline constexpr const char* kOrderedWebhooks = "SELECT seq FROM webhooks WHERE ordered AND deleted_at IS NULL";
// A throttled webhook's next free send slot (kept in the store: every node takes from it).
inline constexpr const char* kSetNextSlot = "UPDATE webhooks SET rate_next_at = ?1 WHERE seq = ?2";

// --- idempotency keys (IdempotentBatch) ---
// Stores key ?2 of brand ?1 (request hash ?3, at ?4) unless the brand has it already.
inline constexpr const char* kAddKey =
    "INSERT INTO idempotency_keys (brand, key, request_hash, results, created_at) VALUES (?1, ?2, ?3, '', ?4) "
    "ON CONFLICT (brand, key) DO NOTHING";
inline constexpr const char* kFindKey =
    "SELECT request_hash, results, created_at FROM idempotency_keys WHERE brand = ?1 AND key = ?2";
// An expired key taken afresh: only while it is still expired (stored before ?5). Another
// request may have taken it afresh meanwhile (PostgreSQL: this UPDATE waited for its row lock
// and sees its row): no row changes, and that request's use counts.
inline constexpr const char* kRenewKey =
    "UPDATE idempotency_keys SET request_hash = ?3, results = '', created_at = ?4 "
    "WHERE brand = ?1 AND key = ?2 AND created_at < ?5";
inline constexpr const char* kSetKeyResults = "UPDATE idempotency_keys SET results = ?3 WHERE brand = ?1 AND key = ?2";
inline constexpr const char* kPruneKeys = "DELETE FROM idempotency_keys WHERE created_at < ?1";

// --- tokens (token_from_row reads the rows of both selects) ---
inline constexpr const char* kInsertToken =
    "INSERT INTO api_tokens (id, hash, brand, label, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT DO NOTHING";
inline constexpr const char* kFindToken =
    "SELECT id, brand, label, created_at, expires_at FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL";
inline constexpr const char* kListTokens =
    "SELECT id, brand, label, created_at, expires_at FROM api_tokens WHERE revoked_at IS NULL "
    "ORDER BY created_at, id";
// Tokens that expired before ?1 go with retention (until then they answer "token expired").
inline constexpr const char* kPruneTokens = "DELETE FROM api_tokens WHERE expires_at < ?1";
// Revokes token ?2 at ?1 unless it was revoked already.
inline constexpr const char* kRevokeToken =
    "UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL";

// --- operators ---
inline constexpr const char* kCountWebhooks =
    "SELECT count(*), count(disabled_at) FROM webhooks WHERE deleted_at IS NULL";
inline constexpr const char* kCountEvents = "SELECT count(*) FROM events";
inline constexpr const char* kDeliveryCounts = "SELECT state, n FROM delivery_counts";
// The live, enabled webhook failing the longest: the first entry of the webhooks_failing index.
inline constexpr const char* kLongestFailing =
    "SELECT id, brand, failing_since FROM webhooks "
    "WHERE failing_since IS NOT NULL AND disabled_at IS NULL AND deleted_at IS NULL "
    "ORDER BY failing_since LIMIT 1";

}  // namespace store_sql

// A throttled webhook (rate_limit N per second) sends one delivery per send slot, 1/N s apart
// (rounded up, so never more than N in a second), across all nodes: a claim takes each
// delivery's slot from the webhook's row (rate_next_at, locked by the claim's transaction),
// reserving at most kPaceHorizon ahead; the dispatcher holds the delivery until its slot
// (DueDelivery::not_before). What lies beyond the horizon stays free and waits, due when
// its slot would come, so a throttled backlog costs other webhooks' claims nothing.
inline constexpr std::int64_t kPaceHorizon = 250'000;

class Pace {
 public:
  Pace(int rate_limit, std::optional<std::int64_t> next_slot)
      : interval_((1'000'000 + rate_limit - 1) / rate_limit), next_slot_(next_slot.value_or(0)) {}
  // The send slot of one more delivery claimed at `now`, or nullopt beyond the horizon.
  std::optional<std::int64_t> take(std::int64_t now) {
    std::int64_t slot = std::max(next_slot_, now);
    if (slot > now + kPaceHorizon) return std::nullopt;
    next_slot_ = slot + interval_;
    taken_ = true;
    return slot;
  }
  // When the `n`th (0-based) delivery left waiting by this claim falls due for a slot.
  std::int64_t waiting_due(std::int64_t now, std::int64_t n) const {
    return std::max(next_slot_, now) + n * interval_ - kPaceHorizon;
  }
  bool taken() const { return taken_; }
  std::int64_t next_slot() const { return next_slot_; }

 private:
  std::int64_t interval_;
  std::int64_t next_slot_;
  bool taken_ = false;
};

// Why record_attempts disables a webhook that has not stopped failing.
inline constexpr const char* kFailingTooLong = "failing without a successful delivery for too long";

// A JSON array of strings (a webhook's tags, the keys still valid after a rotation) as a list.
std::vector<std::string> strings_from_json(const std::string& json);
// An idempotency key's stored results ([[event id, deliveries], ...]), and back.
std::string results_json(const std::vector<PublishResult>& results, std::size_t first, std::size_t count);
std::vector<PublishResult> results_from_json(const std::string& json);
// A webhook's stored headers (a JSON object of strings) as a map.
Headers headers_from_json(const std::string& json);
// The same as the header lines every attempt carries ("Name: value\r\n" each).
std::string header_lines_from_json(const std::string& json);
// A stored state; StorageError for a name this build does not know.
DeliveryState stored_delivery_state(const std::string& name);

// A stored idempotency key (store_sql::kFindKey).
struct StoredKey {
  std::string request_hash;
  std::string results;  // JSON [[event id, deliveries], ...]; empty until its events are stored
  std::int64_t created_at = 0;
};

// Idempotency keys around one insert_events call, the same on every backend. `Keys` is the
// backend's access to the idempotency_keys table inside the call's transaction:
//   bool add(const IdempotencyClaim&)                    kAddKey; true when it stored the key
//   std::optional<StoredKey> find(const IdempotencyClaim&)
//   bool renew(const IdempotencyClaim&)                  kRenewKey; true when it took the key
//   void set_results(const IdempotencyClaim&, const std::string& json)
// claim() decides each claim's outcome (before the events are stored); events() are those to
// store; finish() keeps the fresh claims' results with their keys and returns every event's.
class IdempotentBatch {
 public:
  IdempotentBatch(const std::vector<EventRecord>& events, std::vector<IdempotencyClaim>* claims)
      : all_(events), claims_(claims) {}

  template <class Keys>
  void claim(Keys& keys) {
    if (!claims_ || claims_->empty()) return;
    skip_.assign(all_.size(), false);
    replayed_.assign(all_.size(), PublishResult{});
    same_call_.assign(claims_->size(), SIZE_MAX);
    for (std::size_t i = 0; i < claims_->size(); ++i) {
      IdempotencyClaim& c = (*claims_)[i];
      c.outcome = decide(keys, c, i);
      if (c.outcome == IdempotencyClaim::Outcome::conflict && c.conflict_aborts) {
        throw ConflictError("Idempotency-Key '" + c.key + "' was used for a different request");
      }
      if (c.outcome == IdempotencyClaim::Outcome::fresh) continue;
      for (std::size_t e = c.first; e < c.first + c.count; ++e) skip_[e] = true;
    }
    if (std::find(skip_.begin(), skip_.end(), true) == skip_.end()) return;
    for (std::size_t e = 0; e < all_.size(); ++e) {
      if (!skip_[e]) kept_.push_back(all_[e]);
    }
    filtered_ = true;
  }

  const std::vector<EventRecord>& events() const { return filtered_ ? kept_ : all_; }

  template <class Keys>
  std::vector<PublishResult> finish(Keys& keys, std::vector<PublishResult> stored) {
    if (!claims_ || claims_->empty()) return stored;
    std::vector<PublishResult> results = replayed_;
    for (std::size_t e = 0, k = 0; e < all_.size(); ++e) {
      if (!skip_[e]) results[e] = std::move(stored[k++]);
    }
    for (std::size_t i = 0; i < claims_->size(); ++i) {
      const IdempotencyClaim& c = (*claims_)[i];
      if (c.outcome == IdempotencyClaim::Outcome::fresh) {
        keys.set_results(c, results_json(results, c.first, c.count));
      } else if (same_call_[i] != SIZE_MAX) {  // the same request twice in one call
        const IdempotencyClaim& first = (*claims_)[same_call_[i]];
        for (std::size_t e = 0; e < c.count; ++e) results[c.first + e] = results[first.first + e];
      }
    }
    return results;
  }

 private:
  template <class Keys>
  IdempotencyClaim::Outcome decide(Keys& keys, const IdempotencyClaim& c, std::size_t index) {
    using Outcome = IdempotencyClaim::Outcome;
    for (std::size_t j = 0; j < index; ++j) {  // an earlier request of this call with the key
      const IdempotencyClaim& earlier = (*claims_)[j];
      if (earlier.brand != c.brand || earlier.key != c.key) continue;
      if (earlier.request_hash != c.request_hash || earlier.outcome == Outcome::conflict) return Outcome::conflict;
      same_call_[index] = earlier.outcome == Outcome::fresh ? j : same_call_[j];
      if (same_call_[index] == SIZE_MAX) copy_results(c, replayed_, earlier.first);  // both replay one answer
      return Outcome::replayed;
    }
    if (keys.add(c)) return Outcome::fresh;
    std::optional<StoredKey> stored = keys.find(c);
    if (stored && stored->created_at < c.expired_before) {
      if (keys.renew(c)) return Outcome::fresh;
      stored = keys.find(c);  // another request took it afresh first: its answer counts
    }
    if (!stored) {  // pruned between the two statements: it is free again
      if (keys.add(c)) return Outcome::fresh;
      stored = keys.find(c);
      if (!stored) throw UnavailableError("an idempotency key changed while it was being used; try again", 1);
    }
    if (stored->request_hash != c.request_hash) return Outcome::conflict;
    auto parsed = results_from_json(stored->results);
    if (parsed.size() != c.count) throw StorageError("an idempotency key's stored answer does not match its request");
    for (std::size_t e = 0; e < c.count; ++e) replayed_[c.first + e] = std::move(parsed[e]);
    return Outcome::replayed;
  }

  void copy_results(const IdempotencyClaim& c, std::vector<PublishResult>& results, std::size_t from) {
    for (std::size_t e = 0; e < c.count; ++e) results[c.first + e] = results[from + e];
  }

  const std::vector<EventRecord>& all_;
  std::vector<IdempotencyClaim>* claims_;
  std::vector<bool> skip_;
  std::vector<PublishResult> replayed_;
  std::vector<std::size_t> same_call_;  // per claim: the fresh claim of this call it repeats
  std::vector<EventRecord> kept_;
  bool filtered_ = false;
};

// --- rows to records ------------------------------------------------------------------------
// `Row` is a backend's view of the current result row: is_null(i), text(i) -> std::string
// (also for binary columns: the bytes), int64(i). Columns as the store_sql lists above.

template <class Row>
Webhook webhook_from_row(const Row& r) {
  Webhook w;
  w.id = r.text(0);
  w.created_at = r.int64(1);
  w.updated_at = r.int64(2);
  if (!r.is_null(3)) w.deleted_at = r.int64(3);
  w.brand = r.text(4);
  w.topic = r.text(5);
  w.url = r.text(6);
  w.key = r.text(7);
  if (!r.is_null(8)) w.tags = strings_from_json(r.text(8));
  if (!r.is_null(9)) w.disabled_at = r.int64(9);
  if (!r.is_null(10)) w.disabled_reason = r.text(10);
  w.ordered = r.int64(11) != 0;
  if (!r.is_null(12)) w.rate_limit = r.int64(12);
  if (!r.is_null(13)) w.headers = headers_from_json(r.text(13));
  if (!r.is_null(14)) w.failing_since = r.int64(14);
  if (!r.is_null(15)) w.last_success_at = r.int64(15);
  return w;
}

// Without its attempts (kAttemptsOfDelivery with the seq in column 0).
template <class Row>
Delivery delivery_from_row(const Row& r) {
  Delivery d;
  d.id = r.text(1);
  d.event_id = r.text(2);
  d.webhook_id = r.text(3);
  d.brand = r.text(4);
  d.state = stored_delivery_state(r.text(5));
  d.attempt_count = static_cast<int>(r.int64(6));
  d.created_at = r.int64(7);
  d.updated_at = r.int64(8);
  // While leased, next_at is the lease's expiry: still the earliest next attempt.
  if (d.state == DeliveryState::pending && !r.is_null(9)) d.next_attempt_at = r.int64(9);
  d.topic = r.text(10);
  d.event = r.text(11);
  return d;
}

template <class Row>
Attempt attempt_from_row(const Row& r) {
  Attempt a;
  a.number = static_cast<int>(r.int64(0));
  a.started_at = r.int64(1);
  a.duration_us = r.int64(2);
  if (!r.is_null(3)) a.status = static_cast<int>(r.int64(3));
  // Every name a build ever stored is known; a newer file is refused at open (schema version).
  if (!r.is_null(4)) a.error = attempt_error_from(r.text(4)).value_or(AttemptError::network);
  if (!r.is_null(5)) a.detail = r.text(5);
  if (!r.is_null(6)) a.response = r.text(6);
  return a;
}

template <class Row>
TokenInfo token_from_row(const Row& r) {
  TokenInfo t;
  t.id = r.text(0);
  if (!r.is_null(1)) t.brand = r.text(1);
  t.label = r.text(2);
  t.created_at = r.int64(3);
  if (!r.is_null(4)) t.expires_at = r.int64(4);
  return t;
}

// How a transaction changed the number of deliveries in each state (the delivery_counts table,
// adjusted once per transaction instead of counting rows).
struct StateCounts {
  std::array<std::int64_t, std::size(kDeliveryStates)> delta{};
  void add(DeliveryState state, std::int64_t n) { delta[static_cast<std::size_t>(state)] += n; }
  void move(DeliveryState from, DeliveryState to, std::int64_t n = 1) {
    if (from == to || n == 0) return;
    add(from, -n);
    add(to, n);
  }
};

// The field of `counts` that counts deliveries in `state`.
inline std::int64_t& state_count(StoreCounts& counts, DeliveryState state) {
  switch (state) {
    case DeliveryState::pending: return counts.pending;
    case DeliveryState::delivered: return counts.delivered;
    case DeliveryState::failed: return counts.failed;
    case DeliveryState::cancelled: break;
  }
  return counts.cancelled;
}

// Each webhook's failure streak folded over a batch of recorded attempts, in order: one update
// per webhook and commit instead of one per attempt.
class FailureStreaks {
 public:
  struct Streak {
    bool succeeded = false;                    // a success in this batch ended the old streak
    std::optional<std::int64_t> failing_from;  // the first failure after the last success
    // The newest success's start, truncated to the second (kLastSuccess); set when succeeded.
    std::int64_t last_success_at = 0;
  };
  void add(std::int64_t webhook_seq, DeliveryState new_state, std::int64_t started_at) {
    Streak& streak = streaks_[webhook_seq];
    if (new_state == DeliveryState::delivered) {
      streak.succeeded = true;
      streak.failing_from.reset();
      streak.last_success_at = std::max(streak.last_success_at, started_at / 1'000'000 * 1'000'000);
    } else if (!streak.failing_from) {
      streak.failing_from = started_at;
    }
  }
  // Webhook seq -> its streak, in seq order. Recorded with kStreakEnded when failing_from is
  // empty, else kStreakRestarted when succeeded, else kStreakFailed; and kLastSuccess when
  // succeeded.
  const std::map<std::int64_t, Streak>& by_webhook() const { return streaks_; }

 private:
  std::map<std::int64_t, Streak> streaks_;
};

// --- delivery statistics (docs/delivery.md, "Delivery statistics") ---------------------------
// attempt_minutes holds, per webhook and minute (and on PostgreSQL per counter shard, so that
// concurrent transactions never wait on one hot row), the attempts by outcome and a histogram
// of their durations. record_attempts folds each batch of outcomes into one row per webhook
// and minute (MinuteRollup) and adds it in the same transaction.
inline constexpr std::int64_t kMinuteUs = 60'000'000;

inline std::int64_t minute_of(std::int64_t micros) { return micros - micros % kMinuteUs; }

// One batch of recorded attempts, per (webhook seq, minute start), in that order.
class MinuteRollup {
 public:
  struct Row {
    OutcomeCounts counts;
    LatencyHistogram latency;
  };
  void add(std::int64_t webhook_seq, const Attempt& a) {
    Row& row = rows_[{webhook_seq, minute_of(a.started_at)}];
    if (a.error != AttemptError::none || !a.status) {
      ++row.counts.errors;
    } else if (*a.status >= 200 && *a.status < 300) {
      ++row.counts.succeeded;
    } else {
      ++row.counts.failed;
    }
    row.latency.add_duration(a.duration_us);
  }
  const std::map<std::pair<std::int64_t, std::int64_t>, Row>& rows() const { return rows_; }

 private:
  std::map<std::pair<std::int64_t, std::int64_t>, Row> rows_;
};

namespace store_sql {
// ?1 brand, ?2 from, ?3 until (minute starts): attempts per minute of the brand's live webhooks.
inline constexpr const char* kStatsMinutes =
    "SELECT m.minute, sum(m.succeeded), sum(m.failed), sum(m.errors) "
    "FROM webhooks w JOIN attempt_minutes m ON m.webhook_seq = w.seq "
    "WHERE w.brand = ?1 AND w.deleted_at IS NULL AND m.minute >= ?2 AND m.minute < ?3 "
    "GROUP BY m.minute ORDER BY m.minute";
// The same per live webhook, every one of them, in listing order (seq).
inline constexpr const char* kStatsWebhooks =
    "SELECT w.seq, w.id, coalesce(sum(m.succeeded), 0), coalesce(sum(m.failed), 0), coalesce(sum(m.errors), 0) "
    "FROM webhooks w LEFT JOIN attempt_minutes m ON m.webhook_seq = w.seq AND m.minute >= ?2 AND m.minute < ?3 "
    "WHERE w.brand = ?1 AND w.deleted_at IS NULL GROUP BY w.seq, w.id ORDER BY w.seq";
inline constexpr const char* kPruneAttemptMinutes = "DELETE FROM attempt_minutes WHERE minute < ?1";
}  // namespace store_sql

// The answer of Store::delivery_stats from its three queries: `webhooks` rows (seq, id,
// counts) in order, `minutes` and the summed histogram buckets per webhook seq.
DeliveryStats delivery_stats_of(std::int64_t since, std::int64_t until, std::vector<MinuteStats> minutes,
                                const std::vector<std::pair<std::int64_t, WebhookStats>>& webhooks,
                                const std::map<std::int64_t, LatencyHistogram>& latency);

// --- moving a database (migration.hpp) -------------------------------------------------------

// In an order the target's foreign keys accept: brands without their parents first, then the
// parents (a brand may come before its parent); webhooks before their keys, events and
// webhooks before deliveries, deliveries before attempts.
const std::vector<MovedTable>& moved_tables();

enum class Dialect { sqlite, postgres };
// ?1.. the key of the last row of the previous batch (none for the first), then the limit.
std::string export_sql(const MovedTable& t, bool first_batch, Dialect dialect);
// ?1.. the row's values: an INSERT that keeps the given keys, or for `update` tables an UPDATE
// of the key's row.
std::string import_sql(const MovedTable& t, Dialect dialect);
std::string count_sql(const MovedTable& t);
// The key columns of `row` (the cursor of the next batch).
MovedRow key_of(const MovedTable& t, const MovedRow& row);
// The bytes of a row's text and bytes values (what bounds a batch).
std::size_t moved_bytes(const MovedRow& row);

namespace store_sql {
// After an import: no node of the new database holds a lease (those of the old one would
// otherwise keep their deliveries until they expire); next_at stays: due at once or soon.
inline constexpr const char* kReleaseImportedLeases =
    "UPDATE deliveries SET lease_owner = NULL WHERE lease_owner IS NOT NULL";
}  // namespace store_sql

}  // namespace brandhooks
