#include "store_common.hpp"

#include <nlohmann/json.hpp>
#include <string_view>

#include "brandhooks/errors.hpp"

namespace brandhooks {

std::vector<std::string> strings_from_json(const std::string& json) {
  return nlohmann::json::parse(json).get<std::vector<std::string>>();
}

Headers headers_from_json(const std::string& json) { return nlohmann::json::parse(json).get<Headers>(); }

std::string results_json(const std::vector<PublishResult>& results, std::size_t first, std::size_t count) {
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = first; i < first + count; ++i) out.push_back({results[i].event_id, results[i].deliveries});
  return out.dump();
}

std::vector<PublishResult> results_from_json(const std::string& json) {
  std::vector<PublishResult> out;
  for (const auto& r : nlohmann::json::parse(json)) out.push_back({r.at(0).get<std::string>(), r.at(1).get<std::int64_t>()});
  return out;
}

std::string header_lines_from_json(const std::string& json) {
  std::string lines;
  for (const auto& [name, value] : headers_from_json(json)) lines.append(name).append(": ").append(value).append("\r\n");
  return lines;
}

DeliveryState stored_delivery_state(const std::string& name) {
  if (auto state = delivery_state_from(name)) return *state;
  throw StorageError("database holds an unknown delivery state '" + name + "'");
}

DeliveryStats delivery_stats_of(std::int64_t since, std::int64_t until, std::vector<MinuteStats> minutes,
                                const std::vector<std::pair<std::int64_t, WebhookStats>>& webhooks,
                                const std::map<std::int64_t, LatencyHistogram>& latency) {
  DeliveryStats stats;
  stats.since = since;
  stats.until = until;
  stats.minutes = std::move(minutes);
  for (const auto& [seq, w] : webhooks) {
    WebhookStats& out = stats.webhooks.emplace_back(w);
    if (auto found = latency.find(seq); found != latency.end()) {
      out.p50_ms = found->second.percentile_ms(0.50);
      out.p99_ms = found->second.percentile_ms(0.99);
    }
  }
  return stats;
}

const std::vector<MovedTable>& moved_tables() {
  using enum ColumnType;
  static const std::vector<MovedTable> tables = {
      {"brands", "brands", {{"id", text}, {"created_at", integer}, {"updated_at", integer}}},
      {"brand parents", "brands", {{"id", text}, {"parent", text}}, 1, "parent IS NOT NULL", true},
      {"webhooks",
       "webhooks",
       {{"seq", integer}, {"id", text}, {"brand", text}, {"topic", text}, {"url", text}, {"key", text},
        {"tags", json}, {"created_at", integer}, {"updated_at", integer}, {"deleted_at", integer},
        {"disabled_at", integer}, {"disabled_reason", text}, {"failing_since", integer},
        // SQLite's 0/1; PostgreSQL reads "0"/"1" into its boolean column.
        {"ordered", integer}, {"rate_limit", integer}, {"headers", json}, {"last_success_at", integer}}},
      {"previous keys",
       "webhook_keys",
       {{"id", integer, "rowid"}, {"webhook_seq", integer}, {"key", text}, {"expires_at", integer}}},
      {"tokens",
       "api_tokens",
       {{"id", text}, {"hash", bytes}, {"brand", text}, {"label", text}, {"created_at", integer},
        {"revoked_at", integer}, {"expires_at", integer}}},
      {"events",
       "events",
       {{"seq", integer}, {"id", text}, {"brand", text}, {"topic", text}, {"event", text}, {"body", bytes},
        {"created_at", integer}, {"tags", json}, {"traceparent", text}, {"tracestate", text}}},
      {"deliveries",
       "deliveries",
       {{"seq", integer}, {"id", text}, {"event_seq", integer}, {"webhook_seq", integer}, {"state", text},
        {"attempts", integer}, {"next_at", integer}, {"lease_owner", text}, {"created_at", integer},
        {"updated_at", integer}}},
      {"attempts",
       "attempts",
       {{"delivery_seq", integer}, {"number", integer}, {"started_at", integer}, {"duration_us", integer},
        {"status", integer}, {"error", text}, {"detail", text}, {"response", bytes}},
       2},
      {"publish keys",
       "idempotency_keys",
       {{"brand", text}, {"key", text}, {"request_hash", bytes}, {"results", text}, {"created_at", integer}},
       2},
      // PostgreSQL's shard column is left out: the moved rows land in shard 0 (its default).
      {"attempt stats",
       "attempt_minutes",
       {{"webhook_seq", integer}, {"minute", integer}, {"succeeded", integer}, {"failed", integer},
        {"errors", integer}, {"latency", counts}},
       2},
  };
  return tables;
}

namespace {

std::string_view column_name(const MovedColumn& c, Dialect dialect) {
  return dialect == Dialect::sqlite && c.sqlite_name ? c.sqlite_name : c.name;
}

// "a, b, c" of the first `n` columns (all when n is npos).
std::string column_list(const MovedTable& t, Dialect dialect, std::size_t n = std::string::npos) {
  std::string out;
  for (std::size_t i = 0; i < t.columns.size() && i < n; ++i) {
    if (i) out += ", ";
    out += column_name(t.columns[i], dialect);
  }
  return out;
}

std::string parameters(std::size_t from, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out += ", ";
    out += "?" + std::to_string(from + i);
  }
  return out;
}

// What an export selects: the columns, with PostgreSQL's integer[] as JSON text.
std::string select_list(const MovedTable& t, Dialect dialect) {
  std::string out;
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    if (i) out += ", ";
    std::string name(column_name(t.columns[i], dialect));
    out += t.columns[i].type == ColumnType::counts && dialect == Dialect::postgres
               ? "array_to_json(" + name + ")::text"
               : name;
  }
  return out;
}

// The import's value of column i from parameter ?(i + 1): JSON text back to integer[].
std::string value_of_parameter(const MovedTable& t, std::size_t i, Dialect dialect) {
  std::string p = "?" + std::to_string(i + 1);
  return t.columns[i].type == ColumnType::counts && dialect == Dialect::postgres
             ? "translate(" + p + ", '[]', '{}')::integer[]"
             : p;
}

}  // namespace

std::string export_sql(const MovedTable& t, bool first_batch, Dialect dialect) {
  std::string keys = column_list(t, dialect, t.keys);
  std::string sql = "SELECT " + select_list(t, dialect) + " FROM " + t.table;
  std::vector<std::string> conditions;
  if (*t.where) conditions.emplace_back(t.where);
  // A row value compares column by column: (a, b) > (x, y) is a > x OR (a = x AND b > y).
  if (!first_batch) conditions.push_back("(" + keys + ") > (" + parameters(1, t.keys) + ")");
  for (std::size_t i = 0; i < conditions.size(); ++i) sql += (i ? " AND " : " WHERE ") + conditions[i];
  sql += " ORDER BY " + keys + " LIMIT ?" + std::to_string(first_batch ? 1 : t.keys + 1);
  return sql;
}

std::string import_sql(const MovedTable& t, Dialect dialect) {
  if (t.update) {
    std::string sql = std::string("UPDATE ") + t.table + " SET ";
    for (std::size_t i = t.keys; i < t.columns.size(); ++i) {
      if (i > t.keys) sql += ", ";
      sql += std::string(column_name(t.columns[i], dialect)) + " = " + value_of_parameter(t, i, dialect);
    }
    sql += " WHERE ";
    for (std::size_t i = 0; i < t.keys; ++i) {
      if (i) sql += " AND ";
      sql += std::string(column_name(t.columns[i], dialect)) + " = ?" + std::to_string(i + 1);
    }
    return sql;
  }
  // PostgreSQL generates identity columns (seq) unless told to keep the values given.
  std::string values;
  for (std::size_t i = 0; i < t.columns.size(); ++i) values += (i ? ", " : "") + value_of_parameter(t, i, dialect);
  return std::string("INSERT INTO ") + t.table + " (" + column_list(t, dialect) + ")" +
         (dialect == Dialect::postgres ? " OVERRIDING SYSTEM VALUE" : "") + " VALUES (" + values + ")";
}

std::string count_sql(const MovedTable& t) {
  std::string sql = std::string("SELECT count(*) FROM ") + t.table;
  if (*t.where) sql += std::string(" WHERE ") + t.where;
  return sql;
}

std::size_t moved_bytes(const MovedRow& row) {
  std::size_t n = 0;
  for (const auto& value : row) {
    if (const auto* s = std::get_if<std::string>(&value)) n += s->size();
  }
  return n;
}

MovedRow key_of(const MovedTable& t, const MovedRow& row) {
  return MovedRow(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(t.keys));
}

}  // namespace brandhooks
