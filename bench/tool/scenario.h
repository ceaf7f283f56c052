#pragma once

// What pushhub-bench registers: a platform mix, tags drawn from a Zipf distribution, templates
// and users — the same device i every run for the same parameters (a fixed seed), so that a send
// scenario can say which devices a tag expression matches.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace pushhub::bench {

enum class Platform { kApns, kFcm, kWns };
std::string_view platformName(Platform p);  // Azure's: apns, fcmv1, wns

// "apns:70,fcm:25,wns:5" → weights (any positive integers; "fcm" and "fcmv1" both name FCM).
struct PlatformMix {
  std::vector<std::pair<Platform, uint32_t>> weights;
  // Device i's platform: deterministic, in proportion to the weights over any long run of i.
  Platform of(uint64_t i) const;
  uint32_t total() const;
};
std::expected<PlatformMix, std::string> parsePlatformMix(std::string_view text);

// SplitMix64: a tiny, fast generator, seeded per device (a Mersenne Twister's seeding alone would
// cost more than the rest of making a device).
struct SplitMix64 {
  using result_type = uint64_t;
  uint64_t state;
  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() { return UINT64_MAX; }
  uint64_t operator()() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }  // [0, 1)
};

// Zipf(s) over ranks 1..n by inverse CDF on a precomputed table.
class Zipf {
 public:
  Zipf(uint32_t n, double s);
  // A rank in [0, n): 0 is the most frequent.
  uint32_t operator()(SplitMix64& rng) const;
  // The probability of rank r (0-based).
  double probability(uint32_t r) const;
  uint32_t size() const { return static_cast<uint32_t>(cdf_.size()); }

 private:
  std::vector<double> cdf_;
};

struct PopulationOptions {
  uint64_t count = 10'000;
  PlatformMix mix;
  uint32_t tag_count = 1000;     // K: tags are "t0" … "t{K-1}"
  uint32_t tags_per_device = 5;  // T distinct tags each
  double zipf_s = 1.0;
  uint32_t users = 0;     // 0: no userId; else "u{i % users}"
  bool templates = true;  // one template "main" with $(message)
  uint64_t seed = 42;
  std::string id_prefix = "bench";
};

struct Device {
  std::string id;
  Platform platform;
  std::string handle;  // APNs: 64 hex; FCM: a registration token; WNS: a channel URL
  std::vector<uint32_t> tags;
  std::string user;
};

class Population {
 public:
  explicit Population(PopulationOptions options);
  const PopulationOptions& options() const { return options_; }
  // Device i, the same for the same options. `wns_host` is the channel URL's host:port.
  Device device(uint64_t i, std::string_view wns_host) const;
  // The installation's JSON as Azure's SDKs PUT it.
  static std::string installationJson(const Device& device, bool with_template);

 private:
  PopulationOptions options_;
  Zipf zipf_;
};

// An OR of `terms` consecutive tags "t{s} || … || t{s+terms-1}" whose start s is chosen so that
// about `match` (0..1) of the population's devices have one of them, judged on the first
// `sample` devices (Zipf makes low tags common, so a later window matches fewer). `achieved` gets
// the fraction of the sample that matches.
std::string orExpressionMatching(const Population& population, uint32_t terms, double match,
                                 uint64_t sample, double* achieved = nullptr);

}  // namespace pushhub::bench
