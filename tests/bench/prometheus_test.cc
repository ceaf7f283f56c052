#include "bench/tool/prometheus.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/metrics.h"

namespace pushhub::bench {
namespace {

TEST(Prometheus, ReadsSamplesWithLabelsAndSkipsComments) {
  const auto samples = parsePrometheus(
      "# HELP x A thing\n# TYPE x counter\nx 3\nx{a=\"1\",b=\"q\\\"uote\"} 4.5\n"
      "broken{a=\"1\" 3\ny{le=\"+Inf\"} 7\r\n\n");
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[1].labels.at("b"), "q\"uote");
  EXPECT_EQ(sumOf(samples, "x"), 7.5);
  EXPECT_EQ(sumOf(samples, "x", {{"a", "1"}}), 4.5);
  EXPECT_EQ(sumOf(samples, "x", {{"a", "2"}}), 0);
}

// What pushhub renders, read back: the quantiles match the registry's own.
TEST(Prometheus, BucketsFromPushhubsOwnRenderingGiveItsQuantiles) {
  MetricsRegistry registry;
  auto& direct = registry.histogram("pushhub_delivery_latency_seconds", "L", latencyBuckets(),
                                    {{"target", "direct"}});
  auto& tags = registry.histogram("pushhub_delivery_latency_seconds", "L", latencyBuckets(),
                                  {{"target", "tags"}});
  const auto before = parsePrometheus(registry.renderPrometheus());
  for (int i = 1; i <= 1000; ++i) direct.observe(i * 1e-5);  // 0.01 … 10 ms
  tags.observe(2.0);
  const auto after = parsePrometheus(registry.renderPrometheus());
  const Buckets d =
      difference(bucketsOf(after, "pushhub_delivery_latency_seconds", {{"target", "direct"}}),
                 bucketsOf(before, "pushhub_delivery_latency_seconds", {{"target", "direct"}}));
  EXPECT_EQ(d.total(), 1000);
  for (double q : {0.5, 0.9, 0.99}) EXPECT_NEAR(d.quantile(q), direct.quantile(q), 1e-9) << q;
  EXPECT_NEAR(d.quantile(0.5), 0.005, 0.005 / 3);
  EXPECT_DOUBLE_EQ(d.maxBound(), 0.01);
  const Buckets all = bucketsOf(after, "pushhub_delivery_latency_seconds");
  EXPECT_EQ(all.total(), 1001) << "summed over the series";
  EXPECT_EQ(Buckets{}.quantile(0.5), 0);
}

TEST(Prometheus, AValueAboveEveryBoundIsReportedAsTheLastBound) {
  MetricsRegistry registry;
  registry.histogram("h", "H", {0.1, 1}, {}).observe(50);
  const Buckets b = bucketsOf(parsePrometheus(registry.renderPrometheus()), "h");
  ASSERT_EQ(b.upper.size(), 3u);
  EXPECT_TRUE(std::isinf(b.upper.back()));
  EXPECT_EQ(b.quantile(0.99), 1);
  EXPECT_EQ(b.maxBound(), 1);
}

}  // namespace
}  // namespace pushhub::bench
