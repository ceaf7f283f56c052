#!/usr/bin/env bash
# Installs every Debian 12 package pushhub needs to build, test, benchmark and run.
# Idempotent and non-interactive: packages already installed (dpkg -s) are skipped, and
# `apt-get update` runs only when something is missing. Needs root (or sudo).
# Only Debian's own package archive is used; nothing is downloaded from anywhere else.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential g++ cmake make pkg-config git ca-certificates
  clang-format clang-tidy
  # libraries (Boost 1.74 only: Debian's msgpack C++ package depends on it)
  libboost1.74-dev libboost-context1.74-dev
  libssl-dev openssl
  libnghttp2-dev nghttp2-client nghttp2-server
  wrk
  librdkafka-dev
  librocksdb-dev
  libmsgpack-cxx-dev
  libroaring-dev
  libsimdjson-dev rapidjson-dev
  libspdlog-dev libfmt-dev
  libtomlplusplus-dev
  libcli11-dev
  libpugixml-dev
  libgoogle-perftools-dev   # tcmalloc for the executables (cmake/Dependencies.cmake)
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  curl jq
  gnuplot-nox   # pushhub-bench's charts (bench/scenario.sh)
  # the quickstart's Kafka client (KAFKA=1 make run)
  kcat
)

# `--fuzz`: also what `make fuzz` needs (clang 16 and its libFuzzer runtime).
if [ "${1:-}" = "--fuzz" ]; then
  PACKAGES+=(clang-16 libclang-rt-16-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
