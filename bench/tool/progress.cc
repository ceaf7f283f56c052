#include "bench/tool/progress.h"

#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>

namespace pushhub::bench {

using Clock = std::chrono::steady_clock;

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)),
      total_(total),
      terminal_(isatty(STDERR_FILENO) == 1),
      start_(Clock::now()),
      last_line_(start_),
      last_at_(start_) {}

std::string Progress::line(uint64_t done, double rate) const {
  if (total_ == 0) return fmt::format("{}: {} done, {:.0f}/s", label_, done, rate);
  const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
  const double eta = rate > 0 ? static_cast<double>(total_ - std::min(done, total_)) / rate : 0;
  if (!terminal_) {
    return fmt::format("{}: {}/{} ({:.0f}%), {:.0f}/s, about {:.0f} s left", label_, done, total_,
                       100 * fraction, rate, eta);
  }
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(fraction * kWidth);
  return fmt::format("{} [{}{}] {:3.0f}% {}/{} {:.0f}/s eta {:.0f}s", label_,
                     std::string(static_cast<size_t>(filled), '#'),
                     std::string(static_cast<size_t>(kWidth - filled), ' '), 100 * fraction, done,
                     total_, rate, eta);
}

void Progress::update(uint64_t done) {
  const auto now = Clock::now();
  const double dt = std::chrono::duration<double>(now - last_at_).count();
  const double rate = dt > 0 ? static_cast<double>(done - last_done_) / dt : 0;
  last_done_ = done;
  last_at_ = now;
  if (terminal_) {
    std::fprintf(stderr, "\r%s\033[K", line(done, rate).c_str());
  } else if (now - last_line_ >= std::chrono::seconds(5)) {
    last_line_ = now;
    std::fprintf(stderr, "%s\n", line(done, rate).c_str());
  }
}

void Progress::finish(uint64_t done) {
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  if (terminal_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s: %lu done in %.1f s (%.0f/s)\n", label_.c_str(),
               static_cast<unsigned long>(done), seconds, rate);
}

}  // namespace pushhub::bench
