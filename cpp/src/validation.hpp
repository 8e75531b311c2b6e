#pragma once
// Input rules of the REST contract, enforced in the core so C++ users get them too.
// Each function throws ValidationError with a message fit for the API's error envelope.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace brandhooks {

// `text` with ASCII letters lowercased (scheme and host names, header names).
std::string ascii_lower(std::string_view text);

// Characters (Unicode code points) in UTF-8 text: the unit of every length limit, as JSON
// Schema's maxLength counts (bytes that do not continue a sequence).
std::size_t count_chars(std::string_view utf8);

// A UUID in 8-4-4-4-12 hex form, returned lowercase. `what` names the field in messages.
std::string normalize_uuid(std::string_view text, std::string_view what);

// Text that is stored and later written into JSON must be well-formed UTF-8 (no overlong forms,
// no surrogates, nothing past U+10FFFF); otherwise ValidationError "<what> must be UTF-8 text".
void check_utf8(std::string_view text, std::string_view what);

// One of kTopics, exactly (case-sensitive).
void check_topic(std::string_view topic);

// The parts of an absolute http(s) URL that delivery needs.
struct Url {
  std::string scheme;  // "http" or "https" (lowercased)
  std::string host;    // without brackets for IPv6 literals
  unsigned short port = 0;
  std::string target;  // path and query, "/" when empty
  bool has_credentials = false;  // user[:password]@ before the host (never sent)
};

inline constexpr std::size_t kMaxUrlLength = 2048;

// Parses an absolute http/https URL with a host, at most kMaxUrlLength characters of UTF-8.
Url parse_url(std::string_view url);
// parse_url for a url being registered or changed: also refuses credentials (user:pass@),
// which would be stored and shown in plain text and never sent.
Url check_webhook_url(std::string_view url);

// Tags: at most 64, each 1..128 printable characters of UTF-8.
void check_tags(const std::optional<std::vector<std::string>>& tags);
// Tags as stored: a JSON array, or none.
std::optional<std::string> tags_json(const std::optional<std::vector<std::string>>& tags);

}  // namespace brandhooks
