#pragma once

// Statistics of a load run: a latency histogram with bounded relative error (percentiles from
// microseconds to minutes in a few kilobytes, mergeable), and a per-second time series.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace pushhub::bench {

// Log-linear buckets, HdrHistogram's idea: values below 2^kSubBits are exact; above, each power
// of two is split into 2^(kSubBits-1) equal buckets, so a value is reported within 1/64 (1.6%)
// of what was recorded. Values are unsigned integers in any unit (the tool records µs).
class Histogram {
 public:
  static constexpr int kSubBits = 7;
  void record(uint64_t value);
  void merge(const Histogram& other);
  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The smallest recorded value v such that at least q (0..1) of the values are <= v, to the
  // histogram's precision (the bucket's upper end, never above max()). 0 when empty.
  uint64_t percentile(double q) const;

  static size_t bucketOf(uint64_t value);
  static uint64_t bucketUpperBound(size_t bucket);

 private:
  // 2^kSubBits exact values, then 2^(kSubBits-1) buckets for each power of two up to 2^63.
  static constexpr size_t kBuckets =
      (size_t{1} << kSubBits) + (64 - kSubBits) * (size_t{1} << (kSubBits - 1));
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

// Counts per bin of `bin_seconds` since the run's start (what the chart draws as a rate).
class TimeSeries {
 public:
  explicit TimeSeries(double bin_seconds = 1.0) : bin_seconds_(bin_seconds) {}
  void add(double seconds_since_start, uint64_t n = 1);
  void merge(const TimeSeries& other);  // the same bin width
  const std::vector<uint64_t>& counts() const { return counts_; }
  double binSeconds() const { return bin_seconds_; }

 private:
  double bin_seconds_;
  std::vector<uint64_t> counts_;
};

// The median of `values` (the mean of the two middle ones for an even count); 0 when empty.
double median(std::vector<double> values);

}  // namespace pushhub::bench
