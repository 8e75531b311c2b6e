#include <gtest/gtest.h>
#include <cstdint>

#include "brandhooks/errors.hpp"
#include "validation.hpp"

using namespace brandhooks;

TEST(Validation, UuidIsNormalisedToLowercase) {
  EXPECT_EQ(normalize_uuid("0B6A5B1E-8C2D-4F3A-9E1B-2C3D4E5F6A7B", "id"),
            "0b6a5b1e-8c2d-4f3a-9e1b-2c3d4e5f6a7b");
  for (const char* bad : {"", "not-a-uuid", "0b6a5b1e8c2d4f3a9e1b2c3d4e5f6a7b",
                          "0b6a5b1e-8c2d-4f3a-9e1b-2c3d4e5f6a7", "0b6a5b1e-8c2d-4f3a-9e1b-2c3d4e5f6a7g",
                          "{0b6a5b1e-8c2d-4f3a-9e1b-2c3d4e5f6a7}"}) {
    EXPECT_THROW(normalize_uuid(bad, "id"), ValidationError) << bad;
  }
}

TEST(Validation, TopicsAreExactAndCaseSensitive) {
  EXPECT_NO_THROW(check_topic("Deals"));
  EXPECT_NO_THROW(check_topic("Showings"));
  EXPECT_NO_THROW(check_topic("Contacts"));
  for (const char* bad : {"", "deals", "DEALS", "Deal", "Deals ", "Listings"}) {
    EXPECT_THROW(check_topic(bad), ValidationError) << bad;
  }
}

TEST(Validation, UrlParts) {
  Url u = parse_url("https://Example.com:8443/hooks/x?y=1#frag");
  EXPECT_EQ(u.scheme, "https");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 8443);
  EXPECT_EQ(u.target, "/hooks/x?y=1");

  Url plain = parse_url("http://host");
  EXPECT_EQ(plain.port, 80);
  EXPECT_EQ(plain.target, "/");

  Url query = parse_url("HTTPS://user:pw@host?x=1");
  EXPECT_EQ(query.scheme, "https");
  EXPECT_EQ(query.host, "host");
  EXPECT_EQ(query.port, 443);
  EXPECT_EQ(query.target, "/?x=1");

  Url v6 = parse_url("http://[::1]:9000/p");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 9000);
}

TEST(Validation, BadUrlsAreRefused) {
  std::string too_long = "https://h/" + std::string(2048, 'a');
  for (const std::string& bad :
       {std::string(""), std::string("/relative/path"), std::string("example.com/x"),
        std::string("ftp://example.com/"), std::string("https://"), std::string("https:///path"),
        std::string("https://exa mple.com/"), std::string("https://host:0/"),
        std::string("https://host:70000/"), std::string("https://host:abc/"),
        std::string("https://[::1/"), std::string("javascript:alert(1)"), too_long}) {
    EXPECT_THROW(parse_url(bad), ValidationError) << bad;
  }
  std::string at_limit = "https://h/" + std::string(2048 - 10, 'a');
  EXPECT_NO_THROW(parse_url(at_limit));
}

TEST(Validation, Tags) {
  EXPECT_NO_THROW(check_tags(std::nullopt));
  EXPECT_NO_THROW(check_tags(std::vector<std::string>{}));
  EXPECT_NO_THROW(check_tags(std::vector<std::string>{"vip", "office-7"}));
  EXPECT_THROW(check_tags(std::vector<std::string>{""}), ValidationError);
  EXPECT_THROW(check_tags(std::vector<std::string>(65, "x")), ValidationError);
  EXPECT_THROW(check_tags(std::vector<std::string>{std::string(129, 'x')}), ValidationError);
}

// Found by fuzz_event: a tag that is not UTF-8 passed check_tags, then tags_json threw
// nlohmann's type_error (a 500, not a 400). Text that ends up in JSON must be UTF-8.
TEST(Validation, TextMustBeUtf8) {
  for (const char* good : {"plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_NO_THROW(check_utf8(good, "x")) << good;
  }
  for (const char* bad : {"\xe8", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                          "\xff", "a\x80"}) {
    EXPECT_THROW(check_utf8(bad, "x"), ValidationError) << bad;
  }
  EXPECT_THROW(check_tags(std::vector<std::string>{"tag-\xe8\xe8"}), ValidationError);
  EXPECT_THROW(parse_url("https://h\xe8st.example/"), ValidationError);
  EXPECT_THROW(parse_url("https://example.com/\xed\xa0\x80"), ValidationError);
  EXPECT_NO_THROW(parse_url("https://b\xc3\xbc" "cher.example/caf\xc3\xa9"));
}

TEST(Validation, RateLimits) {
  EXPECT_NO_THROW(check_rate_limit(std::nullopt));
  EXPECT_NO_THROW(check_rate_limit(1));
  EXPECT_NO_THROW(check_rate_limit(10000));
  for (std::int64_t bad : {std::int64_t{0}, std::int64_t{-5}, std::int64_t{10001}, INT64_MIN}) {
    EXPECT_THROW(check_rate_limit(bad), ValidationError) << bad;
  }
}

TEST(Validation, CustomHeadersThatAreFine) {
  EXPECT_NO_THROW(check_headers({}, "X-Webhook-Signature"));
  EXPECT_NO_THROW(check_headers({{"X-Tenant", "a1"},
                                 {"Authorization", "Bearer abc.def"},
                                 {"x-empty", ""},
                                 {"X-Spaced", "a \tb"},
                                 {"!#$%&'*+-.^_`|~09azAZ", "~"}},
                                "X-Webhook-Signature"));
  Headers twenty;
  for (int i = 0; i < 20; ++i) twenty["X-H" + std::to_string(i)] = "v";
  EXPECT_NO_THROW(check_headers(twenty, "X-Webhook-Signature"));
  // Exactly 8 KiB as sent: "X-Big: <value>\r\n".
  EXPECT_NO_THROW(check_headers({{"X-Big", std::string(8192 - 5 - 4, 'a')}}, "X-Webhook-Signature"));
}

TEST(Validation, CustomHeadersThatAreRefusedNameTheHeader) {
  auto refused = [](const Headers& headers, const std::string& named) {
    try {
      check_headers(headers, "X-Webhook-Signature");
      ADD_FAILURE() << "accepted " << headers.begin()->first;
    } catch (const ValidationError& e) {
      EXPECT_NE(std::string(e.what()).find(named), std::string::npos) << e.what();
    }
  };
  for (const char* name : {"Host", "content-length", "Transfer-Encoding", "CONNECTION", "Content-Type",
                           "Content-Encoding", "User-Agent", "Upgrade", "TE", "Trailer", "Keep-Alive", "Expect",
                           "Proxy-Authorization", "Proxy-Connection", "webhook-id", "Webhook-Signature",
                           "webhook-timestamp", "webhook-anything", "x-webhook-signature"}) {
    refused({{name, "x"}}, name);
  }
  refused({{"X A", "x"}}, "'X?A'");  // not a token
  refused({{"", "x"}}, "''");
  refused({{"X:A", "x"}}, "X:A");
  refused({{"X-\xc3\xa9", "x"}}, "X-??");
  refused({{"X-A", "a\r\nX-Injected: 1"}}, "X-A");
  refused({{"X-A", "a\nb"}}, "X-A");
  refused({{"X-A", std::string("a\0b", 3)}}, "X-A");
  refused({{"X-A", "caf\xc3\xa9"}}, "X-A");
  refused({{"X-A", "\x7f"}}, "X-A");
  refused({{"X-A", " leading"}}, "X-A");
  refused({{"X-A", "trailing\t"}}, "X-A");
  refused({{"X-A", "1"}, {"x-a", "2"}}, "x-a");  // the same name twice, in another case
  Headers many;
  for (int i = 0; i < 21; ++i) many["X-H" + std::to_string(i)] = "v";
  EXPECT_THROW(check_headers(many, "X-Webhook-Signature"), ValidationError);
  EXPECT_THROW(check_headers({{"X-Big", std::string(8192 - 5 - 4 + 1, 'a')}}, "X-Webhook-Signature"),
               ValidationError);
  // Another configured signature header is refused, in any case.
  EXPECT_THROW(check_headers({{"x-rechat-signature", "x"}}, "X-RECHAT-SIGNATURE"), ValidationError);
}
