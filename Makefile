# Thin wrapper over CMake. `make run` and `make test` are the two commands a new user needs;
# both install missing Debian packages first (deploy/install-deps.sh, which skips what is there).

BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
# Warnings are errors in CI (CI=true) and wherever WERROR=ON is given.
WERROR ?= $(if $(CI),ON,OFF)
RUN_ARGS ?=
CTEST_ARGS ?=

CMAKE_FLAGS = -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DPUSHHUB_WERROR=$(WERROR)

.PHONY: all deps configure build run test bench bench-components reliability soak fuzz format lint asan tsan clean help
FUZZ_SECONDS ?= 60

all: build

help:
	@echo "make run     install deps, build Release, run pushhub on 127.0.0.1:7070 (data in ./data)"
	@echo "             beside pushhub-sim (APNs :2197, FCM :2198, WNS :2199, stats :8089)"
	@echo "make test    install deps, build, run every test with ctest"
	@echo "make bench   build Release and run pushhub-bench's default scenario (~5 min; bench/scenario.sh)"
	@echo "make bench-components  the unit and component benchmarks (microbench, sim, connector, engine)"
	@echo "make reliability  faults against real processes (~15 min; bench/reliability.sh, bench/RELIABILITY.md)"
	@echo "make soak    30 minutes of mixed load and faults; RSS and descriptors must stay flat (bench/soak.sh)"
	@echo "make asan    build with ASan+UBSan in build-asan/ and run the tests there"
	@echo "make tsan    build with TSan in build-tsan/ and run the tests there"
	@echo "make fuzz    build the libFuzzer targets with clang and fuzz for FUZZ_SECONDS (60)"
	@echo "make format  apply clang-format;  make lint  run clang-tidy"

deps:
	@./deploy/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	BUILD_DIR=$(BUILD_DIR) ./deploy/run-dev.sh $(RUN_ARGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	BUILD_DIR=$(BUILD_DIR) ./bench/scenario.sh

# Faults against real processes (bench/reliability.sh; the report goes to bench/RELIABILITY.md).
reliability: build
	BUILD_DIR=$(BUILD_DIR) REPORT=bench/RELIABILITY.md ./bench/reliability.sh

# 30 minutes of mixed load and faults, RSS and descriptors flat (bench/soak.sh; not in CI).
soak: build
	BUILD_DIR=$(BUILD_DIR) ./bench/soak.sh

bench-components: build
	./$(BUILD_DIR)/bin/pushhub_microbench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
	BUILD_DIR=$(BUILD_DIR) ./bench/sim_vs_nghttpd.sh
	BUILD_DIR=$(BUILD_DIR) ./bench/connector_vs_h2load.sh
	BUILD_DIR=$(BUILD_DIR) ./bench/engine_vs_h2load.sh

asan:
	@$(MAKE) --no-print-directory test BUILD_DIR=build-asan BUILD_TYPE=Debug \
	  CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DPUSHHUB_WERROR=$(WERROR) -DPUSHHUB_SANITIZE=address"

tsan:
	@TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1" \
	  $(MAKE) --no-print-directory test BUILD_DIR=build-tsan BUILD_TYPE=Debug \
	  CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DPUSHHUB_WERROR=$(WERROR) -DPUSHHUB_SANITIZE=thread"

# libFuzzer needs clang: Debian 12's clang 16 builds the project's libraries instrumented
# (PUSHHUB_SANITIZE=fuzzer) in build-fuzz/, then each target fuzzes for FUZZ_SECONDS from a copy
# of its seed corpus (so that what the fuzzer finds does not land in the source tree by accident).
# FUZZ_TARGETS picks some; tests/fuzz/README.md records the campaigns.
FUZZ_TARGETS ?= tag_expression template installation registration_xml multipart sas send_request \
  hub_definition config pns_answer http_head
fuzz:
	@./deploy/install-deps.sh --fuzz
	@CXX=clang++-16 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DPUSHHUB_SANITIZE=fuzzer -DPUSHHUB_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target $(addsuffix _fuzz,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t && cp -n tests/fuzz/corpus/$$t/* build-fuzz/corpus/$$t/; \
	  echo "== $$t"; \
	  UBSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/ubsan.supp:print_stacktrace=1 \
	  ./build-fuzz/tests/bin/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    -print_final_stats=1 build-fuzz/corpus/$$t || exit 1; \
	done

SOURCES = $(shell git ls-files '*.h' '*.cc' 2>/dev/null)

format:
	clang-format -i $(SOURCES)

# clang-tidy 14 (Debian 12) knows C++23 as c++2b and cannot parse libstdc++'s <expected>, so its
# diagnostics inside system headers are noise; the findings on our own files are what count.
lint: build
	clang-tidy -p $(BUILD_DIR) --quiet --extra-arg=-std=c++2b $(filter %.cc,$(SOURCES)) 2>/dev/null \
	  | grep -E '^$(CURDIR)/.*(warning|error):' | grep -v 'clang-diagnostic-error' | sort -u || true

clean:
	rm -rf build build-asan build-tsan build-fuzz
