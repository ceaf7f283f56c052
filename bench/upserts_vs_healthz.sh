#!/usr/bin/env bash
# Installation upserts through the REST API (PUT /{hub}/installations/{id}, a new installation per
# request, SAS-signed, keep-alive) driven by wrk, against the same wrk on GET /healthz of the same
# pushhub process in the same run: the HTTP ceiling of this machine and server. Then kill -9 and a
# restart: every acknowledged upsert must be back.
#
# CLIENT=bench drives the upserts with pushhub-bench populate (COUNT installations a round)
# instead of wrk + Lua; the /healthz baseline is wrk's either way.
#
#   bench/upserts_vs_healthz.sh
#   CONNECTIONS=128 DURATION=20 ROUNDS=5 bench/upserts_vs_healthz.sh
#   CLIENT=bench COUNT=500000 ROUNDS=3 bench/upserts_vs_healthz.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENT=${CLIENT:-wrk}
COUNT=${COUNT:-500000}
PUSHHUB="$BUILD_DIR/bin/pushhub"
BENCH="$BUILD_DIR/bin/pushhub-bench"
need wrk
[ -x "$PUSHHUB" ] || { echo "$PUSHHUB is missing: run make build first" >&2; exit 1; }
bench_setup
key=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')

# start_pushhub: pushhub on a free port with hub "bench", data in $work/data; $port, $hub_pid.
start_pushhub() {
  PUSHHUB_ENGINE_HUBS="bench=$work/creds/credentials.json" \
    PUSHHUB_AUTH_RULES="Full=$key:Listen,Send,Manage" \
    "$PUSHHUB" serve --listen 127.0.0.1:0 --data-dir "$work/data" --log-level info ${SHARDS:+--shards $SHARDS} \
    >"$work/pushhub.out" 2>&1 &
  hub_pid=$!
  bench_pids+=("$hub_pid")
  for _ in $(seq 100); do grep -q 'listening on' "$work/pushhub.out" && break; sleep 0.1; done
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/pushhub.out")
  [ -n "$port" ] || { cat "$work/pushhub.out" >&2; exit 1; }
}

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_pushhub
token=$("$PUSHHUB" sas-token --resource "http://127.0.0.1:$port/" --rule Full --key "$key")
[ "$CLIENT" = bench ] && need jq && [ ! -x "$BENCH" ] && { echo "$BENCH is missing: run make build first" >&2; exit 1; }
echo "upserts by $CLIENT ($([ "$CLIENT" = bench ] && echo "$COUNT a round" || echo "${DURATION}s, $THREADS threads")), $CONNECTIONS keep-alive connections; /healthz by wrk ${DURATION}s; pushhub: $(nproc) shards, sync_writes off (kill -9 safe); $(nproc) cores shared by both"
acknowledged=0
rates=()
ratios=()
for round in $(seq "$ROUNDS"); do
  base=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" "http://127.0.0.1:$port/healthz" |
    awk '/Requests\/sec/ {print $2}')
  cpu_before=$(cpu_ticks "$hub_pid")
  start_ns=$(date +%s%N)
  if [ "$CLIENT" = bench ]; then
    # Same installations as the wrk script's (APNs, 3 of 1000 tags, one template): --tags 1000
    # --tags-per-device 3; ids and tokens distinct per round through --first.
    "$BENCH" populate --url "http://127.0.0.1:$port" --hub bench --rule Full --key "$key" \
      -n "$COUNT" --first $(((round - 1) * COUNT)) --mix apns:1 --tags 1000 --tags-per-device 3 \
      --connections "$CONNECTIONS" --json "$work/populate.json" >"$work/populate.out" 2>/dev/null || {
      cat "$work/populate.out" >&2; exit 1; }
    elapsed=$(jq .populate.seconds "$work/populate.json")
    rate=$(jq .populate.rate_per_s "$work/populate.json")
    upserts=$(jq .populate.answered "$work/populate.json")
    non2xx=$((upserts - $(jq '.populate.statuses["200"] // 0' "$work/populate.json")))
    line="upserts=$upserts non2xx=$non2xx errors=$(jq .populate.errors "$work/populate.json") $(jq -r \
      '.populate.latency_us | "p50_us=\(.p50) p90_us=\(.p90) p99_us=\(.p99) max_us=\(.max)"' "$work/populate.json")"
  else
    out=$(RUN=$round PUSHHUB_TOKEN=$token PUSHHUB_HUB=bench wrk -t "$THREADS" -c "$CONNECTIONS" \
      -d "${DURATION}s" --latency -s "$(dirname "$0")/wrk/upsert.lua" "http://127.0.0.1:$port")
    rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    line=$(grep '^upserts=' <<<"$out")
    upserts=$(sed 's/upserts=\([0-9]*\).*/\1/' <<<"$line")
    non2xx=$(sed 's/.*non2xx=\([0-9]*\).*/\1/' <<<"$line")
  fi
  elapsed=$(awk -v s="$start_ns" -v e="$(date +%s%N)" 'BEGIN {printf "%.3f", (e - s) / 1e9}')
  cpu_ticks_used=$(($(cpu_ticks "$hub_pid") - cpu_before))
  if [ "$non2xx" != 0 ]; then echo "round $round: $non2xx upserts were refused" >&2; exit 1; fi
  acknowledged=$((acknowledged + upserts))
  rates+=("$rate")
  ratios+=("$(percent "$rate" "$base")")
  cpu_us=$(awk -v t="$cpu_ticks_used" -v hz="$(getconf CLK_TCK)" -v n="$upserts" \
    'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
  cores=$(awk -v t="$cpu_ticks_used" -v hz="$(getconf CLK_TCK)" -v d="$elapsed" \
    'BEGIN {printf "%.2f", t / hz / d}')
  printf 'round %d: healthz %.0f req/s, upserts %.0f/s (%s%% of healthz), pushhub %s us CPU/upsert (%s cores busy), %s\n' \
    "$round" "$base" "$rate" "$(percent "$rate" "$base")" "$cpu_us" "$cores" \
    "$(sed 's/upserts=[0-9]* //' <<<"$line")"
done
printf 'median: upserts %.0f/s, %s%% of healthz\n' "$(printf '%s\n' "${rates[@]}" | median)" \
  "$(printf '%s\n' "${ratios[@]}" | median)"

# kill -9, restart: the index rebuild counts what RocksDB has.
kill -9 "$hub_pid"
wait "$hub_pid" 2>/dev/null || true
start_pushhub
stored=$(sed -n 's/.*index rebuilt: \([0-9]*\) installations.*/\1/p' "$work/pushhub.out")
if [ -z "$stored" ] || [ "$stored" -lt "$acknowledged" ]; then
  echo "after kill -9: ${stored:-?} installations stored, $acknowledged were acknowledged" >&2
  exit 1
fi
echo "after kill -9 and restart: $stored installations stored, $acknowledged acknowledged (the rest were in flight when wrk stopped)"
