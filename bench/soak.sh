#!/usr/bin/env bash
# `make soak` (not in CI): DURATION seconds (1800) of mixed load against one pushhub with a
# faulty simulator (APNs/FCM/WNS 503 at 1%, connection resets at 0.1%): a round every few
# seconds registers or updates BATCH installations, sends a broadcast, a tag send and direct
# sends, and follows them to their end. pushhub's RSS and open descriptors are sampled every
# round; the run holds when, after a warm-up third, the last third's means are within 10% of the
# middle third's (no leak of memory or descriptors) and every send completed.
#
#   make soak                         # 30 minutes
#   DURATION=300 bench/soak.sh        # a shorter run
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-1800}
BATCH=${BATCH:-5000}
SHARDS=${SHARDS:-2}
PUSHHUB="$BUILD_DIR/bin/pushhub"
BENCH="$BUILD_DIR/bin/pushhub-bench"
need jq curl
for b in "$PUSHHUB" "$BENCH"; do [ -x "$b" ] || { echo "$b is missing: run make build first" >&2; exit 1; }; done
bench_setup
key=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')

"$SIM" --config "$work/creds/sim.conf" --apns-listen 127.0.0.1:0 --fcm-listen 127.0.0.1:0 \
  --wns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --loops 1 --log-level warn \
  --fault all:503=0.01 --fault all:reset=0.001 > "$work/sim.out" 2>&1 &
bench_pids+=($!)
for _ in $(seq 50); do grep -q 'pushhub-sim ready' "$work/sim.out" && break; sleep 0.1; done
sim_port=$(grep -o 'apns=[0-9]*' "$work/sim.out" | cut -d= -f2)
fcm_port=$(grep -o 'fcm=[0-9]*' "$work/sim.out" | cut -d= -f2)
wns_port=$(grep -o 'wns=[0-9]*' "$work/sim.out" | cut -d= -f2)
admin_port=$(grep -o 'admin=[0-9]*' "$work/sim.out" | cut -d= -f2)
jq --arg a "https://localhost:$sim_port" --arg f "https://localhost:$fcm_port" \
  --arg w "https://localhost:$wns_port/accesstoken.srf" \
  '.apns.endpoint = $a | .fcm.endpoint = $f | .fcm.token_endpoint = ($f + "/token")
   | .wns.token_endpoint = $w | .wns.channel_host_suffix = "localhost"' \
  "$work/creds/credentials.json" > "$work/hub.json"
PUSHHUB_ENGINE_HUBS="soak=$work/hub.json" PUSHHUB_AUTH_RULES="Full=$key:Listen,Send,Manage" \
  PUSHHUB_ENGINE_FCM_PER_MINUTE=0 \
  "$PUSHHUB" serve --listen 127.0.0.1:0 --data-dir "$work/data" --shards "$SHARDS" \
  --log-level info >"$work/pushhub.out" 2>&1 &
hub_pid=$!
bench_pids+=("$hub_pid")
for _ in $(seq 100); do grep -q 'listening on' "$work/pushhub.out" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/pushhub.out")
[ -n "$port" ] || { cat "$work/pushhub.out" >&2; exit 1; }
common=(--url "http://127.0.0.1:$port" --hub soak --rule Full --key "$key" --wns-host "localhost:$wns_port")
stats=(--sim-stats "http://127.0.0.1:$admin_port/stats")

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$hub_pid/status"; }
fds() { ls "/proc/$hub_pid/fd" | wc -l; }
echo "soak: ${DURATION} s, pushhub pid $hub_pid, port $port"
: > "$work/samples"
start=$SECONDS
round=0
incomplete=0
while [ $((SECONDS - start)) -lt "$DURATION" ]; do
  round=$((round + 1))
  # Registrations: a new slice of devices every round, the first slice again (updates).
  "$BENCH" populate "${common[@]}" -n "$BATCH" --first $(((round % 20) * BATCH)) \
    --mix apns:70,fcm:25,wns:5 --tags 50 --tags-per-device 3 >"$work/populate.out" 2>&1 ||
    { echo "populate failed:"; tail -n 3 "$work/populate.out"; }
  for tags in "" "t1 || t2"; do
    args=(--label "round-$round" --body '{"message":"soak"}')
    [ -n "$tags" ] && args+=(--tags "$tags")
    rm -f "$work/send.json"
    "$BENCH" send "${common[@]}" "${stats[@]}" "${args[@]}" --json "$work/send.json" >"$work/send.out" 2>&1 ||
      { echo "send failed:"; tail -n 3 "$work/send.out"; }
    [ "$(jq -r '.send.state // "none"' "$work/send.json" 2>/dev/null)" = Completed ] ||
      incomplete=$((incomplete + 1))
  done
  "$BENCH" stream "${common[@]}" "${stats[@]}" -n "$BATCH" --rate 200 --seconds 2 --tag-every 100 \
    --tag-expression t3 >"$work/stream.out" 2>&1 || { echo "stream failed:"; tail -n 3 "$work/stream.out"; }
  echo "$((SECONDS - start)) $(rss_kib) $(fds)" >> "$work/samples"
  printf 'round %d at %d s: RSS %s KiB, %s descriptors\n' "$round" "$((SECONDS - start))" "$(rss_kib)" "$(fds)"
done
verdict=$(awk -v incomplete="$incomplete" '
  {t[NR]=$1; r[NR]=$2; f[NR]=$3}
  END {
    n = NR; a = int(n / 3); b = int(2 * n / 3)
    for (i = a + 1; i <= b; i++) {mr += r[i]; mf += f[i]}
    for (i = b + 1; i <= n; i++) {lr += r[i]; lf += f[i]}
    mr /= (b - a); mf /= (b - a); lr /= (n - b); lf /= (n - b)
    ok = (lr <= 1.10 * mr) && (lf <= 1.10 * mf + 2) && incomplete == 0
    printf "%s: %d rounds; RSS middle third %.0f KiB, last third %.0f KiB (%+.1f%%); descriptors %.1f → %.1f; sends not completed: %d\n",
      ok ? "held" : "DID NOT HOLD", n, mr, lr, 100 * (lr - mr) / mr, mf, lf, incomplete
    exit ok ? 0 : 1
  }' "$work/samples") && status=0 || status=$?
echo "$verdict"
exit $status
