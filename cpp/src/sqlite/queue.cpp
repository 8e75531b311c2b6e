// The durable queue: publishing events with their deliveries, leases (lease.hpp), claims of
// due deliveries, and recording the attempts' outcomes (failure streaks, disabling).
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "brandhooks/crypto.hpp"
#include "clock.hpp"
#include "sqlite/sqlite_store.hpp"

namespace brandhooks::sqlite {

namespace {
// The idempotency_keys table as IdempotentBatch uses it.
struct Keys {
  std::function<SQLite::Statement&(const char*)> prepare;
  SQLite::Statement& bound(const char* sql, const IdempotencyClaim& c) {
    SQLite::Statement& q = prepare(sql);
    q.bind(1, c.brand);
    q.bind(2, c.key);
    return q;
  }
  bool add(const IdempotencyClaim& c) {
    SQLite::Statement& q = bound(store_sql::kAddKey, c);
    q.bind(3, c.request_hash.data(), static_cast<int>(c.request_hash.size()));
    q.bind(4, c.now);
    bool added = q.exec() == 1;
    q.reset();
    return added;
  }
  std::optional<StoredKey> find(const IdempotencyClaim& c) {
    SQLite::Statement& q = bound(store_sql::kFindKey, c);
    std::optional<StoredKey> found;
    if (q.executeStep()) found = StoredKey{Row{q}.text(0), Row{q}.text(1), q.getColumn(2).getInt64()};
    q.reset();
    return found;
  }
  bool renew(const IdempotencyClaim& c) {
    SQLite::Statement& q = bound(store_sql::kRenewKey, c);
    q.bind(3, c.request_hash.data(), static_cast<int>(c.request_hash.size()));
    q.bind(4, c.now);
    q.bind(5, c.expired_before);
    bool renewed = q.exec() == 1;
    q.reset();
    return renewed;
  }
  void set_results(const IdempotencyClaim& c, const std::string& json) {
    SQLite::Statement& q = bound(store_sql::kSetKeyResults, c);
    q.bind(3, json);
    q.exec();
    q.reset();
  }
};

// What publishing writes (insert_events, insert_test_event).
constexpr const char* kAddEvent =
    "INSERT INTO events (id, brand, topic, event, body, created_at, tags, traceparent, tracestate) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr const char* kAddDelivery =
    "INSERT INTO deliveries (id, event_seq, webhook_seq, state, next_at, created_at, updated_at, lease_owner) "
    "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)";

// Inserts `e` with `add_event` (a prepared kAddEvent); returns its seq.
std::int64_t insert_event_row(SQLite::Database& db, SQLite::Statement& add_event, const EventRecord& e) {
  add_event.bind(1, e.id);
  add_event.bind(2, e.brand);
  add_event.bind(3, e.topic);
  add_event.bind(4, e.event);
  add_event.bindNoCopy(5, e.body.data(), static_cast<int>(e.body.size()));  // alive until exec()
  add_event.bind(6, e.created_at);
  bind_optional(add_event, 7, e.tags_json);
  if (e.trace) {
    add_event.bind(8, e.trace->traceparent);
    bind_text_or_null(add_event, 9, e.trace->tracestate);
  } else {
    add_event.bind(8);
    add_event.bind(9);
  }
  add_event.exec();
  add_event.reset();
  return db.getLastInsertRowid();
}
}  // namespace

std::string SqliteStore::insert_test_event(const EventRecord& e, const std::string& webhook_id) {
  return guarded([&] {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement& find = prepare(
        "SELECT seq, disabled_at IS NOT NULL FROM webhooks WHERE id = ?1 AND brand = ?2 AND deleted_at IS NULL");
    find.bind(1, webhook_id);
    find.bind(2, e.brand);
    if (!find.executeStep()) throw NotFoundError("webhook not found");
    std::int64_t webhook = find.getColumn(0).getInt64();
    if (find.getColumn(1).getInt() != 0) throw ConflictError("the webhook is disabled: enable it first");
    find.reset();
    std::int64_t event_seq = insert_event_row(db_, prepare(kAddEvent), e);
    std::string id = uuid_v7();
    SQLite::Statement& add_delivery = prepare(kAddDelivery);
    add_delivery.bind(1, id);
    add_delivery.bind(2, event_seq);
    add_delivery.bind(3, webhook);
    add_delivery.bind(4, e.first_attempt_at);  // no lease: the dispatcher claims it
    add_delivery.bind(5, e.created_at);
    add_delivery.bind(6, e.created_at);
    add_delivery.bind(7);
    add_delivery.exec();
    add_delivery.reset();
    StateCounts counts;
    counts.add(DeliveryState::pending, 1);
    save_counts(counts);
    tx.commit();
    return id;
  });
}

std::vector<PublishResult> SqliteStore::insert_events(const std::vector<EventRecord>& all_events, LeaseRoom room,
                                                      std::vector<DueDelivery>* leased,
                                                      std::vector<IdempotencyClaim>* claims) {
  return guarded([&] {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    IdempotentBatch batch(all_events, claims);
    Keys keys{[this](const char* sql) -> SQLite::Statement& { return prepare(sql); }};
    batch.claim(keys);
    const std::vector<EventRecord>& events = batch.events();
    // A webhook with tags matches only events sharing one of them; without tags, all.
    SQLite::Statement& matching = prepare(
        "SELECT seq, ordered OR rate_limit IS NOT NULL FROM webhooks w WHERE topic = ?1 AND deleted_at IS NULL "
        "AND disabled_at IS NULL AND brand IN (SELECT value FROM json_each(?2)) "
        "AND (w.tags IS NULL OR w.tags = '[]' OR EXISTS (SELECT 1 FROM json_each(w.tags) t "
        "     WHERE t.value IN (SELECT value FROM json_each(?3)))) ORDER BY seq");
    SQLite::Statement& add_event = prepare(kAddEvent);
    SQLite::Statement& add_delivery = prepare(kAddDelivery);
    // What a handed-over delivery needs of its webhook, read once per webhook and call.
    std::map<std::int64_t, std::shared_ptr<const WebhookTarget>> targets;
    std::map<std::string, std::string> lineage_json;  // brand -> JSON array of it and its ancestors
    std::vector<PublishResult> results;
    results.reserve(events.size());
    std::int64_t created = 0;
    std::size_t handed_bytes = 0;
    // Events of one brand, topic and tags match the same webhooks: asked once per call.
    // Webhook seq, and whether only claims may lease its deliveries (ordered or throttled).
    std::map<std::string, std::vector<std::pair<std::int64_t, bool>>> matched;
    for (const auto& e : events) {
      std::string tags = e.tags_json.value_or("[]");
      auto [found, fresh_match] = matched.try_emplace(e.brand + '\n' + e.topic + '\n' + tags);
      if (fresh_match) {
        auto [it, fresh] = lineage_json.try_emplace(e.brand);
        if (fresh) it->second = nlohmann::json(lineage_locked(e.brand)).dump();
        matching.bind(1, e.topic);
        matching.bind(2, it->second);
        matching.bind(3, tags);
        while (matching.executeStep()) {
          found->second.emplace_back(matching.getColumn(0).getInt64(), matching.getColumn(1).getInt() != 0);
        }
        matching.reset();
      }
      const auto& webhooks = found->second;

      std::int64_t event_seq = insert_event_row(db_, add_event, e);

      std::shared_ptr<const std::string> body;  // shared by this event's handed-over deliveries
      std::shared_ptr<const TraceContext> trace;
      for (auto [webhook, claims_only] : webhooks) {
        bool hand_over = leased && !claims_only && leased->size() < room.deliveries &&
                         handed_bytes + e.body.size() <= room.bytes && e.first_attempt_at <= e.created_at;
        std::string id = uuid_v7();
        add_delivery.bindNoCopy(1, id);  // alive until exec(): SQLite need not copy it
        add_delivery.bind(2, event_seq);
        add_delivery.bind(3, webhook);
        // Handed over: leased by this node at once (next_at is then the lease's expiry).
        add_delivery.bind(4, hand_over ? holder_.expiry(e.created_at) : e.first_attempt_at);
        add_delivery.bind(5, e.created_at);
        add_delivery.bind(6, e.created_at);
        if (hand_over) {
          add_delivery.bindNoCopy(7, holder_.node);
        } else {
          add_delivery.bind(7);
        }
        add_delivery.exec();
        add_delivery.reset();
        if (!hand_over) continue;
        handed_bytes += e.body.size();
        if (!body) body = std::make_shared<const std::string>(e.body);
        if (!trace && e.trace) trace = std::make_shared<const TraceContext>(*e.trace);
        auto [target, fresh_target] = targets.try_emplace(webhook);
        if (fresh_target) target->second = target_locked(webhook, e.created_at);
        DueDelivery d;
        d.target = target->second;
        d.seq = db_.getLastInsertRowid();
        d.id = std::move(id);
        d.webhook_seq = webhook;
        d.body = body;
        d.trace = trace;
        d.event_created_at = e.created_at;
        leased->push_back(std::move(d));
      }
      results.push_back({e.id, static_cast<std::int64_t>(webhooks.size())});
      created += static_cast<std::int64_t>(webhooks.size());
    }
    StateCounts counts;
    counts.add(DeliveryState::pending, created);
    save_counts(counts);
    results = batch.finish(keys, std::move(results));
    tx.commit();
    return results;
  });
}

std::int64_t SqliteStore::release_leases(std::int64_t now) {
  return guarded([&] {
    SQLite::Statement& q = prepare(lease_sql::kRelease);
    q.bind(1, now);
    q.bind(2, holder_.node);
    std::int64_t released = q.exec();
    q.reset();
    return released;
  });
}

LeaseUpkeep SqliteStore::renew_leases(std::int64_t now, const std::vector<std::int64_t>& held, bool take_back) {
  return guarded([&] {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    static const std::string kHeld = "SELECT value FROM json_each(?3)";  // the seqs, a JSON array
    std::string held_json = nlohmann::json(held).dump();
    auto run = [&](const std::string& sql, std::int64_t time) -> std::int64_t {
      SQLite::Statement& q = prepare(sql);
      q.bind(1, time);
      q.bind(2, holder_.node);
      q.bind(3, held_json);
      std::int64_t changed = q.exec();
      q.reset();
      return changed;
    };
    static const std::string kRenew = lease_sql::renew_held(kHeld);
    static const std::string kTakeBack = lease_sql::take_back_unheld(kHeld);
    LeaseUpkeep done;
    if (!held.empty()) done.renewed = run(kRenew, holder_.expiry(now));
    if (take_back) done.taken_back = run(kTakeBack, now);
    tx.commit();
    return done;
  });
}

std::vector<DueDelivery> SqliteStore::claim_due(std::int64_t now, std::size_t limit,
                                                const std::vector<std::int64_t>& skip_webhooks,
                                                std::size_t max_bytes) {
  return guarded([&] {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    // INDEXED BY: the planner must never fall back to sorting every pending row per claim.
    // Due includes leases whose holder stopped renewing (lease.hpp), but never this node's
    // own: it still holds them in memory and records them itself.
    SQLite::Statement& q = prepare(
        "SELECT d.seq, d.id, d.attempts, d.event_seq, e.body, d.webhook_seq, e.created_at, "
        "       coalesce(d.lease_owner, ''), e.traceparent, e.tracestate "
        "FROM deliveries d INDEXED BY deliveries_due JOIN events e ON e.seq = d.event_seq "
        "WHERE d.state = 'pending' AND d.next_at <= ?1 "
        "AND (d.lease_owner IS NULL OR d.lease_owner <> ?4) "
        "AND d.webhook_seq NOT IN (SELECT value FROM json_each(?2)) "
        "AND (d.webhook_seq NOT IN (" + std::string(store_sql::kOrderedWebhooks) + ") OR " +
        store_sql::kOrderedTurn + ") "
        "ORDER BY d.next_at, d.seq LIMIT ?3");
    q.bind(1, now);
    q.bind(2, nlohmann::json(skip_webhooks).dump());
    q.bind(3, static_cast<std::int64_t>(limit));
    q.bind(4, holder_.node);
    std::vector<DueDelivery> rows;
    std::int64_t last_event = -1;
    std::shared_ptr<const std::string> body;
    std::shared_ptr<const TraceContext> trace;
    std::size_t claimed_bytes = 0;
    while (q.executeStep()) {
      auto size = static_cast<std::size_t>(q.getColumn(4).getBytes());
      if (!rows.empty() && claimed_bytes + size > max_bytes) break;
      claimed_bytes += size;
      DueDelivery d;
      d.seq = q.getColumn(0).getInt64();
      d.id = q.getColumn(1).getString();
      d.attempts_made = q.getColumn(2).getInt();
      std::int64_t event_seq = q.getColumn(3).getInt64();
      if (event_seq != last_event) {  // an event's deliveries are usually adjacent
        body = std::make_shared<const std::string>(Row{q}.text(4));
        trace = q.getColumn(8).isNull() ? nullptr
                                        : std::make_shared<const TraceContext>(TraceContext{
                                              q.getColumn(8).getString(), q.getColumn(9).getString()});
        last_event = event_seq;
      }
      d.body = body;
      d.trace = trace;
      d.webhook_seq = q.getColumn(5).getInt64();
      d.event_created_at = q.getColumn(6).getInt64();
      d.taken_from = q.getColumn(7).getString();
      rows.push_back(std::move(d));
    }
    q.reset();

    // Each webhook is read once per claim; deliveries of deleted or disabled ones are cancelled.
    std::map<std::int64_t, std::shared_ptr<const WebhookTarget>> targets;
    std::map<std::int64_t, std::optional<Pace>> paces;  // throttled webhooks: their send slots
    std::map<std::int64_t, std::int64_t> left_waiting;  // per throttled webhook, this claim
    SQLite::Statement& lease = prepare(lease_sql::kTake);
    SQLite::Statement& cancel = prepare(store_sql::kCancelDelivery);
    SQLite::Statement& wait = prepare("UPDATE deliveries SET next_at = ?1 WHERE seq = ?2");
    std::vector<DueDelivery> due;
    due.reserve(rows.size());
    StateCounts counts;
    for (auto& d : rows) {
      auto [target, fresh] = targets.try_emplace(d.webhook_seq);
      if (fresh) target->second = target_locked(d.webhook_seq, now);
      if (!target->second) {
        cancel.bind(1, now);
        cancel.bind(2, d.seq);
        cancel.exec();
        cancel.reset();
        counts.move(DeliveryState::pending, DeliveryState::cancelled);
        continue;
      }
      d.target = target->second;
      auto [pace, fresh_pace] = paces.try_emplace(d.webhook_seq);
      if (fresh_pace) pace->second = pace_locked(d.webhook_seq);
      if (pace->second) {
        std::optional<std::int64_t> slot = pace->second->take(now);
        if (!slot) {  // beyond the horizon: free, due when its slot comes near
          wait.bind(1, pace->second->waiting_due(now, left_waiting[d.webhook_seq]++));
          wait.bind(2, d.seq);
          wait.exec();
          wait.reset();
          continue;
        }
        d.not_before = *slot;
      }
      lease.bind(1, holder_.node);
      lease.bind(2, holder_.expiry(now));
      lease.bind(3, d.seq);
      lease.exec();
      lease.reset();
      due.push_back(std::move(d));
    }
    SQLite::Statement& set_slot = prepare(store_sql::kSetNextSlot);
    for (const auto& [webhook, pace] : paces) {
      if (!pace || !pace->taken()) continue;
      set_slot.bind(1, pace->next_slot());
      set_slot.bind(2, webhook);
      set_slot.exec();
      set_slot.reset();
    }
    save_counts(counts);
    tx.commit();
    return due;
  });
}

std::optional<std::int64_t> SqliteStore::next_due_at() {
  return guarded([&]() -> std::optional<std::int64_t> {
    // As claim_due sees them: this node's own leases are never due to it.
    // An ordered webhook's waiting deliveries count once it is their turn (a finished attempt
    // asks for a claim), so that they do not make the dispatcher claim in a loop meanwhile.
    // Nor a delivery without its event (foreign keys keep one from existing here; a
    // database moved from PostgreSQL by an older build could bring one along).
    SQLite::Statement& q = prepare(
        "SELECT next_at FROM deliveries d INDEXED BY deliveries_due "
        "WHERE state = 'pending' AND (lease_owner IS NULL OR lease_owner <> ?2) "
        "AND EXISTS (SELECT 1 FROM events e WHERE e.seq = d.event_seq) "
        "AND (d.webhook_seq NOT IN (" + std::string(store_sql::kOrderedWebhooks) + ") OR " +
        store_sql::kOrderedTurn + ") "
        "ORDER BY next_at, seq LIMIT 1");
    q.bind(1, now_micros());  // which leases are still held
    q.bind(2, holder_.node);
    if (!q.executeStep()) return std::nullopt;
    return q.getColumn(0).getInt64();
  });
}

RecordResult SqliteStore::record_attempts(const std::vector<AttemptRecord>& records, std::int64_t now,
                                          std::int64_t disable_before) {
  return guarded([&] {
    RecordResult result;
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement& attempt = prepare(
        "INSERT OR REPLACE INTO attempts (delivery_seq, number, started_at, duration_us, status, error, detail, "
        "response) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    SQLite::Statement& delivery = prepare(lease_sql::kFinish);
    SQLite::Statement& recorded = prepare(store_sql::kAttemptRecorded);
    SQLite::Statement& succeeded = prepare(store_sql::kStreakEnded);
    SQLite::Statement& failed = prepare(store_sql::kStreakFailed);
    SQLite::Statement& failing_again = prepare(store_sql::kStreakRestarted);
    SQLite::Statement& last_success = prepare(store_sql::kLastSuccess);
    SQLite::Statement& disable = prepare(store_sql::kDisableWebhook);
    SQLite::Statement& cancel = prepare(store_sql::kCancelWaiting);
    FailureStreaks streaks;
    StateCounts counts;
    MinuteRollup rollup;
    for (const auto& r : records) {
      const Attempt& a = r.attempt;
      delivery.bind(1, a.number);
      delivery.bindNoCopy(2, to_string(r.new_state).data());  // a static, NUL-terminated name
      bind_optional(delivery, 3, r.next_at);
      delivery.bind(4, now);
      delivery.bind(5, r.delivery_seq);
      delivery.bindNoCopy(6, holder_.node);
      bool held = delivery.exec() == 1;
      delivery.reset();
      if (!held) {
        recorded.bind(1, r.delivery_seq);
        recorded.bind(2, a.number);
        recorded.bind(3, a.started_at);
        if (recorded.executeStep()) {
          ++result.already_recorded;
        } else {  // taken over: the new holder records its own attempt
          ++result.lost;
        }
        recorded.reset();
        continue;
      }
      counts.move(DeliveryState::pending, r.new_state);

      attempt.bind(1, r.delivery_seq);
      attempt.bind(2, a.number);
      attempt.bind(3, a.started_at);
      attempt.bind(4, a.duration_us);
      bind_optional(attempt, 5, a.status);
      bind_text_or_null(attempt, 6, to_string(a.error));
      bind_text_or_null(attempt, 7, a.detail);
      attempt.bindNoCopy(8, a.response.data(), static_cast<int>(a.response.size()));
      attempt.exec();
      attempt.reset();
      rollup.add(r.webhook_seq, a);

      streaks.add(r.webhook_seq, r.new_state, a.started_at);
      if (!r.disable_reason.empty()) {
        result.disabled += disable_webhook(disable, cancel, r.webhook_seq, r.disable_reason, now, true, 0, counts);
      }
    }
    for (const auto& [webhook, streak] : streaks.by_webhook()) {
      if (streak.succeeded) {
        last_success.bind(1, streak.last_success_at);
        last_success.bind(2, webhook);
        last_success.exec();
        last_success.reset();
      }
      if (!streak.failing_from) {
        succeeded.bind(1, webhook);
        succeeded.exec();
        succeeded.reset();
        continue;
      }
      SQLite::Statement& q = streak.succeeded ? failing_again : failed;
      q.bind(1, *streak.failing_from);
      q.bind(2, webhook);
      q.exec();
      q.reset();
      // Already disabled (410 above) or not failing long enough: nothing happens.
      result.disabled +=
          disable_webhook(disable, cancel, webhook, kFailingTooLong, now, false, disable_before, counts);
    }
    add_attempt_minutes(rollup);
    save_counts(counts);
    tx.commit();
    return result;
  });
}

// Runs a statement over this node's leases: ?1 `time`, ?2 the node.
// Where the webhook's deliveries attempted at `now` go and their keys; null once the
// webhook is deleted or disabled.
std::shared_ptr<const WebhookTarget> SqliteStore::target_locked(std::int64_t webhook_seq, std::int64_t now) {
  SQLite::Statement& q = prepare(
      "SELECT url, key, deleted_at IS NULL AND disabled_at IS NULL, "
      "       (SELECT json_group_array(k.key) FROM webhook_keys k "
      "        WHERE k.webhook_seq = w.seq AND k.expires_at > ?2), id, brand, headers, ordered "
      "FROM webhooks w WHERE seq = ?1");
  q.bind(1, webhook_seq);
  q.bind(2, now);
  std::shared_ptr<WebhookTarget> target;
  if (q.executeStep() && q.getColumn(2).getInt() != 0) {
    target = std::make_shared<WebhookTarget>();
    target->id = q.getColumn(4).getString();
    target->brand = q.getColumn(5).getString();
    target->url = q.getColumn(0).getString();
    target->keys.push_back(q.getColumn(1).getString());
    target->ordered = q.getColumn(7).getInt() != 0;
    for (auto& key : strings_from_json(q.getColumn(3).getString())) target->keys.push_back(std::move(key));
    if (!q.getColumn(6).isNull()) target->header_lines = header_lines_from_json(q.getColumn(6).getString());
  }
  q.reset();
  return target;
}

// The send slots of a throttled webhook; nullopt for one without rate_limit.
std::optional<Pace> SqliteStore::pace_locked(std::int64_t webhook_seq) {
  SQLite::Statement& q = prepare("SELECT rate_limit, rate_next_at FROM webhooks WHERE seq = ?1");
  q.bind(1, webhook_seq);
  std::optional<Pace> pace;
  if (q.executeStep() && !q.getColumn(0).isNull()) {
    std::optional<std::int64_t> next_slot;
    if (!q.getColumn(1).isNull()) next_slot = q.getColumn(1).getInt64();
    pace.emplace(q.getColumn(0).getInt(), next_slot);
  }
  q.reset();
  return pace;
}

// Disables a webhook (when `force`, or when it has failed since before `failing_before`) and
// cancels its waiting deliveries.
bool SqliteStore::disable_webhook(SQLite::Statement& disable, SQLite::Statement& cancel, std::int64_t webhook,
                                  const std::string& reason, std::int64_t now, bool force,
                                  std::int64_t failing_before, StateCounts& counts) {
  disable.bind(1, now);
  disable.bind(2, reason);
  disable.bind(3, now);
  disable.bind(4, webhook);
  disable.bind(5, force ? 1 : 0);
  disable.bind(6, failing_before);
  bool disabled = disable.exec() == 1;
  disable.reset();
  if (!disabled) return false;
  cancel.bind(1, now);
  cancel.bind(2, webhook);
  counts.move(DeliveryState::pending, DeliveryState::cancelled, cancel.exec());
  cancel.reset();
  return true;
}

}  // namespace brandhooks::sqlite
