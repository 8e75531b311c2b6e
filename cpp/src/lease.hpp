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
//
// A COMMIT whose answer was lost may have committed. So the database may give a node leases
// its dispatcher never got (the claim or the publish that took them failed, as far as the node
// could tell), and the node renews only the leases its dispatcher holds in memory and takes
// back its other ones: they become due again, and its next claim (or another node's) takes
// them, each sent once. An outcome batch committed twice is recognised by its attempt rows.
#include <cstdint>
#include <string>
#include <string_view>

namespace brandhooks {

// This node, as its leases name it.
struct LeaseHolder {
  std::string node;             // Config::node_id
  std::int64_t timeout_us = 0;  // Config::lease_timeout_s
  // When a lease taken or renewed at `now` expires.
  std::int64_t expiry(std::int64_t now) const { return now + timeout_us; }
};

// "<host name>:<pid>:<8 random hex digits>": the node id when Config::node_id is empty. Unique
// per start: containers often share a host name and all run as pid 1.
std::string default_node_id();

// How often a holder renews its leases: three times per timeout, so that one late or failed
// renewal (a busy database) does not lose them.
inline std::int64_t lease_renew_interval(std::int64_t timeout_us) { return timeout_us / 3; }

// The statements of the rules, the same for every backend (numbered parameters ?N; PostgreSQL
// spells them $N). `next_at` doubles as the expiry, see above.
namespace lease_sql {
// ?1 node, ?2 expiry: takes (or takes over) the lease of delivery ?3.
inline constexpr const char* kTake = "UPDATE deliveries SET lease_owner = ?1, next_at = ?2 WHERE seq = ?3";
// `held`: the backend's subquery giving the seqs the dispatcher holds, from parameter ?3
// (PostgreSQL: an array, SQLite: a JSON array). ?1 the new expiry of node ?2's leases of them.
inline std::string renew_held(std::string_view held) {
  return "UPDATE deliveries SET next_at = ?1 WHERE lease_owner = ?2 AND state = 'pending' AND seq IN (" +
         std::string(held) + ")";
}
// Node ?2's leases of deliveries it does not hold (`held` as above) end: due at ?1.
inline std::string take_back_unheld(std::string_view held) {
  return "UPDATE deliveries SET lease_owner = NULL, next_at = ?1 WHERE lease_owner = ?2 AND state = 'pending' "
         "AND seq NOT IN (" + std::string(held) + ")";
}
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
