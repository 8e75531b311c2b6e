#pragma once
// Owned leases: the rules every Store backend follows, written once.
//
// A pending delivery is free (lease_owner NULL) or leased by one node (lease_owner = its node
// id). While leased, the delivery's next_at is the lease's expiry instead of its due time, and
// the holder pushes it forward (renews) while it works. So one rule says what a claim may take:
// a pending delivery whose next_at has passed, be it free and due, or leased by a node that
// stopped renewing (a take-over). A node releases only its own leases, and an attempt's outcome
// is recorded only while the node still holds the lease for that attempt (same owner, same
// attempt count): the outcome of a lease lost to a take-over is dropped, never counted twice.
#include <cstdint>
#include <string>

namespace brandhooks {

// This node, as its leases name it.
struct LeaseHolder {
  std::string node;             // Config::node_id
  std::int64_t timeout_us = 0;  // Config::lease_timeout_s
  // When a lease taken or renewed at `now` expires.
  std::int64_t expiry(std::int64_t now) const { return now + timeout_us; }
};

// "<host name>:<pid>": the node id when Config::node_id is empty.
std::string default_node_id();

// How often a holder renews its leases: three times per timeout, so that one late or failed
// renewal (a busy database) does not lose them.
inline std::int64_t lease_renew_interval(std::int64_t timeout_us) { return timeout_us / 3; }

// The statements of the rules, the same for every backend (numbered parameters ?N; PostgreSQL
// spells them $N). `next_at` doubles as the expiry, see above.
namespace lease_sql {
// ?1 node, ?2 expiry: takes (or takes over) the lease of delivery ?3.
inline constexpr const char* kTake = "UPDATE deliveries SET lease_owner = ?1, next_at = ?2 WHERE seq = ?3";
// ?1 new expiry of every lease node ?2 holds.
inline constexpr const char* kRenew =
    "UPDATE deliveries SET next_at = ?1 WHERE lease_owner = ?2 AND state = 'pending'";
// Node ?2's leases end: their deliveries are due at ?1.
inline constexpr const char* kRelease =
    "UPDATE deliveries SET lease_owner = NULL, next_at = ?1 WHERE lease_owner = ?2 AND state = 'pending'";
// Records the outcome of attempt ?1 (the new attempt count) of delivery ?5 only while node ?6
// holds its lease for that attempt (attempts = ?1 - 1); no row changed: the lease was lost.
inline constexpr const char* kFinish =
    "UPDATE deliveries SET attempts = ?1, state = ?2, next_at = ?3, lease_owner = NULL, updated_at = ?4 "
    "WHERE seq = ?5 AND lease_owner = ?6 AND attempts = ?1 - 1 AND state = 'pending'";
// Not held at ?1 (now): free, or its holder stopped renewing. Cancels and redeliveries may
// change such a delivery; a held one has an attempt under way whose outcome its holder records.
inline constexpr const char* kNotHeld = "(lease_owner IS NULL OR next_at <= ?1)";
}  // namespace lease_sql

}  // namespace brandhooks
