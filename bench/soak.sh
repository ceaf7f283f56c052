#!/usr/bin/env bash
# `make soak` (not in CI): DURATION seconds (1800) of mixed load against one pushhub with a
# faulty simulator (APNs/FCM/WNS 503 at 1%, connection resets at 0.1%): a round every few
# seconds registers or updates BATCH installations, sends a broadcast, a tag send and direct
# sends, and follows them to their end. pushhub's RSS and open descriptors are sampled every
# round; the run holds when over the last third RSS grows by at most 5% and descriptors by at
# most 10 (no leak), and every send completed.
#
#   make soak                         # 30 minutes
#   DURATION=300 bench/soak.sh        # a shorter run
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-1800}
BATCH=${BATCH:-5000}
SHARDS=${SHARDS:-2}
pushhub_setup jq curl

"$SIM" --config "$work/creds/sim.conf" --apns-listen 127.0.0.1:0 --fcm-listen 127.0.0.1:0 \
  --wns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --loops 1 --log-level warn \
  --fault all:503=0.01 --fault all:reset=0.001 > "$work/sim.out" 2>&1 &
bench_pids+=($!)
for _ in $(seq 50); do grep -q 'pushhub-sim ready' "$work/sim.out" && break; sleep 0.1; done
sim_hub
PUSHHUB_ENGINE_HUBS="soak=$work/hub.json" PUSHHUB_AUTH_RULES="Full=$key:Listen,Send,Manage" \
  PUSHHUB_ENGINE_FCM_PER_MINUTE=0 \
  "$PUSHHUB" serve --listen 127.0.0.1:0 --data-dir "$work/data" --shards "$SHARDS" \
  --log-level info >"$work/pushhub.out" 2>&1 &
hub_pid=$!
bench_pids+=("$hub_pid")
wait_for_pushhub "$hub_pid"
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
# RocksDB's memtables and caches fill up to their limits during the first part of the run (the
# population also grows for the first 20 rounds): the last third is where RSS must be flat.
verdict=$(awk -v incomplete="$incomplete" '
  {t[NR]=$1; r[NR]=$2; f[NR]=$3}
  END {
    n = NR; from = int(2 * n / 3) + 1
    if (n < 3) from = 1
    growth = (r[n] - r[from]) / r[from]
    maxf = 0; for (i = from; i <= n; i++) if (f[i] > maxf) maxf = f[i]
    ok = growth <= 0.05 && maxf <= f[from] + 10 && incomplete == 0
    printf "%s: %d rounds in %d s; RSS over the last third %d → %d KiB (%+.1f%%); descriptors %d → %d (at most %d); sends not completed: %d\n",
      ok ? "held" : "DID NOT HOLD", n, t[n], r[from], r[n], 100 * growth, f[from], f[n], maxf, incomplete
    exit ok ? 0 : 1
  }' "$work/samples") && status=0 || status=$?
echo "$verdict"
exit $status
