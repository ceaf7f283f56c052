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

# The `demo` hub: the development credentials, pointed at the ports the simulator really took.
sed -e "s/localhost:2197/localhost:$apns/g" -e "s/localhost:2198/localhost:$fcm/g" \
  -e "s/localhost:2199/localhost:$wns/g" \
  -e "s|\"fcm\": {|\"fcm\": {\"token_endpoint\": \"https://localhost:$fcm/token\", |" \
  "$SIM_DIR/credentials.json" >"$SIM_DIR/hub-demo.json"
export PUSHHUB_ENGINE_HUBS="${PUSHHUB_ENGINE_HUBS:-demo=$SIM_DIR/hub-demo.json}"

# The REST API's rule: a key made once, kept in $SIM_DIR/sas.key (tokens: `pushhub sas-token`).
if [ ! -f "$SIM_DIR/sas.key" ]; then
  head -c 32 /dev/urandom | base64 | tr -d '\n' >"$SIM_DIR/sas.key"
fi
export PUSHHUB_AUTH_RULES="${PUSHHUB_AUTH_RULES:-DefaultFullSharedAccessSignature=$(cat "$SIM_DIR/sas.key"):Listen,Send,Manage}"

# KAFKA=1: a local Kafka-protocol broker too (pushhub-kafka-dev), and pushhub reading from it.
if [ "${KAFKA:-0}" = "1" ]; then
  # Its own session: Ctrl-C stops pushhub first (which commits its offsets), then the trap stops
  # the broker.
  setsid "$BUILD_DIR/bin/pushhub-kafka-dev" --exit-with-parent \
    --bootstrap-file "$SIM_DIR/kafka.bootstrap" >"$SIM_DIR/kafka.log" 2>&1 &
  kafka_pid=$!
  trap 'kill "$sim_pid" "$kafka_pid" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
  for _ in $(seq 50); do
    grep -q 'ready bootstrap=' "$SIM_DIR/kafka.log" 2>/dev/null && break
    sleep 0.1
  done
  bootstrap=$(sed -n 's/.*ready bootstrap=\([^ ]*\).*/\1/p' "$SIM_DIR/kafka.log")
  if [ -z "$bootstrap" ]; then
    echo "run-dev: pushhub-kafka-dev did not start:" >&2
    cat "$SIM_DIR/kafka.log" >&2
    exit 1
  fi
  export PUSHHUB_KAFKA_BROKERS="$bootstrap"
  echo "run-dev: Kafka (pushhub-kafka-dev) at $bootstrap: produce send requests to pushhub.sends," \
    "outcomes on pushhub.outcomes (address also in $SIM_DIR/kafka.bootstrap)"
fi

# TLS=1: the API over HTTPS with the simulator's development certificate (localhost, 127.0.0.1);
# clients trust $SIM_DIR/ca.crt (curl --cacert, NODE_EXTRA_CA_CERTS for the JS SDK).
if [ "${TLS:-0}" = "1" ]; then
  export PUSHHUB_HTTP_TLS_CERT_FILE="$SIM_DIR/server.crt"
  export PUSHHUB_HTTP_TLS_KEY_FILE="$SIM_DIR/server.key"
  echo "run-dev: HTTPS with $SIM_DIR/server.crt; trust $SIM_DIR/ca.crt"
fi

"$BUILD_DIR/bin/pushhub" serve "$@"
