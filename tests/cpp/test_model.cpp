// Every record's JSON has exactly the fields of its table (record_fields), in the table's order,
// with values of the declared types: the tables are what the OpenAPI schema, the Python client
// and the docs are derived from, so a field written in to_json only would be a field they lack.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "brandhooks/model.hpp"

namespace brandhooks {
namespace {

using json = nlohmann::ordered_json;

// The table's fields, checked against one JSON object (recursing into arrays of records).
void expect_shape(std::string_view record, const json& j) {
  SCOPED_TRACE(std::string(record));
  ASSERT_TRUE(j.is_object());
  auto fields = record_fields(record);
  std::vector<std::string> keys, names;
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  for (const auto& field : fields) names.emplace_back(field.name);
  ASSERT_EQ(keys, names);
  for (const auto& field : fields) {
    const json& value = j.at(std::string(field.name));
    SCOPED_TRACE(std::string(field.name));
    if (value.is_null()) {
      EXPECT_TRUE(field.nullable);
      continue;
    }
    std::string_view type = field.type;
    if (type == "string" || type == "uuid") {
      EXPECT_TRUE(value.is_string());
    } else if (type == "integer") {
      EXPECT_TRUE(value.is_number_integer());
    } else if (type == "number" || type == "time") {
      EXPECT_TRUE(value.is_number());
    } else if (type == "boolean") {
      EXPECT_TRUE(value.is_boolean());
    }
    if (type == "string{}") {
      ASSERT_TRUE(value.is_object());
      for (const auto& [name, text] : value.items()) EXPECT_TRUE(text.is_string()) << name;
    }
    if (type.ends_with("[]")) {
      ASSERT_TRUE(value.is_array());
      std::string_view items = type.substr(0, type.size() - 2);
      for (const auto& item : value) {
        if (items == "string") {
          EXPECT_TRUE(item.is_string());
        } else {
          expect_shape(items, item);
        }
      }
    }
    if (!field.values.empty()) {
      EXPECT_NE(std::find(field.values.begin(), field.values.end(), value.get<std::string>()), field.values.end());
    }
  }
}

void expect_shape(std::string_view record, const std::string& text) { expect_shape(record, json::parse(text)); }

const std::string kId = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";

TEST(RecordShapes, EveryRecordIsWrittenWithItsTableFieldsInOrder) {
  Webhook w{kId, 1, 2, std::nullopt, kId, "Deals", "https://x/", std::string(64, 'a'), std::nullopt, std::nullopt, "",
            false, std::nullopt, {}, std::nullopt, std::nullopt};
  expect_shape("webhook", to_json(w));
  expect_shape("webhook_state", state_json(w));
  w.deleted_at = 3;
  w.tags = std::vector<std::string>{"a"};
  w.disabled_at = 4;
  w.disabled_reason = "410 Gone";
  w.ordered = true;
  w.rate_limit = 7;
  w.headers = {{"X-Tenant", "a1"}};
  w.failing_since = 5;
  w.last_success_at = 6'000'000;
  expect_shape("webhook", to_json(w));
  expect_shape("webhook_state", state_json(w));

  Delivery d{kId, kId, kId, kId, "Deals", "Created", DeliveryState::pending, 2, 1, 2, 3, {}};
  expect_shape("delivery", to_json(d));
  d.attempts.push_back({1, 1, 1500, 500, AttemptError::none, "", "oops"});
  d.attempts.push_back({2, 2, 30000, std::nullopt, AttemptError::timeout, "no answer", ""});
  d.next_attempt_at.reset();
  expect_shape("delivery", to_json(d));

  expect_shape("published", to_json(PublishResult{kId, 3}));
  expect_shape("recovered", to_json(RecoverResult{1, {kId}}));
  expect_shape("token", to_json(TokenInfo{kId, std::nullopt, "ops", 1, std::nullopt}));
  expect_shape("token", to_json(TokenInfo{kId, kId, "link", 1, 2}));
  expect_shape("new_token", to_json(IssuedToken{{kId, kId, "brand", 1, std::nullopt}, "bh_secret"}));
  expect_shape("new_token", to_json(IssuedToken{{kId, kId, "brand", 1, 2}, "bh_secret"}));
  expect_shape("portal_link", to_json(PortalLink{"https://x/portal#token=bh_s", 2, kId, kId}));
  Stats stats;
  expect_shape("stats", to_json(stats));
  stats.oldest_due_at = 5;
  expect_shape("stats", to_json(stats));
  expect_shape("brand", to_json(Brand{kId, std::nullopt}));
  expect_shape("brand", to_json(Brand{kId, kId}));
}

TEST(RecordShapes, TablesAreWellFormed) {
  std::vector<std::string_view> names(record_names().begin(), record_names().end());
  for (auto record : names) {
    SCOPED_TRACE(std::string(record));
    std::set<std::string_view> seen;
    for (const auto& field : record_fields(record)) {
      EXPECT_TRUE(seen.insert(field.name).second) << field.name << " twice";
      EXPECT_FALSE(field.description.empty()) << field.name;
      std::string_view type = field.type;
      bool scalar = type == "string" || type == "uuid" || type == "integer" || type == "number" ||
                    type == "time" || type == "boolean" || type == "string[]" || type == "string{}";
      bool records = type.ends_with("[]") &&
                     std::find(names.begin(), names.end(), type.substr(0, type.size() - 2)) != names.end();
      EXPECT_TRUE(scalar || records) << field.name << ": " << type;
    }
  }
  EXPECT_THROW(record_fields("nope"), std::out_of_range);
}

}  // namespace
}  // namespace brandhooks
