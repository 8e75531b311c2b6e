#pragma once
// One row of a PostgreSQL result as store_common.hpp's readers (webhook_from_row, ...) see
// it: text columns as text, bytea columns as their bytes.
#include "pg/connection.hpp"

namespace brandhooks::pg {

class Row {
 public:
  Row(const Result& result, int row) : result_(result), row_(row) {}
  bool is_null(int col) const { return result_.is_null(row_, col); }
  std::string text(int col) const {
    constexpr Oid kBytea = 17;
    return PQftype(result_.get(), col) == kBytea ? result_.bytes(row_, col) : result_.text(row_, col);
  }
  std::int64_t int64(int col) const { return result_.int64(row_, col); }

 private:
  const Result& result_;
  int row_;
};

}  // namespace brandhooks::pg
