#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "brandhooks/errors.hpp"
#include "log.hpp"
#include "store.hpp"

using namespace brandhooks;

TEST(Log, LevelsParseAndOrder) {
  EXPECT_EQ(parse_log_level("info"), LogLevel::info);
  EXPECT_EQ(parse_log_level("off"), LogLevel::off);
  EXPECT_THROW(parse_log_level("INFO "), ValidationError);
  EXPECT_LT(LogLevel::info, LogLevel::warning);
}

TEST(Log, FormatsParse) {
  EXPECT_EQ(parse_log_format("logfmt"), LogFormat::logfmt);
  EXPECT_EQ(parse_log_format("json"), LogFormat::json);
  EXPECT_THROW(parse_log_format("JSON"), ValidationError);
  EXPECT_THROW(parse_log_format(""), ValidationError);
}

TEST(Log, ValuesAreQuotedWhenTheyNeedIt) {
  LogLine line(LogFormat::logfmt, LogLevel::info, "a b");
  std::string text = line.add("plain", "x-1").add("spaced", "say \"hi\"\nbye").add("n", std::int64_t{42}).text();
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1);  // one line, whatever the values hold
  EXPECT_NE(text.find(" level=info msg=\"a b\" plain=x-1 spaced=\"say \\\"hi\\\"\\nbye\" n=42\n"), std::string::npos);
  EXPECT_EQ(text.rfind("time=", 0), 0u);
}

TEST(Log, JsonLinesAreOneObjectWithTheSameFieldsInOrder) {
  LogLine line(LogFormat::json, LogLevel::warning, "a \"b\"");
  std::string text = line.add("plain", "x-1")
                         .add("spaced", "say \"hi\"\nbye\\")
                         .add("bytes", std::string("ok \xff\x01 end"))  // not UTF-8, a control byte
                         .add("n", std::int64_t{-42})
                         .add_time("at", 1'764'240'623'250'000)
                         .text();
  EXPECT_EQ(text, line.text());  // finished once
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1);  // one line, whatever the values hold
  auto parsed = nlohmann::ordered_json::parse(text);
  std::vector<std::string> keys;
  for (const auto& item : parsed.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"time", "level", "msg", "plain", "spaced", "bytes", "n", "at"}));
  EXPECT_EQ(parsed["level"], "warning");
  EXPECT_EQ(parsed["msg"], "a \"b\"");
  EXPECT_EQ(parsed["spaced"], "say \"hi\"\nbye\\");
  EXPECT_EQ(parsed["bytes"], "ok \xef\xbf\xbd\x01 end");  // U+FFFD for the stray byte; JSON escapes the control byte
  EXPECT_TRUE(parsed["n"].is_number_integer());
  EXPECT_EQ(parsed["n"], -42);
  EXPECT_EQ(parsed["at"], "2025-11-27T10:50:23.250Z");
  EXPECT_EQ(parsed["time"].get<std::string>().size(), 24u);  // YYYY-MM-DDTHH:MM:SS.mmmZ
}

TEST(Log, AttemptLinesSayWhatWasDecidedWithoutSecrets) {
  auto target = std::make_shared<WebhookTarget>();
  target->id = "w-1";
  target->brand = "b-1";
  target->url = "https://user:secret-pw@example.com/hook";
  target->keys = {std::string(64, 'a')};
  DueDelivery d;
  d.id = "d-1";
  d.target = target;
  AttemptRecord r;
  r.attempt.number = 2;
  r.attempt.duration_us = 12'500;
  r.attempt.error = AttemptError::connect;
  r.attempt.detail = "cannot connect to example.com: Connection refused";
  r.attempt.response = "body";
  r.new_state = DeliveryState::pending;
  r.next_at = 1'764'240'623'000'000;
  EXPECT_EQ(attempt_log_level(r), LogLevel::info);
  std::string line = attempt_log_line(LogFormat::logfmt, d, r);
  EXPECT_NE(line.find("delivery=d-1 webhook=w-1 brand=b-1 attempt=2 state=pending error=connect "
                      "detail=\"cannot connect to example.com: Connection refused\" duration_ms=12 "
                      "next_attempt_at=2025-11-27T10:50:23.000Z"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("secret-pw"), std::string::npos);
  EXPECT_EQ(line.find(target->keys[0]), std::string::npos);

  // The same fields as JSON: numbers as numbers, times as the same text.
  std::string json_line = attempt_log_line(LogFormat::json, d, r);
  auto parsed = nlohmann::ordered_json::parse(json_line);
  std::vector<std::string> keys;
  for (const auto& item : parsed.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"time", "level", "msg", "delivery", "webhook", "brand", "attempt", "state",
                                            "error", "detail", "duration_ms", "next_attempt_at"}));
  EXPECT_EQ(parsed["msg"], "attempt failed, retry scheduled");
  EXPECT_EQ(parsed["attempt"], 2);
  EXPECT_EQ(parsed["duration_ms"], 12);
  EXPECT_EQ(parsed["next_attempt_at"], "2025-11-27T10:50:23.000Z");
  EXPECT_EQ(json_line.find("secret-pw"), std::string::npos);
  EXPECT_EQ(json_line.find(target->keys[0]), std::string::npos);

  r.new_state = DeliveryState::failed;
  r.next_at.reset();
  r.disable_reason = "the endpoint answered 410 Gone";
  EXPECT_EQ(attempt_log_level(r), LogLevel::warning);
  EXPECT_NE(attempt_log_line(LogFormat::logfmt, d, r).find("msg=\"delivery failed, webhook disabled\""),
            std::string::npos);
  r.attempt.error = AttemptError::none;
  r.attempt.status = 410;
  auto failed = nlohmann::json::parse(attempt_log_line(LogFormat::json, d, r));
  EXPECT_EQ(failed["status"], 410);
  EXPECT_EQ(failed["disabled"], "the endpoint answered 410 Gone");
  EXPECT_FALSE(failed.contains("next_attempt_at"));
}

TEST(Log, AnAttemptOfATracedEventNamesItsTrace) {
  DueDelivery d;
  d.id = "d-1";
  AttemptRecord r;
  r.attempt.number = 1;
  r.attempt.status = 200;
  r.new_state = DeliveryState::delivered;
  EXPECT_EQ(attempt_log_line(LogFormat::logfmt, d, r).find("trace_id"), std::string::npos);  // none invented
  EXPECT_FALSE(nlohmann::json::parse(attempt_log_line(LogFormat::json, d, r)).contains("trace_id"));
  d.trace = std::make_shared<const TraceContext>(
      TraceContext{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=secret-ish"});
  std::string line = attempt_log_line(LogFormat::logfmt, d, r);
  EXPECT_NE(line.find(" trace_id=4bf92f3577b34da6a3ce929d0e0e4736"), std::string::npos) << line;
  EXPECT_EQ(line.find("vendor="), std::string::npos);  // the tracestate is the vendors' business
  std::string json_line = attempt_log_line(LogFormat::json, d, r);
  EXPECT_EQ(nlohmann::json::parse(json_line)["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736") << json_line;
  EXPECT_EQ(json_line.find("vendor="), std::string::npos);
}
