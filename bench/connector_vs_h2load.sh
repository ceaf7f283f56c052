#!/usr/bin/env bash
# The connectors' APNs client (one shard, pushhub_connector_bench; RAW=1 for the bare HTTP/2
# pool) against h2load, both
# pushing 256-byte APNs notifications with a valid provider token to the same pushhub-sim
# endpoint with the same connections and concurrent streams, in the same run, alternating.
# The connector's target is >= 80% of h2load's requests/s.
#
#   bench/connector_vs_h2load.sh
#   CONNECTIONS=4 STREAMS=1000 ROUNDS=5 bench/connector_vs_h2load.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REQUESTS=${REQUESTS:-200000}
CONNECTIONS=${CONNECTIONS:-2}
STREAMS=${STREAMS:-100}
SIM_LOOPS=${SIM_LOOPS:-1}
ROUNDS=${ROUNDS:-3}
BENCH="$BUILD_DIR/bin/pushhub_connector_bench"

need h2load
[ -x "$BENCH" ] || { echo "$BENCH is missing: run make build first" >&2; exit 1; }
bench_setup
start_sim "$SIM_LOOPS" "$STREAMS"

echo "$REQUESTS notifications of 256 bytes, $CONNECTIONS connection(s) x $STREAMS streams, one client thread; pushhub-sim with $SIM_LOOPS loop(s); $(nproc) cores"
loads=()
connectors=()
for round in $(seq "$ROUNDS"); do
  h=$(h2load_rate "localhost:$sim_port" "$REQUESTS" "$CONNECTIONS" "$STREAMS" 1)
  if [ "${RAW:-0}" = 1 ]; then
    mode=(--raw --jwt "$jwt")
  else
    mode=(--apns-key "$(grep -o '"[A-Z0-9]*:[A-Z0-9]*:[^"]*' "$work/creds/sim.conf" | head -1 | tr -d '"')")
  fi
  out=$("$BENCH" --port "$sim_port" --ca "$work/creds/ca.crt" "${mode[@]}" \
    --connections "$CONNECTIONS" -n "$REQUESTS")
  c=$(grep -o 'rate=[0-9]*' <<<"$out" | cut -d= -f2)
  cpu=$(grep -o 'cpu_us_per_request=[0-9.]*' <<<"$out" | cut -d= -f2)
  loads+=("$h")
  connectors+=("$c")
  printf 'round %d: h2load %.0f req/s, connector %.0f req/s (%s%%), connector CPU %s us/notification\n' \
    "$round" "$h" "$c" "$(percent "$c" "$h")" "$cpu"
done
h=$(printf '%s\n' "${loads[@]}" | median)
c=$(printf '%s\n' "${connectors[@]}" | median)
printf 'median: h2load %.0f req/s, connector %.0f req/s, ratio %s%% (target >= 80%%)\n' \
  "$h" "$c" "$(percent "$c" "$h")"
