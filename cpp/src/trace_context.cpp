#include "trace_context.hpp"

#include <algorithm>
#include <vector>

namespace brandhooks {

namespace {

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

// Optional white space (spaces and tabs) around a value or a list member.
std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> accept_traceparent(std::string_view value) {
  value = trim_ows(value);
  // A comma: two header lines joined (a duplicate traceparent is invalid).
  if (value.size() < 55 || value.find(',') != std::string_view::npos) return std::nullopt;
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  std::string_view version = value.substr(0, 2), trace = value.substr(3, 32), parent = value.substr(36, 16),
                   flags = value.substr(53, 2);
  if (!is_lower_hex(version) || version == "ff") return std::nullopt;
  if (!is_lower_hex(trace) || all_zero(trace) || !is_lower_hex(parent) || all_zero(parent) || !is_lower_hex(flags)) {
    return std::nullopt;
  }
  // Version 00 is exactly 55 characters; a later one may add fields after a '-'.
  if (version == "00" ? value.size() != 55 : value.size() > 55 && value[55] != '-') return std::nullopt;
  std::string out = "00-";
  out.append(trace).append("-").append(parent).append("-").append(flags);
  return out;
}

bool key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/';
}

bool is_lcalpha(char c) { return c >= 'a' && c <= 'z'; }

// simple-key = lcalpha 0*255(keychar); multi-tenant-key = tenant-id "@" system-id, tenant-id =
// (lcalpha / DIGIT) 0*240(keychar), system-id = lcalpha 0*13(keychar).
bool valid_key(std::string_view key) {
  auto at = key.find('@');
  if (at == std::string_view::npos) {
    return !key.empty() && key.size() <= 256 && is_lcalpha(key[0]) && std::all_of(key.begin(), key.end(), key_char);
  }
  std::string_view tenant = key.substr(0, at), system = key.substr(at + 1);
  return !tenant.empty() && tenant.size() <= 241 && (is_lcalpha(tenant[0]) || (tenant[0] >= '0' && tenant[0] <= '9')) &&
         std::all_of(tenant.begin(), tenant.end(), key_char) && !system.empty() && system.size() <= 14 &&
         is_lcalpha(system[0]) && std::all_of(system.begin(), system.end(), key_char);
}

// value = 0*255(chr) nblk-chr: printable ASCII but ',' and '=', not ending in a space.
bool valid_value(std::string_view value) {
  return !value.empty() && value.size() <= 256 && value.back() != ' ' &&
         std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

constexpr std::size_t kMaxMembers = 32;
constexpr std::size_t kLongMember = 128;  // cut first when the whole is too long

std::string join(const std::vector<std::string_view>& members) {
  std::string out;
  for (auto m : members) {
    if (!out.empty()) out += ',';
    out.append(m);
  }
  return out;
}

std::size_t joined_size(const std::vector<std::string_view>& members) {
  std::size_t size = members.empty() ? 0 : members.size() - 1;
  for (auto m : members) size += m.size();
  return size;
}

std::string accept_tracestate(std::string_view value) {
  std::vector<std::string_view> members, keys;
  while (true) {
    auto comma = value.find(',');
    std::string_view member = trim_ows(value.substr(0, comma));
    if (!member.empty()) {
      auto eq = member.find('=');
      if (eq == std::string_view::npos || members.size() == kMaxMembers) return "";
      std::string_view key = member.substr(0, eq);
      if (!valid_key(key) || !valid_value(member.substr(eq + 1))) return "";
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) return "";
      keys.push_back(key);
      members.push_back(member);
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  if (joined_size(members) > kMaxTracestate) {
    std::erase_if(members, [](std::string_view m) { return m.size() > kLongMember; });
    while (joined_size(members) > kMaxTracestate) members.pop_back();
  }
  return join(members);
}

}  // namespace

std::optional<TraceContext> accept_trace_context(std::string_view traceparent, std::string_view tracestate) {
  std::optional<std::string> parent = accept_traceparent(traceparent);
  if (!parent) return std::nullopt;
  return TraceContext{std::move(*parent), accept_tracestate(tracestate)};
}

std::string span_id_hex(std::uint64_t span_id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, span_id >>= 4) out[static_cast<std::size_t>(i)] = kDigits[span_id & 0xf];
  return out;
}

std::string child_traceparent(const TraceContext& c, std::uint64_t span_id) {
  std::string out = c.traceparent;
  out.replace(36, 16, span_id_hex(span_id));
  return out;
}

}  // namespace brandhooks
