#include "brandhooks/signer.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>
#include <charconv>

#include "brandhooks/crypto.hpp"
#include "brandhooks/errors.hpp"

namespace brandhooks {

struct Hmac::State {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;
  ~State() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};

Hmac::Hmac(std::string_view key) : state_(std::make_unique<State>()) {
  state_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (state_->mac) state_->ctx = EVP_MAC_CTX_new(state_->mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!state_->ctx ||
      EVP_MAC_init(state_->ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                   params) != 1) {
    throw Error("cannot initialise HMAC-SHA256");
  }
}

Hmac::~Hmac() = default;
Hmac::Hmac(Hmac&&) noexcept = default;
Hmac& Hmac::operator=(Hmac&&) noexcept = default;

std::string Hmac::digest(std::initializer_list<std::string_view> parts) {
  // A null key re-initialises with the key schedule computed in the constructor.
  if (EVP_MAC_init(state_->ctx, nullptr, 0, nullptr) != 1) throw Error("HMAC init failed");
  for (auto part : parts) {
    if (EVP_MAC_update(state_->ctx, reinterpret_cast<const unsigned char*>(part.data()),
                       part.size()) != 1) {
      throw Error("HMAC update failed");
    }
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  if (EVP_MAC_final(state_->ctx, out, &len, sizeof out) != 1) throw Error("HMAC final failed");
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) throw ValidationError("malformed base64");
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) throw ValidationError("malformed base64");
  // EVP_DecodeBlock counts padding as zero bytes.
  std::size_t padding = 0;
  for (auto it = text.rbegin(); it != text.rend() && *it == '=' && padding < 2; ++it) ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string standard_webhooks_secret(std::string_view key_hex) {
  return "whsec_" + base64_encode(from_hex(key_hex));
}

std::string sign_simple(Hmac& newest, std::string_view body) {
  return to_hex(newest.digest({body}));
}

std::string sign_standard(const std::vector<Hmac*>& keys, std::string_view msg_id,
                          std::int64_t timestamp, std::string_view body) {
  std::string ts = std::to_string(timestamp);
  std::string out;
  for (Hmac* key : keys) {
    if (!out.empty()) out.push_back(' ');
    out += "v1,";
    out += base64_encode(key->digest({msg_id, ".", ts, ".", body}));
  }
  return out;
}

namespace {
// Key bytes from either form a receiver may hold.
std::string key_bytes(std::string_view key) {
  if (key.rfind("whsec_", 0) == 0) return base64_decode(key.substr(6));
  if (key.size() != 64) throw ValidationError("key must be 64 hex characters or whsec_<base64>");
  return from_hex(key);
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}
}  // namespace

bool verify_simple(std::string_view key, std::string_view body, std::string_view signature_hex) {
  Hmac hmac(key_bytes(key));
  std::string expected = to_hex(hmac.digest({body}));
  // Compare lowercase hex; an uppercase header is the same signature.
  std::string given(signature_hex);
  for (char& c : given) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return equal_constant_time(expected, given);
}

bool verify_standard(std::string_view key, std::string_view body, std::string_view msg_id,
                     std::string_view timestamp, std::string_view signatures, std::int64_t now_s,
                     std::int64_t tolerance_s) {
  std::int64_t ts = 0;
  auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), ts);
  if (ec != std::errc() || end != timestamp.data() + timestamp.size()) return false;
  // |ts - now_s| in unsigned arithmetic: a sender's timestamp (or a caller's tolerance) of any
  // size cannot overflow it.
  auto distance = ts > now_s ? static_cast<std::uint64_t>(ts) - static_cast<std::uint64_t>(now_s)
                             : static_cast<std::uint64_t>(now_s) - static_cast<std::uint64_t>(ts);
  if (tolerance_s < 0 || distance > static_cast<std::uint64_t>(tolerance_s)) return false;
  Hmac hmac(key_bytes(key));
  std::string expected = base64_encode(hmac.digest({msg_id, ".", timestamp, ".", body}));
  bool match = false;
  std::size_t pos = 0;
  while (pos <= signatures.size()) {
    std::size_t space = signatures.find(' ', pos);
    std::string_view one = signatures.substr(pos, space - pos);
    if (one.rfind("v1,", 0) == 0) match |= equal_constant_time(expected, one.substr(3));
    if (space == std::string_view::npos) break;
    pos = space + 1;
  }
  return match;
}

}  // namespace brandhooks
