#pragma once
// Webhook signatures, both schemes of the design:
//  - simple:  hex(HMAC-SHA256(key, body)) in one header (X-Webhook-Signature by default);
//  - Standard Webhooks: "v1," + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
// The key is the 32 bytes the webhook's 64-hex `key` encodes.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace brandhooks {

// A keyed HMAC-SHA256 context: the key schedule is computed once and reused per message.
// Not thread-safe; use one per thread.
class Hmac {
 public:
  explicit Hmac(std::string_view key_bytes);
  ~Hmac();
  Hmac(Hmac&&) noexcept;
  Hmac& operator=(Hmac&&) noexcept;
  // HMAC of the concatenation of `parts` (raw 32 bytes).
  std::string digest(std::initializer_list<std::string_view> parts);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string base64_encode(std::string_view bytes);
// Throws ValidationError on malformed input.
std::string base64_decode(std::string_view text);

// The secret a Standard Webhooks library expects for a webhook key: "whsec_" + base64(bytes).
std::string standard_webhooks_secret(std::string_view key_hex);

// Header values for one attempt. `keys_hex` holds every valid key, newest first: the simple
// header uses the newest, webhook-signature carries one "v1,..." per key.
std::string sign_simple(Hmac& newest, std::string_view body);
std::string sign_standard(const std::vector<Hmac*>& keys, std::string_view msg_id, std::int64_t timestamp,
                          std::string_view body);

// --- receivers ----------------------------------------------------------------------------
// Constant-time checks. `key` is the webhook key as 64 hex characters or as "whsec_<base64>".
bool verify_simple(std::string_view key, std::string_view body, std::string_view signature_hex);
// Standard Webhooks: true when any "v1,<sig>" in `signatures` matches and `timestamp` is
// within `tolerance_s` of `now_s` (both ways).
bool verify_standard(std::string_view key, std::string_view body, std::string_view msg_id,
                     std::string_view timestamp, std::string_view signatures,
                     std::int64_t now_s, std::int64_t tolerance_s = 300);

}  // namespace brandhooks
