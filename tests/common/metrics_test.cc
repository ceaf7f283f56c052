#include "common/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace pushhub {
namespace {

using ::testing::HasSubstr;

TEST(MetricsRegistry, RendersCountersAndGaugesInPrometheusTextFormat) {
  MetricsRegistry registry;
  registry.counter("requests_total", "Requests served", {{"code", "200"}}).inc(3);
  registry.counter("requests_total", "Requests served", {{"code", "404"}}).inc();
  registry.gauge("connections_open", "Open connections").set(-2);

  EXPECT_EQ(registry.renderPrometheus(),
            "# HELP connections_open Open connections\n"
            "# TYPE connections_open gauge\n"
            "connections_open -2\n"
            "# HELP requests_total Requests served\n"
            "# TYPE requests_total counter\n"
            "requests_total{code=\"200\"} 3\n"
            "requests_total{code=\"404\"} 1\n");
}

TEST(MetricsRegistry, SameNameAndLabelsReturnTheSameCounter) {
  MetricsRegistry registry;
  Counter& a = registry.counter("x_total", "x", {{"k", "v"}});
  Counter& b = registry.counter("x_total", "x", {{"k", "v"}});
  Counter& other = registry.counter("x_total", "x", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  MetricsRegistry registry;
  registry.counter("e_total", "line one\nback\\slash", {{"path", "a\"b\\c\nd"}}).inc();
  const std::string text = registry.renderPrometheus();
  EXPECT_THAT(text, HasSubstr("# HELP e_total line one\\nback\\\\slash\n"));
  EXPECT_THAT(text, HasSubstr("e_total{path=\"a\\\"b\\\\c\\nd\"} 1\n"));
}

TEST(MetricsRegistry, RejectsInvalidNamesAndTypeConflicts) {
  MetricsRegistry registry;
  EXPECT_THROW(registry.counter("1starts_with_digit", "x"), std::logic_error);
  EXPECT_THROW(registry.counter("has-dash", "x"), std::logic_error);
  EXPECT_THROW(registry.counter("ok_total", "x", {{"bad-label", "v"}}), std::logic_error);
  EXPECT_THROW(registry.counter("ok_total", "x", {{"__reserved", "v"}}), std::logic_error);
  registry.counter("typed", "x");
  EXPECT_THROW(registry.gauge("typed", "x"), std::logic_error);
}

TEST(MetricsRegistry, CallbackGaugeIsReadAtScrapeTime) {
  MetricsRegistry registry;
  double value = 1.5;
  registry.callbackGauge("live", "computed", {}, [&] { return value; });
  EXPECT_THAT(registry.renderPrometheus(), HasSubstr("live 1.5\n"));
  value = 7;
  EXPECT_THAT(registry.renderPrometheus(), HasSubstr("live 7\n"));
}

TEST(MetricsRegistry, CountsIncrementsFromManyThreads) {
  MetricsRegistry registry;
  Counter& counter = registry.counter("c_total", "c");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) counter.inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.value(), 400000u);
}

}  // namespace
}  // namespace pushhub

namespace pushhub {
namespace {

TEST(Histogram, RendersCumulativeBucketsSumAndCount) {
  MetricsRegistry registry;
  Histogram& h = registry.histogram("pushhub_latency_seconds", "Latency", {0.001, 0.01, 0.1},
                                    {{"kind", "direct"}});
  h.observe(0.0005);
  h.observe(0.005);
  h.observe(0.005);
  h.observe(5);
  const std::string text = registry.renderPrometheus();
  EXPECT_NE(text.find("# TYPE pushhub_latency_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find(R"(pushhub_latency_seconds_bucket{kind="direct",le="0.001"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(pushhub_latency_seconds_bucket{kind="direct",le="0.01"} 3)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(pushhub_latency_seconds_bucket{kind="direct",le="0.1"} 3)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(pushhub_latency_seconds_bucket{kind="direct",le="+Inf"} 4)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(pushhub_latency_seconds_sum{kind="direct"} 5.0105)"), std::string::npos);
  EXPECT_NE(text.find(R"(pushhub_latency_seconds_count{kind="direct"} 4)"), std::string::npos);
}

TEST(Histogram, QuantilesInterpolateWithinTheirBucket) {
  Histogram h({0.001, 0.002, 0.005});
  EXPECT_EQ(h.quantile(0.5), 0);
  for (int i = 0; i < 100; ++i) h.observe(i < 90 ? 0.0015 : 0.004);
  // 90 in (0.001, 0.002], 10 in (0.002, 0.005].
  EXPECT_NEAR(h.quantile(0.5), 0.001 + 0.001 * (50.0 / 90.0), 1e-9);
  EXPECT_NEAR(h.quantile(0.99), 0.002 + 0.003 * (9.0 / 10.0), 1e-9);
  h.observe(10);  // above every bound: reported as the last bound
  EXPECT_EQ(h.quantile(1.0), 0.005);
}

}  // namespace
}  // namespace pushhub
