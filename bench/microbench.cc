// Unit benchmarks of code on hot paths. Fixed inputs; run with `make bench` or directly:
//   build/bin/pushhub_microbench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <string>

#include "common/json.h"
#include "common/metrics.h"

namespace {

// A counter bump is on every request and, later, every delivery: it must stay a few ns.
void BM_CounterIncrement(benchmark::State& state) {
  static pushhub::MetricsRegistry registry;
  auto& counter = registry.counter("bench_events_total", "events");
  for (auto _ : state) counter.inc();
  benchmark::DoNotOptimize(counter.value());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2);

// JSON escaping runs on every JSON log line and, later, on every rendered template value.
void BM_JsonEscape(benchmark::State& state) {
  const std::string plain(static_cast<size_t>(state.range(0)), 'a');
  std::string mixed;
  while (mixed.size() < plain.size()) mixed += "Grüße \"quoted\"\n\t";
  mixed.resize(plain.size());
  const std::string& input = state.range(1) == 0 ? plain : mixed;
  std::string out;
  for (auto _ : state) {
    out.clear();
    pushhub::appendJsonEscaped(out, input);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(input.size()));
}
BENCHMARK(BM_JsonEscape)->ArgsProduct({{64, 4096}, {0, 1}});

// /metrics is scraped every few seconds; rendering 200 series must stay well under a millisecond.
void BM_RenderPrometheus(benchmark::State& state) {
  pushhub::MetricsRegistry registry;
  for (int i = 0; i < 200; ++i) {
    registry.counter("bench_responses_total", "responses", {{"code", std::to_string(100 + i)}})
        .inc(static_cast<uint64_t>(i));
  }
  for (auto _ : state) benchmark::DoNotOptimize(registry.renderPrometheus());
}
BENCHMARK(BM_RenderPrometheus);

}  // namespace

BENCHMARK_MAIN();
