#include "bench/tool/scenario.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "common/json.h"

namespace pushhub::bench {

std::string_view platformName(Platform p) {
  switch (p) {
    case Platform::kApns: return "apns";
    case Platform::kFcm: return "fcmv1";
    case Platform::kWns: return "wns";
  }
  return "apns";
}

uint32_t PlatformMix::total() const {
  uint32_t sum = 0;
  for (const auto& [p, w] : weights) sum += w;
  return sum;
}

Platform PlatformMix::of(uint64_t i) const {
  // Interleaved rather than in blocks, so that any prefix of the population has the mix.
  uint64_t slot = i % total();
  for (const auto& [p, w] : weights) {
    if (slot < w) return p;
    slot -= w;
  }
  return weights.back().first;
}

std::expected<PlatformMix, std::string> parsePlatformMix(std::string_view text) {
  PlatformMix mix;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t colon = item.find(':');
    if (colon == std::string_view::npos) {
      return std::unexpected(fmt::format("platform mix \"{}\": expected name:weight", item));
    }
    const std::string_view name = item.substr(0, colon);
    const std::string_view number = item.substr(colon + 1);
    Platform platform;
    if (name == "apns") {
      platform = Platform::kApns;
    } else if (name == "fcm" || name == "fcmv1") {
      platform = Platform::kFcm;
    } else if (name == "wns") {
      platform = Platform::kWns;
    } else {
      return std::unexpected(
          fmt::format("platform mix: unknown platform \"{}\" (apns, fcm, wns)", name));
    }
    uint32_t weight = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), weight);
    if (ec != std::errc() || end != number.data() + number.size()) {
      return std::unexpected(fmt::format("platform mix: \"{}\" is not a whole number", number));
    }
    for (const auto& [seen, unused] : mix.weights) {
      if (seen == platform) {
        return std::unexpected(fmt::format("platform mix: {} given twice", name));
      }
    }
    if (weight > 0) mix.weights.emplace_back(platform, weight);
  }
  if (mix.weights.empty()) {
    return std::unexpected("platform mix: no platform with a positive weight");
  }
  return mix;
}

Zipf::Zipf(uint32_t n, double s) : cdf_(std::max<uint32_t>(n, 1)) {
  double sum = 0;
  for (uint32_t r = 0; r < cdf_.size(); ++r) {
    sum += 1.0 / std::pow(static_cast<double>(r + 1), s);
    cdf_[r] = sum;
  }
  for (double& c : cdf_) c /= sum;
  cdf_.back() = 1.0;
}

uint32_t Zipf::operator()(SplitMix64& rng) const {
  const double u = rng.uniform();
  return static_cast<uint32_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
}

double Zipf::probability(uint32_t r) const { return r == 0 ? cdf_[0] : cdf_[r] - cdf_[r - 1]; }

Population::Population(PopulationOptions options)
    : options_(std::move(options)), zipf_(options_.tag_count, options_.zipf_s) {
  options_.tags_per_device = std::min(options_.tags_per_device, options_.tag_count);
}

Device Population::device(uint64_t i, std::string_view wns_host) const {
  Device d;
  d.id = fmt::format("{}-{}", options_.id_prefix, i);
  d.platform = options_.mix.of(i);
  // One generator per device, seeded by (seed, i): device i does not depend on the others.
  SplitMix64 rng{options_.seed * 0xD1B54A32D192ED03ULL + i};
  switch (d.platform) {
    case Platform::kApns:
      // 64 hex digits, unique per (seed, i); "a1" keeps clear of the simulator's fate prefixes.
      d.handle = fmt::format("a1{:014x}{:048x}", options_.seed & 0xFFFFFFFFFFFFFULL, i);
      break;
    case Platform::kFcm:
      d.handle = fmt::format("bench{}:APA91b{:x>20}{:_<100}", options_.seed, i, "");
      break;
    case Platform::kWns:
      d.handle = fmt::format("https://{}/?token=bench{}AwYAAAB{}", wns_host, options_.seed, i);
      break;
  }
  while (d.tags.size() < options_.tags_per_device) {
    const uint32_t tag = zipf_(rng);
    if (std::find(d.tags.begin(), d.tags.end(), tag) == d.tags.end()) d.tags.push_back(tag);
  }
  if (options_.users > 0) d.user = fmt::format("u{}", i % options_.users);
  return d;
}

std::string Population::installationJson(const Device& d, bool with_template) {
  std::string out = fmt::format(R"({{"installationId":{},"platform":"{}","pushChannel":{})",
                                jsonQuoted(d.id), platformName(d.platform), jsonQuoted(d.handle));
  if (!d.user.empty()) out += fmt::format(R"(,"userId":{})", jsonQuoted(d.user));
  out += R"(,"tags":[)";
  for (size_t i = 0; i < d.tags.size(); ++i) {
    if (i > 0) out += ',';
    out += fmt::format("\"t{}\"", d.tags[i]);
  }
  out += ']';
  if (with_template) {
    switch (d.platform) {
      case Platform::kApns:
        out += R"(,"templates":{"main":{"body":"{\"aps\":{\"alert\":\"$(message)\"}}"}})";
        break;
      case Platform::kFcm:
        out +=
            R"(,"templates":{"main":{"body":"{\"message\":{\"data\":{\"message\":\"$(message)\"}}}"}})";
        break;
      case Platform::kWns:
        out +=
            R"(,"templates":{"main":{"body":"<toast><visual><binding template=\"ToastText01\"><text id=\"1\">$(message)</text></binding></visual></toast>","headers":{"X-WNS-Type":"wns/toast"}}})";
        break;
    }
  }
  out += '}';
  return out;
}

std::string orExpressionMatching(const Population& population, uint32_t terms, double match,
                                 uint64_t sample, double* achieved) {
  const uint32_t tags = population.options().tag_count;
  terms = std::max<uint32_t>(1, std::min(terms, tags));
  sample = std::max<uint64_t>(1, std::min(sample, population.options().count));
  std::vector<std::vector<uint32_t>> devices;
  devices.reserve(sample);
  for (uint64_t i = 0; i < sample; ++i) devices.push_back(population.device(i, "").tags);
  const auto fraction = [&](uint32_t start) {
    uint64_t hits = 0;
    for (const auto& d : devices) {
      hits += std::any_of(d.begin(), d.end(),
                          [&](uint32_t t) { return t >= start && t < start + terms; });
    }
    return static_cast<double>(hits) / static_cast<double>(devices.size());
  };
  // The fraction falls (not strictly) as the window moves to rarer tags: find the window whose
  // fraction is closest to `match`.
  uint32_t lo = 0, hi = tags - terms;
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if (fraction(mid) > match) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  uint32_t best = lo;
  if (lo > 0 && std::abs(fraction(lo - 1) - match) < std::abs(fraction(lo) - match)) best = lo - 1;
  if (achieved != nullptr) *achieved = fraction(best);
  std::string out;
  for (uint32_t t = best; t < best + terms; ++t) {
    if (!out.empty()) out += " || ";
    out += fmt::format("t{}", t);
  }
  return out;
}

}  // namespace pushhub::bench
