#pragma once

// Progress of long work: a bar redrawn in place on a terminal, a plain line every few seconds
// otherwise (logs, CI), both on standard error.

#include <chrono>
#include <cstdint>
#include <string>

namespace pushhub::bench {

class Progress {
 public:
  // `total` 0: unknown (no bar, no ETA).
  Progress(std::string label, uint64_t total);
  void update(uint64_t done);
  void finish(uint64_t done);

 private:
  std::string line(uint64_t done, double rate) const;
  std::string label_;
  uint64_t total_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_line_;
  uint64_t last_done_ = 0;
  std::chrono::steady_clock::time_point last_at_;
};

}  // namespace pushhub::bench
