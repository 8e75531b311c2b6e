// The delivery queue on PostgreSQL: publish, claims (FOR UPDATE SKIP LOCKED), owned leases
// (lease.hpp) and attempt outcomes. Batches go in few round trips: one statement over arrays
// (unnest) for a publish's deliveries and for a batch of outcomes, a pipeline for its events.
#include <algorithm>
#include <set>

#include "brandhooks/crypto.hpp"
#include "clock.hpp"
#include "pg/pg_store.hpp"
#include "validation.hpp"

namespace brandhooks {

using pg::Params;

namespace {

// A webhook with tags matches only events sharing one of them; without tags, all. $1 the
// event's brand (its ancestors' webhooks match too), $2 topic, $3 the event's tags (JSON).
constexpr const char* kMatching =
    "WITH RECURSIVE up(id, depth) AS ("
    "  SELECT $1::text, 0"
    "  UNION ALL SELECT b.parent, up.depth + 1 FROM brands b JOIN up ON b.id = up.id"
    "  WHERE b.parent IS NOT NULL AND up.depth < 1000) "
    "SELECT seq, ordered OR rate_limit IS NOT NULL FROM webhooks w WHERE topic = $2 AND deleted_at IS NULL AND disabled_at IS NULL "
    "AND brand IN (SELECT id FROM up) "
    "AND (w.tags IS NULL OR w.tags = '[]'::jsonb OR w.tags ?| ARRAY(SELECT jsonb_array_elements_text($3::jsonb))) "
    "ORDER BY seq";

constexpr const char* kAddEvent =
    "INSERT INTO events (id, brand, topic, event, body, created_at, tags, traceparent, tracestate) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9) RETURNING seq";

// kAddEvent's parameters for `e`.
Params event_params(const EventRecord& e) {
  Params p;
  p.add(e.id).add(e.brand).add(e.topic).add(e.event).bytes(e.body).add(e.created_at).add(e.tags_json);
  std::optional<std::string> traceparent, tracestate;
  if (e.trace) {
    traceparent = e.trace->traceparent;
    if (!e.trace->tracestate.empty()) tracestate = e.trace->tracestate;
  }
  p.add(traceparent).add(tracestate);
  return p;
}

// Every delivery of a publish in one statement; the handed-over ones (leased at once by node
// $7, see Store::insert_events) come back with their seq.
constexpr const char* kAddDeliveries =
    "WITH added AS ("
    "  INSERT INTO deliveries (id, event_seq, webhook_seq, state, next_at, created_at, updated_at, lease_owner) "
    "  SELECT u.id, u.event_seq, u.webhook_seq, 'pending', u.next_at, u.created_at, u.created_at, "
    "         CASE WHEN u.leased THEN $7 END "
    "  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::boolean[]) "
    "       AS u(id, event_seq, webhook_seq, next_at, created_at, leased) "
    "  RETURNING id, seq, lease_owner) "
    "SELECT id, seq FROM added WHERE lease_owner IS NOT NULL";

// Records a batch of outcomes in one statement, each only while node $12 holds the delivery's
// lease for that attempt (the conditions of lease_sql::kFinish, over arrays), with its row in
// the attempt log; returns the seq of each outcome recorded (the others' leases were lost).
// The owner test is written IS NOT DISTINCT FROM (the same for a non-null $12) so that it
// cannot use the lease-owner index: the planner, which guesses 10 rows for unnest, would
// otherwise drive the join from that index (every lease of the node) and rescan the whole
// batch per row, quadratic in the batch (a 60 s statement for 10 000 outcomes).
constexpr const char* kRecord =
    "WITH outcome AS ("
    "  SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], "
    "                       $7::integer[], $8::text[], $9::text[], $10::text[]) "
    "  AS u(seq, number, state, next_at, started_at, duration_us, status, error, detail, response)), "
    "finished AS ("
    "  UPDATE deliveries d SET attempts = o.number, state = o.state, next_at = o.next_at, lease_owner = NULL, "
    "         updated_at = $11 "
    "  FROM outcome o WHERE d.seq = o.seq AND d.lease_owner IS NOT DISTINCT FROM $12 "
    "  AND d.attempts = o.number - 1 "
    "  AND d.state = 'pending' "
    "  RETURNING d.seq, o.number, o.started_at, o.duration_us, o.status, o.error, o.detail, o.response), "
    "logged AS ("
    "  INSERT INTO attempts (delivery_seq, number, started_at, duration_us, status, error, detail, response) "
    "  SELECT seq, number, started_at, duration_us, status, error, detail, decode(response, 'hex') FROM finished "
    "  ON CONFLICT (delivery_seq, number) DO UPDATE SET started_at = EXCLUDED.started_at, "
    "  duration_us = EXCLUDED.duration_us, status = EXCLUDED.status, error = EXCLUDED.error, "
    "  detail = EXCLUDED.detail, response = EXCLUDED.response) "
    "SELECT seq FROM finished";

// Text PostgreSQL takes: well-formed UTF-8 without NUL (an error detail may quote a peer's
// bytes); anything else is replaced byte by byte, so the outcome is recorded all the same.
std::optional<std::string> storable_text(const std::string& text) {
  if (text.empty()) return std::nullopt;
  bool clean = text.find('\0') == std::string::npos;
  if (clean) {
    try {
      check_utf8(text, "text");
    } catch (const ValidationError&) {
      clean = false;
    }
  }
  if (clean) return text;
  std::string out = text;
  for (char& c : out) {
    if (c == '\0' || static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  return out;
}

std::string hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

std::string bool_array(const std::vector<bool>& values) {
  std::string literal = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) literal += ',';
    literal += values[i] ? 't' : 'f';
  }
  return literal + "}";
}

}  // namespace

namespace {
// The idempotency_keys table as IdempotentBatch uses it.
struct Keys {
  pg::Connection& c;
  Params key(const IdempotencyClaim& claim) { return std::move(Params().add(claim.brand).add(claim.key)); }
  bool add(const IdempotencyClaim& claim) {
    return c.exec(pg::numbered(store_sql::kAddKey), key(claim).bytes(claim.request_hash).add(claim.now)).affected() == 1;
  }
  std::optional<StoredKey> find(const IdempotencyClaim& claim) {
    auto rows = c.exec(pg::numbered(store_sql::kFindKey), key(claim));
    if (rows.rows() == 0) return std::nullopt;
    return StoredKey{rows.bytes(0, 0), rows.text(0, 1), rows.int64(0, 2)};
  }
  bool renew(const IdempotencyClaim& claim) {
    return c.exec(pg::numbered(store_sql::kRenewKey),
                  key(claim).bytes(claim.request_hash).add(claim.now).add(claim.expired_before))
               .affected() == 1;
  }
  void set_results(const IdempotencyClaim& claim, const std::string& json) {
    c.exec(pg::numbered(store_sql::kSetKeyResults), key(claim).add(json));
  }
};
}  // namespace

std::string PgStore::insert_test_event(const EventRecord& e, const std::string& webhook_id) {
  return transact([&](Connection& c) {
    auto found = c.exec("SELECT seq, disabled_at IS NOT NULL FROM webhooks WHERE id = $1 AND brand = $2 "
                        "AND deleted_at IS NULL",
                        Params().add(webhook_id).add(e.brand));
    if (found.rows() == 0) throw NotFoundError("webhook not found");
    if (found.boolean(0, 1)) throw ConflictError("the webhook is disabled: enable it first");
    auto event = c.exec(kAddEvent, event_params(e));
    std::string id = uuid_v7();
    // No lease: the dispatcher claims it (ordered and throttled webhooks' rules apply).
    c.exec("INSERT INTO deliveries (id, event_seq, webhook_seq, state, next_at, created_at, updated_at) "
           "VALUES ($1, $2, $3, 'pending', $4, $5, $5)",
           Params().add(id).add(event.int64(0, 0)).add(found.int64(0, 0)).add(e.first_attempt_at).add(e.created_at));
    StateCounts counts;
    counts.add(DeliveryState::pending, 1);
    save_counts(c, counts);
    return id;
  });
}

std::vector<PublishResult> PgStore::insert_events(const std::vector<EventRecord>& all_events, LeaseRoom room,
                                                  std::vector<DueDelivery>* leased,
                                                  std::vector<IdempotencyClaim>* claims) {
  auto [results, handed] = transact([&](Connection& c) {
    // Rebuilt on each try of the transaction: a retry decides every claim again.
    IdempotentBatch batch(all_events, claims);
    Keys keys{c};
    batch.claim(keys);
    const std::vector<EventRecord>& events = batch.events();
    // Events of one brand, topic and tags match the same webhooks: asked once per call.
    // Webhook seq, and whether only claims may lease its deliveries (ordered or throttled).
    std::map<std::string, std::vector<std::pair<std::int64_t, bool>>> matched;
    std::vector<const std::vector<std::pair<std::int64_t, bool>>*> webhooks_of;
    for (const auto& e : events) {
      std::string tags = e.tags_json.value_or("[]");
      auto [found, fresh] = matched.try_emplace(e.brand + '\n' + e.topic + '\n' + tags);
      if (fresh) {
        auto rows = c.exec(kMatching, Params().add(e.brand).add(e.topic).add(tags));
        for (int i = 0; i < rows.rows(); ++i) found->second.emplace_back(rows.int64(i, 0), rows.boolean(i, 1));
      }
      webhooks_of.push_back(&found->second);
    }

    std::vector<Params> event_rows;
    event_rows.reserve(events.size());
    for (const auto& e : events) event_rows.push_back(event_params(e));
    auto event_seqs = event_rows.empty() ? decltype(c.pipeline(kAddEvent, event_rows)){}
                                         : c.pipeline(kAddEvent, event_rows);

    std::vector<std::string> ids;
    std::vector<std::int64_t> event_seq, webhook_seq, next_at, created_at;
    std::vector<bool> hand_over;
    std::vector<std::size_t> event_of;  // index into events, per delivery
    std::size_t handed_count = 0, handed_bytes = 0;
    std::vector<PublishResult> results;
    results.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      const EventRecord& e = events[i];
      for (auto [webhook, claims_only] : *webhooks_of[i]) {
        bool hand = leased && !claims_only && handed_count < room.deliveries && handed_bytes + e.body.size() <= room.bytes &&
                    e.first_attempt_at <= e.created_at;
        if (hand) {
          ++handed_count;
          handed_bytes += e.body.size();
        }
        ids.push_back(uuid_v7());
        event_seq.push_back(event_seqs[i].int64(0, 0));
        webhook_seq.push_back(webhook);
        // Handed over: leased by this node at once (next_at is then the lease's expiry).
        next_at.push_back(hand ? holder_.expiry(e.created_at) : e.first_attempt_at);
        created_at.push_back(e.created_at);
        hand_over.push_back(hand);
        event_of.push_back(i);
      }
      results.push_back({e.id, static_cast<std::int64_t>(webhooks_of[i]->size())});
    }

    std::vector<DueDelivery> handed;
    if (!ids.empty()) {
      auto added = c.exec(kAddDeliveries, Params().text_array(ids).int_array(event_seq).int_array(webhook_seq)
                                              .int_array(next_at).int_array(created_at).add(bool_array(hand_over))
                                              .add(holder_.node));
      StateCounts counts;
      counts.add(DeliveryState::pending, static_cast<std::int64_t>(ids.size()));
      save_counts(c, counts);
      if (added.rows() > 0) {
        std::map<std::string, std::int64_t> seq_of;
        for (int r = 0; r < added.rows(); ++r) seq_of[added.text(r, 0)] = added.int64(r, 1);
        std::vector<std::int64_t> handed_webhooks;
        for (std::size_t k = 0; k < ids.size(); ++k) {
          if (hand_over[k]) handed_webhooks.push_back(webhook_seq[k]);
        }
        auto targets = targets_in(c, handed_webhooks, events[event_of.front()].created_at);
        std::vector<std::int64_t> unsendable;  // its webhook went meanwhile: a claim cancels it
        std::vector<std::shared_ptr<const std::string>> bodies(events.size());
        std::vector<std::shared_ptr<const TraceContext>> traces(events.size());
        for (std::size_t k = 0; k < ids.size(); ++k) {
          if (!hand_over[k]) continue;
          std::int64_t seq = seq_of.at(ids[k]);
          const auto& target = targets[webhook_seq[k]];
          if (!target) {
            unsendable.push_back(seq);
            continue;
          }
          const EventRecord& e = events[event_of[k]];
          auto& body = bodies[event_of[k]];
          if (!body) body = std::make_shared<const std::string>(e.body);
          auto& trace = traces[event_of[k]];
          if (!trace && e.trace) trace = std::make_shared<const TraceContext>(*e.trace);
          DueDelivery d;
          d.seq = seq;
          d.id = ids[k];
          d.webhook_seq = webhook_seq[k];
          d.target = target;
          d.body = body;
          d.trace = trace;
          d.event_created_at = e.created_at;
          handed.push_back(std::move(d));
        }
        if (!unsendable.empty()) {
          c.exec("UPDATE deliveries SET lease_owner = NULL, next_at = $1 WHERE seq = ANY($2::bigint[])",
                 Params().add(events.front().created_at).int_array(unsendable));
        }
      }
    }
    results = batch.finish(keys, std::move(results));
    return std::make_pair(std::move(results), std::move(handed));
  });
  if (leased) {
    for (auto& d : handed) leased->push_back(std::move(d));
  }
  return results;
}

std::int64_t PgStore::release_leases(std::int64_t now) {
  return transact(dispatch_pool_, [&](Connection& c) {
    return c.exec(pg::numbered(lease_sql::kRelease), Params().add(now).add(holder_.node)).affected();
  });
}

namespace {
// The seqs a dispatcher holds, as lease_sql's statements take them ($3).
constexpr const char* kHeld = "SELECT unnest($3::bigint[])";
}  // namespace

LeaseUpkeep PgStore::renew_leases(std::int64_t now, const std::vector<std::int64_t>& held, bool take_back) {
  return transact(dispatch_pool_, [&](Connection& c) {
    LeaseUpkeep done;
    if (!held.empty()) {
      done.renewed = c.exec(pg::numbered(lease_sql::renew_held(kHeld)),
                            Params().add(holder_.expiry(now)).add(holder_.node).int_array(held))
                         .affected();
    }
    if (take_back) {
      done.taken_back = c.exec(pg::numbered(lease_sql::take_back_unheld(kHeld)),
                               Params().add(now).add(holder_.node).int_array(held))
                            .affected();
    }
    return done;
  });
}

std::vector<DueDelivery> PgStore::claim_due(std::int64_t now, std::size_t limit,
                                            const std::vector<std::int64_t>& skip_webhooks, std::size_t max_bytes) {
  return transact(dispatch_pool_, [&](Connection& c) {
    // SKIP LOCKED: rows another node's claim (or any writer) holds right now are left to it
    // instead of waiting for it; what it does not take is due again for the next claim.
    // Due includes leases whose holder stopped renewing (lease.hpp), never this node's own.
    // Sizes first, bodies after: the byte budget cuts the batch before any body travels, and
    // an event's body travels once however many of its deliveries were claimed.
    auto rows = c.exec(
        "SELECT d.seq, d.id, d.attempts, d.event_seq, octet_length(e.body), d.webhook_seq, e.created_at, "
        "       coalesce(d.lease_owner, ''), "
        "       (SELECT w.ordered OR w.rate_limit IS NOT NULL FROM webhooks w WHERE w.seq = d.webhook_seq) "
        "FROM deliveries d JOIN events e ON e.seq = d.event_seq "
        "WHERE d.state = 'pending' AND d.next_at <= $1 "
        "AND (d.lease_owner IS NULL OR d.lease_owner <> $4) "
        "AND NOT (d.webhook_seq = ANY($2::bigint[])) "
        "AND (d.webhook_seq NOT IN (" + std::string(store_sql::kOrderedWebhooks) + ") OR " +
            pg::numbered(store_sql::kOrderedTurn) + ") "
        "ORDER BY d.next_at, d.seq LIMIT $3 "
        "FOR UPDATE OF d SKIP LOCKED",
        Params().add(now).int_array(skip_webhooks).add(static_cast<std::int64_t>(limit)).add(holder_.node));
    std::vector<DueDelivery> found;
    std::vector<std::int64_t> webhooks, event_of, events, controlled;
    std::size_t claimed_bytes = 0;
    for (int i = 0; i < rows.rows(); ++i) {
      auto size = static_cast<std::size_t>(rows.int64(i, 4));
      if (!found.empty() && claimed_bytes + size > max_bytes) break;
      claimed_bytes += size;
      DueDelivery d;
      d.seq = rows.int64(i, 0);
      d.id = rows.text(i, 1);
      d.attempts_made = static_cast<int>(rows.int64(i, 2));
      event_of.push_back(rows.int64(i, 3));
      d.webhook_seq = rows.int64(i, 5);
      d.event_created_at = rows.int64(i, 6);
      d.taken_from = rows.text(i, 7);
      webhooks.push_back(d.webhook_seq);
      if (rows.boolean(i, 8)) controlled.push_back(d.webhook_seq);
      found.push_back(std::move(d));
    }
    if (found.empty()) return found;
    if (!controlled.empty()) {
      keep_controlled(c, now, controlled, found, event_of);
      if (found.empty()) return found;
    }
    events = event_of;
    std::sort(events.begin(), events.end());
    events.erase(std::unique(events.begin(), events.end()), events.end());
    std::map<std::int64_t, std::shared_ptr<const std::string>> bodies;
    std::map<std::int64_t, std::shared_ptr<const TraceContext>> traces;
    auto body_rows = c.exec("SELECT seq, body, traceparent, tracestate FROM events WHERE seq = ANY($1::bigint[])",
                            Params().int_array(events));
    for (int i = 0; i < body_rows.rows(); ++i) {
      std::int64_t seq = body_rows.int64(i, 0);
      bodies[seq] = std::make_shared<const std::string>(body_rows.bytes(i, 1));
      if (!body_rows.is_null(i, 2)) {
        traces[seq] = std::make_shared<const TraceContext>(
            TraceContext{body_rows.text(i, 2), body_rows.is_null(i, 3) ? std::string() : body_rows.text(i, 3)});
      }
    }
    for (std::size_t i = 0; i < found.size(); ++i) {
      found[i].body = bodies.at(event_of[i]);
      auto trace = traces.find(event_of[i]);
      if (trace != traces.end()) found[i].trace = trace->second;
    }

    // Each webhook is read once per claim; deliveries of deleted or disabled ones are cancelled.
    std::sort(webhooks.begin(), webhooks.end());
    webhooks.erase(std::unique(webhooks.begin(), webhooks.end()), webhooks.end());
    auto targets = targets_in(c, webhooks, now);
    std::vector<DueDelivery> due;
    std::vector<std::int64_t> take, cancel;
    for (auto& d : found) {
      d.target = targets[d.webhook_seq];
      if (!d.target) {
        cancel.push_back(d.seq);
        continue;
      }
      take.push_back(d.seq);
      due.push_back(std::move(d));
    }
    if (!take.empty()) {
      c.exec("UPDATE deliveries SET lease_owner = $1, next_at = $2 WHERE seq = ANY($3::bigint[])",
             Params().add(holder_.node).add(holder_.expiry(now)).int_array(take));
    }
    if (!cancel.empty()) {
      c.exec("UPDATE deliveries SET state = 'cancelled', next_at = NULL, lease_owner = NULL, updated_at = $1 "
             "WHERE seq = ANY($2::bigint[])",
             Params().add(now).int_array(cancel));
      StateCounts counts;
      counts.move(DeliveryState::pending, DeliveryState::cancelled, static_cast<std::int64_t>(cancel.size()));
      save_counts(c, counts);
    }
    return due;
  });
}

// The claim's rules for ordered and throttled webhooks (`controlled_seqs`, as the candidates'
// select saw them), race-free across nodes: their rows are locked (FOR NO KEY UPDATE SKIP
// LOCKED: a webhook another claim holds right now is left to it; publishes, which only share
// its key, do not conflict) and read afresh, so two claims of one webhook run one after the
// other and the second sees what the first leased. Under the lock an ordered webhook's
// candidate is checked again (kOrderedTurn, a new snapshot) and a throttled webhook's
// deliveries take their send slots (Pace). Drops from `found` (and `event_of`) what must not
// be leased now; those beyond the horizon wait, due when their slot comes near.
void PgStore::keep_controlled(Connection& c, std::int64_t now, std::vector<std::int64_t> controlled_seqs,
                              std::vector<DueDelivery>& found, std::vector<std::int64_t>& event_of) {
  std::sort(controlled_seqs.begin(), controlled_seqs.end());
  controlled_seqs.erase(std::unique(controlled_seqs.begin(), controlled_seqs.end()), controlled_seqs.end());
  auto locked = c.exec("SELECT seq, ordered, rate_limit, rate_next_at FROM webhooks "
                       "WHERE seq = ANY($1::bigint[]) ORDER BY seq FOR NO KEY UPDATE SKIP LOCKED",
                       Params().int_array(controlled_seqs));
  std::set<std::int64_t> unlocked(controlled_seqs.begin(), controlled_seqs.end());
  std::set<std::int64_t> ordered;
  std::map<std::int64_t, Pace> paces;
  for (int i = 0; i < locked.rows(); ++i) {
    std::int64_t seq = locked.int64(i, 0);
    unlocked.erase(seq);
    if (locked.boolean(i, 1)) ordered.insert(seq);
    if (!locked.is_null(i, 2)) {
      std::optional<std::int64_t> next_slot;
      if (!locked.is_null(i, 3)) next_slot = locked.int64(i, 3);
      paces.emplace(seq, Pace(static_cast<int>(locked.int64(i, 2)), next_slot));
    }
  }
  std::set<std::int64_t> turn;  // ordered webhooks' candidates whose turn it is
  std::vector<std::int64_t> ordered_candidates;
  for (const auto& d : found) {
    if (ordered.count(d.webhook_seq)) ordered_candidates.push_back(d.seq);
  }
  if (!ordered_candidates.empty()) {
    auto rows = c.exec("SELECT d.seq FROM deliveries d WHERE d.seq = ANY($2::bigint[]) AND d.state = 'pending' AND " +
                           pg::numbered(store_sql::kOrderedTurn),
                       Params().add(now).int_array(ordered_candidates));
    for (int i = 0; i < rows.rows(); ++i) turn.insert(rows.int64(i, 0));
  }
  std::vector<DueDelivery> kept;
  std::vector<std::int64_t> kept_events, waiting, waiting_due;
  std::map<std::int64_t, std::int64_t> left_waiting;
  for (std::size_t i = 0; i < found.size(); ++i) {
    DueDelivery& d = found[i];
    if (unlocked.count(d.webhook_seq)) continue;  // another claim holds the webhook: next time
    if (ordered.count(d.webhook_seq) && !turn.count(d.seq)) continue;
    if (auto pace = paces.find(d.webhook_seq); pace != paces.end()) {
      std::optional<std::int64_t> slot = pace->second.take(now);
      if (!slot) {
        waiting.push_back(d.seq);
        waiting_due.push_back(pace->second.waiting_due(now, left_waiting[d.webhook_seq]++));
        continue;
      }
      d.not_before = *slot;
    }
    kept.push_back(std::move(d));
    kept_events.push_back(event_of[i]);
  }
  if (!waiting.empty()) {
    c.exec("UPDATE deliveries d SET next_at = u.next_at FROM unnest($1::bigint[], $2::bigint[]) AS u(seq, next_at) "
           "WHERE d.seq = u.seq",
           Params().int_array(waiting).int_array(waiting_due));
  }
  for (const auto& [webhook, pace] : paces) {
    if (pace.taken()) c.exec(pg::numbered(store_sql::kSetNextSlot), Params().add(pace.next_slot()).add(webhook));
  }
  found = std::move(kept);
  event_of = std::move(kept_events);
}

std::optional<std::int64_t> PgStore::next_due_at() {
  return read(dispatch_pool_, [&](Connection& c) -> std::optional<std::int64_t> {
    // As claim_due sees them: this node's own leases are never due to it, nor a delivery
    // whose event is gone (an older build's prune could leave one: see prune).
    // An ordered webhook's waiting deliveries count once it is their turn (a finished attempt
    // asks for a claim), so that they do not make the dispatcher claim in a loop meanwhile.
    auto rows = c.exec("SELECT next_at FROM deliveries d WHERE state = 'pending' "
                       "AND (lease_owner IS NULL OR lease_owner <> $2) "
                       "AND EXISTS (SELECT 1 FROM events e WHERE e.seq = d.event_seq) "
                       "AND (d.webhook_seq NOT IN (" + std::string(store_sql::kOrderedWebhooks) + ") OR " +
                           pg::numbered(store_sql::kOrderedTurn) + ") "
                       "ORDER BY next_at, seq LIMIT 1",
                       Params().add(now_micros()).add(holder_.node));
    if (rows.rows() == 0) return std::nullopt;
    return rows.int64(0, 0);
  });
}

RecordResult PgStore::record_attempts(const std::vector<AttemptRecord>& records, std::int64_t now,
                                      std::int64_t disable_before) {
  if (records.empty()) return {};
  return transact(dispatch_pool_, [&](Connection& c) {
    RecordResult result;
    std::vector<std::int64_t> seqs, started_at, duration_us;
    std::vector<std::optional<std::int64_t>> numbers, next_at, status;
    std::vector<std::string> states, responses;
    std::vector<std::optional<std::string>> errors, details;
    for (const auto& r : records) {
      const Attempt& a = r.attempt;
      seqs.push_back(r.delivery_seq);
      numbers.push_back(a.number);
      states.emplace_back(to_string(r.new_state));
      next_at.push_back(r.next_at);
      started_at.push_back(a.started_at);
      duration_us.push_back(a.duration_us);
      status.push_back(a.status ? std::optional<std::int64_t>(*a.status) : std::nullopt);
      errors.push_back(storable_text(std::string(to_string(a.error))));
      details.push_back(storable_text(a.detail));
      responses.push_back(hex(a.response));
    }
    auto finished = c.exec(kRecord, Params().int_array(seqs).int_array(numbers).text_array(states).int_array(next_at)
                                        .int_array(started_at).int_array(duration_us).int_array(status)
                                        .text_array(errors).text_array(details).text_array(responses).add(now)
                                        .add(holder_.node));
    std::set<std::int64_t> held;
    for (int i = 0; i < finished.rows(); ++i) held.insert(finished.int64(i, 0));
    std::set<std::int64_t> recorded;  // by an earlier call whose COMMIT lost its answer
    if (held.size() < records.size()) {
      std::vector<std::int64_t> missed_seqs, missed_numbers, missed_starts;
      for (const auto& r : records) {
        if (held.count(r.delivery_seq)) continue;
        missed_seqs.push_back(r.delivery_seq);
        missed_numbers.push_back(r.attempt.number);
        missed_starts.push_back(r.attempt.started_at);
      }
      auto found = c.exec("SELECT a.delivery_seq FROM attempts a "
                          "JOIN unnest($1::bigint[], $2::integer[], $3::bigint[]) AS m(seq, number, started_at) "
                          "ON a.delivery_seq = m.seq AND a.number = m.number AND a.started_at = m.started_at",
                          Params().int_array(missed_seqs).int_array(missed_numbers).int_array(missed_starts));
      for (int i = 0; i < found.rows(); ++i) recorded.insert(found.int64(i, 0));
    }

    FailureStreaks streaks;
    StateCounts counts;
    MinuteRollup rollup;
    auto disable = [&](std::int64_t webhook, const std::string& reason, bool force, std::int64_t failing_before) {
      auto changed = c.exec(pg::numbered(store_sql::kDisableWebhook),
                            Params().add(now).add(reason).add(now).add(webhook).add(force ? 1 : 0).add(failing_before));
      if (changed.affected() == 0) return;
      ++result.disabled;
      cancel_waiting(c, webhook, now, counts);
    };
    for (const AttemptRecord& r : records) {
      if (!held.count(r.delivery_seq)) {
        if (recorded.count(r.delivery_seq)) {
          ++result.already_recorded;
        } else {  // taken over: the new holder records its own attempt
          ++result.lost;
        }
        continue;
      }
      counts.move(DeliveryState::pending, r.new_state);
      rollup.add(r.webhook_seq, r.attempt);
      streaks.add(r.webhook_seq, r.new_state, r.attempt.started_at);
      if (!r.disable_reason.empty()) disable(r.webhook_seq, r.disable_reason, true, 0);
    }
    for (const auto& [webhook, streak] : streaks.by_webhook()) {
      if (streak.succeeded) {
        c.exec(pg::numbered(store_sql::kLastSuccess), Params().add(streak.last_success_at).add(webhook));
      }
      if (!streak.failing_from) {
        c.exec(pg::numbered(store_sql::kStreakEnded), Params().add(webhook));
        continue;
      }
      c.exec(pg::numbered(streak.succeeded ? store_sql::kStreakRestarted : store_sql::kStreakFailed),
             Params().add(*streak.failing_from).add(webhook));
      // Already disabled (410 above) or not failing long enough: nothing happens.
      disable(webhook, kFailingTooLong, false, disable_before);
    }
    add_attempt_minutes(c, rollup);
    save_counts(c, counts);
    return result;
  });
}

}  // namespace brandhooks
