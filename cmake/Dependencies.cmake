# Every third-party dependency comes from the system (Debian/Ubuntu packages:
# libboost-dev libsqlitecpp-dev libsqlite3-dev libpq-dev libssl-dev nlohmann-json3-dev libgtest-dev
# libc-ares-dev)
# or from PyPI (pybind11). Nothing is vendored.
find_package(Threads REQUIRED)
# BRANDHOOKS_STATIC_DEPS (the wheel): a module that needs no -dev (or any OpenSSL/SQLite)
# package where it runs. The libraries found last time are forgotten when the option changes.
set(_bh_lib_suffix "\\.so")
if(BRANDHOOKS_STATIC_DEPS)
  set(OPENSSL_USE_STATIC_LIBS TRUE)
  set(_bh_lib_suffix "\\.a")
endif()
foreach(_bh_var OPENSSL_SSL_LIBRARY OPENSSL_CRYPTO_LIBRARY SQLite3_LIBRARY)
  if(${_bh_var} AND NOT ${_bh_var} MATCHES "${_bh_lib_suffix}$")
    unset(${_bh_var} CACHE)
  endif()
endforeach()
if(BRANDHOOKS_STATIC_DEPS)
  find_library(SQLite3_LIBRARY NAMES libsqlite3.a)  # FindSQLite3 (through SQLiteCpp) keeps it
  if(NOT SQLite3_LIBRARY)
    message(FATAL_ERROR "BRANDHOOKS_STATIC_DEPS: no libsqlite3.a (Debian: libsqlite3-dev)")
  endif()
endif()
find_package(OpenSSL 3.0 REQUIRED)
find_package(SQLiteCpp REQUIRED)          # imported target `SQLiteCpp` (no namespace)
find_package(PostgreSQL 13 REQUIRED)      # libpq (Debian: libpq-dev), PostgreSQL::PostgreSQL
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Boost 1.74 REQUIRED)         # header-only parts: Asio, Beast
include(${CMAKE_CURRENT_LIST_DIR}/brandhooksCAres.cmake)  # c-ares::cares

if(BRANDHOOKS_BUILD_PYTHON)
  # Find the real interpreter first: under pyenv pybind11's legacy lookup can pick a shim.
  find_package(Python 3.9 REQUIRED COMPONENTS Interpreter Development.Module)
  find_package(pybind11 CONFIG REQUIRED)
endif()

if(BRANDHOOKS_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
