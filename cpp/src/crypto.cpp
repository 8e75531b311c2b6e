#include "brandhooks/crypto.hpp"

#include <openssl/evp.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>

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

namespace {
// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" from 16 bytes, in one allocation.
std::string format_uuid(const unsigned char* b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t at = 0;
  for (int i = 0; i < 16; ++i) {
    if (at == 8 || at == 13 || at == 18 || at == 23) ++at;
    out[at++] = kDigits[b[i] >> 4];
    out[at++] = kDigits[b[i] & 0x0f];
  }
  return out;
}

// Random bytes for ids, drawn from the system generator 4 KiB at a time: one RAND_bytes call
// per id cost more than the rest of a publish's per-delivery work. Refilled after a fork, so
// parent and child never hand out the same bytes.
void id_random(unsigned char* out, std::size_t n) {
  thread_local unsigned char pool[4096];
  thread_local std::size_t used = sizeof(pool);
  thread_local pid_t owner = 0;
  pid_t pid = ::getpid();
  if (used + n > sizeof(pool) || owner != pid) {
    if (RAND_bytes(pool, sizeof(pool)) != 1) throw Error("the system's random generator failed");
    used = 0;
    owner = pid;
  }
  std::memcpy(out, pool + used, n);
  OPENSSL_cleanse(pool + used, n);  // never handed out twice
  used += n;
}
}  // namespace

std::string uuid_v4() {
  unsigned char b[16];
  id_random(b, sizeof(b));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return format_uuid(b);
}

std::string uuid_v7() {
  unsigned char b[16];
  id_random(b, sizeof(b));
  auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x70);  // version 7
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return format_uuid(b);
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
