#include "bench/tool/stats.h"

#include <gtest/gtest.h>

#include <random>

namespace pushhub::bench {
namespace {

TEST(Histogram, SmallValuesAreExactAndLargeOnesWithinOneSixtyFourth) {
  for (uint64_t v = 0; v < 128; ++v) {
    EXPECT_EQ(Histogram::bucketUpperBound(Histogram::bucketOf(v)), v);
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    const size_t b = Histogram::bucketOf(v);
    const uint64_t upper = Histogram::bucketUpperBound(b);
    ASSERT_GE(upper, v) << v;
    if (b > 0) {
      ASSERT_LT(Histogram::bucketUpperBound(b - 1), v) << v;
    }
    ASSERT_LE(static_cast<double>(upper - v), static_cast<double>(v) / 64.0) << v;
  }
  EXPECT_EQ(Histogram::bucketUpperBound(Histogram::bucketOf(UINT64_MAX)), UINT64_MAX);
}

TEST(Histogram, PercentilesOfAKnownDistribution) {
  Histogram h;
  EXPECT_EQ(h.percentile(0.5), 0u);
  for (uint64_t v = 1; v <= 10000; ++v) h.record(v);
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 10000u);
  EXPECT_DOUBLE_EQ(h.mean(), 5000.5);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double want = q * 10000;
    EXPECT_NEAR(static_cast<double>(h.percentile(q)), want, want / 64 + 1) << q;
  }
  EXPECT_EQ(h.percentile(1.0), 10000u);
  EXPECT_EQ(h.percentile(0.0), 1u);
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne) {
  Histogram a, b, all;
  for (uint64_t v = 0; v < 5000; ++v) {
    (v % 3 == 0 ? a : b).record(v * 37);
    all.record(v * 37);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  for (double q : {0.1, 0.5, 0.99}) EXPECT_EQ(a.percentile(q), all.percentile(q));
}

TEST(TimeSeries, CountsPerBinAndMerges) {
  TimeSeries s;
  s.add(0.1);
  s.add(0.9, 2);
  s.add(2.5);
  EXPECT_EQ(s.counts(), (std::vector<uint64_t>{3, 0, 1}));
  TimeSeries t;
  t.add(1.2, 4);
  t.add(3.0);
  s.merge(t);
  EXPECT_EQ(s.counts(), (std::vector<uint64_t>{3, 4, 1, 1}));
  TimeSeries tenths(0.1);
  tenths.add(0.05);
  tenths.add(0.25, 3);
  EXPECT_EQ(tenths.counts(), (std::vector<uint64_t>{1, 0, 3}));
  EXPECT_EQ(tenths.binSeconds(), 0.1);
}

TEST(Median, OddEvenAndEmpty) {
  EXPECT_EQ(median({}), 0);
  EXPECT_EQ(median({3, 1, 2}), 2);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
}

}  // namespace
}  // namespace pushhub::bench
