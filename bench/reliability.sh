#!/usr/bin/env bash
# `make reliability`: pushhub against faults, with real processes (the hardening issue). Each
# case starts what it needs on free ports, is bounded in count and time, and stops by itself.
#
#   1. push-service faults × send kinds: pushhub-sim with one fault at a time (5xx, 429, resets,
#      GOAWAY, latency, WNS unreachable, WNS stuck in TLS), COUNT installations (70% APNs, 25% FCM,
#      5% WNS), then a broadcast, a tag send, a direct send and a scheduled send, each followed
#      to its end: state, outcomes, seconds, requests the simulator received per device;
#   2. kill -9 at random points of a broadcast, KILLS times: pushhub restarts on the same data,
#      the broadcast resumes; every device reached, duplicates against the bound
#      (in_flight_per_shard + checkpoint_every per shard);
#   3. a connection flood: FLOOD idle connections beyond http.max_connections, /healthz and
#      /metrics still answer, a REST write still lands;
#   4. the disk filling under RocksDB (a small tmpfs the script mounts; root only): writes answer
#      503, nothing acknowledged is lost, writes succeed again once space returns.
# Writes a report table to REPORT (bench/RELIABILITY.md's run section when REPORT is that file,
# or stdout). QUICK=1 runs a subset (two faults, broadcast and direct, one kill) for CI.
#
#   make reliability                  # ~15 minutes
#   QUICK=1 bench/reliability.sh      # ~1 minute (tests/integration/reliability_quick_test.sh)
#   ONLY="flood disk" bench/reliability.sh   # some of: faults kill flood disk
#   ONLY=faults FAULTS="wns:tls-stall=1" bench/reliability.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

QUICK=${QUICK:-0}
COUNT=${COUNT:-5000}
KILLS=${KILLS:-$([ "$QUICK" = 1 ] && echo 1 || echo 5)}
FLOOD=${FLOOD:-300}
SHARDS=${SHARDS:-2}
REPORT=${REPORT:-}
pushhub_setup jq curl
rows=()
failed=0
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

# start_sim_with FAULT...: the simulator with these --fault specs (none: healthy).
start_sim_with() {
  local args=()
  for f in "$@"; do args+=(--fault "$f"); done
  "$SIM" --config "$work/creds/sim.conf" --apns-listen 127.0.0.1:0 --fcm-listen 127.0.0.1:0 \
    --wns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --loops 1 --log-level warn \
    "${args[@]}" > "$work/sim.out" 2>&1 &
  sim_pid=$!
  bench_pids+=("$sim_pid")
  for _ in $(seq 50); do grep -q 'pushhub-sim ready' "$work/sim.out" && break; sleep 0.1; done
  sim_hub
}

# start_hub DATA_DIR [ENV=VALUE...]: pushhub on a free port, its port in $port.
start_hub() {
  local data=$1
  shift
  : > "$work/pushhub.out"
  env PUSHHUB_ENGINE_HUBS="rel=$work/hub.json" PUSHHUB_AUTH_RULES="Full=$key:Listen,Send,Manage" \
    PUSHHUB_ENGINE_FCM_PER_MINUTE=0 PUSHHUB_ENGINE_CHECKPOINT_EVERY=128 "$@" \
    "$PUSHHUB" serve --listen 127.0.0.1:0 --data-dir "$data" --shards "$SHARDS" \
    --log-level info >>"$work/pushhub.out" 2>&1 &
  hub_pid=$!
  bench_pids+=("$hub_pid")
  wait_for_pushhub "$hub_pid"
  token=$("$PUSHHUB" sas-token --resource "http://127.0.0.1:$port/" --rule Full --key "$key")
}

sim_requests() { curl -s "http://127.0.0.1:$admin_port/stats" | jq '[.apns.requests // 0, .fcm.requests // 0, .wns.requests // 0] | add'; }

# rest_send KIND → the notification's id. KIND: broadcast, tag, direct, scheduled.
rest_send() {
  local kind=$1 url="http://127.0.0.1:$port/rel/messages" headers=()
  local body='{"message":"reliability"}'
  headers=(-H "Authorization: $token" -H "Content-Type: application/json")
  case "$kind" in
    broadcast) headers+=(-H "ServiceBusNotification-Format: template") ;;
    tag) headers+=(-H "ServiceBusNotification-Format: template" -H "ServiceBusNotification-Tags: t1 || t2 || t3") ;;
    direct)
      url="$url?direct"
      body='{"aps":{"alert":"reliability"}}'
      headers+=(-H "ServiceBusNotification-Format: apple" -H "ServiceBusNotification-DeviceHandle: $(printf 'd%.0s' $(seq 64))") ;;
    scheduled)
      url="http://127.0.0.1:$port/rel/schedulednotifications"
      headers+=(-H "ServiceBusNotification-Format: template"
        -H "ServiceBusNotification-ScheduleTime: $(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)") ;;
  esac
  curl -s -D "$work/headers" -o "$work/send-body" "${headers[@]}" --data "$body" "$url" >/dev/null
  sed -n 's/^[Ll]ocation: .*\/\(messages\|schedulednotifications\)\/\([^?\r]*\).*/\2/p' "$work/headers" | tr -d '\r'
}

# follow ID TIMEOUT_S → the final telemetry (JSON), or the last one seen.
follow() {
  local id=$1 deadline=$((SECONDS + $2)) t
  while :; do
    t=$(curl -s -H "Authorization: $token" -H 'Accept: application/json' \
      "http://127.0.0.1:$port/rel/messages/$id")
    case "$(jq -r .state <<<"$t" 2>/dev/null)" in
      Completed|Abandoned|NoTargetFound|Canceled) echo "$t"; return ;;
    esac
    [ $SECONDS -ge $deadline ] && { echo "$t"; return; }
    sleep 0.1
  done
}

# row CASE KIND TELEMETRY SECONDS REQUESTS EXPECTATION_OK NOTE
row() {
  local verdict=held
  [ "$6" = 1 ] || { verdict="**did not hold**"; failed=1; }
  rows+=("| $1 | $2 | $(jq -r .state <<<"$3") | $(jq -c .counts <<<"$3") | $4 s | $5 | $verdict | $7 |")
  echo "$1 / $2: $(jq -r .state <<<"$3") $(jq -c .counts <<<"$3") in $4 s — $verdict"
}

# ---- 1. push-service faults × send kinds ----------------------------------------------------
faults=("none" "all:503=0.05" "all:throttle=0.05" "all:reset=0.01" "all:goaway-every=200"
        "all:latency-us=200000" "wns-unreachable" "wns:tls-stall=1")
kinds=(broadcast tag direct scheduled)
if [ "$QUICK" = 1 ]; then faults=("all:reset=0.01" "wns-unreachable"); kinds=(broadcast direct); fi
[ -n "${FAULTS:-}" ] && read -ra faults <<<"$FAULTS"
want faults || faults=()
for fault in "${faults[@]}"; do
  case "$fault" in
    none|wns-unreachable) start_sim_with ;;
    *) start_sim_with "$fault" ;;
  esac
  wns_host="localhost:$wns_port"
  [ "$fault" = wns-unreachable ] && wns_host="localhost:1"
  start_hub "$work/data-$fault"
  "$BENCH" populate --url "http://127.0.0.1:$port" --hub rel --rule Full --key "$key" \
    -n "$COUNT" --mix apns:70,fcm:25,wns:5 --tags 20 --tags-per-device 3 --wns-host "$wns_host" \
    > "$work/populate.out" 2>&1
  for kind in "${kinds[@]}"; do
    before=$(sim_requests)
    start=$SECONDS
    id=$(rest_send "$kind")
    [ -n "$id" ] || { cat "$work/send-body" >&2; exit 1; }
    # A throttled service asks for 60 s between attempts (Retry-After): a device throttled twice
    # takes two minutes and more.
    t=$(follow "$id" "$([ "$fault" = all:throttle=0.05 ] && echo 400 || echo 120)")
    took=$((SECONDS - start))
    per_device=$(awk -v a="$(sim_requests)" -v b="$before" \
      -v n="$(jq '[.counts[][]] | add // 0' <<<"$t")" 'BEGIN {printf "%.2f", n ? (a - b) / n : 0}')
    # Held: it ended (not abandoned), and every APNs and FCM device succeeded; WNS devices
    # succeeded or, when WNS cannot be reached, ended PnsUnreachable.
    ok=$(jq --arg f "$fault" '
      (.state == "Completed") and
      ([.counts.apns // {}, .fcmv1 // {}] | true) and
      (((.counts.apns // {}) | keys - ["Success"]) == []) and
      (((.counts.fcmv1 // {}) | keys - ["Success"]) == []) and
      (if ($f == "wns-unreachable" or $f == "wns:tls-stall=1")
       then (((.counts.wns // {}) | keys - ["PnsUnreachable"]) == [])
       else (((.counts.wns // {}) | keys - ["Success"]) == []) end)
      | if . then 1 else 0 end' <<<"$t")
    row "$fault" "$kind" "$t" "$took" "$per_device" "$ok" ""
  done
  stop_pid "$hub_pid"
  stop_pid "$sim_pid"
done

# ---- 2. kill -9 during a broadcast ------------------------------------------------------------
want kill || KILLS=0
start_sim_with
start_hub "$work/data-kill"
"$BENCH" populate --url "http://127.0.0.1:$port" --hub rel --rule Full --key "$key" \
  -n "$((COUNT * 4))" --mix apns:70,fcm:30 --tags 20 --tags-per-device 3 > "$work/populate.out" 2>&1
bound=$((SHARDS * (2048 + 128)))
for k in $(seq "$KILLS"); do
  before=$(sim_requests)
  id=$(rest_send broadcast)
  sleep "0.$((RANDOM % 9 + 1))"
  kill -9 "$hub_pid"
  wait "$hub_pid" 2>/dev/null || true
  start_hub "$work/data-kill"
  t=$(follow "$id" 120)
  received=$(($(sim_requests) - before))
  devices=$((COUNT * 4))
  duplicates=$((received - devices))
  ok=$(jq --argjson d "$devices" --argjson dup "$duplicates" --argjson b "$bound" \
    '(.state == "Completed") and ([.counts[][]] | add) >= $d and $dup <= $b | if . then 1 else 0 end' <<<"$t")
  row "kill -9 #$k" broadcast "$t" "-" "$(awk -v r="$received" -v d="$devices" 'BEGIN {printf "%.3f", r / d}')" \
    "$ok" "$duplicates duplicates (bound $bound)"
done
stop_pid "$hub_pid"

# ---- 3. connection flood ----------------------------------------------------------------------
if want flood; then
start_hub "$work/data-flood" PUSHHUB_HTTP_MAX_CONNECTIONS=100 PUSHHUB_HTTP_MAX_CONNECTIONS_PER_CLIENT=0
fds=()
for _ in $(seq "$FLOOD"); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port" && fds+=("$fd")
done
health=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/healthz")
metrics=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/metrics")
write=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X PUT -H "Authorization: $token" \
  -H 'Content-Type: application/json' \
  --data "{\"installationId\":\"flood\",\"platform\":\"apns\",\"pushChannel\":\"$(printf 'f%.0s' $(seq 64))\"}" \
  "http://127.0.0.1:$port/rel/installations/flood")
for fd in "${fds[@]}"; do exec {fd}>&-; done
ok=0
[ "$health" = 200 ] && [ "$metrics" = 200 ] && [ "$write" = 200 ] && ok=1
rows+=("| flood: ${#fds[@]} idle connections, max_connections 100 | REST | - | /healthz $health, /metrics $metrics, PUT $write | - | - | $([ $ok = 1 ] && echo held || echo '**did not hold**') | idle ones make room |")
[ $ok = 1 ] || failed=1
echo "flood: /healthz $health /metrics $metrics PUT $write"
stop_pid "$hub_pid"
fi

# ---- 4. the disk filling (root: a small tmpfs) -----------------------------------------------
if want disk && [ "$QUICK" != 1 ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$work/small"
  mount -t tmpfs -o size=24m tmpfs "$work/small"
  trap 'umount "$work/small" 2>/dev/null || true; bench_cleanup' EXIT
  start_hub "$work/small/data"
  acked=0 refused=0 other=0
  # 60 tags of 100 characters: about 6 KB an installation, so that 24 MiB fill in a few
  # thousand writes.
  tags=$(for t in $(seq 60); do printf '"%s%03d",' "$(printf 't%.0s' $(seq 97))" "$t"; done)
  tags=${tags%,}
  for i in $(seq 20000); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: $token" \
      -H 'Content-Type: application/json' \
      --data "{\"installationId\":\"d$i\",\"platform\":\"apns\",\"pushChannel\":\"$(printf '%064x' "$i")\",\"tags\":[$tags]}" \
      "http://127.0.0.1:$port/rel/installations/d$i" || echo 000)
    case "$code" in 200) acked=$i ;; 503|507) refused=$((refused + 1)); [ $refused -ge 20 ] && break ;; *) other=$((other + 1)) ;; esac
  done
  mount -o remount,size=256m "$work/small"
  sleep 1
  after=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: $token" \
    -H 'Content-Type: application/json' \
    --data "{\"installationId\":\"after\",\"platform\":\"apns\",\"pushChannel\":\"$(printf 'e%.0s' $(seq 64))\"}" \
    "http://127.0.0.1:$port/rel/installations/after")
  stop_pid "$hub_pid"
  start_hub "$work/small/data"
  missing=0
  for i in $(seq 1 97 "$acked"); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $token" "http://127.0.0.1:$port/rel/installations/d$i")
    [ "$code" = 200 ] || missing=$((missing + 1))
  done
  ok=0
  [ "$refused" -gt 0 ] && [ "$other" = 0 ] && [ "$after" = 200 ] && [ "$missing" = 0 ] && ok=1
  [ $ok = 1 ] || failed=1
  rows+=("| disk full (24 MiB tmpfs, then 256 MiB) | REST PUT | - | $acked acknowledged, $refused refused when full, $other other answers; after space returned: $after; acknowledged missing after restart: $missing (every 97th checked) | - | - | $([ $ok = 1 ] && echo held || echo '**did not hold**') | |")
  echo "disk full: $acked acknowledged, $refused refused, $other other; after: $after; missing $missing"
  stop_pid "$hub_pid"
  umount "$work/small"
fi

table=$(printf '%s\n' "| case | send | state | outcomes / answers | seconds | requests per device | verdict | note |" \
  "|---|---|---|---|---|---|---|---|" "${rows[@]}")
if [ -n "$REPORT" ]; then
  commit=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
  { echo; echo "### $(date -u +%Y-%m-%d) at $commit ($([ "$QUICK" = 1 ] && echo quick || echo full), COUNT=$COUNT, KILLS=$KILLS)"; echo; echo "$table"; } >> "$REPORT"
fi
echo
echo "$table"
exit $failed
