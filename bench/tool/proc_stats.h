#pragma once

// What /proc says about a process (pushhub, measured from outside while the bench drives it).

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace pushhub::bench {

// User + system CPU seconds the process has used so far (all its threads).
std::optional<double> cpuSeconds(pid_t pid);
// Its resident set now and at its peak (VmRSS, VmHWM), in bytes.
std::optional<uint64_t> residentBytes(pid_t pid);
std::optional<uint64_t> peakResidentBytes(pid_t pid);

// A process's usage over a phase: CPU from the watch's start to finish(), memory at the end.
// Every figure is empty without a pid (or when /proc cannot be read).
struct ProcessUsage {
  std::optional<double> cpu_seconds;
  std::optional<uint64_t> rss;
  std::optional<uint64_t> peak_rss;
};

class ProcessWatch {
 public:
  explicit ProcessWatch(std::optional<pid_t> pid)
      : pid_(pid), cpu_start_(pid ? cpuSeconds(*pid) : std::nullopt) {}
  ProcessUsage finish() const;

 private:
  std::optional<pid_t> pid_;
  std::optional<double> cpu_start_;
};

}  // namespace pushhub::bench
