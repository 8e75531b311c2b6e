#include <gtest/gtest.h>

#include "brandhooks/crypto.hpp"
#include "brandhooks/errors.hpp"
#include "brandhooks/signer.hpp"

using namespace brandhooks;

namespace {
// The Standard Webhooks specification's published test vector.
const std::string kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const std::string kMsgId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const std::int64_t kTimestamp = 1614265330;
const std::string kBody = R"({"test": 2432232314})";
const std::string kExpected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
}  // namespace

TEST(Signer, StandardWebhooksTestVector) {
  Hmac key(base64_decode(kSecret.substr(6)));
  EXPECT_EQ(sign_standard({&key}, kMsgId, kTimestamp, kBody), kExpected);
  EXPECT_TRUE(verify_standard(kSecret, kBody, kMsgId, "1614265330", kExpected, kTimestamp));
}

TEST(Signer, HmacSha256Rfc4231Case2) {
  Hmac key("Jefe");
  EXPECT_EQ(to_hex(key.digest({"what do ya want ", "for nothing?"})),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // the keyed context is reusable
  EXPECT_EQ(to_hex(key.digest({"what do ya want for nothing?"})),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Signer, SimpleSchemeRoundTrip) {
  std::string key_hex = generate_key();
  Hmac key(from_hex(key_hex));
  std::string sig = sign_simple(key, "body bytes");
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(verify_simple(key_hex, "body bytes", sig));
  EXPECT_TRUE(verify_simple(standard_webhooks_secret(key_hex), "body bytes", sig));
  EXPECT_FALSE(verify_simple(key_hex, "body bytes!", sig));
  EXPECT_FALSE(verify_simple(generate_key(), "body bytes", sig));
  EXPECT_FALSE(verify_simple(key_hex, "body bytes", sig.substr(1)));
}

TEST(Signer, StandardSchemeWithSeveralKeysAndTolerance) {
  std::string old_hex = generate_key(), new_hex = generate_key(), other = generate_key();
  Hmac old_key(from_hex(old_hex)), new_key(from_hex(new_hex));
  std::string header = sign_standard({&new_key, &old_key}, "d1", 1000, "{}");
  EXPECT_NE(header.find(' '), std::string::npos);
  EXPECT_TRUE(verify_standard(new_hex, "{}", "d1", "1000", header, 1000));
  EXPECT_TRUE(verify_standard(old_hex, "{}", "d1", "1000", header, 1000));
  EXPECT_FALSE(verify_standard(other, "{}", "d1", "1000", header, 1000));
  EXPECT_FALSE(verify_standard(new_hex, "{}", "d2", "1000", header, 1000));   // other id
  EXPECT_FALSE(verify_standard(new_hex, "{}", "d1", "1001", header, 1001));   // other timestamp
  EXPECT_TRUE(verify_standard(new_hex, "{}", "d1", "1000", header, 1300));    // 5 min late
  EXPECT_FALSE(verify_standard(new_hex, "{}", "d1", "1000", header, 1301));   // too old
  EXPECT_FALSE(verify_standard(new_hex, "{}", "d1", "1000", header, 699));    // from the future
  EXPECT_FALSE(verify_standard(new_hex, "{}", "d1", "abc", header, 1000));
}

TEST(Signer, Base64) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_THROW(base64_decode("Zm8"), ValidationError);
  EXPECT_EQ(standard_webhooks_secret(std::string(64, '0')),
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
}

// A sender's timestamp and a caller's tolerance may be any 64-bit number: no overflow (UBSan
// aborts on one), and the window holds both ways.
TEST(Signer, StandardTimestampExtremesDoNotOverflow) {
  Hmac key(base64_decode(kSecret.substr(6)));
  const std::int64_t max = INT64_MAX, min = INT64_MIN;
  for (std::int64_t ts : {max, min, std::int64_t{0}}) {
    std::string text = std::to_string(ts);
    std::string sig = sign_standard({&key}, kMsgId, ts, kBody);
    EXPECT_FALSE(verify_standard(kSecret, kBody, kMsgId, text, sig, kTimestamp)) << ts;
    EXPECT_TRUE(verify_standard(kSecret, kBody, kMsgId, text, sig, ts)) << ts;
  }
  std::string sig = sign_standard({&key}, kMsgId, max, kBody);
  EXPECT_TRUE(verify_standard(kSecret, kBody, kMsgId, std::to_string(max), sig, max - 10, max));
  EXPECT_FALSE(verify_standard(kSecret, kBody, kMsgId, std::to_string(max), sig, min, max));
  EXPECT_FALSE(verify_standard(kSecret, kBody, kMsgId, "1614265330", kExpected, kTimestamp, -1));
}
