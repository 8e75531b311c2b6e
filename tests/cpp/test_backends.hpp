#pragma once
// The storage backends the store and hub tests run against: a SQLite file, and a fresh
// database per test on the throwaway PostgreSQL server of the ctest fixture `pg`
// (tests/pg/pgserver.py; its admin URL is in the file BRANDHOOKS_TEST_PG_URL_FILE names).
#include <libpq-fe.h>

#include <atomic>
#include <cstdlib>
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

}  // namespace brandhooks_test
