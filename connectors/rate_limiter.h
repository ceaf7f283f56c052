#pragma once

// A token bucket per push-service credential, shared by every shard's pool: FCM allows 600,000
// messages per minute per project by default, and going over earns 429s with a minute's back-off
// — better to wait here. Thread-safe; a limit of 0 is none.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace pushhub::connectors {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // `per_minute` requests a minute, in bursts of at most `burst` (default: one second's worth).
  explicit RateLimiter(uint64_t per_minute, uint64_t burst = 0)
      : per_second_(static_cast<double>(per_minute) / 60.0),
        burst_(burst != 0 ? static_cast<double>(burst) : std::max(1.0, per_second_)),
        tokens_(burst_) {}

  // Takes one request's worth; zero when it may go now, else how long until it may.
  Clock::duration take(Clock::time_point now = Clock::now()) {
    if (per_second_ <= 0) return Clock::duration::zero();
    std::lock_guard lock(mutex_);
    if (last_ == Clock::time_point{}) last_ = now;
    tokens_ = std::min(burst_,
                       tokens_ + std::chrono::duration<double>(now - last_).count() * per_second_);
    last_ = now;
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return Clock::duration::zero();
    }
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>((1.0 - tokens_) / per_second_));
  }

 private:
  double per_second_;
  double burst_;
  std::mutex mutex_;
  double tokens_;
  Clock::time_point last_{};
};

}  // namespace pushhub::connectors
