# Shared by the bench/*.sh scripts: a scratch directory cleaned on exit, development credentials,
# the 256-byte APNs payload, pushhub-sim on free ports, medians.
# shellcheck shell=bash

BUILD_DIR=${BUILD_DIR:-build}
SIM="$BUILD_DIR/bin/pushhub-sim"
work=$(mktemp -d)
bench_pids=()
bench_cleanup() {
  local status=$?
  # A failed run says what the processes it started wrote last (and which of them had died).
  if [ "$status" != 0 ]; then
    for pid in "${bench_pids[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        local code=0
        wait "$pid" 2>/dev/null || code=$?
        echo "process $pid had exited (code $code)" >&2
      fi
    done
    for f in "$work"/*.out; do
      [ -s "$f" ] || continue
      echo "--- the last lines of $(basename "$f"):" >&2
      tail -n 40 "$f" >&2
    done
  fi
  for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # They may still be writing into $work (pushhub flushes its memtables on SIGTERM).
  for pid in "${bench_pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$work"
}
trap bench_cleanup EXIT

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: deploy/install-deps.sh installs it" >&2; exit 1; }
  done
}

# Credentials in $work/creds, a provider token in $jwt, the device path in $device_path and a
# 256-byte payload in $work/payload.json.
bench_setup() {
  [ -x "$SIM" ] || { echo "$SIM is missing: run make build first" >&2; exit 1; }
  "$SIM" keygen "$work/creds" >/dev/null
  jwt=$("$SIM" --config "$work/creds/sim.conf" apns-token)
  device_path="/3/device/$(printf 'a%.0s' $(seq 64))"
  local body
  body=$(printf 'x%.0s' $(seq 191))
  printf '{"aps":{"alert":{"title":"pushhub","body":"%s"},"sound":"default"}}' "$body" > "$work/payload.json"
  [ "$(wc -c < "$work/payload.json")" -eq 256 ] || { echo "payload is not 256 bytes" >&2; exit 1; }
}

# start_sim LOOPS STREAMS: the simulator on free ports, its APNs port in $sim_port.
start_sim() {
  "$SIM" --config "$work/creds/sim.conf" --apns-listen 127.0.0.1:0 --fcm-listen 127.0.0.1:0 \
    --wns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --loops "$1" \
    --apns-initial-streams "$2" --apns-max-streams "$2" --log-level warn > "$work/sim.out" 2>&1 &
  bench_pids+=($!)
  for _ in $(seq 50); do grep -q 'pushhub-sim ready' "$work/sim.out" && break; sleep 0.1; done
  sim_port=$(grep -o 'apns=[0-9]*' "$work/sim.out" | cut -d= -f2)
  [ -n "$sim_port" ] || { cat "$work/sim.out" >&2; exit 1; }
}

# h2load_rate HOST:PORT REQUESTS CLIENTS STREAMS THREADS → requests/s (all must answer 2xx).
h2load_rate() {
  local out
  out=$(h2load -n "$2" -c "$3" -m "$4" -t "$5" -d "$work/payload.json" \
    -H "authorization: bearer $jwt" -H 'apns-topic: com.example.pushhub' \
    -H 'apns-push-type: alert' "https://$1$device_path" 2>&1)
  if ! grep -q "status codes: $2 2xx" <<<"$out"; then
    echo "h2load against $1 did not get $2 2xx answers:" >&2
    grep -E 'requests:|status codes' <<<"$out" >&2
    exit 1
  fi
  grep -o 'finished in [^,]*, [0-9.]* req/s' <<<"$out" | awk '{print $(NF-1)}'
}

# After the simulator printed its ready line to $work/sim.out: its ports in $sim_port (APNs),
# $fcm_port, $wns_port, $admin_port, and the development credentials pointed at it in
# $work/hub.json (the hub definition pushhub serves).
sim_hub() {
  sim_port=$(grep -o 'apns=[0-9]*' "$work/sim.out" | cut -d= -f2)
  fcm_port=$(grep -o 'fcm=[0-9]*' "$work/sim.out" | cut -d= -f2)
  wns_port=$(grep -o 'wns=[0-9]*' "$work/sim.out" | cut -d= -f2)
  admin_port=$(grep -o 'admin=[0-9]*' "$work/sim.out" | cut -d= -f2)
  [ -n "$sim_port" ] || { cat "$work/sim.out" >&2; exit 1; }
  jq --arg a "https://localhost:$sim_port" --arg f "https://localhost:$fcm_port" \
    --arg w "https://localhost:$wns_port/accesstoken.srf" \
    '.apns.endpoint = $a | .fcm.endpoint = $f | .fcm.token_endpoint = ($f + "/token")
     | .wns.token_endpoint = $w | .wns.channel_host_suffix = "localhost"' \
    "$work/creds/credentials.json" > "$work/hub.json"
}

# wait_for_pushhub PID: waits for `pushhub serve` (log level info, output in $work/pushhub.out)
# to listen; its port in $port.
wait_for_pushhub() {
  port=""
  for _ in $(seq 200); do
    port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/pushhub.out" | tail -n 1)
    [ -n "$port" ] && return 0
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/pushhub.out" >&2
  exit 1
}

# pushhub_setup TOOL...: for the scripts that run pushhub itself — $PUSHHUB and $BENCH (checked
# to be built), the tools present, bench_setup done, and a random rule key in $key.
pushhub_setup() {
  PUSHHUB="$BUILD_DIR/bin/pushhub"
  BENCH="$BUILD_DIR/bin/pushhub-bench"
  need "$@"
  for b in "$PUSHHUB" "$BENCH"; do [ -x "$b" ] || { echo "$b is missing: run make build first" >&2; exit 1; }; done
  bench_setup
  key=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')
}

# stop_pid PID: SIGTERM, then waits (10 s at most) for it to be gone.
stop_pid() { kill "$1" 2>/dev/null || true; for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
percent() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", 100 * a / b}'; }
