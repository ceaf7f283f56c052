#!/usr/bin/env bash
# Duplicates and throughput against the HTTP/2 streams-per-connection cap when connections are
# lost (the hardening issue): every request in flight on a lost connection is sent again, and may
# reach the device twice; fewer streams per connection bound that, at some cost in throughput.
#
# pushhub-sim with APNs' real stream limit (1000) and --fault apns:reset=RATE (the connection is
# cut instead of an answer), pushhub (2 shards) with engine.streams_per_connection=CAP; COUNT
# APNs installations; one broadcast per (RATE, CAP). For each: deliveries/s, the requests the
# simulator received per device (1.00 = no duplicate), and the re-sends pushhub counted.
#
#   bench/resets.sh                               # COUNT=50000 RATES="0 0.001 0.01" CAPS="0 250 100 50 20"
#   COUNT=20000 RATES=0.01 CAPS="100 20" bench/resets.sh
#   SIM_STREAMS=100 RATES=0 CAPS="100 50 100 50" bench/resets.sh    # make bench's simulator
#   LATENCY_US=20000 RATES=0 CAPS="0 100 50" bench/resets.sh         # a 20 ms round trip
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COUNT=${COUNT:-50000}
RATES=${RATES:-0 0.001 0.01}
CAPS=${CAPS:-0 250 100 50 20}
SHARDS=${SHARDS:-2}
SIM_STREAMS=${SIM_STREAMS:-1000}   # the simulator's APNs stream limit (APNs': 1000)
LATENCY_US=${LATENCY_US:-0}        # added to every APNs answer (a real RTT is 20-100 ms)
pushhub_setup jq curl

# start_faulty_sim RATE: the simulator with APNs' stream limit and the reset rate.
start_faulty_sim() {
  "$SIM" --config "$work/creds/sim.conf" --apns-listen 127.0.0.1:0 --fcm-listen 127.0.0.1:0 \
    --wns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --loops 1 \
    --apns-initial-streams "$SIM_STREAMS" --apns-max-streams "$SIM_STREAMS" --fault "apns:reset=$1" \
    --fault "apns:latency-us=$LATENCY_US" \
    --log-level warn > "$work/sim.out" 2>&1 &
  sim_pid=$!
  bench_pids+=("$sim_pid")
  for _ in $(seq 50); do grep -q 'pushhub-sim ready' "$work/sim.out" && break; sleep 0.1; done
  sim_hub
  jq 'del(.fcm) | del(.wns)' "$work/hub.json" > "$work/hub-apns.json"
  mv "$work/hub-apns.json" "$work/hub.json"
}

# start_pushhub CAP
start_pushhub() {
  : > "$work/pushhub.out"
  PUSHHUB_ENGINE_HUBS="bench=$work/hub.json" PUSHHUB_AUTH_RULES="Full=$key:Listen,Send,Manage" \
    PUSHHUB_ENGINE_STREAMS_PER_CONNECTION="$1" \
    "$PUSHHUB" serve --listen 127.0.0.1:0 --data-dir "$work/data" --shards "$SHARDS" \
    --log-level info >"$work/pushhub.out" 2>&1 &
  hub_pid=$!
  bench_pids+=("$hub_pid")
  wait_for_pushhub "$hub_pid"
}


printf '%-7s %-5s %12s %16s %10s %8s %s\n' reset cap deliveries/s requests/device resends cpu/1M outcome
rows=()
populated=0
for rate in $RATES; do
  start_faulty_sim "$rate"
  for cap in $CAPS; do
    start_pushhub "$cap"
    common=(--url "http://127.0.0.1:$port" --hub bench --rule Full --key "$key" --pushhub-pid "$hub_pid")
    if [ "$populated" = 0 ]; then
      "$BENCH" populate "${common[@]}" -n "$COUNT" --mix apns:100 --tags 10 >"$work/populate.out"
      populated=1
    fi
    before=$(curl -s "http://127.0.0.1:$admin_port/stats" | jq '.apns.requests')
    "$BENCH" send "${common[@]}" --sim-stats "http://127.0.0.1:$admin_port/stats" \
      --label "reset-$rate-cap-$cap" --format apple --body '{"aps":{"alert":"resets"}}' \
      --json "$work/send.json" >"$work/send.out"
    after=$(curl -s "http://127.0.0.1:$admin_port/stats" | jq '.apns.requests')
    resends=$(curl -s "http://127.0.0.1:$port/metrics" |
      awk '/^pushhub_connector_resends_total/ {s += $2} END {print s + 0}')
    rate_s=$(jq '.send.deliveries_per_s' "$work/send.json")
    outcome=$(jq -c '.send.counts.apns' "$work/send.json")
    cpu=$(jq '.pushhub.cpu_seconds_per_million_deliveries // 0' "$work/send.json")
    per_device=$(awk -v a="$after" -v b="$before" -v n="$COUNT" 'BEGIN {printf "%.2f", (a - b) / n}')
    printf '%-7s %-5s %12.0f %16s %10s %8.2f %s\n' "$rate" "$cap" "$rate_s" "$per_device" "$resends" "$cpu" "$outcome"
    rows+=("| $rate | $cap | $(printf '%.0f' "$rate_s") | $per_device | $resends | $(printf '%.2f' "$cpu") s | $outcome |")
    stop_pid "$hub_pid"
  done
  stop_pid "$sim_pid"
done
echo
echo "| reset rate | streams per connection (0: the service's 1000) | deliveries/s | requests per device | re-sends | pushhub CPU per 1M deliveries | outcomes |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
