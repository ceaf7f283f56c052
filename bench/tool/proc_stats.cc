#include "bench/tool/proc_stats.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace pushhub::bench {

std::optional<double> cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) may hold spaces; fields are counted after its closing ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  // Field 3 (state) is the first after ')'; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

namespace {
std::optional<uint64_t> statusKilobytes(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key + ":")) return std::stoull(line.substr(key.size() + 1)) * 1024;
  }
  return std::nullopt;
}
}  // namespace

std::optional<uint64_t> residentBytes(pid_t pid) { return statusKilobytes(pid, "VmRSS"); }
std::optional<uint64_t> peakResidentBytes(pid_t pid) { return statusKilobytes(pid, "VmHWM"); }

ProcessUsage ProcessWatch::finish() const {
  ProcessUsage usage;
  if (!pid_) return usage;
  if (auto now = cpuSeconds(*pid_); now && cpu_start_) usage.cpu_seconds = *now - *cpu_start_;
  usage.rss = residentBytes(*pid_);
  usage.peak_rss = peakResidentBytes(*pid_);
  return usage;
}

}  // namespace pushhub::bench
