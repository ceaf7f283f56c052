#include "common/metrics.h"

#include <fmt/format.h>

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

}  // namespace

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
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape(family.help, false), name,
                       family.type == Type::kCounter ? "counter" : "gauge");
    for (const auto& [labels, s] : family.series) {
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
