#include "bench/tool/report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <thread>

#include "common/build_info.h"
#include "common/time.h"

namespace pushhub::bench {

namespace {
std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("model name")) {
      const size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown";
}
}  // namespace

Report::Report(std::string_view command) : writer_(buffer_) {
  writer_.SetIndent(' ', 2);
  writer_.StartObject();
  field("tool", "pushhub-bench");
  field("version", buildInfo().version);
  field("commit", buildInfo().git_commit);
  field("command", command);
  field("started", formatIso8601(nowMillis()));
  key("machine");
  writer_.StartObject();
  field("cores", std::thread::hardware_concurrency());
  field("memory_bytes", static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                            static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
  field("cpu", cpuModel());
  utsname u{};
  if (uname(&u) == 0) field("kernel", fmt::format("{} {}", u.sysname, u.release));
  writer_.EndObject();
}

void Report::latency(std::string_view k, const Histogram& h) {
  key(k);
  writer_.StartObject();
  field("count", h.count());
  field("p50", h.percentile(0.50));
  field("p90", h.percentile(0.90));
  field("p99", h.percentile(0.99));
  field("max", h.max());
  field("mean", h.mean());
  writer_.EndObject();
}

void Report::series(std::string_view k, const TimeSeries& s) {
  key(k);
  writer_.StartObject();
  field("bin_seconds", s.binSeconds());
  key("counts");
  writer_.StartArray();
  for (uint64_t n : s.counts()) writer_.Uint64(n);
  writer_.EndArray();
  writer_.EndObject();
}

void Report::httpLoad(std::string_view k, const HttpLoadResult& r) {
  key(k);
  writer_.StartObject();
  field("answered", r.answered);
  field("seconds", r.seconds);
  field("rate_per_s", r.seconds > 0 ? static_cast<double>(r.answered) / r.seconds : 0.0);
  key("statuses");
  writer_.StartObject();
  for (const auto& [status, count] : r.statuses) field(std::to_string(status), count);
  writer_.EndObject();
  field("errors", r.errors);
  key("error_samples");
  writer_.StartArray();
  for (const auto& sample : r.error_samples) {
    writer_.String(sample.data(), static_cast<rapidjson::SizeType>(sample.size()));
  }
  writer_.EndArray();
  latency("latency_us", r.latency_us);
  series("answered_over_time", r.per_second);
  writer_.EndObject();
}

std::string Report::finish() {
  writer_.EndObject();
  return std::string(buffer_.GetString(), buffer_.GetSize()) + "\n";
}

bool writeText(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text;
    return true;
  }
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) {
    std::cerr << "pushhub-bench: cannot write " << path << "\n";
    return false;
  }
  return true;
}

}  // namespace pushhub::bench
