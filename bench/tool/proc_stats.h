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

}  // namespace pushhub::bench
