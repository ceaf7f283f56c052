# Every dependency is a Debian 12 package installed by deploy/install-deps.sh.
find_package(Threads REQUIRED)
find_package(Boost 1.74 EXACT REQUIRED COMPONENTS context)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
# Debian's tomlplusplus CMake package asks for a compiled library it does not ship; the header-only
# form is used instead (included by hub/config.cc alone).
find_path(TOMLPLUSPLUS_INCLUDE_DIR toml++/toml.h REQUIRED)
find_package(CLI11 REQUIRED)
find_package(RocksDB REQUIRED)
find_package(msgpack REQUIRED)  # Debian: cmake/msgpackc-cxx/msgpack-config.cmake
find_package(roaring REQUIRED)
find_package(pugixml REQUIRED)
find_package(RapidJSON REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)

if(PUSHHUB_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(PUSHHUB_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
