#pragma once
// The storage backends the store and hub tests run against: a SQLite file, and a fresh
// database per test on the throwaway PostgreSQL server of the ctest fixture `pg`
// (tests/pg/pgserver.py; its admin URL is in the file BRANDHOOKS_TEST_PG_URL_FILE names).
#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>
#include <unistd.h>

namespace brandhooks_test {

enum class Backend { sqlite, pg };

inline std::string backend_name(Backend b) { return b == Backend::sqlite ? "sqlite" : "pg"; }
// How GoogleTest (and so ctest's test names) shows a backend.
inline void PrintTo(Backend b, std::ostream* os) { *os << backend_name(b); }

// Runs `sql` on the database at `url` and returns every row's columns as text.
inline std::vector<std::vector<std::string>> pg_query(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect to the test server: " + message);
  }
  PGresult* result = PQexec(conn, sql.c_str());
  auto status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string message = PQresultErrorMessage(result);
    PQclear(result);
    PQfinish(conn);
    throw std::runtime_error(sql + ": " + message);
  }
  std::vector<std::vector<std::string>> rows;
  for (int r = 0; r < PQntuples(result); ++r) {
    rows.emplace_back();
    for (int c = 0; c < PQnfields(result); ++c) rows.back().emplace_back(PQgetvalue(result, r, c));
  }
  PQclear(result);
  PQfinish(conn);
  return rows;
}

// The test server's admin URL; empty when the tests run outside ctest's fixture.
inline std::string pg_admin_url() {
  const char* file = std::getenv("BRANDHOOKS_TEST_PG_URL_FILE");
  if (!file) return "";
  std::ifstream in(file);
  std::string url;
  std::getline(in, url);
  return url;
}

// A fresh, uniquely named database on the test server; dropped by drop_pg_database.
inline std::string create_pg_database(const std::string& admin_url, std::string* name_out = nullptr) {
  static std::atomic<int> counter{0};
  std::string name = "bh_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" +
                     std::to_string(std::random_device{}() % 1000000);
  pg_query(admin_url, "CREATE DATABASE " + name);
  if (name_out) *name_out = name;
  return admin_url.substr(0, admin_url.rfind('/') + 1) + name;
}

inline void drop_pg_database(const std::string& admin_url, const std::string& name) {
  pg_query(admin_url, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

// Why a PostgreSQL test skips outside ctest.
inline constexpr const char* kNoPgServer = "no PostgreSQL test server (run through ctest: fixture pg)";

// The database of one test: a SQLite file in a fresh directory named after the test, or a fresh
// database on the test server; both go with this object. `db()` is empty when PostgreSQL is asked
// for outside ctest's fixture (the test then skips with kNoPgServer).

class TestDatabase {
 public:
  TestDatabase(Backend backend, const std::string& prefix) {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = std::filesystem::temp_directory_path() / (prefix + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (backend == Backend::sqlite) {
      db_ = (dir_ / "store.db").string();
      return;
    }
    admin_url_ = pg_admin_url();
    if (!admin_url_.empty()) db_ = create_pg_database(admin_url_, &pg_name_);
  }
  ~TestDatabase() {
    try {
      if (!pg_name_.empty()) drop_pg_database(admin_url_, pg_name_);
    } catch (const std::exception&) {  // a database left behind goes with the test server
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& db() const { return db_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string db_;
  std::string admin_url_;
  std::string pg_name_;
};

}  // namespace brandhooks_test
