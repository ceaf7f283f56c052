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
source "$(dirname "$0")/lib.sh"

REQUESTS=${REQUESTS:-400000}
CLIENTS=${CLIENTS:-4}
STREAMS=${STREAMS:-100}
H2LOAD_THREADS=${H2LOAD_THREADS:-1}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}

need h2load nghttpd
bench_setup
start_sim "$THREADS" "$STREAMS"

# nghttpd serves an empty file at the same path; it answers a POST with it (200, no body, like
# APNs).
mkdir -p "$work/htdocs/3/device"
: > "$work/htdocs$device_path"
for port in $(seq 18443 18463); do
  nghttpd -n "$THREADS" --max-concurrent-streams "$STREAMS" -d "$work/htdocs" "$port" \
    "$work/creds/server.key" "$work/creds/server.crt" > "$work/nghttpd.out" 2>&1 &
  pid=$!
  sleep 0.3
  if kill -0 "$pid" 2>/dev/null; then nghttpd_port=$port; bench_pids+=("$pid"); break; fi
done
[ -n "${nghttpd_port:-}" ] || { echo "nghttpd did not start" >&2; cat "$work/nghttpd.out" >&2; exit 1; }

echo "h2load -n $REQUESTS -c $CLIENTS -m $STREAMS -t $H2LOAD_THREADS, 256-byte POSTs over TLS; servers: $THREADS thread(s); $(nproc) cores"
sims=()
nghttpds=()
for round in $(seq "$ROUNDS"); do
  n=$(h2load_rate "127.0.0.1:$nghttpd_port" "$REQUESTS" "$CLIENTS" "$STREAMS" "$H2LOAD_THREADS")
  s=$(h2load_rate "127.0.0.1:$sim_port" "$REQUESTS" "$CLIENTS" "$STREAMS" "$H2LOAD_THREADS")
  nghttpds+=("$n")
  sims+=("$s")
  printf 'round %d: nghttpd %.0f req/s, pushhub-sim %.0f req/s (%s%%)\n' "$round" "$n" "$s" "$(percent "$s" "$n")"
done
n=$(printf '%s\n' "${nghttpds[@]}" | median)
s=$(printf '%s\n' "${sims[@]}" | median)
printf 'median: nghttpd %.0f req/s, pushhub-sim %.0f req/s, ratio %s%% (target >= 70%%)\n' \
  "$n" "$s" "$(percent "$s" "$n")"
