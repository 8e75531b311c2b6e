#include "brandhooks/crypto.hpp"

#include <openssl/evp.h>

#include <chrono>
#include <cstdint>
#include <openssl/rand.h>

#include "brandhooks/errors.hpp"

namespace brandhooks {

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw Error("the system's random generator failed");
  }
  return out;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0x0f]);
  }
  return out;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) throw ValidationError("hex text must have an even length");
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) throw ValidationError("not a hex string");
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::string generate_key() { return to_hex(random_bytes(32)); }

std::string uuid_v4() {
  std::string b = random_bytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string hex = to_hex(b);
  return hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-' +
         hex.substr(16, 4) + '-' + hex.substr(20);
}

std::string uuid_v7() {
  std::string b = random_bytes(16);
  auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  for (int i = 0; i < 6; ++i) b[static_cast<std::size_t>(i)] = static_cast<char>(ms >> (40 - 8 * i));
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x70);  // version 7
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string hex = to_hex(b);
  return hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-' +
         hex.substr(16, 4) + '-' + hex.substr(20);
}

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    throw Error("SHA-256 failed");
  }
  return std::string(reinterpret_cast<char*>(digest), len);
}

}  // namespace brandhooks
