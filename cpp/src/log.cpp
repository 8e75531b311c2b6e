#include "log.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "brandhooks/errors.hpp"
#include "clock.hpp"
#include "store.hpp"
#include "trace_context.hpp"

namespace brandhooks {

namespace {
constexpr std::string_view kLevelNames[] = {"debug", "info", "warning", "error", "off"};
constexpr std::string_view kFormatNames[] = {"logfmt", "json"};

bool needs_quotes(std::string_view value) {
  if (value.empty()) return true;
  for (unsigned char c : value) {
    if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f) return true;
  }
  return false;
}
}  // namespace

LogLevel parse_log_level(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kLevelNames); ++i) {
    if (name == kLevelNames[i]) return static_cast<LogLevel>(i);
  }
  throw ValidationError("log_level must be one of debug, info, warning, error, off");
}

LogFormat parse_log_format(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kFormatNames); ++i) {
    if (name == kFormatNames[i]) return static_cast<LogFormat>(i);
  }
  throw ValidationError("log_format must be logfmt or json");
}

LogLine::LogLine(LogFormat format, LogLevel level, std::string_view msg) : format_(format) {
  text_.reserve(256);
  if (format_ == LogFormat::json) text_ += '{';
  add_time("time", now_micros());
  add("level", kLevelNames[static_cast<int>(level)]);
  add("msg", msg);
}

void LogLine::add_key(std::string_view key) {
  if (format_ == LogFormat::json) {
    if (text_.size() > 1) text_ += ',';
    text_ += '"';
    text_ += key;
    text_ += "\":";
  } else {
    if (!text_.empty()) text_ += ' ';
    text_ += key;
    text_ += '=';
  }
}

LogLine& LogLine::add(std::string_view key, std::string_view value) {
  add_key(key);
  if (format_ == LogFormat::json) {
    // Bytes that are not UTF-8 (a receiver's text in an error detail) become U+FFFD.
    text_ += nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return *this;
  }
  if (!needs_quotes(value)) {
    text_ += value;
    return *this;
  }
  text_ += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') {
      text_ += '\\';
      text_ += c;
    } else if (c == '\n') {
      text_ += "\\n";
    } else if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) {
      text_ += ' ';
    } else {
      text_ += c;
    }
  }
  text_ += '"';
  return *this;
}

LogLine& LogLine::add(std::string_view key, std::int64_t value) {
  add_key(key);
  text_ += std::to_string(value);  // bare in both formats: a JSON number
  return *this;
}

LogLine& LogLine::add_time(std::string_view key, std::int64_t unix_micros) {
  std::time_t seconds = static_cast<std::time_t>(unix_micros / 1'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(unix_micros % 1'000'000 / 1000));
  return add(key, buffer);
}

const std::string& LogLine::text() {
  if (!finished_) {
    text_ += format_ == LogFormat::json ? "}\n" : "\n";
    finished_ = true;
  }
  return text_;
}

void write_log_line(std::string_view line) {
  while (!line.empty()) {
    ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to log: carry on without
    line.remove_prefix(static_cast<std::size_t>(n));
  }
}

LogLevel attempt_log_level(const AttemptRecord& r) {
  return r.new_state == DeliveryState::failed ? LogLevel::warning : LogLevel::info;
}

std::string attempt_log_line(LogFormat format, const DueDelivery& d, const AttemptRecord& r) {
  const Attempt& a = r.attempt;
  const char* msg = r.new_state == DeliveryState::delivered ? "delivered"
                    : r.new_state == DeliveryState::pending ? "attempt failed, retry scheduled"
                    : r.disable_reason.empty() ? "delivery failed for good"
                                               : "delivery failed, webhook disabled";
  LogLine line(format, attempt_log_level(r), msg);
  line.add("delivery", d.id);
  if (d.target) line.add("webhook", d.target->id).add("brand", d.target->brand);
  line.add("attempt", a.number).add("state", to_string(r.new_state));
  if (a.status) line.add("status", *a.status);
  if (a.error != AttemptError::none) line.add("error", to_string(a.error)).add("detail", a.detail);
  line.add("duration_ms", a.duration_us / 1000);
  if (r.next_at) line.add_time("next_attempt_at", *r.next_at);
  if (!r.disable_reason.empty()) line.add("disabled", r.disable_reason);
  if (d.trace) line.add("trace_id", trace_id_of(*d.trace));  // the publisher's trace
  return line.text();
}

}  // namespace brandhooks
