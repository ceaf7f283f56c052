# Warnings, sanitizers and per-build-type flags shared by every pushhub target.
# Targets link `pushhub_compile_options` (an INTERFACE target) to get them.

add_library(pushhub_compile_options INTERFACE)
target_compile_options(pushhub_compile_options INTERFACE -Wall -Wextra -Wpedantic)
# g++ 12.2 (Debian 12) warns -Wrestrict on every `"literal" + std::string` at -O2 and above: a
# false positive in libstdc++'s inlined string code, GCC bug 105651, fixed in 12.3.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 12.3)
  target_compile_options(pushhub_compile_options INTERFACE -Wno-restrict)
endif()
if(PUSHHUB_WERROR)
  target_compile_options(pushhub_compile_options INTERFACE -Werror)
endif()

# Boost 1.74's Asio awaitable.hpp uses std::exchange without including <utility>, which g++ 12
# no longer pulls in transitively: every translation unit gets it first.
target_compile_options(pushhub_compile_options INTERFACE -include utility)

# Asio and Beast are compiled once (common/asio_impl.cc), not in every translation unit.
target_compile_definitions(pushhub_compile_options INTERFACE
  BOOST_ASIO_SEPARATE_COMPILATION BOOST_BEAST_SEPARATE_COMPILATION
  BOOST_ASIO_NO_DEPRECATED BOOST_BEAST_USE_STD_STRING_VIEW)

if(PUSHHUB_SANITIZE STREQUAL "address")
  set(_san -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_compile_options(pushhub_compile_options INTERFACE ${_san})
  target_link_options(pushhub_compile_options INTERFACE ${_san})
elseif(PUSHHUB_SANITIZE STREQUAL "thread")
  set(_san -fsanitize=thread -fno-omit-frame-pointer)
  # Asio's fenced blocks use std::atomic_thread_fence, which TSan does not model; g++ warns
  # (-Wtsan) on every use. The handler queues Asio guards with mutexes, which TSan does see.
  target_compile_options(pushhub_compile_options INTERFACE ${_san} -Wno-tsan)
  target_link_options(pushhub_compile_options INTERFACE ${_san})
elseif(PUSHHUB_SANITIZE STREQUAL "fuzzer")
  # libFuzzer targets (tests/fuzz, `make fuzz`): clang 16 or later, every library instrumented for
  # coverage, ASan and UBSan; the targets link -fsanitize=fuzzer themselves.
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang" OR CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
    message(FATAL_ERROR "PUSHHUB_SANITIZE=fuzzer needs clang 16 or later (CXX=clang++-16)")
  endif()
  set(_san -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  # libstdc++ 12 offers std::expected only when __cpp_concepts >= 202002L; clang 16 implements
  # what that stands for (P0848) but still reports 201907L.
  target_compile_options(pushhub_compile_options INTERFACE ${_san} -Wno-macro-redefined
                         -D__cpp_concepts=202002L)
  # Boost 1.74 detects C++20 coroutines for g++ only.
  target_compile_definitions(pushhub_compile_options INTERFACE BOOST_ASIO_HAS_CO_AWAIT
                             BOOST_ASIO_HAS_STD_COROUTINE)
  target_link_options(pushhub_compile_options INTERFACE -fsanitize=address,undefined)
elseif(NOT PUSHHUB_SANITIZE STREQUAL "")
  message(FATAL_ERROR
          "PUSHHUB_SANITIZE must be '', 'address', 'thread' or 'fuzzer', not '${PUSHHUB_SANITIZE}'")
endif()

# Release keeps frame pointers so perf and callgrind give usable stacks.
string(APPEND CMAKE_CXX_FLAGS_RELEASE " -fno-omit-frame-pointer")
