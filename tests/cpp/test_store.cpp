#include <gtest/gtest.h>
#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unistd.h>

#include "brandhooks/errors.hpp"
#include "brandhooks/hub.hpp"
#include "store.hpp"

using namespace brandhooks;
namespace fs = std::filesystem;

namespace {
// A fresh database path per test, removed afterwards.
class StoreFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("brandhooks-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    config_.db = (dir_ / "store.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  Webhook make_webhook(const std::string& id, const std::string& brand, const std::string& topic) {
    Webhook w;
    w.id = id;
    w.brand = brand;
    w.topic = topic;
    w.url = "https://example.com/" + id;
    w.key = std::string(64, 'a');
    w.created_at = w.updated_at = 1'700'000'000'123'456;
    return w;
  }

  fs::path dir_;
  Config config_;
};

const std::string kBrand = "11111111-1111-4111-8111-111111111111";
}  // namespace

TEST_F(StoreFile, UsesWalAndCurrentSchema) {
  open_sqlite_store(config_);
  SQLite::Database db(config_.db);
  EXPECT_EQ(db.execAndGet("PRAGMA journal_mode").getString(), "wal");
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), sqlite_schema_version());
}

TEST_F(StoreFile, DataSurvivesReopen) {
  {
    auto store = open_sqlite_store(config_);
    store->insert_webhook(make_webhook("w1", kBrand, "Deals"));
  }
  auto store = open_sqlite_store(config_);
  auto found = store->find_live_webhook(kBrand, "w1");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->url, "https://example.com/w1");
  EXPECT_EQ(found->created_at, 1'700'000'000'123'456);
}

TEST_F(StoreFile, OpensAFileOfEveryOlderSchemaVersion) {
  for (int old_version = 1; old_version <= sqlite_schema_version(); ++old_version) {
    fs::remove(config_.db);
    {
      SQLite::Database db(config_.db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      for (int v = 0; v < old_version; ++v) db.exec(sqlite_migration(v));
      db.exec("PRAGMA user_version = " + std::to_string(old_version));
      db.exec("INSERT INTO brands VALUES ('" + kBrand + "', NULL, 1, 1)");
      db.exec("INSERT INTO webhooks (id, brand, topic, url, key, tags, created_at, updated_at) "
              "VALUES ('old', '" + kBrand + "', 'Deals', 'https://old.example/', '" +
              std::string(64, 'b') + "', '[\"t\"]', 1, 1)");
    }
    auto store = open_sqlite_store(config_);
    auto found = store->find_live_webhook(kBrand, "old");
    ASSERT_TRUE(found) << "from version " << old_version;
    EXPECT_EQ(found->tags, std::vector<std::string>{"t"});
    SQLite::Database db(config_.db);
    EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), sqlite_schema_version());
  }
}

TEST_F(StoreFile, RefusesAFileFromANewerVersion) {
  {
    SQLite::Database db(config_.db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA user_version = " + std::to_string(sqlite_schema_version() + 1));
  }
  EXPECT_THROW(open_sqlite_store(config_), StorageError);
}

TEST_F(StoreFile, RefusesAFileThatIsNotADatabase) {
  { std::ofstream(config_.db) << std::string(4096, 'x'); }
  EXPECT_THROW(open_sqlite_store(config_), StorageError);
}

TEST_F(StoreFile, ListFiltersPagesAndCounts) {
  auto store = open_sqlite_store(config_);
  for (int i = 0; i < 5; ++i) {
    store->insert_webhook(make_webhook("d" + std::to_string(i), kBrand, "Deals"));
    store->insert_webhook(make_webhook("s" + std::to_string(i), kBrand, "Showings"));
  }
  store->soft_delete_webhook(kBrand, "d0", 2);

  auto all = store->list_webhooks({kBrand, std::nullopt, 0, std::nullopt});
  EXPECT_EQ(all.total, 9);
  EXPECT_EQ(all.items.size(), 9u);

  auto deals = store->list_webhooks({kBrand, "Deals", 1, 2});
  EXPECT_EQ(deals.total, 4);
  ASSERT_EQ(deals.items.size(), 2u);
  EXPECT_EQ(deals.items[0].id, "d2");  // insertion order, d0 deleted
  EXPECT_EQ(deals.items[1].id, "d3");
}

TEST_F(StoreFile, SoftDeleteKeepsTheRowAndHidesIt) {
  auto store = open_sqlite_store(config_);
  store->insert_webhook(make_webhook("w", kBrand, "Deals"));
  auto deleted = store->soft_delete_webhook(kBrand, "w", 42);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->deleted_at, 42);
  EXPECT_FALSE(store->soft_delete_webhook(kBrand, "w", 43));  // already deleted
  EXPECT_FALSE(store->find_live_webhook(kBrand, "w"));
  SQLite::Database db(config_.db);
  EXPECT_EQ(db.execAndGet("SELECT deleted_at FROM webhooks WHERE id = 'w'").getInt64(), 42);
}

TEST_F(StoreFile, BrandTreeRefusesCycles) {
  auto store = open_sqlite_store(config_);
  const std::string a = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
  const std::string b = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
  const std::string c = "cccccccc-cccc-4ccc-8ccc-cccccccccccc";
  store->set_brand_parent(b, a, 1);
  store->set_brand_parent(c, b, 1);
  EXPECT_EQ(store->brand_lineage(c), (std::vector<std::string>{c, b, a}));
  EXPECT_THROW(store->set_brand_parent(a, c, 2), ConflictError);
  EXPECT_EQ(store->brand_parent(a), std::nullopt);
  store->set_brand_parent(c, std::nullopt, 3);
  EXPECT_EQ(store->brand_lineage(c), std::vector<std::string>{c});
}

TEST_F(StoreFile, ConcurrentWritersLoseNothing) {
  auto store = open_sqlite_store(config_);
  constexpr int kThreads = 8, kEach = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        try {
          std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
          store->insert_webhook(make_webhook(id, kBrand, "Contacts"));
          if (i % 2 == 0) store->soft_delete_webhook(kBrand, id, 5);
          store->list_webhooks({kBrand, "Contacts", 0, 10});
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->list_webhooks({kBrand, std::nullopt, 0, std::nullopt}).total,
            kThreads * kEach / 2);
}
