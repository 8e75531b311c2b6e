#include "validation.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

#include "brandhooks/errors.hpp"
#include "brandhooks/model.hpp"

namespace brandhooks {

namespace {
bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }


[[noreturn]] void bad_url(const std::string& why) { throw ValidationError("url " + why); }

// A header name as a message may quote it: printable ASCII, at most 64 characters.
std::string quoted_name(std::string_view name) {
  std::string out;
  for (unsigned char c : name.substr(0, 64)) out += c > 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  return "'" + out + (name.size() > 64 ? "...'" : "'");
}
}  // namespace

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::size_t count_chars(std::string_view utf8) {
  return static_cast<std::size_t>(
      std::count_if(utf8.begin(), utf8.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string normalize_uuid(std::string_view text, std::string_view what) {
  static constexpr std::size_t kDashes[] = {8, 13, 18, 23};
  bool ok = text.size() == 36;
  for (std::size_t i = 0; ok && i < text.size(); ++i) {
    bool dash = std::find(std::begin(kDashes), std::end(kDashes), i) != std::end(kDashes);
    ok = dash ? text[i] == '-' : is_hex(text[i]);
  }
  if (!ok) throw ValidationError(std::string(what) + " must be a UUID");
  return ascii_lower(text);
}

void check_utf8(std::string_view text, std::string_view what) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto byte = [&](std::size_t at) { return static_cast<unsigned char>(text[at]); };
    unsigned char c = byte(i);
    std::size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = length != 0 && i + length <= text.size();
    char32_t code = length == 1 ? c : length == 2 ? c & 0x1f : length == 3 ? c & 0x0f : c & 0x07;
    for (std::size_t k = 1; ok && k < length; ++k) {
      ok = (byte(i + k) & 0xc0) == 0x80;
      code = (code << 6) | (byte(i + k) & 0x3f);
    }
    static constexpr char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};  // no overlong forms
    ok = ok && code >= kSmallest[length] && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff);
    if (!ok) throw ValidationError(std::string(what) + " must be UTF-8 text");
    i += length;
  }
}

void check_topic(std::string_view topic) {
  if (std::find(std::begin(kTopics), std::end(kTopics), topic) == std::end(kTopics)) {
    throw ValidationError("topic must be one of Deals, Showings, Contacts");
  }
}

Url parse_url(std::string_view text) {
  if (text.empty()) bad_url("is required");
  if (count_chars(text) > kMaxUrlLength) bad_url("must be at most 2048 characters");
  for (unsigned char c : text) {
    if (c <= 0x20 || c == 0x7f) bad_url("must not contain spaces or control characters");
  }
  check_utf8(text, "url");
  Url url;
  auto colon = text.find("://");
  if (colon == std::string_view::npos) bad_url("must be an absolute http or https URL");
  url.scheme = ascii_lower(text.substr(0, colon));
  if (url.scheme != "http" && url.scheme != "https") bad_url("scheme must be http or https");

  std::string_view rest = text.substr(colon + 3);
  std::size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? "" : rest.substr(end);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);  // only urls stored before check_webhook_url have them
    url.has_credentials = true;
  }

  std::string_view host, port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) bad_url("has an unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url("has an invalid host");
      port = after.substr(1);
    }
    if (host.empty() || host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
      bad_url("has an invalid IPv6 address");
    }
  } else {
    auto c = authority.rfind(':');
    host = authority.substr(0, c);
    if (c != std::string_view::npos) port = authority.substr(c + 1);
    for (unsigned char ch : host) {
      if (!(std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch >= 0x80)) {
        bad_url("has an invalid host");
      }
    }
  }
  if (host.empty()) bad_url("must have a host");
  url.host = ascii_lower(host);

  url.port = url.scheme == "https" ? 443 : 80;
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      bad_url("has an invalid port");
    }
    url.port = static_cast<unsigned short>(value);
  }

  std::string_view target = tail.substr(0, tail.find('#'));  // fragments are never sent
  url.target.reserve(target.size() + 1);
  if (target.empty() || target.front() == '?') url.target.push_back('/');
  url.target.append(target);
  return url;
}

Url check_webhook_url(std::string_view text) {
  Url url = parse_url(text);
  if (url.has_credentials) {
    // The message must not repeat the url: it holds a password.
    bad_url("must not contain credentials (user:password@host); the receiver should check the "
            "webhook signature instead");
  }
  return url;
}

std::string redact_url(std::string_view text) {
  auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return std::string(text);
  std::size_t start = scheme_end + 3;
  std::size_t end = text.find_first_of("/?#", start);
  std::string_view authority = text.substr(start, end == std::string_view::npos ? end : end - start);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(text);
  std::string out(text.substr(0, start));
  out.append("***").append(text.substr(start + at));
  return out;
}

void check_tags(const std::optional<std::vector<std::string>>& tags) {
  if (!tags) return;
  if (tags->size() > 64) throw ValidationError("tags must have at most 64 entries");
  for (const auto& tag : *tags) {
    if (tag.empty() || count_chars(tag) > 128) {
      throw ValidationError("each tag must have 1 to 128 characters");
    }
    for (unsigned char c : tag) {
      if (c < 0x20 || c == 0x7f) throw ValidationError("tags must not contain control characters");
    }
    check_utf8(tag, "each tag");
  }
}

bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

bool is_reserved_header(std::string_view name) {
  static constexpr std::string_view kReserved[] = {
      "host", "content-length", "transfer-encoding", "connection", "content-type", "content-encoding",
      "user-agent", "keep-alive", "te", "trailer", "upgrade", "expect"};
  std::string lower = ascii_lower(name);
  return lower.starts_with("webhook-") || lower.starts_with("proxy-") ||
         std::find(std::begin(kReserved), std::end(kReserved), lower) != std::end(kReserved);
}

void check_rate_limit(const std::optional<std::int64_t>& rate_limit) {
  if (rate_limit && (*rate_limit < 1 || *rate_limit > kMaxRateLimit)) {
    throw ValidationError("rate_limit must be null or an integer between 1 and 10000 (deliveries per second)");
  }
}

void check_headers(const Headers& headers, std::string_view signature_header) {
  if (headers.size() > kMaxHeaders) throw ValidationError("headers must have at most 20 entries");
  std::size_t bytes = 0;
  std::vector<std::string> seen;
  for (const auto& [name, value] : headers) {
    if (!is_token(name)) {
      throw ValidationError("header name " + quoted_name(name) +
                            " must be a token (letters, digits or !#$%&'*+-.^_`|~)");
    }
    std::string lower = ascii_lower(name);
    if (is_reserved_header(name) || lower == ascii_lower(signature_header)) {
      throw ValidationError("header " + quoted_name(name) +
                            " is reserved: it frames or signs the request (Host, Content-Length, "
                            "Content-Type, Connection, the signature headers, webhook-*, ...)");
    }
    if (std::find(seen.begin(), seen.end(), lower) != seen.end()) {
      throw ValidationError("header " + quoted_name(name) + " is given twice (names are case-insensitive)");
    }
    seen.push_back(std::move(lower));
    bool visible = std::all_of(value.begin(), value.end(), [](unsigned char c) {
      return c == '\t' || (c >= 0x20 && c < 0x7f);
    });
    if (!visible) {
      throw ValidationError("header " + quoted_name(name) +
                            " has a value with a character other than visible ASCII, space or tab "
                            "(CR, LF and NUL are refused)");
    }
    if (!value.empty() && (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' ||
                           value.back() == '\t')) {
      throw ValidationError("header " + quoted_name(name) + " has a value that starts or ends with whitespace");
    }
    bytes += name.size() + value.size() + 4;  // "name: value\r\n"
  }
  if (bytes > kMaxHeaderBytes) throw ValidationError("headers must have at most 8192 bytes in all (8 KiB)");
}

std::optional<std::string> headers_json(const Headers& headers) {
  if (headers.empty()) return std::nullopt;
  return nlohmann::json(headers).dump();
}

std::optional<std::string> tags_json(const std::optional<std::vector<std::string>>& tags) {
  if (!tags) return std::nullopt;
  return nlohmann::json(*tags).dump();
}

}  // namespace brandhooks
