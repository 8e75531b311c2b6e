#pragma once
// Input rules of the REST contract, enforced in the core so C++ users get them too.
// Each function throws ValidationError with a message fit for the API's error envelope.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brandhooks/model.hpp"

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

// An RFC 9110 token (a header name): 1 or more of letters, digits and !#$%&'*+-.^_`|~.
bool is_token(std::string_view text);
// Header names (any case) no one may choose for a webhook's custom headers nor as the
// signature header: those that frame, route or describe the request's body (Host,
// Content-Length, Transfer-Encoding, Connection, Content-Type, ...), hop-by-hop ones (TE,
// Upgrade, Keep-Alive, Proxy-*, ...), headers the client writes itself (User-Agent) and the
// Standard Webhooks signature headers (webhook-*).
bool is_reserved_header(std::string_view name);

inline constexpr std::int64_t kMaxRateLimit = 10'000;
// A webhook's rate limit: none, or 1..kMaxRateLimit deliveries per second.
void check_rate_limit(const std::optional<std::int64_t>& rate_limit);

inline constexpr std::size_t kMaxHeaders = 20;
inline constexpr std::size_t kMaxHeaderBytes = 8192;  // as sent: "name: value\r\n" of all of them
// A webhook's custom headers: at most kMaxHeaders, kMaxHeaderBytes in all; names are tokens,
// unique in any case, neither reserved (is_reserved_header) nor `signature_header`; values are
// visible ASCII, spaces and tabs (no CR, LF or NUL), without leading or trailing whitespace.
void check_headers(const Headers& headers, std::string_view signature_header);
// Headers as stored: a JSON object, or none when there are none.
std::optional<std::string> headers_json(const Headers& headers);

// Tags: at most 64, each 1..128 printable characters of UTF-8.
void check_tags(const std::optional<std::vector<std::string>>& tags);
// Tags as stored: a JSON array, or none.
std::optional<std::string> tags_json(const std::optional<std::vector<std::string>>& tags);

}  // namespace brandhooks
