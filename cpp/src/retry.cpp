#include "retry.hpp"

#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

#include "brandhooks/errors.hpp"

namespace brandhooks {

std::int64_t parse_duration(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  std::size_t unit_at = text.find_first_not_of("0123456789.");
  std::string number(text.substr(0, unit_at));
  std::string_view unit = unit_at == std::string_view::npos ? "" : text.substr(unit_at);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1e6;
  else if (unit == "ms") scale = 1e3;
  else if (unit == "m") scale = 60e6;
  else if (unit == "h") scale = 3600e6;
  else if (unit == "d") scale = 86400e6;
  char* end = nullptr;
  double value = number.empty() ? -1 : std::strtod(number.c_str(), &end);
  if (scale == 0 || value < 0 || end != number.c_str() + number.size() || !std::isfinite(value)) {
    throw ValidationError("not a duration: \"" + std::string(text) + "\" (use e.g. 0, 5s, 5m, 2h, 1d)");
  }
  // Checked as a double, before the conversion: a value past int64 would be undefined.
  if (value * scale > static_cast<double>(kMaxDuration)) {
    throw ValidationError("duration too long: \"" + std::string(text) + "\" (at most 3650d)");
  }
  return static_cast<std::int64_t>(std::llround(value * scale));
}

std::optional<std::int64_t> parse_retry_after(std::string_view value, std::int64_t now_us) {
  constexpr std::int64_t kMaxSeconds = kMaxRetryAfter / 1'000'000;
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (!value.empty() && value.find_first_not_of("0123456789") == std::string_view::npos) {
    // Seconds: compared with the cap before scaling (a receiver's number may have any length).
    std::int64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc::result_out_of_range || (ec == std::errc() && seconds > kMaxSeconds)) {
      return kMaxRetryAfter;
    }
    return seconds * 1'000'000;
  }
  std::tm tm{};
  std::string text(value);
  const char* parsed = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (parsed == nullptr || *parsed != '\0') return std::nullopt;
  std::int64_t at_s = static_cast<std::int64_t>(timegm(&tm));
  std::int64_t now_s = now_us / 1'000'000;
  if (at_s <= now_s) return 0;
  if (at_s - now_s > kMaxSeconds) return kMaxRetryAfter;
  return at_s * 1'000'000 - now_us;  // positive: at_s > now_s
}

RetryPolicy::RetryPolicy(std::string_view schedule, double jitter) : jitter_(jitter) {
  if (!(jitter >= 0 && jitter < 1)) throw ValidationError("retry_jitter must be in [0, 1)");
  std::size_t pos = 0;
  while (pos <= schedule.size()) {
    std::size_t comma = schedule.find(',', pos);
    delays_.push_back(parse_duration(schedule.substr(pos, comma - pos)));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
}

std::optional<std::int64_t> RetryPolicy::next_delay(int attempts_made, std::mt19937_64& rng) const {
  if (attempts_made < 0 || static_cast<std::size_t>(attempts_made) >= delays_.size()) return std::nullopt;
  double base = static_cast<double>(delays_[static_cast<std::size_t>(attempts_made)]);
  std::uniform_real_distribution<double> factor(1 - jitter_, 1 + jitter_);
  return static_cast<std::int64_t>(base * factor(rng));
}

}  // namespace brandhooks
