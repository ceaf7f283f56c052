#!/usr/bin/env bash
# pushhub-sim's APNs listener against nghttpd (Debian's nghttp2-server), both driven by h2load
# (nghttp2-client) with the same settings in the same run: TLS, HTTP/2, POSTs of a 256-byte APNs
# payload. Prints each round and the medians; the simulator's target is >= 70% of nghttpd.
#
#   bench/sim_vs_nghttpd.sh                      # defaults below
#   REQUESTS=1000000 ROUNDS=5 bench/sim_vs_nghttpd.sh
#
# Both servers get the same number of threads (THREADS, default 1: on a 2-core machine h2load
# takes the other core) and advertise 100 concurrent streams (nghttpd's default; the simulator's
# APNs dance of 1 stream before the first push is turned off with --apns-initial-streams 100).
set -euo pipefail

BUILD_DIR=${BUILD_DIR:-build}
REQUESTS=${REQUESTS:-400000}
CLIENTS=${CLIENTS:-4}
STREAMS=${STREAMS:-100}
H2LOAD_THREADS=${H2LOAD_THREADS:-1}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
SIM="$BUILD_DIR/bin/pushhub-sim"

for tool in h2load nghttpd; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: deploy/install-deps.sh installs it" >&2; exit 1; }
done
[ -x "$SIM" ] || { echo "$SIM is missing: run make build first" >&2; exit 1; }

work=$(mktemp -d)
sim_pid=""
nghttpd_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
  [ -n "$nghttpd_pid" ] && kill "$nghttpd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$SIM" keygen "$work/creds" >/dev/null
token=$(printf 'a%.0s' $(seq 64))
# 256 bytes of APNs payload.
body=$(printf 'x%.0s' $(seq 191))
printf '{"aps":{"alert":{"title":"pushhub","body":"%s"},"sound":"default"}}' "$body" > "$work/payload.json"
[ "$(wc -c < "$work/payload.json")" -eq 256 ] || { echo "payload is not 256 bytes" >&2; exit 1; }
jwt=$("$SIM" --config "$work/creds/sim.conf" apns-token)

"$SIM" --config "$work/creds/sim.conf" --apns-listen 127.0.0.1:0 --fcm-listen 127.0.0.1:0 \
  --wns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --loops "$THREADS" \
  --apns-initial-streams "$STREAMS" --apns-max-streams "$STREAMS" --log-level warn \
  > "$work/sim.out" 2>&1 &
sim_pid=$!
for _ in $(seq 50); do grep -q 'pushhub-sim ready' "$work/sim.out" && break; sleep 0.1; done
sim_port=$(grep -o 'apns=[0-9]*' "$work/sim.out" | cut -d= -f2)
[ -n "$sim_port" ] || { cat "$work/sim.out" >&2; exit 1; }

# nghttpd serves an empty file at the same path; it answers a POST with it (200, no body, like
# APNs).
mkdir -p "$work/htdocs/3/device"
: > "$work/htdocs/3/device/$token"
for port in $(seq 18443 18463); do
  nghttpd -n "$THREADS" --max-concurrent-streams "$STREAMS" -d "$work/htdocs" "$port" \
    "$work/creds/server.key" "$work/creds/server.crt" > "$work/nghttpd.out" 2>&1 &
  nghttpd_pid=$!
  sleep 0.3
  if kill -0 "$nghttpd_pid" 2>/dev/null; then nghttpd_port=$port; break; fi
  nghttpd_pid=""
done
[ -n "${nghttpd_port:-}" ] || { echo "nghttpd did not start" >&2; cat "$work/nghttpd.out" >&2; exit 1; }

load() {  # port → requests/s
  local out
  out=$(h2load -n "$REQUESTS" -c "$CLIENTS" -m "$STREAMS" -t "$H2LOAD_THREADS" \
    -d "$work/payload.json" -H "authorization: bearer $jwt" \
    -H 'apns-topic: com.example.pushhub' -H 'apns-push-type: alert' \
    "https://127.0.0.1:$1/3/device/$token" 2>&1)
  if ! grep -q "status codes: $REQUESTS 2xx" <<<"$out"; then
    echo "h2load against port $1 did not get $REQUESTS 2xx answers:" >&2
    grep -E 'requests:|status codes' <<<"$out" >&2
    exit 1
  fi
  grep -o 'finished in [^,]*, [0-9.]* req/s' <<<"$out" | awk '{print $(NF-1)}'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "h2load -n $REQUESTS -c $CLIENTS -m $STREAMS -t $H2LOAD_THREADS, 256-byte POSTs over TLS; servers: $THREADS thread(s); $(nproc) cores"
sims=()
nghttpds=()
for round in $(seq "$ROUNDS"); do
  n=$(load "$nghttpd_port")
  s=$(load "$sim_port")
  nghttpds+=("$n")
  sims+=("$s")
  printf 'round %d: nghttpd %.0f req/s, pushhub-sim %.0f req/s (%.0f%%)\n' "$round" "$n" "$s" \
    "$(awk -v a="$s" -v b="$n" 'BEGIN {print 100 * a / b}')"
done
n=$(printf '%s\n' "${nghttpds[@]}" | median)
s=$(printf '%s\n' "${sims[@]}" | median)
printf 'median: nghttpd %.0f req/s, pushhub-sim %.0f req/s, ratio %.0f%% (target >= 70%%)\n' \
  "$n" "$s" "$(awk -v a="$s" -v b="$n" 'BEGIN {print 100 * a / b}')"
