#!/usr/bin/env bash
# The quick subset of `make reliability` (bench/reliability.sh QUICK=1): resets and an unreachable
# WNS during a broadcast and a direct send, one kill -9 in a broadcast, a connection flood — each
# must hold (the script exits non-zero and prints its table otherwise).
#   tests/integration/reliability_quick_test.sh BUILD_DIR
set -euo pipefail
build_dir=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
QUICK=1 COUNT=2000 BUILD_DIR="$build_dir" bench/reliability.sh >"$log" 2>&1 || { cat "$log"; exit 1; }
grep -q '| held |' "$log" || { cat "$log"; exit 1; }
if grep -q 'did not hold' "$log"; then cat "$log"; exit 1; fi
tail -n 8 "$log"
