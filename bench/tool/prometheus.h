#pragma once

// Reading pushhub's /metrics (Prometheus text format 0.0.4) from outside: samples by name and
// labels, histograms' buckets, the difference of two scrapes and quantiles from it — how the
// bench turns pushhub's own delivery-latency histogram into the percentiles of one run.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pushhub::bench {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Every sample line ("# …" lines are skipped); malformed lines are skipped too.
std::vector<Sample> parsePrometheus(std::string_view text);

// The sum of the samples named `name` whose labels include `match` (all of them when empty).
double sumOf(const std::vector<Sample>& samples, std::string_view name,
             const std::map<std::string, std::string>& match = {});

// A histogram's buckets, per bucket (not cumulative): upper bounds ascending, +Inf last.
struct Buckets {
  std::vector<double> upper;
  std::vector<double> counts;
  double total() const;
  // The value at quantile q (0..1), interpolated within its bucket (the +Inf bucket answers its
  // lower bound); 0 when empty.
  double quantile(double q) const;
  // The upper bound of the highest non-empty bucket (+Inf's lower bound): what max can be said.
  double maxBound() const;
};

// The histogram `name` (its _bucket series) summed over the series matching `match`.
Buckets bucketsOf(const std::vector<Sample>& samples, std::string_view name,
                  const std::map<std::string, std::string>& match = {});
// after − before, bucket by bucket (the same bounds).
Buckets difference(const Buckets& after, const Buckets& before);

}  // namespace pushhub::bench
