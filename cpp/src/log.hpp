#pragma once
// The core's log: one logfmt line (key=value ...) per event on stderr. Each line goes out in
// a single write(2), so lines from concurrent threads never interleave. The core never calls
// Python, so `brandhooks serve` shows these lines next to its own (Config::log_level).
#include <cstdint>
#include <string>
#include <string_view>

namespace brandhooks {

struct DueDelivery;
struct AttemptRecord;

enum class LogLevel { debug, info, warning, error, off };

// "debug", "info", "warning", "error" or "off"; throws ValidationError otherwise.
LogLevel parse_log_level(std::string_view name);

// Builds one line: `time=<ISO 8601 UTC> level=<level> msg=<msg>` and then the fields added.
class LogLine {
 public:
  LogLine(LogLevel level, std::string_view msg);
  LogLine& add(std::string_view key, std::string_view value);  // quoted when it needs to be
  LogLine& add(std::string_view key, std::int64_t value);
  LogLine& add_time(std::string_view key, std::int64_t unix_micros);
  // The line with its newline.
  const std::string& text();

 private:
  std::string text_;
};

// Writes a whole line to stderr with one write(2).
void write_log_line(std::string_view line);

// The dispatcher's line for a decided attempt: delivered (info), retry scheduled (info), or
// failed for good (warning), with the trace id of a traced event. Never secrets: no keys,
// signatures, URLs or response bodies.
LogLevel attempt_log_level(const AttemptRecord& record);
std::string attempt_log_line(const DueDelivery& delivery, const AttemptRecord& record);

}  // namespace brandhooks
