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

# gperftools' tcmalloc (Debian's libgoogle-perftools-dev) for the server, the simulator and the
# benchmarks: glibc malloc/free were ~11% of pushhub's CPU on REST upserts, and tcmalloc took an
# upsert from ~35 to ~30 µs (bench/RESULTS.md). Not under a sanitizer, which brings its own
# allocator; PUSHHUB_ALLOCATOR=system keeps glibc's.
set(PUSHHUB_ALLOCATOR "tcmalloc" CACHE STRING "Allocator of the executables: tcmalloc or system")
set(PUSHHUB_ALLOCATOR_LIBRARY "")
if(PUSHHUB_ALLOCATOR STREQUAL "tcmalloc" AND PUSHHUB_SANITIZE STREQUAL "")
  find_library(TCMALLOC_MINIMAL_LIBRARY tcmalloc_minimal REQUIRED)
  set(PUSHHUB_ALLOCATOR_LIBRARY ${TCMALLOC_MINIMAL_LIBRARY})
elseif(NOT PUSHHUB_ALLOCATOR MATCHES "^(tcmalloc|system)$")
  message(FATAL_ERROR "PUSHHUB_ALLOCATOR=${PUSHHUB_ALLOCATOR}: expected tcmalloc or system")
endif()
# Links the chosen allocator into an executable (nothing references it by name, so it must not
# be dropped as unneeded).
function(pushhub_use_allocator target)
  if(PUSHHUB_ALLOCATOR_LIBRARY)
    target_link_libraries(${target} PRIVATE -Wl,--push-state,--no-as-needed ${PUSHHUB_ALLOCATOR_LIBRARY}
                          -Wl,--pop-state)
  endif()
endfunction()
