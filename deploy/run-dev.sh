#!/usr/bin/env bash
# `make run`: pushhub-sim (APNs, FCM, WNS) beside pushhub, with development credentials written
# once to ./dev (a CA, the simulator's certificate, an APNs key, an FCM service account, a
# WNS app; credentials.json says what a hub uses to reach the simulator). Arguments go to
# `pushhub serve`. Ctrl-C stops both.
set -euo pipefail

BUILD_DIR=${BUILD_DIR:-build}
SIM_DIR=${SIM_DIR:-dev}
SIM="$BUILD_DIR/bin/pushhub-sim"

mkdir -p "$SIM_DIR"
if [ ! -f "$SIM_DIR/sim.conf" ]; then
  "$SIM" keygen "$SIM_DIR" >/dev/null
  echo "run-dev: wrote development credentials to $SIM_DIR"
fi

# SIM_ARGS: more simulator flags (e.g. other ports, faults), split on spaces.
# shellcheck disable=SC2086
"$SIM" --config "$SIM_DIR/sim.conf" --log-level warn ${SIM_ARGS:-} >"$SIM_DIR/sim.log" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  grep -q 'pushhub-sim ready' "$SIM_DIR/sim.log" 2>/dev/null && break
  if ! kill -0 "$sim_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if ! grep -q 'pushhub-sim ready' "$SIM_DIR/sim.log" 2>/dev/null; then
  echo "run-dev: pushhub-sim did not start:" >&2
  cat "$SIM_DIR/sim.log" >&2
  exit 1
fi
read -r apns fcm wns admin < <(sed -n 's/.*ready apns=\([0-9]*\) fcm=\([0-9]*\) wns=\([0-9]*\) admin=\([0-9]*\).*/\1 \2 \3 \4/p' "$SIM_DIR/sim.log")
echo "run-dev: pushhub-sim is up: APNs https://localhost:$apns, FCM https://localhost:$fcm," \
  "WNS https://localhost:$wns, counters http://127.0.0.1:$admin/stats (log: $SIM_DIR/sim.log," \
  "hub credentials: $SIM_DIR/credentials.json)"

"$BUILD_DIR/bin/pushhub" serve "$@"
