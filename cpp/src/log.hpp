#pragma once
// The core's log: one line per event on stderr, logfmt (key=value ...) or JSON (one object per
// line, for log pipelines), with the same fields in the same order either way. Each line goes
// out in a single write(2), so lines from concurrent threads never interleave. The core never
// calls Python, so `brandhooks serve` shows these lines next to its own (Config::log_level,
// Config::log_format).
#include <cstdint>
#include <string>
#include <string_view>

namespace brandhooks {

struct DueDelivery;
struct AttemptRecord;

enum class LogLevel { debug, info, warning, error, off };
enum class LogFormat { logfmt, json };

// "debug", "info", "warning", "error" or "off"; throws ValidationError otherwise.
LogLevel parse_log_level(std::string_view name);
// "logfmt" or "json"; throws ValidationError otherwise.
LogFormat parse_log_format(std::string_view name);

// Builds one line: `time=<ISO 8601 UTC> level=<level> msg=<msg>` and then the fields added, or
// the JSON object {"time":...,"level":...,"msg":...,...} with the same keys in the same order.
// Keys are the code's own identifiers (never escaped); values are any bytes.
class LogLine {
 public:
  LogLine(LogFormat format, LogLevel level, std::string_view msg);
  LogLine& add(std::string_view key, std::string_view value);  // logfmt: quoted when it needs to be
  LogLine& add(std::string_view key, std::int64_t value);      // JSON: a number
  LogLine& add_time(std::string_view key, std::int64_t unix_micros);
  // The whole line with its newline.
  const std::string& text();

 private:
  void add_key(std::string_view key);

  LogFormat format_;
  bool finished_ = false;
  std::string text_;
};

// Writes a whole line to stderr with one write(2).
void write_log_line(std::string_view line);

// The dispatcher's line for a decided attempt: delivered (info), retry scheduled (info), or
// failed for good (warning), with the trace id of a traced event. Never secrets: no keys,
// signatures, URLs or response bodies.
LogLevel attempt_log_level(const AttemptRecord& record);
std::string attempt_log_line(LogFormat format, const DueDelivery& delivery, const AttemptRecord& record);

}  // namespace brandhooks
