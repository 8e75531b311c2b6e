// brandhooks.Config: the C++ struct, field by field. Config.FIELDS lists each field with its
// default and help, so the CLI derives one flag and one BRANDHOOKS_<NAME> variable per field.
#include <pybind11/stl.h>

#include "brandhooks/config.hpp"
#include "bindings.hpp"

namespace py = pybind11;

namespace brandhooks::bindings {

namespace {
template <class T>
void field(py::class_<Config>& cls, py::list& fields, const char* name, T Config::*member,
           const char* help) {
  cls.def_readwrite(name, member, help);
  fields.append(py::make_tuple(name, Config{}.*member, help));
}
}  // namespace

void bind_config(py::module_& m) {
  py::class_<Config> cls(m, "Config", "Configuration of a Hub (one field per setting).");
  py::list fields;
  field(cls, fields, "db", &Config::db, "SQLite database file (\":memory:\" for a private one)");
  field(cls, fields, "init_db", &Config::init_db,
        "make a new database in an existing empty (0-byte) db file instead of refusing it");
  field(cls, fields, "synchronous", &Config::synchronous,
        "SQLite durability: normal (survives kill -9) or full (also survives power loss)");
  field(cls, fields, "busy_timeout_ms", &Config::busy_timeout_ms,
        "how long a writer waits for another process's database lock, in ms");
  field(cls, fields, "api_connections", &Config::api_connections,
        "PostgreSQL: connections per node for API calls (more calls wait for a free one)");
  field(cls, fields, "dispatcher_connections", &Config::dispatcher_connections,
        "PostgreSQL: the dispatcher's own connections per node (claims, outcomes, lease renewals, pruning), "
        "which no API call can take");
  field(cls, fields, "deliver", &Config::deliver, "run the delivery dispatcher in this process");
  field(cls, fields, "node_id", &Config::node_id,
        "this node's name on its delivery leases, unique per node sharing a database "
        "(empty: host:pid:random, new at every start)");
  field(cls, fields, "lease_timeout_s", &Config::lease_timeout_s,
        "seconds after which another node takes over the leases of a node that stopped renewing them");
  field(cls, fields, "retry_schedule", &Config::retry_schedule,
        "delay before each attempt, comma-separated (seconds, or with ms/s/m/h/d)");
  field(cls, fields, "retry_jitter", &Config::retry_jitter, "random spread of retry delays (0.2 = +-20%)");
  field(cls, fields, "disable_after_s", &Config::disable_after_s,
        "disable a webhook failing without any success for this many seconds");
  field(cls, fields, "connect_timeout_ms", &Config::connect_timeout_ms, "connect timeout per attempt, in ms");
  field(cls, fields, "request_timeout_ms", &Config::request_timeout_ms, "total timeout per attempt, in ms");
  field(cls, fields, "max_in_flight_per_webhook", &Config::max_in_flight_per_webhook,
        "concurrent attempts per webhook");
  field(cls, fields, "max_in_flight", &Config::max_in_flight, "concurrent attempts in all");
  field(cls, fields, "delivery_threads", &Config::delivery_threads, "threads of the HTTP client");
  field(cls, fields, "idle_timeout_ms", &Config::idle_timeout_ms,
        "close keep-alive connections to receivers idle this long, in ms");
  field(cls, fields, "max_idle_connections", &Config::max_idle_connections,
        "idle keep-alive connections kept in all (the longest idle close first)");
  field(cls, fields, "dns_servers", &Config::dns_servers,
        "DNS servers for webhook hosts, host[:port],... (empty: /etc/resolv.conf)");
  field(cls, fields, "signature_header", &Config::signature_header,
        "header carrying the hex HMAC-SHA256 of the body");
  field(cls, fields, "retention_s", &Config::retention_s,
        "prune finished deliveries and their attempts older than this many seconds");
  field(cls, fields, "prune_interval_s", &Config::prune_interval_s, "how often the dispatcher prunes, in seconds");
  field(cls, fields, "allow_private", &Config::allow_private,
        "deliver to loopback/private/link-local addresses too (local use, tests)");
  field(cls, fields, "allow_cidrs", &Config::allow_cidrs,
        "comma-separated networks allowed although private, e.g. 10.1.0.0/16");
  field(cls, fields, "ca_file", &Config::ca_file, "PEM file of extra CA certificates to trust");
  field(cls, fields, "public_url", &Config::public_url,
        "the server's address as browsers reach it (e.g. https://hooks.example.com behind a proxy): "
        "the base of portal links; empty: the address each request came to");
  field(cls, fields, "log_level", &Config::log_level,
        "delivery log on stderr from this level: debug, info (every attempt), warning, error, off");
  field(cls, fields, "log_format", &Config::log_format,
        "how log lines look: logfmt (key=value) or json (one object per line, the same fields)");
  cls.attr("FIELDS") = py::tuple(fields);
  m.def("is_postgres_url", &is_postgres_url, py::arg("db"),
        "Whether a db value names PostgreSQL (a postgresql:// or postgres:// URL); else a SQLite file.");
  m.def("parse_duration", &parse_duration, py::arg("text"),
        "Microseconds in a duration such as 250ms, 5s, 5m, 2h, 1d or 1.5 (seconds).");

  cls.def(py::init([](const py::kwargs& kwargs) {
            Config config;
            py::object self = py::cast(&config, py::return_value_policy::reference);
            for (auto [key, value] : kwargs) {
              std::string name = py::cast<std::string>(key);
              if (!py::hasattr(py::type::of(self), name.c_str()) || name == "FIELDS") {
                throw py::type_error("Config has no field '" + name + "'");
              }
              self.attr(key) = value;
            }
            return config;
          }),
          "Config(**fields): unspecified fields keep their defaults.");
  cls.def("__repr__", [fields](const Config& config) {
    py::object self = py::cast(config);
    std::string out = "Config(";
    for (std::size_t i = 0; i < fields.size(); ++i) {
      std::string name = py::cast<std::string>(fields[i].cast<py::tuple>()[0]);
      out += (i ? ", " : "") + name + "=" + py::repr(self.attr(name.c_str())).cast<std::string>();
    }
    return out + ")";
  });
}

}  // namespace brandhooks::bindings
