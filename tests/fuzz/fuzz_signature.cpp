// Signature verification as a receiver runs it on what arrives: any key, body, id, timestamp
// and header verify to true or false (or the key is refused with a ValidationError), never
// crash; and a correctly signed message always verifies, a changed body never does.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <string>

#include "brandhooks/crypto.hpp"
#include "brandhooks/errors.hpp"
#include "fuzz_check.hpp"
#include "brandhooks/signer.hpp"

using namespace brandhooks;


extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  std::string key = in.ConsumeRandomLengthString(128);
  std::string id = in.ConsumeRandomLengthString(64);
  std::string timestamp = in.ConsumeRandomLengthString(32);
  std::string signature = in.ConsumeRandomLengthString(512);
  std::int64_t now = in.ConsumeIntegral<std::int64_t>();
  std::int64_t tolerance = in.ConsumeIntegral<std::int64_t>();
  std::string body = in.ConsumeRemainingBytesAsString();

  // Whatever arrives.
  try {
    verify_simple(key, body, signature);
  } catch (const ValidationError&) {
  }
  try {
    verify_standard(key, body, id, timestamp, signature, now, tolerance);
  } catch (const ValidationError&) {
  }

  // What a sender signs with a well-formed key made from the input verifies, in both forms.
  std::string key_bytes = key;
  key_bytes.resize(32, '\0');
  std::string key_hex = to_hex(key_bytes);
  Hmac hmac(key_bytes);
  std::string simple = sign_simple(hmac, body);
  check(verify_simple(key_hex, body, simple));
  check(verify_simple(standard_webhooks_secret(key_hex), body, simple));
  check(!verify_simple(key_hex, body + "x", simple));
  std::string standard = sign_standard({&hmac}, id, now, body);
  std::string ts = std::to_string(now);
  check(verify_standard(key_hex, body, id, ts, standard, now, 0));
  check(verify_standard(key_hex, body, id, ts, signature + " " + standard, now, 300));
  check(!verify_standard(key_hex, body + "x", id, ts, standard, now, 300));
  return 0;
}
