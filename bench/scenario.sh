#!/usr/bin/env bash
# `make bench`: pushhub-bench's default scenario on this machine, with its baseline in the same
# run. pushhub-sim (one loop) and one `pushhub serve` (2 shards) on free ports, then:
#   1. populate COUNT installations over REST (MIX, TAGS tags Zipf(1), TAGS_PER_DEVICE each, a
#      template each);
#   2. a template notification to a 20-tag OR expression matching about half of them;
#   3. a template broadcast to all;
#   4. a native APNs notification to one tag;
#   5. STREAM_RATE direct sends a second for STREAM_SECONDS, with a tag send every 100;
# and first of all h2load against the simulator's APNs endpoint: same payload size, TLS,
# connections and streams as pushhub's APNs pools (the fan-out's ceiling on this machine).
# KAFKA=1 also starts pushhub-kafka-dev (librdkafka's mock cluster) and sends the 20-tag
# notification once more through Kafka (the sends topic in, the outcomes topic for its end).
# Writes bench/results/<date>-<commit>.json (every document) and .png (throughput over time and
# latency percentiles) and adds a row to the table in bench/RESULTS.md (newest first).
#
#   make bench
#   COUNT=100000 STREAM_SECONDS=10 bench/scenario.sh     # a shorter run
#   RESULTS_TABLE=0 bench/scenario.sh                     # do not touch RESULTS.md
# (tests/integration/bench_scenario_test.sh runs it on 10,000 installations.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COUNT=${COUNT:-1000000}
MIX=${MIX:-apns:70,fcm:30}
TAGS=${TAGS:-1000}
TAGS_PER_DEVICE=${TAGS_PER_DEVICE:-5}
STREAM_RATE=${STREAM_RATE:-1000}
STREAM_SECONDS=${STREAM_SECONDS:-30}
SHARDS=${SHARDS:-2}
STREAMS=${STREAMS:-100}            # the simulator's APNs stream limit, h2load's -m
APNS_CONNECTIONS=2                 # per shard: pushhub's default pool size
PAYLOAD_BYTES=${PAYLOAD_BYTES:-256}  # what a rendered APNs template weighs here
RESULTS_DIR=${RESULTS_DIR:-bench/results}
RESULTS_TABLE=${RESULTS_TABLE:-1}
PUSHHUB="$BUILD_DIR/bin/pushhub"
BENCH="$BUILD_DIR/bin/pushhub-bench"

need h2load jq gnuplot
for b in "$PUSHHUB" "$BENCH"; do [ -x "$b" ] || { echo "$b is missing: run make build first" >&2; exit 1; }; done
bench_setup
start_sim 1 "$STREAMS"
sim_hub
key=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')
bootstrap=""  # no Kafka intake unless KAFKA=1
if [ "${KAFKA:-0}" = 1 ]; then
  "$BUILD_DIR/bin/pushhub-kafka-dev" --exit-with-parent >"$work/kafka.out" 2>&1 &
  bench_pids+=($!)
  for _ in $(seq 100); do grep -q 'ready bootstrap=' "$work/kafka.out" && break; sleep 0.1; done
  bootstrap=$(sed -n 's/.*ready bootstrap=\([^ ]*\).*/\1/p' "$work/kafka.out")
  [ -n "$bootstrap" ] || { cat "$work/kafka.out" >&2; exit 1; }
fi
# FCM's default quota (600k/min) would cap the fan-out at 10k FCM messages a second; the
# simulator has none, and a project whose quota was raised neither.
PUSHHUB_ENGINE_HUBS="bench=$work/hub.json" PUSHHUB_AUTH_RULES="Full=$key:Listen,Send,Manage" \
  PUSHHUB_ENGINE_FCM_PER_MINUTE=0 PUSHHUB_KAFKA_BROKERS="$bootstrap" \
  "$PUSHHUB" serve --listen 127.0.0.1:0 --data-dir "$work/data" --shards "$SHARDS" \
  --log-level info >"$work/pushhub.out" 2>&1 &
hub_pid=$!
bench_pids+=("$hub_pid")
wait_for_pushhub "$hub_pid"

common=(--url "http://127.0.0.1:$port" --hub bench --rule Full --key "$key" --pushhub-pid "$hub_pid"
  --wns-host "localhost:$wns_port")
population=(-n "$COUNT" --mix "$MIX" --tags "$TAGS" --tags-per-device "$TAGS_PER_DEVICE")
sim_stats=(--sim-stats "http://127.0.0.1:$admin_port/stats")
# A message that makes the rendered APNs template {"aps":{"alert":"…"}} PAYLOAD_BYTES long.
message=$(printf 'x%.0s' $(seq $((PAYLOAD_BYTES - 20))))
properties="{\"message\":\"$message\"}"
native=$(printf '{"aps":{"alert":"%s"}}' "$message")

echo "pushhub-bench scenario: $COUNT installations ($MIX, $TAGS tags, $TAGS_PER_DEVICE each), pushhub $SHARDS shards, pushhub-sim 1 loop, $STREAMS streams, $(nproc) cores"
"$BENCH" baseline --apns-url "https://localhost:$sim_port" --sim-config "$work/creds/sim.conf" \
  -n "${BASELINE_REQUESTS:-400000}" -c $((SHARDS * APNS_CONNECTIONS)) -m "$STREAMS" -t "$SHARDS" \
  --payload-bytes "$PAYLOAD_BYTES" --json "$work/baseline.json"
baseline_rate=$(jq .baseline.requests_per_s "$work/baseline.json")
sends=("${common[@]}" "${sim_stats[@]}" --baseline-rate "$baseline_rate")
"$BENCH" populate "${common[@]}" "${population[@]}" --json "$work/populate.json"
expression=$("$BENCH" expression "${population[@]}" --terms 20 --match 0.5 --sample 50000 2>"$work/expression.out")
cat "$work/expression.out"
"$BENCH" send "${sends[@]}" --label half --tags "$expression" --body "$properties" \
  --json "$work/send-half.json"
"$BENCH" send "${sends[@]}" --label broadcast --body "$properties" \
  --json "$work/send-broadcast.json"
"$BENCH" send "${sends[@]}" --label native-apns --format apple --tags t1 \
  --body "$native" --json "$work/send-native.json"
if [ "${KAFKA:-0}" = 1 ]; then
  "$BENCH" send "${sends[@]}" --label half-via-kafka --via kafka --kafka "$bootstrap" \
    --tags "$expression" --body "$properties" --json "$work/send-kafka.json"
else
  echo '{}' > "$work/send-kafka.json"
fi
"$BENCH" stream "${common[@]}" "${sim_stats[@]}" "${population[@]}" --rate "$STREAM_RATE" \
  --seconds "$STREAM_SECONDS" --tag-every 100 --tag-expression "t$((TAGS - 1))" \
  --json "$work/stream.json"
# One document for the run, with the figures the targets are about.
commit=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain 2>/dev/null)" ] && commit="$commit-dirty"
day=$(date -u +%Y-%m-%d)
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$RESULTS_DIR"
out="$RESULTS_DIR/$stamp-$commit"
jq -n --arg commit "$commit" --arg expression "$expression" \
  --slurpfile populate "$work/populate.json" --slurpfile half "$work/send-half.json" \
  --slurpfile broadcast "$work/send-broadcast.json" --slurpfile native "$work/send-native.json" \
  --slurpfile stream "$work/stream.json" --slurpfile baseline "$work/baseline.json" \
  --slurpfile kafka "$work/send-kafka.json" \
  '{scenario: "default", commit: $commit, machine: $populate[0].machine,
    expression: $expression,
    summary: {
      registrations_per_s: $populate[0].populate.rate_per_s,
      registration_p99_us: $populate[0].populate.latency_us.p99,
      fanout_per_s: {half: $half[0].send.deliveries_per_s, broadcast: $broadcast[0].send.deliveries_per_s,
                     native: $native[0].send.deliveries_per_s},
      baseline_per_s: $baseline[0].baseline.requests_per_s,
      fanout_ratio: ($broadcast[0].send.deliveries_per_s / $baseline[0].baseline.requests_per_s),
      direct_p99_ms: $stream[0].stream.direct_accept_to_pns_answer.p99_ms,
      cpu_s_per_million: $broadcast[0].pushhub.cpu_seconds_per_million_deliveries,
      peak_rss_bytes: $broadcast[0].pushhub.peak_rss_bytes,
      rss_bytes_per_installation: $broadcast[0].pushhub.rss_bytes_per_installation,
      targets: {registrations: ($populate[0].populate.rate_per_s >= 50000),
                fanout_ratio: ($broadcast[0].send.deliveries_per_s / $baseline[0].baseline.requests_per_s >= 0.6),
                direct_p99: ($stream[0].stream.direct_accept_to_pns_answer.p99_ms <= 10)}},
    populate: $populate[0], sends: [$half[0], $broadcast[0], $native[0]],
    stream: $stream[0], baseline: $baseline[0]}
   + (if $kafka[0].send then {kafka_send: $kafka[0]} else {} end)' > "$out.json"

# The chart: deliveries (and registrations) per second over each phase; latency percentiles.
# Each series is counts per bin: plotted as a rate against the bin's time.
rate_dat() { jq -r "$1"' | .bin_seconds as $b | .counts | to_entries[] | "\(.key * $b) \(.value / $b)"' "$out.json"; }
rate_dat '.populate.populate.answered_over_time' > "$work/populate.dat"
for i in 0 1 2; do rate_dat ".sends[$i].send.deliveries_over_time" > "$work/send$i.dat"; done
jq -r '.sends[] | "\(.parameters.label) \(.send.accept_to_pns_answer.p50_ms) \(.send.accept_to_pns_answer.p90_ms) \(.send.accept_to_pns_answer.p99_ms)"' "$out.json" > "$work/latency.dat"
jq -r '.stream.stream.direct_accept_to_pns_answer | "direct,'"$STREAM_RATE"'/s \(.p50_ms) \(.p90_ms) \(.p99_ms)"' "$out.json" >> "$work/latency.dat"
gnuplot <<GNUPLOT
set terminal pngcairo size 1200,520 font "sans,10"
set output "$out.png"
set multiplot layout 1,2 title "pushhub-bench default scenario, $commit, $day ($COUNT installations, $(nproc) cores); h2load baseline $(jq -r '.summary.baseline_per_s | floor' "$out.json") req/s"
set title "Throughput over time"
set xlabel "seconds since the phase started"
set ylabel "per second"
set key inside top left
set grid
set format y "%.0s%c"
plot "$work/populate.dat" using 1:2 with lines lw 2 title "registrations (populate)", \
     "$work/send0.dat" using 1:2 with lines lw 2 title "deliveries: half (20-tag OR)", \
     "$work/send1.dat" using 1:2 with lines lw 2 title "deliveries: broadcast", \
     "$work/send2.dat" using 1:2 with lines lw 2 title "deliveries: native APNs, one tag", \
     $(jq -r '.summary.baseline_per_s' "$out.json") with lines dashtype 2 title "h2load baseline"
set title "Accept to push-service answer"
set xlabel ""
set ylabel "milliseconds"
set format y "%g"
set logscale y
set key inside top left
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8
set boxwidth 0.9
set xtics nomirror
plot "$work/latency.dat" using 2:xtic(1) title "p50", "" using 3 title "p90", "" using 4 title "p99"
unset multiplot
GNUPLOT

jq -r '.summary | "registrations \(.registrations_per_s | floor)/s (target ≥ 50000: \(.targets.registrations)); broadcast \(.fanout_per_s.broadcast | floor) deliveries/s = \(.fanout_ratio * 100 | floor)% of h2load \(.baseline_per_s | floor) (target ≥ 60%: \(.targets.fanout_ratio)); direct p99 \(.direct_p99_ms) ms at '"$STREAM_RATE"'/s (target ≤ 10: \(.targets.direct_p99))"' "$out.json"
echo "wrote $out.json and $out.png"

if [ "$RESULTS_TABLE" = 1 ]; then
  row=$(jq -r --arg day "$day" --arg file "$(basename "$out")" '.summary as $s |
    "| \($day) | \(.commit) | \($s.registrations_per_s | floor)/s (p99 \($s.registration_p99_us / 1000 * 10 | floor / 10) ms) | \($s.fanout_per_s.half | floor) / \($s.fanout_per_s.broadcast | floor) / \($s.fanout_per_s.native | floor) | \($s.baseline_per_s | floor) | \($s.fanout_per_s.half / $s.baseline_per_s * 100 | floor)% / **\($s.fanout_ratio * 100 | floor)%** / \($s.fanout_per_s.native / $s.baseline_per_s * 100 | floor)% | **\($s.direct_p99_ms * 100 | floor / 100) ms** | \($s.cpu_s_per_million * 100 | floor / 100) s | \($s.peak_rss_bytes / 1048576 | floor) MiB, \($s.rss_bytes_per_installation | floor) B | `\($file)` |"' "$out.json")
  python3 - "$row" <<'PY'
import sys
path = "bench/RESULTS.md"
text = open(path).read()
marker = "<!-- scenario rows: newest first (bench/scenario.sh adds them) -->\n"
if marker not in text:
    sys.exit("bench/RESULTS.md has no scenario table marker")
text = text.replace(marker, marker + sys.argv[1] + "\n", 1)
open(path, "w").write(text)
PY
  echo "added the run to bench/RESULTS.md"
fi
