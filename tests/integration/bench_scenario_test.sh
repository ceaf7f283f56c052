#!/usr/bin/env bash
# pushhub-bench's default scenario on 10,000 installations, so that the tool cannot silently
# rot: every phase runs against the real pushhub and pushhub-sim, and what it reports adds up
# (no figure is judged: speed is for benchmarks, not tests).
# With KAFKA=1 the 20-tag send also goes through Kafka (pushhub-kafka-dev).
#   tests/integration/bench_scenario_test.sh BUILD_DIR
set -euo pipefail
build_dir=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
COUNT=10000 STREAM_RATE=200 STREAM_SECONDS=2 BASELINE_REQUESTS=20000 RESULTS_TABLE=0 \
  RESULTS_DIR="$results" BUILD_DIR="$build_dir" bench/scenario.sh >"$results/log" 2>&1 || {
  cat "$results/log"; exit 1; }
run=$(ls "$results"/*.json)
[ -s "${run%.json}.png" ] || { echo "no chart"; exit 1; }
fail() { echo "FAILED: $*"; cat "$results/log"; exit 1; }
check() { jq -e "$1" "$run" >/dev/null || fail "$1 ($(jq -c "$2" "$run"))"; }
check '.populate.populate.answered == 10000 and .populate.populate.statuses["200"] == 10000' '.populate.populate.statuses'
check '.populate.parameters.population.mix == "apns:70,fcm:30"' '.populate.parameters'
# Every send ended, the simulator got exactly what the telemetry counted, all successes.
for i in 0 1 2; do
  check ".sends[$i].send.state == \"Completed\"" ".sends[$i].send.state"
  check "([.sends[$i].send.counts[][]] | add) == .sends[$i].send.deliveries" ".sends[$i].send"
  check "([.sends[$i].send.counts[] | del(.Success)[]] | add // 0) == 0" ".sends[$i].send.counts"
  check ".sends[$i].send.accept_to_pns_answer.count == .sends[$i].send.deliveries" ".sends[$i].send.accept_to_pns_answer"
done
check '.sends[1].send.deliveries == 10000' '.sends[1].send.deliveries'
check '.sends[1].send.counts.apns.Success == 7000 and .sends[1].send.counts.fcmv1.Success == 3000' '.sends[1].send.counts'
# "About half": the expression was chosen on the same devices.
check '.sends[0].send.deliveries > 4000 and .sends[0].send.deliveries < 6000' '.sends[0].send.deliveries'
check '.sends[2].send.counts | keys == ["apns"]' '.sends[2].send.counts'
check '.stream.posts.answered == 400 and (.stream.posts.statuses["201"] // 0) == 400' '.stream.posts.statuses'
check '.stream.stream.direct_accept_to_pns_answer.count >= 396' '.stream.stream'
check '.baseline.baseline.requests == 20000 and .baseline.baseline.requests_per_s > 0' '.baseline.baseline'
check '.summary.fanout_ratio > 0 and .summary.registrations_per_s > 0' '.summary'
if [ "${KAFKA:-0}" = 1 ]; then
  check '.kafka_send.send.state == "Completed" and .kafka_send.parameters.via == "kafka"' '.kafka_send.send'
  check '.kafka_send.send.deliveries == .sends[0].send.deliveries' '.kafka_send.send.deliveries'
  check '([.kafka_send.send.counts[][]] | add) == .kafka_send.send.deliveries' '.kafka_send.send.counts'
fi
echo "bench scenario: 10000 installations, 3 sends, a stream and the baseline add up"
