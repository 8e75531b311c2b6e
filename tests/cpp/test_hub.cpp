#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <thread>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "brandhooks/crypto.hpp"
#include "brandhooks/hub.hpp"
#include "store.hpp"
#include "test_backends.hpp"

using namespace brandhooks;
using namespace brandhooks_test;
namespace fs = std::filesystem;

namespace {
// Every Hub test on both backends: a SQLite file, or a fresh PostgreSQL database.
class HubTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    database_.emplace(GetParam(), "brandhooks-hub-");
    config_.db = database_->db();
    if (config_.db.empty()) GTEST_SKIP() << kNoPgServer;
    hub_ = std::make_unique<Hub>(config_);
  }
  void TearDown() override {
    hub_.reset();
    database_.reset();
  }

  // The message of the UnauthorizedError `call` throws (fails the test when none).
  template <class Call>
  std::string unauthorized(Call call) {
    try {
      call();
    } catch (const UnauthorizedError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no UnauthorizedError";
    return "";
  }

  Config config_;
  std::optional<TestDatabase> database_;
  std::unique_ptr<Hub> hub_;
};

const std::string kBrand = "0B6A5B1E-8C2D-4F3A-9E1B-2C3D4E5F6A7B";
const std::string kBrandLower = "0b6a5b1e-8c2d-4f3a-9e1b-2c3d4e5f6a7b";
const std::string kOther = "22222222-2222-4222-8222-222222222222";
}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, HubTest, ::testing::Values(Backend::sqlite, Backend::pg),
                         [](const auto& info) { return backend_name(info.param); });

TEST_P(HubTest, CreateListGetDelete) {
  Webhook w = hub_->create_webhook(kBrand, "Showings", "https://Example.com/Hook?a=B");
  EXPECT_EQ(w.brand, kBrandLower);
  EXPECT_EQ(w.url, "https://Example.com/Hook?a=B");  // stored exactly as given
  EXPECT_EQ(w.key.size(), 64u);
  EXPECT_FALSE(w.deleted_at);
  EXPECT_EQ(w.created_at, w.updated_at);

  EXPECT_EQ(hub_->get_webhook(kBrandLower, w.id).key, w.key);
  auto page = hub_->list_webhooks({kBrand, std::nullopt, 0, std::nullopt});
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].id, w.id);

  Webhook deleted = hub_->delete_webhook(kBrand, w.id);
  ASSERT_TRUE(deleted.deleted_at);
  EXPECT_THROW(hub_->get_webhook(kBrand, w.id), NotFoundError);
  EXPECT_THROW(hub_->delete_webhook(kBrand, w.id), NotFoundError);
  EXPECT_EQ(hub_->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}).total, 0);
}

TEST_P(HubTest, AnotherBrandsWebhookIsNotFound) {
  Webhook w = hub_->create_webhook(kBrand, "Deals", "https://example.com/");
  EXPECT_THROW(hub_->get_webhook(kOther, w.id), NotFoundError);
  EXPECT_THROW(hub_->delete_webhook(kOther, w.id), NotFoundError);
  EXPECT_NO_THROW(hub_->get_webhook(kBrand, w.id));
}

TEST_P(HubTest, BadInputChangesNothing) {
  EXPECT_THROW(hub_->create_webhook("nope", "Deals", "https://x/"), ValidationError);
  EXPECT_THROW(hub_->create_webhook(kBrand, "deals", "https://x/"), ValidationError);
  EXPECT_THROW(hub_->create_webhook(kBrand, "Deals", "/relative"), ValidationError);
  EXPECT_THROW(hub_->create_webhook(kBrand, "Deals", "https://x/",
                                    std::vector<std::string>{""}),
               ValidationError);
  EXPECT_THROW(hub_->list_webhooks({kBrand, "Nope", 0, std::nullopt}), ValidationError);
  EXPECT_THROW(hub_->list_webhooks({kBrand, std::nullopt, -1, std::nullopt}), ValidationError);
  EXPECT_THROW(hub_->get_webhook(kBrand, "not-a-uuid"), ValidationError);
  EXPECT_EQ(hub_->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}).total, 0);
}

TEST_P(HubTest, JsonFollowsTheContract) {
  Webhook w = hub_->create_webhook(kBrand, "Deals", "https://example.com/", std::vector<std::string>{"a"});
  auto j = nlohmann::ordered_json::parse(to_json(w));
  std::vector<std::string> keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"id", "created_at", "updated_at", "deleted_at", "brand",
                                            "topic", "url", "key", "tags", "type", "ordered", "rate_limit",
                                            "headers"}));
  EXPECT_EQ(j["ordered"], false);  // the controls' defaults
  EXPECT_TRUE(j["rate_limit"].is_null());
  EXPECT_EQ(j["headers"], nlohmann::ordered_json::object());
  EXPECT_TRUE(j["created_at"].is_number_float());
  EXPECT_DOUBLE_EQ(j["created_at"].get<double>(), static_cast<double>(w.created_at) / 1e6);
  EXPECT_TRUE(j["deleted_at"].is_null());
  EXPECT_EQ(j["type"], "brand_webhook");
  EXPECT_EQ(j["tags"], nlohmann::ordered_json::array({"a"}));
}

TEST_P(HubTest, TokensAndBrandTree) {
  const std::string parent = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
  const std::string child = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
  const std::string sibling = "cccccccc-cccc-4ccc-8ccc-cccccccccccc";
  EXPECT_FALSE(hub_->has_tokens());
  IssuedToken admin = hub_->create_token(std::nullopt, "ops");
  IssuedToken brand = hub_->create_token(parent);
  EXPECT_TRUE(hub_->has_tokens());
  EXPECT_EQ(admin.secret.rfind("bh_", 0), 0u);

  hub_->set_brand_parent(child, parent);
  hub_->set_brand_parent(sibling, std::nullopt);
  EXPECT_EQ(hub_->brand_parent(child), parent);

  EXPECT_TRUE(hub_->authorize(admin.secret, sibling).is_admin());
  EXPECT_NO_THROW(hub_->authorize(brand.secret, parent));
  EXPECT_NO_THROW(hub_->authorize(brand.secret, child));  // descendant
  EXPECT_THROW(hub_->authorize(brand.secret, sibling), ForbiddenError);
  EXPECT_THROW(hub_->authorize_admin(brand.secret), ForbiddenError);
  EXPECT_THROW(hub_->authorize("bh_wrong", parent), UnauthorizedError);
  EXPECT_THROW(hub_->authorize("", parent), UnauthorizedError);
  EXPECT_THROW(hub_->set_brand_parent(parent, child), ConflictError);
  EXPECT_THROW(hub_->set_brand_parent(parent, parent), ConflictError);

  hub_->revoke_token(brand.info.id);
  EXPECT_THROW(hub_->authenticate(brand.secret), UnauthorizedError);
  EXPECT_EQ(hub_->list_tokens().size(), 1u);
}

TEST_P(HubTest, EnsureAdminTokenIsIdempotent) {
  TokenInfo first = hub_->ensure_admin_token("a-long-operator-chosen-secret");
  TokenInfo second = hub_->ensure_admin_token("a-long-operator-chosen-secret");
  EXPECT_EQ(first.id, second.id);
  EXPECT_EQ(hub_->list_tokens().size(), 1u);
  EXPECT_TRUE(hub_->authenticate("a-long-operator-chosen-secret").is_admin());
  EXPECT_THROW(hub_->ensure_admin_token("short"), ValidationError);
}

// Every number a user configures is bounded: seconds become microseconds, timeouts become
// deadlines, and neither may overflow; thread counts may not exhaust the host.
TEST(HubConfig, NumbersAreBounded) {
  auto refused = [](auto set) {
    Config c;
    c.db = ":memory:";
    set(c);
    EXPECT_THROW(Hub{c}, ValidationError);
  };
  refused([](Config& c) { c.retention_s = INT64_MAX / 1000; });
  refused([](Config& c) { c.prune_interval_s = INT64_MAX; });
  refused([](Config& c) { c.disable_after_s = 10'000'000'000'000; });
  refused([](Config& c) { c.request_timeout_ms = INT32_MAX; });
  refused([](Config& c) { c.connect_timeout_ms = INT32_MAX; });
  refused([](Config& c) { c.busy_timeout_ms = INT32_MAX; });
  refused([](Config& c) { c.delivery_threads = 100'000; });
  refused([](Config& c) { c.max_in_flight = INT32_MAX; });
  refused([](Config& c) { c.retention_s = 0; });
  refused([](Config& c) { c.retry_schedule = "0,5s,100000d"; });
  refused([](Config& c) { c.api_connections = 0; });
  refused([](Config& c) { c.dispatcher_connections = 100'000; });
  Config fine;
  fine.db = ":memory:";
  fine.retention_s = 3650LL * 86400;
  fine.request_timeout_ms = 86'400'000;
  EXPECT_NO_THROW(Hub{fine});
}

TEST_P(HubTest, ReservedOrMalformedSignatureHeadersAreRefusedAtStart) {
  for (const char* name : {"Host", "content-length", "Transfer-Encoding", "Connection", "Content-Type",
                           "User-Agent", "webhook-signature", "Webhook-Id", "X Sig", "X-Sig:", "", "X-Sig\r\n",
                           "Ünicode", "X(Sig)"}) {
    Config config;
    config.db = ":memory:";
    config.signature_header = name;
    EXPECT_THROW(Hub{config}, ValidationError) << name;
  }
  for (const char* name : {"X-Webhook-Signature", "X-RECHAT-SIGNATURE", "Signature", "x_sig.v1"}) {
    Config config;
    config.db = ":memory:";
    config.signature_header = name;
    EXPECT_NO_THROW(Hub{config}) << name;
  }
}

TEST_P(HubTest, UrlsWithCredentialsAreRefusedWithoutEchoingThem) {
  for (const char* url : {"https://user:s3cret@example.com/hook", "https://user@example.com/",
                          "http://:s3cret@example.com"}) {
    try {
      hub_->create_webhook(kBrand, "Deals", url);
      ADD_FAILURE() << "accepted " << url;
    } catch (const ValidationError& e) {
      EXPECT_NE(std::string(e.what()).find("credentials"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
    }
  }
  Webhook w = hub_->create_webhook(kBrand, "Deals", "https://example.com/a@b?x=@");  // '@' after the host
  WebhookPatch patch;
  patch.url = "https://user:s3cret@example.com/";
  EXPECT_THROW(hub_->update_webhook(kBrand, w.id, patch), ValidationError);
  EXPECT_EQ(hub_->get_webhook(kBrand, w.id).url, "https://example.com/a@b?x=@");
  EXPECT_EQ(redact_url("https://user:s3cret@example.com/p@q"), "https://***@example.com/p@q");
  EXPECT_EQ(redact_url("https://example.com/p@q"), "https://example.com/p@q");
}

TEST_P(HubTest, PayloadsNestedTooDeeplyAreRefused) {
  auto nested = [](int depth) { return std::string(depth - 1, '[') + "{}" + std::string(depth - 1, ']'); };
  EXPECT_NO_THROW(hub_->publish(kBrand, "Deals", "Created", "{\"a\":" + nested(127) + "}"));
  EXPECT_THROW(hub_->publish(kBrand, "Deals", "Created", "{\"a\":" + nested(128) + "}"), ValidationError);
  // Deep enough to overflow the stack of a recursive serializer, were it reached.
  EXPECT_THROW(hub_->publish(kBrand, "Deals", "Created", "{\"a\":" + nested(400'000) + "}"), ValidationError);
}

// An event name or tag that is not UTF-8 is a ValidationError (it was nlohmann's type_error
// escaping publish: a 500).
TEST_P(HubTest, EventTextMustBeUtf8) {
  hub_->create_webhook(kBrand, "Deals", "https://example.com/");
  EXPECT_THROW(hub_->publish(kBrand, "Deals", "Creat\xe8" "d", "{}"), ValidationError);
  EXPECT_THROW(hub_->publish(kBrand, "Deals", "Created", "{}", std::vector<std::string>{"\xed\xa0\x80"}),
               ValidationError);
  EXPECT_THROW(hub_->create_webhook(kBrand, "Deals", "https://example.com/", std::vector<std::string>{"\xff"}),
               ValidationError);
  EXPECT_EQ(hub_->stats().events, 0);
}

TEST_P(HubTest, LengthLimitsCountCharactersNotBytes) {
  std::string e_acute = "\xC3\xA9";  // é: one character, two bytes
  std::string tag, event;
  for (int i = 0; i < 128; ++i) tag += e_acute;
  EXPECT_NO_THROW(hub_->create_webhook(kBrand, "Deals", "https://example.com/", std::vector<std::string>{tag}));
  EXPECT_THROW(hub_->create_webhook(kBrand, "Deals", "https://example.com/", std::vector<std::string>{tag + "x"}),
               ValidationError);
  EXPECT_NO_THROW(hub_->publish(kBrand, "Deals", tag, "{}"));
  EXPECT_THROW(hub_->publish(kBrand, "Deals", tag + "x", "{}"), ValidationError);
  std::string url = "https://example.com/";
  while (url.size() < 2048 - 2) url += e_acute;  // about 1 000 characters, over 2 000 bytes
  EXPECT_NO_THROW(hub_->create_webhook(kBrand, "Deals", url));
}

// The REST API's publish from the raw body: one event or a batch, all or nothing.
TEST_P(HubTest, PublishJsonTakesOneEventOrABatch) {
  hub_->create_webhook(kBrand, "Deals", "https://example.com/hook");
  auto one = nlohmann::ordered_json::parse(
      hub_->publish_json(kBrand, R"({"topic":"Deals","event":"Created","payload":{"a":1},"extra":true})"));
  EXPECT_EQ(one["code"], "OK");
  EXPECT_EQ(one["data"]["deliveries"], 1);
  EXPECT_EQ(one.size(), 2u);

  auto batch = nlohmann::ordered_json::parse(hub_->publish_json(
      kBrand, R"([{"topic":"Deals","event":"Created","payload":{}},
                  {"topic":"Showings","event":"Booked","payload":{},"tags":["vip"]},
                  {"topic":"Deals","event":"Updated","payload":{"b":[1,2]},"tags":null}])"));
  ASSERT_EQ(batch["data"].size(), 3u);
  EXPECT_EQ(batch["info"], nlohmann::ordered_json::parse(R"({"count":3,"total":3})"));
  EXPECT_EQ(batch["data"][1]["deliveries"], 0);
  EXPECT_EQ(hub_->stats().events, 4);
}

TEST_P(HubTest, PublishJsonRefusesBadBodiesAndChangesNothing) {
  auto refused = [&](const std::string& body, const std::string& expected, bool bad_request) {
    try {
      hub_->publish_json(kBrand, body);
      ADD_FAILURE() << "accepted: " << body.substr(0, 80);
    } catch (const BadRequestError& e) {
      EXPECT_TRUE(bad_request) << e.what();
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    } catch (const ValidationError& e) {
      EXPECT_FALSE(bad_request) << e.what();
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  const std::string ok = R"({"topic":"Deals","event":"Created","payload":{}})";
  refused("", "valid JSON", true);
  refused("{\"topic\":\"De\xff\"}", "valid JSON", true);
  refused(std::string(100000, '['), "nests too deeply", true);
  refused(R"({"topic":"Deals","event":"Created","payload":{"a":"\ud800"}})", "surrogate", false);
  refused("[]", "1 to 1000", false);
  refused("[" + [&] { std::string s = ok; for (int i = 0; i < 1000; ++i) s += "," + ok; return s; }() + "]",
          "1 to 1000", false);
  refused("[" + ok + ",1]", "events[1]: an event must be a JSON object", false);
  refused("[" + ok + R"(,{"topic":"Deals","event":"Created","payload":{},"tags":[1]}])", "events[1]: tags", false);
  refused("[" + ok + R"(,{"topic":"Nope","event":"Created","payload":{}}])", "events[1]: ", false);
  refused(R"({"topic":"Deals","event":"Created","payload":"{}"})", "payload must be a JSON object", false);
  refused(R"({"topic":"Deals","payload":{}})", "event is required", false);
  EXPECT_THROW(hub_->publish_json("not-a-uuid", ok), ValidationError);
  EXPECT_EQ(hub_->stats().events, 0);
}

// Group commit: each request is answered on its own; the valid ones commit together.
TEST_P(HubTest, PublishJsonEachAnswersEachRequestOnItsOwn) {
  hub_->create_webhook(kBrand, "Deals", "https://example.com/hook");
  const std::string ok = R"({"topic":"Deals","event":"Created","payload":{}})";
  const std::string batch = "[" + ok + "," + ok + "]";
  const std::string bad_batch = "[" + ok + R"(,{"topic":"Deals"}])";
  std::string admin = hub_->create_token(std::nullopt).secret;
  std::string scoped = hub_->create_token(kOther).secret;
  auto answers = hub_->publish_json_each({{kBrand, ok, admin, std::nullopt},
                                          {kBrand, "{", std::nullopt, std::nullopt},
                                          {kBrand, batch, std::nullopt, std::nullopt},
                                          {"not-a-uuid", ok, std::nullopt, std::nullopt},
                                          {kBrand, bad_batch, std::nullopt, std::nullopt},
                                          {kOther, ok, scoped, std::nullopt},
                                          {kBrand, ok, scoped, std::nullopt},
                                          {kBrand, "{", "wrong", std::nullopt}});
  ASSERT_EQ(answers.size(), 8u);
  auto error = [](const Hub::JsonAnswer& a) -> std::string {
    try {
      std::rethrow_exception(a.error);
    } catch (const BadRequestError& e) {
      return std::string("bad request: ") + e.what();
    } catch (const ValidationError& e) {
      return std::string("validation: ") + e.what();
    } catch (const ForbiddenError&) {
      return "forbidden";
    } catch (const UnauthorizedError&) {
      return "unauthorized";  // before the body's error
    }
  };
  EXPECT_FALSE(answers[0].error);
  EXPECT_EQ(nlohmann::json::parse(answers[0].json)["data"]["deliveries"], 1);
  EXPECT_EQ(error(answers[1]), "bad request: request body must be valid JSON");
  EXPECT_EQ(nlohmann::json::parse(answers[2].json)["info"]["count"], 2);
  EXPECT_EQ(error(answers[3]), "validation: brand id must be a UUID");
  EXPECT_EQ(error(answers[4]).rfind("validation: events[1]: payload must be a JSON object", 0), 0u) << error(answers[4]);
  EXPECT_EQ(nlohmann::json::parse(answers[5].json)["data"]["deliveries"], 0);
  EXPECT_EQ(error(answers[6]), "forbidden");
  EXPECT_EQ(error(answers[7]), "unauthorized");
  EXPECT_EQ(hub_->stats().events, 4);  // 1 + 2 + 1: nothing of the refused ones
  EXPECT_TRUE(hub_->publish_json_each({}).empty());
}

TEST_P(HubTest, DeliveryControlsAreStoredReturnedAndChanged) {
  Webhook w = hub_->create_webhook(kBrand, "Deals", "https://example.com/", std::nullopt,
                                   {true, 20, {{"X-Tenant", "a1"}, {"Authorization", "Bearer t"}}});
  EXPECT_TRUE(w.ordered);
  EXPECT_EQ(w.rate_limit, 20);
  Headers expected{{"X-Tenant", "a1"}, {"Authorization", "Bearer t"}};
  EXPECT_EQ(w.headers, expected);
  Webhook read = hub_->get_webhook(kBrand, w.id);
  EXPECT_TRUE(read.ordered);
  EXPECT_EQ(read.rate_limit, 20);
  EXPECT_EQ(read.headers, expected);
  EXPECT_EQ(hub_->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}).items.at(0).headers, expected);
  EXPECT_EQ(to_json(read), to_json(w));

  WebhookPatch off;
  off.ordered = false;
  off.set_rate_limit = true;  // rate_limit nullopt: no limit
  off.headers = Headers{};
  Webhook changed = hub_->update_webhook(kBrand, w.id, off);
  EXPECT_FALSE(changed.ordered);
  EXPECT_FALSE(changed.rate_limit);
  EXPECT_TRUE(changed.headers.empty());
  auto j = nlohmann::json::parse(to_json(hub_->get_webhook(kBrand, w.id)));
  EXPECT_EQ(j["ordered"], false);
  EXPECT_TRUE(j["rate_limit"].is_null());
  EXPECT_EQ(j["headers"], nlohmann::json::object());

  WebhookPatch on;  // other fields stay as they are
  on.rate_limit = 10000;
  on.set_rate_limit = true;
  on.headers = Headers{{"X-A", "1"}};
  Webhook again = hub_->update_webhook(kBrand, w.id, on);
  EXPECT_FALSE(again.ordered);
  EXPECT_EQ(again.rate_limit, 10000);
  EXPECT_EQ(again.headers, (Headers{{"X-A", "1"}}));
  WebhookPatch url_only;
  url_only.url = "https://example.com/other";
  EXPECT_EQ(hub_->update_webhook(kBrand, w.id, url_only).headers, (Headers{{"X-A", "1"}}));
}

TEST_P(HubTest, BadDeliveryControlsAreRefusedAndChangeNothing) {
  auto create = [&](WebhookControls controls) {
    return hub_->create_webhook(kBrand, "Deals", "https://example.com/", std::nullopt, controls);
  };
  for (std::int64_t bad : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{10001}, std::int64_t{INT64_MAX}}) {
    EXPECT_THROW(create({false, bad, {}}), ValidationError) << bad;
  }
  EXPECT_THROW(create({false, std::nullopt, {{"Host", "x"}}}), ValidationError);
  EXPECT_THROW(create({false, std::nullopt, {{"X-Webhook-Signature", "x"}}}), ValidationError);
  EXPECT_THROW(create({false, std::nullopt, {{"X-A", "a\r\nX-B: b"}}}), ValidationError);
  EXPECT_EQ(hub_->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}).total, 0);

  Webhook w = create({true, 5, {{"X-A", "1"}}});
  auto refused = [&](WebhookPatch patch) {
    patch.url = "https://example.com/changed";  // would change too, were the patch accepted
    EXPECT_THROW(hub_->update_webhook(kBrand, w.id, patch), ValidationError);
  };
  WebhookPatch rate;
  rate.set_rate_limit = true;
  rate.rate_limit = 0;
  refused(rate);
  WebhookPatch headers;
  headers.headers = Headers{{"content-length", "5"}};
  refused(headers);
  Webhook same = hub_->get_webhook(kBrand, w.id);
  EXPECT_EQ(same.url, "https://example.com/");
  EXPECT_EQ(same.rate_limit, 5);
  EXPECT_EQ(same.headers, (Headers{{"X-A", "1"}}));
  EXPECT_EQ(same.updated_at, w.updated_at);
}

// Containers often share a host name and all run as pid 1: "host:pid" alone would make two
// nodes one (each releasing the other's leases at start). The default is new at every start.
TEST(HubConfig, TheDefaultNodeIdIsUniquePerStart) {
  Config c;
  c.db = ":memory:";
  Hub first(c), second(c);
  EXPECT_NE(first.config().node_id, second.config().node_id);
  EXPECT_EQ(first.config().node_id.substr(0, first.config().node_id.rfind(':')),
            second.config().node_id.substr(0, second.config().node_id.rfind(':')))
      << "the host and pid stay readable in front";
}

TEST(HubConfig, CustomHeadersMayNotBeTheConfiguredSignatureHeader) {
  Config config;
  config.db = (fs::temp_directory_path() / ("brandhooks-sighdr-" + std::to_string(::getpid()) + ".db")).string();
  config.signature_header = "X-Rechat-Signature";
  {
    Hub hub(config);
    EXPECT_THROW(hub.create_webhook(kBrand, "Deals", "https://example.com/", std::nullopt,
                                    {false, std::nullopt, {{"x-rechat-signature", "forged"}}}),
                 ValidationError);
    // The default signature header is an ordinary name once another is configured.
    EXPECT_NO_THROW(hub.create_webhook(kBrand, "Deals", "https://example.com/", std::nullopt,
                                       {false, std::nullopt, {{"X-Webhook-Signature", "x"}}}));
  }
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(config.db + suffix);
}

// Idempotent publishing (the store part runs on both backends).
TEST_P(HubTest, AnIdempotencyKeyPublishesOnceAndAnswersTheFirstResultAgain) {
  hub_->create_webhook(kBrand, "Deals", "https://example.com/hook");
  hub_->create_webhook(kBrand, "Deals", "https://example.com/other");
  PublishResult first = hub_->publish(kBrand, "Deals", "Created", R"({"a":1})", std::nullopt, "order-1");
  EXPECT_EQ(first.deliveries, 2);
  PublishResult again = hub_->publish(kBrand, "Deals", "Created", R"({"a":1})", std::nullopt, "order-1");
  EXPECT_EQ(again.event_id, first.event_id);
  EXPECT_EQ(again.deliveries, 2);
  EXPECT_EQ(hub_->stats().events, 1);
  EXPECT_EQ(hub_->stats().pending, 2);
  // Another event with that key: a conflict that stores nothing.
  EXPECT_THROW(hub_->publish(kBrand, "Deals", "Created", R"({"a":2})", std::nullopt, "order-1"), ConflictError);
  EXPECT_THROW(hub_->publish(kBrand, "Deals", "Updated", R"({"a":1})", std::nullopt, "order-1"), ConflictError);
  EXPECT_EQ(hub_->stats().events, 1);
  // Keys are per brand; keys are case-sensitive.
  EXPECT_NE(hub_->publish(kOther, "Deals", "Created", R"({"a":1})", std::nullopt, "order-1").event_id, first.event_id);
  EXPECT_NE(hub_->publish(kBrand, "Deals", "Created", R"({"a":1})", std::nullopt, "ORDER-1").event_id, first.event_id);
  EXPECT_EQ(hub_->stats().events, 3);

  // The raw REST path: the key stands for the whole body, a batch included.
  const std::string body = R"([{"topic":"Deals","event":"Created","payload":{}},{"topic":"Deals","event":"Created","payload":{}}])";
  std::string answer = hub_->publish_json(kBrand, body, "batch-1");
  EXPECT_EQ(hub_->publish_json(kBrand, body, "batch-1"), answer);
  EXPECT_EQ(hub_->stats().events, 5);
  EXPECT_THROW(hub_->publish_json(kBrand, R"({"topic":"Deals","event":"Created","payload":{}})", "batch-1"),
               ConflictError);
  // The same request twice in one group commit: one publish, the same answer twice.
  const std::string one = R"({"topic":"Deals","event":"Created","payload":{"n":1}})";
  const std::string other = R"({"topic":"Deals","event":"Created","payload":{"n":2}})";
  // The key stands for the events asked for, not the bytes: white space does not count.
  auto answers = hub_->publish_json_each({{kBrand, one, std::nullopt, "group-1"},
                                          {kBrand, one + " ", std::nullopt, "group-1"},
                                          {kBrand, other, std::nullopt, "group-1"}});
  ASSERT_FALSE(answers[0].error);
  ASSERT_FALSE(answers[1].error);
  EXPECT_EQ(answers[0].json, answers[1].json);
  ASSERT_TRUE(answers[2].error);
  EXPECT_THROW(std::rethrow_exception(answers[2].error), ConflictError);  // another event
  EXPECT_EQ(hub_->stats().events, 6);

  // publish_many: a key per event, all or nothing.
  std::vector<EventInput> many{{kBrand, "Deals", "Created", "{}", std::nullopt, "m-1"},
                               {kBrand, "Deals", "Created", "{}", std::nullopt, "m-2"}};
  auto published = hub_->publish_many(many);
  auto repeated = hub_->publish_many(many);
  EXPECT_EQ(repeated[0].event_id, published[0].event_id);
  EXPECT_EQ(repeated[1].event_id, published[1].event_id);
  EXPECT_EQ(hub_->stats().events, 8);
  many[1].payload_json = R"({"x":1})";
  many.push_back({kBrand, "Deals", "Created", "{}", std::nullopt, "m-3"});
  EXPECT_THROW(hub_->publish_many(many), ConflictError);
  EXPECT_EQ(hub_->stats().events, 8);  // m-3 was not stored either
}

TEST_P(HubTest, BadIdempotencyKeysAndRefusedRequestsRememberNothing) {
  for (std::string bad : {std::string(), std::string(256, 'k'), std::string("has space"), std::string("t\tab"),
                          std::string("caf\xc3\xa9"), std::string("nul\0", 4)}) {
    EXPECT_THROW(hub_->publish(kBrand, "Deals", "Created", "{}", std::nullopt, bad), ValidationError) << bad;
  }
  EXPECT_NO_THROW(hub_->publish(kBrand, "Deals", "Created", "{}", std::nullopt, std::string(255, '~')));
  // A request refused by validation stores no key: the key is free for a good request.
  EXPECT_THROW(hub_->publish(kBrand, "Nope", "Created", "{}", std::nullopt, "k"), ValidationError);
  EXPECT_THROW(hub_->publish_json(kBrand, R"({"topic":"Nope","event":"Created","payload":{}})", "k"),
               ValidationError);
  PublishResult r = hub_->publish(kBrand, "Deals", "Created", "{}", std::nullopt, "k");
  EXPECT_EQ(hub_->publish(kBrand, "Deals", "Created", "{}", std::nullopt, "k").event_id, r.event_id);
}


// --- issue 13: tokens that expire, portal links, the current token, descendants ------------

TEST_P(HubTest, ATokenStopsWorkingAtItsExpiryEverywhere) {
  // The shortest lifetime a Hub issues is a minute: this token, stored directly, lasts 1.5 s.
  const std::string secret = "bh_short_lived_secret_for_the_test";
  const std::string brand = kBrandLower;
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
  open_store(config_)->insert_token({TokenInfo{"33333333-3333-4333-8333-333333333333", brand, "short", now, now + 1'500'000},
                                     sha256(secret)});
  EXPECT_EQ(hub_->authorize(secret, brand).expires_at, now + 1'500'000);
  EXPECT_EQ(hub_->current_token(secret).label, "short");
  const std::string body = R"({"topic":"Deals","event":"Created","payload":{}})";
  auto publish = [&] { return std::move(hub_->publish_json_each({{brand, body, secret, std::nullopt}}).front()); };
  EXPECT_FALSE(publish().error);

  std::this_thread::sleep_until(std::chrono::system_clock::time_point(std::chrono::microseconds(now + 1'600'000)));
  EXPECT_EQ(unauthorized([&] { hub_->authenticate(secret); }), "token expired");
  EXPECT_EQ(unauthorized([&] { hub_->authorize(secret, brand); }), "token expired");
  EXPECT_EQ(unauthorized([&] { hub_->current_token(secret); }), "token expired");
  EXPECT_EQ(unauthorized([&] { hub_->create_portal_link(secret, brand, 3600, "http://x"); }), "token expired");
  auto answer = publish();  // the raw publish path (group commit) authorises the same way
  ASSERT_TRUE(answer.error);
  EXPECT_EQ(unauthorized([&] { std::rethrow_exception(answer.error); }), "token expired");
  EXPECT_EQ(hub_->stats().events, 1);  // only the first publish stored an event
}

TEST_P(HubTest, TokenLifetimesAreBoundedAndBadOnesCreateNothing) {
  for (std::int64_t bad : {std::int64_t{59}, std::int64_t{0}, std::int64_t{-60}, std::int64_t{30 * 86400 + 1}, INT64_MAX}) {
    EXPECT_THROW(hub_->create_token(kBrand, "x", bad), ValidationError) << bad;
  }
  EXPECT_TRUE(hub_->list_tokens().empty());
  IssuedToken shortest = hub_->create_token(kBrand, "x", 60);
  ASSERT_TRUE(shortest.info.expires_at);
  EXPECT_EQ(*shortest.info.expires_at, shortest.info.created_at + 60'000'000);
  IssuedToken longest = hub_->create_token(std::nullopt, "y", 30 * 86400);
  EXPECT_EQ(*longest.info.expires_at, longest.info.created_at + 30LL * 86400 * 1'000'000);
  EXPECT_FALSE(hub_->create_token(kBrand).info.expires_at);
  auto listed = hub_->list_tokens();
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].expires_at, shortest.info.expires_at);
  EXPECT_EQ(hub_->current_token(shortest.secret).expires_at, shortest.info.expires_at);
  auto j = nlohmann::ordered_json::parse(to_json(shortest));
  EXPECT_DOUBLE_EQ(j["expires_at"].get<double>(), static_cast<double>(*shortest.info.expires_at) / 1e6);
}

TEST_P(HubTest, CurrentTokenTellsWhoTheBearerIs) {
  IssuedToken admin = hub_->create_token(std::nullopt, "ops");
  IssuedToken brand = hub_->create_token(kBrand, "shop", 3600);
  TokenInfo a = hub_->current_token(admin.secret);
  EXPECT_EQ(a.id, admin.info.id);
  EXPECT_FALSE(a.brand);
  EXPECT_FALSE(a.expires_at);
  TokenInfo b = hub_->current_token(brand.secret);
  EXPECT_EQ(b.brand, kBrandLower);
  EXPECT_EQ(b.label, "shop");
  EXPECT_EQ(b.expires_at, brand.info.expires_at);
  EXPECT_EQ(unauthorized([&] { hub_->current_token("bh_nope"); }), "invalid or revoked token");
  hub_->revoke_token(brand.info.id);
  EXPECT_EQ(unauthorized([&] { hub_->current_token(brand.secret); }), "invalid or revoked token");
}

TEST_P(HubTest, APortalLinkCarriesABrandTokenThatReachesOnlyItsBrand) {
  const std::string child = "44444444-4444-4444-8444-444444444444";
  hub_->set_brand_parent(child, kBrand);
  IssuedToken admin = hub_->create_token(std::nullopt, "ops");
  PortalLink link = hub_->create_portal_link(admin.secret, kBrand, 3600, "http://127.0.0.1:8080/");
  const std::string prefix = "http://127.0.0.1:8080/portal#token=";
  ASSERT_EQ(link.url.rfind(prefix, 0), 0u) << link.url;
  std::string secret = link.url.substr(prefix.size());
  EXPECT_EQ(link.brand, kBrandLower);

  TokenInfo token = hub_->current_token(secret);
  EXPECT_EQ(token.id, link.token_id);
  EXPECT_EQ(token.brand, kBrandLower);
  EXPECT_EQ(token.label, "portal link");
  EXPECT_EQ(token.expires_at, link.expires_at);
  EXPECT_EQ(link.expires_at, token.created_at + 3600LL * 1'000'000);
  EXPECT_NO_THROW(hub_->authorize(secret, kBrand));
  EXPECT_NO_THROW(hub_->authorize(secret, child));  // a descendant
  EXPECT_THROW(hub_->authorize(secret, kOther), ForbiddenError);
  EXPECT_THROW(hub_->authorize_admin(secret), ForbiddenError);

  auto j = nlohmann::ordered_json::parse(to_json(link));
  std::vector<std::string> keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"url", "expires_at", "brand", "token_id"}));
}

TEST_P(HubTest, APortalLinkNeverOutlivesTheTokenThatMadeIt) {
  IssuedToken brief = hub_->create_token(kBrand, "brief", 120);
  PortalLink link = hub_->create_portal_link(brief.secret, kBrand, 86400, "https://h");
  EXPECT_EQ(link.expires_at, *brief.info.expires_at);
  // A link made with a link's token is clamped to it too, however long it asks for.
  std::string secret = link.url.substr(link.url.find("#token=") + 7);
  EXPECT_EQ(hub_->create_portal_link(secret, kBrand, 86400, "https://h").expires_at, *brief.info.expires_at);
  // Shorter than the caller's: as asked.
  PortalLink short_link = hub_->create_portal_link(brief.secret, kBrand, 60, "https://h");
  EXPECT_EQ(short_link.expires_at, hub_->current_token(short_link.url.substr(short_link.url.find("#token=") + 7)).created_at + 60'000'000);
}

TEST_P(HubTest, BadPortalLinkRequestsCreateNoToken) {
  IssuedToken admin = hub_->create_token(std::nullopt, "ops");
  IssuedToken other = hub_->create_token(kOther, "other");
  EXPECT_THROW(hub_->create_portal_link(admin.secret, kBrand, 59, "http://h"), ValidationError);
  EXPECT_THROW(hub_->create_portal_link(admin.secret, kBrand, 86401, "http://h"), ValidationError);
  EXPECT_THROW(hub_->create_portal_link(admin.secret, "not-a-uuid", 3600, "http://h"), ValidationError);
  EXPECT_THROW(hub_->create_portal_link(admin.secret, kBrand, 3600, ""), ValidationError);
  for (const char* base : {"ftp://h", "http://h/#x", "http://h/?a=b", "h:8080", "http://u:p@h"}) {
    EXPECT_THROW(hub_->create_portal_link(admin.secret, kBrand, 3600, base), ValidationError) << base;
  }
  EXPECT_THROW(hub_->create_portal_link(other.secret, kBrand, 3600, "http://h"), ForbiddenError);
  EXPECT_THROW(hub_->create_portal_link("bh_nope", kBrand, 3600, "http://h"), UnauthorizedError);
  EXPECT_EQ(hub_->list_tokens().size(), 2u);
}

TEST_P(HubTest, PublicUrlIsTheBaseOfPortalLinks) {
  IssuedToken admin = hub_->create_token(std::nullopt, "ops");
  Config config = config_;
  config.public_url = "https://hooks.example.com/bh/";
  Hub behind_proxy(config);
  PortalLink link = behind_proxy.create_portal_link(admin.secret, kBrand, 3600, "http://127.0.0.1:8080");
  EXPECT_EQ(link.url.rfind("https://hooks.example.com/bh/portal#token=bh_", 0), 0u) << link.url;
}

TEST(HubConfig, PublicUrlMustBeAnAbsoluteHttpUrlWithoutFragment) {
  for (const char* bad : {"hooks.example.com", "/portal", "ftp://hooks.example.com", "https://hooks.example.com/#x",
                          "https://hooks.example.com/?a=b", "https://user:pw@hooks.example.com", "https://", "https://a b"}) {
    Config c;
    c.db = ":memory:";
    c.public_url = bad;
    EXPECT_THROW(Hub{c}, ValidationError) << bad;
  }
  for (const char* good : {"", "https://hooks.example.com", "http://127.0.0.1:8080/", "https://[::1]:8443/a/b"}) {
    Config c;
    c.db = ":memory:";
    c.public_url = good;
    EXPECT_NO_THROW(Hub{c}) << good;
  }
}

TEST_P(HubTest, DescendantsOfABrand) {
  const std::string child = "55555555-5555-4555-8555-555555555555";
  const std::string grandchild = "66666666-6666-4666-8666-666666666666";
  hub_->set_brand_parent(child, kBrand);
  hub_->set_brand_parent(grandchild, child);
  auto below = hub_->brand_descendants(kBrand);  // any case
  ASSERT_EQ(below.size(), 2u);
  EXPECT_EQ(below[0].id, child);
  EXPECT_EQ(below[0].parent, kBrandLower);
  EXPECT_EQ(below[1].id, grandchild);
  EXPECT_EQ(below[1].parent, child);
  EXPECT_TRUE(hub_->brand_descendants(grandchild).empty());
  EXPECT_THROW(hub_->brand_descendants("nope"), ValidationError);
}
