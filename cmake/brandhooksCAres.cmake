# c-ares (asynchronous DNS) as the target c-ares::cares: from c-ares' own CMake package where
# the system ships one (newer c-ares), else from its pkg-config file (Debian 12's
# libc-ares-dev 1.18 has only that). Used by the build and by the installed package alike.
if(NOT TARGET c-ares::cares)
  find_package(c-ares 1.16 CONFIG QUIET)
  if(NOT TARGET c-ares::cares)
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares>=1.16)  # ares_getaddrinfo
    add_library(c-ares::cares INTERFACE IMPORTED)
    target_link_libraries(c-ares::cares INTERFACE PkgConfig::CARES)
  endif()
endif()
