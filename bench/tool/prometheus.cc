#include "bench/tool/prometheus.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace pushhub::bench {

namespace {

// `name{a="x",b="y"} 12.5` → Sample; nullopt for anything else.
std::optional<Sample> parseLine(std::string_view line) {
  Sample s;
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  s.name = std::string(line.substr(0, i));
  if (s.name.empty()) return std::nullopt;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const size_t eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        return std::nullopt;
      }
      std::string key(line.substr(i, eq - i));
      std::string value;
      size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) {
          ++j;
          value += line[j] == 'n' ? '\n' : line[j];
        } else {
          value += line[j];
        }
      }
      if (j >= line.size()) return std::nullopt;
      s.labels.emplace(std::move(key), std::move(value));
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return std::nullopt;
    ++i;  // '}'
  }
  while (i < line.size() && line[i] == ' ') ++i;
  const std::string number(line.substr(i, line.find(' ', i) - i));
  if (number.empty()) return std::nullopt;
  if (number == "+Inf") {
    s.value = std::numeric_limits<double>::infinity();
  } else {
    char* end = nullptr;
    s.value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) return std::nullopt;
  }
  return s;
}

bool matches(const Sample& s, const std::map<std::string, std::string>& match) {
  for (const auto& [k, v] : match) {
    auto it = s.labels.find(k);
    if (it == s.labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

std::vector<Sample> parsePrometheus(std::string_view text) {
  std::vector<Sample> out;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    if (auto s = parseLine(line)) out.push_back(std::move(*s));
  }
  return out;
}

double sumOf(const std::vector<Sample>& samples, std::string_view name,
             const std::map<std::string, std::string>& match) {
  double sum = 0;
  for (const auto& s : samples) {
    if (s.name == name && matches(s, match)) sum += s.value;
  }
  return sum;
}

double Buckets::total() const {
  double t = 0;
  for (double c : counts) t += c;
  return t;
}

double Buckets::quantile(double q) const {
  const double n = total();
  if (n <= 0) return 0;
  const double rank = std::clamp(q, 0.0, 1.0) * n;
  double seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] > 0 && seen + counts[i] >= rank) {
      const double lo = i == 0 ? 0 : upper[i - 1];
      if (std::isinf(upper[i])) return lo;
      const double within = (rank - seen) / counts[i];
      return lo + (upper[i] - lo) * std::clamp(within, 0.0, 1.0);
    }
    seen += counts[i];
  }
  return upper.empty() ? 0 : upper.back();
}

double Buckets::maxBound() const {
  for (size_t i = counts.size(); i-- > 0;) {
    if (counts[i] > 0) return std::isinf(upper[i]) ? (i == 0 ? 0 : upper[i - 1]) : upper[i];
  }
  return 0;
}

Buckets bucketsOf(const std::vector<Sample>& samples, std::string_view name,
                  const std::map<std::string, std::string>& match) {
  const std::string bucket_name = std::string(name) + "_bucket";
  std::map<double, double> cumulative;  // le → summed cumulative count
  for (const auto& s : samples) {
    if (s.name != bucket_name || !matches(s, match)) continue;
    auto le = s.labels.find("le");
    if (le == s.labels.end()) continue;
    const double bound = le->second == "+Inf" ? std::numeric_limits<double>::infinity()
                                              : std::strtod(le->second.c_str(), nullptr);
    cumulative[bound] += s.value;
  }
  Buckets b;
  double previous = 0;
  for (const auto& [bound, count] : cumulative) {
    b.upper.push_back(bound);
    b.counts.push_back(std::max(0.0, count - previous));
    previous = count;
  }
  return b;
}

Buckets difference(const Buckets& after, const Buckets& before) {
  Buckets d = after;
  for (size_t i = 0; i < d.counts.size() && i < before.counts.size(); ++i) {
    d.counts[i] = std::max(0.0, after.counts[i] - before.counts[i]);
  }
  return d;
}

}  // namespace pushhub::bench
