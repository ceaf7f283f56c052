#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace pushhub {
namespace {

bool isValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

// Label values and help texts escape backslash and newline; label values also the double quote.
std::string escape(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string renderLabels(const MetricLabels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!isValidName(labels[i].first, false) || labels[i].first.starts_with("__")) {
      throw std::logic_error("invalid metric label name: " + labels[i].first);
    }
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    out += escape(labels[i].second, true);
    out += '"';
  }
  out += '}';
  return out;
}

std::string formatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

// `labels` ({a="b"} or empty) with one more label appended.
std::string withLabel(const std::string& labels, std::string_view name, const std::string& value) {
  const std::string extra = fmt::format("{}=\"{}\"", name, value);
  if (labels.empty()) return "{" + extra + "}";
  return labels.substr(0, labels.size() - 1) + "," + extra + "}";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) noexcept {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0) sum_micro_.fetch_add(static_cast<uint64_t>(v * 1e6), std::memory_order_relaxed);
}

double Histogram::sum() const {
  return static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
}

double Histogram::quantile(double q) const {
  const uint64_t total = count();
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  uint64_t seen = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    const uint64_t here = bucketCount(i);
    if (here > 0 && static_cast<double>(seen + here) >= rank) {
      const double lo = i == 0 ? 0 : bounds_[i - 1];
      if (i == bounds_.size()) return lo;  // above every bound: the last bound is all we know
      const double within = (rank - static_cast<double>(seen)) / static_cast<double>(here);
      return lo + (bounds_[i] - lo) * std::clamp(within, 0.0, 1.0);
    }
    seen += here;
  }
  return bounds_.empty() ? 0 : bounds_.back();
}

const std::vector<double>& latencyBuckets() {
  // 1-1.5-2-3-5-7.5 steps from 0.25 ms to 1 s (percentiles read from the buckets stay within
  // about a third of the true value there: pushhub-bench reads them), coarser above.
  static const std::vector<double> bounds = {
      0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015,
      0.02,    0.03,   0.05,    0.075, 0.1,    0.15,  0.2,   0.3,   0.5,    0.75, 1,
      1.5,     2,      3,       5,     10,     30,    60,    300,   1800};
  return bounds;
}

MetricsRegistry::Series& MetricsRegistry::series(std::string_view name, std::string_view help,
                                                 Type type, const MetricLabels& labels) {
  if (!isValidName(name, true)) {
    throw std::logic_error("invalid metric name: " + std::string(name));
  }
  const std::string label_text = renderLabels(labels);
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}}).first;
  } else if (it->second.type != type) {
    throw std::logic_error("metric registered twice with different types: " + std::string(name));
  }
  return it->second.series[label_text];
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  const MetricLabels& labels) {
  std::lock_guard lock(mutex_);
  Series& s = series(name, help, Type::kCounter, labels);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help,
                              const MetricLabels& labels) {
  std::lock_guard lock(mutex_);
  Series& s = series(name, help, Type::kGauge, labels);
  if (s.read) throw std::logic_error("gauge already has a callback: " + std::string(name));
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      std::vector<double> bounds, const MetricLabels& labels) {
  std::lock_guard lock(mutex_);
  Series& s = series(name, help, Type::kHistogram, labels);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *s.histogram;
}

void MetricsRegistry::callbackGauge(std::string_view name, std::string_view help,
                                    const MetricLabels& labels, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  Series& s = series(name, help, Type::kGauge, labels);
  if (s.gauge) throw std::logic_error("gauge already registered as a value: " + std::string(name));
  s.read = std::move(read);
}

std::string MetricsRegistry::renderPrometheus() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, family] : families_) {
    const char* type = family.type == Type::kCounter ? "counter"
                       : family.type == Type::kGauge ? "gauge"
                                                     : "histogram";
    out +=
        fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape(family.help, false), name, type);
    for (const auto& [labels, s] : family.series) {
      if (s.histogram) {
        const Histogram& h = *s.histogram;
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= h.bounds().size(); ++i) {
          cumulative += h.bucketCount(i);
          const std::string le = i < h.bounds().size() ? formatValue(h.bounds()[i]) : "+Inf";
          out += fmt::format("{}_bucket{} {}\n", name, withLabel(labels, "le", le), cumulative);
        }
        out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, labels, formatValue(h.sum()), name,
                           labels, h.count());
        continue;
      }
      std::string value;
      if (s.counter) {
        value = fmt::format("{}", s.counter->value());
      } else if (s.gauge) {
        value = fmt::format("{}", s.gauge->value());
      } else if (s.read) {
        value = formatValue(s.read());
      } else {
        continue;
      }
      out += fmt::format("{}{} {}\n", name, labels, value);
    }
  }
  return out;
}

}  // namespace pushhub
