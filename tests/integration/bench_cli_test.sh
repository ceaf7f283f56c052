#!/usr/bin/env bash
# pushhub-bench refuses what is wrong on its command line, or unreachable, with an exit code and
# a line naming the problem.
#   tests/integration/bench_cli_test.sh BUILD_DIR
set -uo pipefail
bench="$1/bin/pushhub-bench"
failures=0
expect() {  # EXIT_CODE SUBSTRING ARGS…
  local code=$1 want=$2
  shift 2
  local out
  out=$("$bench" "$@" 2>&1 </dev/null)
  local got=$?
  if [ "$got" != "$code" ] || [[ "$out" != *"$want"* ]]; then
    echo "FAILED: pushhub-bench $*: exit $got (want $code), output: $out (want: $want)"
    failures=$((failures + 1))
  fi
}
expect 2 "--url: expected http://HOST:PORT" populate --url ftp://x --key k
expect 2 "--url: http://127.0.0.1:99999: bad port" populate --url http://127.0.0.1:99999 --key k
expect 2 "--url: expected http://HOST:PORT or https://HOST:PORT, not a path" populate --url http://127.0.0.1:7070/x --key k
expect 2 "--url https:// needs --ca-file" populate --url https://127.0.0.1:7070 --key k
expect 2 "give --key or --key-file" populate
expect 2 "--key-file: cannot read /nonexistent" populate --key-file /nonexistent
expect 2 '"x" is not a whole number' populate --key k --mix apns:x
expect 2 'unknown platform "gcm"' stream --key k --mix gcm:1
expect 2 "--via kafka needs --kafka" send --key k --via kafka
expect 2 "--header nocolon: expected NAME:VALUE" send --key k --header nocolon
# Nothing listens on port 1: a clear error and exit 1, not a hang.
expect 1 "cannot connect to 127.0.0.1:1" populate --key k --url http://127.0.0.1:1 -n 10
expect 1 "cannot connect to 127.0.0.1:1" send --key k --url http://127.0.0.1:1
expect 1 "http://127.0.0.1:abc/stats: bad port" send --key k --url http://127.0.0.1:1 --sim-stats http://127.0.0.1:abc/stats
[ "$failures" = 0 ] || exit 1
echo "pushhub-bench: 13 bad command lines refused as expected"
