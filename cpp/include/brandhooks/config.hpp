#pragma once
// The one configuration of the service. Python mirrors it field by field (brandhooks.Config)
// and `brandhooks serve` has one flag and one BRANDHOOKS_<NAME> variable per field.
#include <cstdint>
#include <string>
#include <string_view>

namespace brandhooks {

// The longest duration a setting may hold (3650 days, in microseconds): far beyond any sane
// schedule, and far from where microsecond arithmetic overflows 64 bits.
inline constexpr std::int64_t kMaxDuration = 3650LL * 86'400'000'000;

// A duration as the settings write it: "250ms", "5s", "5m", "2h", "1d", or a bare number of
// seconds ("1.5"), in microseconds. Throws ValidationError, also above kMaxDuration.
std::int64_t parse_duration(std::string_view text);

struct Config {
  // --- storage --------------------------------------------------------------------------
  // SQLite database file (created when missing). ":memory:" gives a private in-memory store.
  // A postgresql:// (or postgres://) URL selects PostgreSQL instead: any number of nodes may
  // share that database (docs/scaling.md).
  std::string db = "brandhooks.db";
  // An existing empty (0-byte) `db` file is refused (it is more likely a lost or truncated
  // database than a new one); set this to make a new database in it. A missing file is
  // always created.
  bool init_db = false;
  // SQLite `synchronous` in WAL mode: "normal" survives a crash of the process (kill -9),
  // "full" also survives a power loss at the cost of an fsync per commit.
  std::string synchronous = "normal";
  // How long a writer waits for another process holding the database lock (on PostgreSQL:
  // lock_timeout, and the time allowed to connect, rounded up to seconds).
  int busy_timeout_ms = 5000;
  // PostgreSQL: connections per node for API calls (a call beyond them waits for a free one),
  // and the dispatcher's own for its claims, outcomes, lease renewals and pruning, which no API
  // call can take. A node opens them as needed, up to the sum (docs/scaling.md, "Sizing").
  int api_connections = 8;
  int dispatcher_connections = 2;

  // --- delivery -------------------------------------------------------------------------
  // Run the dispatcher (its own threads) inside this Hub. `brandhooks serve` turns it on.
  bool deliver = false;
  // This node's name on the leases it holds; every node sharing a database needs its own.
  // Empty: "<host name>:<pid>:<random>", new at every start (the Hub fills it in).
  std::string node_id = "";
  // A lease its holder stopped renewing (the node died or hangs) is taken over by another node
  // after this many seconds; a live holder renews its leases every third of it.
  std::int64_t lease_timeout_s = 30;
  // Delay before each attempt, comma-separated; a number is seconds, or use ms/s/m/h/d.
  // Attempt 1 waits the first entry after publish; after the last one the delivery fails.
  std::string retry_schedule = "0,5s,5m,30m,2h,5h,10h,14h,20h,24h";
  // Each retry delay is multiplied by a random factor in [1 - jitter, 1 + jitter].
  double retry_jitter = 0.2;
  // A webhook failing without a single success for this long is disabled.
  std::int64_t disable_after_s = 5 * 24 * 3600;
  int connect_timeout_ms = 5000;
  // Whole attempt: resolve, connect, TLS, send, read the response.
  int request_timeout_ms = 15000;
  int max_in_flight_per_webhook = 8;
  int max_in_flight = 256;
  // Threads running the HTTP client (the store thread comes on top).
  int delivery_threads = 1;
  // Keep-alive connections to receivers: one idle this long is closed, and at most this many
  // are kept idle in all (the longest idle close first; per origin at most max_in_flight).
  int idle_timeout_ms = 30000;
  int max_idle_connections = 256;
  // DNS servers for webhook host names, "host[:port],..." (e.g. "127.0.0.1:5353");
  // empty: the system's (/etc/resolv.conf). /etc/hosts is read first either way.
  std::string dns_servers = "";
  // Name of the simple signature header (hex HMAC-SHA256 of the body).
  std::string signature_header = "X-Webhook-Signature";
  // Finished deliveries (and their attempts) older than this are pruned by the dispatcher.
  std::int64_t retention_s = 30 * 24 * 3600;
  // How often the dispatcher prunes.
  std::int64_t prune_interval_s = 3600;

  // --- network safety -------------------------------------------------------------------
  // Deliver to loopback/private/link-local/... addresses too (local use and tests only).
  bool allow_private = false;
  // Comma-separated CIDRs that are allowed although private, e.g. "10.1.0.0/16,127.0.0.1/32".
  std::string allow_cidrs = "";
  // A PEM file of extra CA certificates to trust, besides the system store.
  std::string ca_file = "";

  // --- the API ---------------------------------------------------------------------------
  // The server's address as browsers reach it, e.g. "https://hooks.example.com" behind a
  // proxy: portal links (Hub::create_portal_link) start with it. An absolute http(s) URL
  // without query, fragment or credentials; empty: the address each request was sent to.
  std::string public_url = "";

  // --- log ------------------------------------------------------------------------------
  // The dispatcher's lines on stderr (logfmt: one per decided attempt) from this level up:
  // "debug", "info" (every attempt), "warning" (deliveries failed for good), "error", "off".
  // Quiet by default for programs embedding a Hub; `brandhooks serve` uses "info".
  std::string log_level = "warning";
  // How each line looks: "logfmt" (key=value ...) or "json" (one object per line, the same
  // fields, for log pipelines). `brandhooks serve` writes its own lines the same way.
  std::string log_format = "logfmt";
};

// Whether Config::db names PostgreSQL: a postgresql:// or postgres:// URL; anything else is a
// SQLite file. The one test of it (the Hub opens the store by it; Python describes `db` by it).
bool is_postgres_url(std::string_view db);

}  // namespace brandhooks
