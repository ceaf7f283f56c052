#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pushhub {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing count. Increments are lock-free and may come from any shard.
class Counter {
 public:
  void inc(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (connections open, bytes in use).
class Gauge {
 public:
  void set(int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A distribution (latencies): counts per bucket, their sum and count. Observing is lock-free.
// Bucket bounds are fixed at registration, in the unit the metric's name says (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  const std::vector<double>& bounds() const { return bounds_; }
  // Per bucket (not cumulative), the last one for values above every bound.
  uint64_t bucketCount(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const;
  // The value at quantile q (0–1), interpolated within its bucket; 0 when empty.
  double quantile(double q) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micro_{0};  // sum in millionths of the unit
};

// Latency buckets in seconds, 0.25 ms to 30 min.
const std::vector<double>& latencyBuckets();

// The process's metrics, rendered for `GET /metrics` in the Prometheus text exposition format
// (version 0.0.4). Registration takes a lock and happens at start-up; updating a Counter or Gauge
// does not. Asking twice for the same name and labels returns the same object, so modules need
// not coordinate. Registering a name with another type, or an invalid metric or label name, is a
// programming error and throws std::logic_error.
class MetricsRegistry {
 public:
  Counter& counter(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  // A gauge computed when scraped. `read` is called under the registry's lock: it must be cheap,
  // must not touch the registry, and must stay callable for the registry's lifetime.
  void callbackGauge(std::string_view name, std::string_view help, const MetricLabels& labels,
                     std::function<double()> read);
  Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                       const MetricLabels& labels = {});

  std::string renderPrometheus() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> read;
  };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, Series> series;  // by rendered label set, e.g. {code="200"}
  };

  // Finds or creates a series; the caller holds mutex_.
  Series& series(std::string_view name, std::string_view help, Type type,
                 const MetricLabels& labels);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace pushhub
