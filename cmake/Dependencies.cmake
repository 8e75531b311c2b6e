# Every third-party dependency comes from the system (Debian/Ubuntu packages:
# libboost-dev libsqlitecpp-dev libsqlite3-dev libssl-dev nlohmann-json3-dev libgtest-dev
# libc-ares-dev)
# or from PyPI (pybind11). Nothing is vendored.
find_package(Threads REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(SQLiteCpp REQUIRED)          # imported target `SQLiteCpp` (no namespace)
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
