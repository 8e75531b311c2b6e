#pragma once
// Randomness and hashing from OpenSSL: keys, ids and token hashes.
#include <cstddef>
#include <string>
#include <string_view>

namespace brandhooks {

// `n` bytes from OpenSSL's CSPRNG. Throws brandhooks::Error if the generator fails.
std::string random_bytes(std::size_t n);

// Lowercase hex of raw bytes, and back (throws ValidationError on bad input).
std::string to_hex(std::string_view bytes);
std::string from_hex(std::string_view hex);

// A new webhook signing key: 32 CSPRNG bytes as 64 lowercase hex characters.
std::string generate_key();

// A random (version 4) UUID in canonical lowercase form.
std::string uuid_v4();

// A time-ordered (version 7) UUID: 48 bits of Unix milliseconds, then random bits. Ids made
// in a row sort together, so the store appends to its id indexes instead of writing all over
// them (events and deliveries, created by the hundred thousand).
std::string uuid_v7();

// SHA-256 of `data` as raw bytes.
std::string sha256(std::string_view data);

}  // namespace brandhooks
