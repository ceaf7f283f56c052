#!/usr/bin/env bash
# The engine's fan-out (pushhub_engine_bench: N APNs installations in RocksDB, one broadcast of
# the 256-byte payload, SHARDS shards each with CONNECTIONS pooled connections) against h2load
# sending the same payload to the same pushhub-sim endpoint with the same total connections,
# concurrent streams and threads, in the same run, alternating. TEMPLATE=1 renders a template
# per device instead of sending a native payload.
#
#   bench/engine_vs_h2load.sh
#   N=500000 ROUNDS=5 TEMPLATE=1 bench/engine_vs_h2load.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${N:-200000}
SHARDS=${SHARDS:-2}
CONNECTIONS=${CONNECTIONS:-2}
STREAMS=${STREAMS:-100}
SIM_LOOPS=${SIM_LOOPS:-1}
ROUNDS=${ROUNDS:-3}
BENCH="$BUILD_DIR/bin/pushhub_engine_bench"

need h2load
[ -x "$BENCH" ] || { echo "$BENCH is missing: run make build first" >&2; exit 1; }
bench_setup
start_sim "$SIM_LOOPS" "$STREAMS"
flags=()
[ "${TEMPLATE:-0}" = 1 ] && flags+=(--template)

total_connections=$((SHARDS * CONNECTIONS))
echo "$N devices, one $([ "${TEMPLATE:-0}" = 1 ] && echo template || echo native) notification of 256 bytes; engine: $SHARDS shards x $CONNECTIONS connections, h2load: $total_connections connections, $SHARDS threads; $STREAMS streams each; pushhub-sim with $SIM_LOOPS loop(s); $(nproc) cores"
loads=()
engines=()
for round in $(seq "$ROUNDS"); do
  h=$(h2load_rate "localhost:$sim_port" "$N" "$total_connections" "$STREAMS" "$SHARDS")
  rm -rf "$work/data"
  out=$("$BENCH" --creds "$work/creds" --apns-port "$sim_port" --data "$work/data" -n "$N" \
    --shards "$SHARDS" --connections "$CONNECTIONS" --payload "$work/payload.json" "${flags[@]}")
  e=$(grep -o 'rate=[0-9]*' <<<"$out" | cut -d= -f2)
  cpu=$(grep -o 'cpu_us_per_delivery=[0-9.]*' <<<"$out" | cut -d= -f2)
  loads+=("$h")
  engines+=("$e")
  printf 'round %d: h2load %.0f req/s, engine %.0f deliveries/s (%s%%), engine CPU %s us/delivery\n' \
    "$round" "$h" "$e" "$(percent "$e" "$h")" "$cpu"
done
h=$(printf '%s\n' "${loads[@]}" | median)
e=$(printf '%s\n' "${engines[@]}" | median)
printf 'median: h2load %.0f req/s, engine %.0f deliveries/s, ratio %s%%\n' "$h" "$e" "$(percent "$e" "$h")"
