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

.PHONY: all deps configure build run test bench format lint asan tsan clean help

all: build

help:
	@echo "make run     install deps, build Release, run pushhub on 127.0.0.1:7070 (data in ./data)"
	@echo "make test    install deps, build, run every test with ctest"
	@echo "make bench   build Release and run the benchmarks"
	@echo "make asan    build with ASan+UBSan in build-asan/ and run the tests there"
	@echo "make tsan    build with TSan in build-tsan/ and run the tests there"
	@echo "make format  apply clang-format;  make lint  run clang-tidy"

deps:
	@./deploy/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	./$(BUILD_DIR)/bin/pushhub serve $(RUN_ARGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	./$(BUILD_DIR)/bin/pushhub_microbench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

asan:
	@$(MAKE) --no-print-directory test BUILD_DIR=build-asan BUILD_TYPE=Debug \
	  CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DPUSHHUB_WERROR=$(WERROR) -DPUSHHUB_SANITIZE=address"

tsan:
	@$(MAKE) --no-print-directory test BUILD_DIR=build-tsan BUILD_TYPE=Debug \
	  CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DPUSHHUB_WERROR=$(WERROR) -DPUSHHUB_SANITIZE=thread"

SOURCES = $(shell git ls-files '*.h' '*.cc' 2>/dev/null)

format:
	clang-format -i $(SOURCES)

# clang-tidy 14 (Debian 12) knows C++23 as c++2b and cannot parse libstdc++'s <expected>, so its
# diagnostics inside system headers are noise; the findings on our own files are what count.
lint: build
	clang-tidy -p $(BUILD_DIR) --quiet --extra-arg=-std=c++2b $(filter %.cc,$(SOURCES)) 2>/dev/null \
	  | grep -E '^$(CURDIR)/.*(warning|error):' | grep -v 'clang-diagnostic-error' | sort -u || true

clean:
	rm -rf build build-asan build-tsan
