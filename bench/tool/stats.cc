#include "bench/tool/stats.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace pushhub::bench {

namespace {
constexpr uint64_t kExact = uint64_t{1} << Histogram::kSubBits;
constexpr size_t kHalf = size_t{1} << (Histogram::kSubBits - 1);
}  // namespace

size_t Histogram::bucketOf(uint64_t value) {
  if (value < kExact) return static_cast<size_t>(value);
  // The power of two at or below value: 2^e with e >= kSubBits; the top kSubBits bits of the
  // value select one of kHalf sub-buckets in [2^e, 2^(e+1)).
  const int e = 63 - std::countl_zero(value);
  const int shift = e - (kSubBits - 1);
  const size_t sub = static_cast<size_t>(value >> shift) - kHalf;  // 0 .. kHalf-1
  return kExact + static_cast<size_t>(e - kSubBits) * kHalf + sub;
}

uint64_t Histogram::bucketUpperBound(size_t bucket) {
  if (bucket < kExact) return bucket;
  const size_t above = bucket - kExact;
  const int e = static_cast<int>(above / kHalf) + kSubBits;
  const uint64_t sub = above % kHalf + kHalf;
  const int shift = e - (kSubBits - 1);
  return ((sub + 1) << shift) - 1;
}

void Histogram::record(uint64_t value) {
  ++counts_[bucketOf(value)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t Histogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * count_)));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(bucketUpperBound(i), min_, max_);
  }
  return max_;
}

void TimeSeries::add(double seconds_since_start, uint64_t n) {
  const size_t bin =
      seconds_since_start <= 0 ? 0 : static_cast<size_t>(seconds_since_start / bin_seconds_);
  if (counts_.size() <= bin) counts_.resize(bin + 1, 0);
  counts_[bin] += n;
}

void TimeSeries::merge(const TimeSeries& other) {
  if (counts_.size() < other.counts_.size()) counts_.resize(other.counts_.size());
  for (size_t i = 0; i < other.counts_.size(); ++i) counts_[i] += other.counts_[i];
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace pushhub::bench
