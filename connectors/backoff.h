#pragma once

// Exponential back-off with jitter, as every retry and reconnect in the connectors uses it: the
// n-th wait is drawn uniformly from the upper half of min(max, initial · 2^(n−1)), so that pools
// and clients on many shards never retry in step.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace pushhub::connectors {

inline std::chrono::milliseconds jitteredBackoff(unsigned attempt,
                                                 std::chrono::milliseconds initial,
                                                 std::chrono::milliseconds max,
                                                 std::mt19937_64& rng) {
  const unsigned shift = std::min(attempt > 0 ? attempt - 1 : 0u, 20u);
  const int64_t ceiling = std::min<int64_t>(max.count(), initial.count() << shift);
  return std::chrono::milliseconds(
      std::uniform_int_distribution<int64_t>(ceiling / 2, std::max<int64_t>(ceiling, 1))(rng));
}

}  // namespace pushhub::connectors
