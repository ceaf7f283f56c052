#pragma once

// What the HTTP/2 and HTTP/1.1 connection pools share: the bounded queue in front (a resend
// goes first and is never refused; a full queue says "wait" and calls onSpace once there is
// room), dispatching once per loop turn, the back-off after failed connects, the circuit breaker
// (after `breaker_failures` failed connects in a row the endpoint is taken for unreachable and
// what waits for it ends at once, while a probe connect is still made after each back-off; one
// success closes it), and the metrics.
// `Derived` (CRTP) provides dispatch().

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <random>

#include "connectors/backoff.h"
#include "connectors/pool_metrics.h"
#include "connectors/rate_limiter.h"

namespace pushhub::connectors {

template <class Derived, class Queued>
class PoolBase {
 public:
  void setOnSpace(std::function<void()> on_space) { on_space_ = std::move(on_space); }
  // A request goes out again because the connection it was in flight on was lost.
  void countResend() { PoolMetrics::inc(metrics_.resends); }
  size_t queued() const { return queue_.size(); }

 protected:
  PoolBase(boost::asio::io_context& io, size_t capacity, std::chrono::milliseconds backoff_initial,
           std::chrono::milliseconds backoff_max, unsigned breaker_failures,
           MetricsRegistry* registry, const MetricLabels& labels,
           std::shared_ptr<RateLimiter> rate_limiter)
      : io_(io),
        metrics_(registry, labels),
        breaker_failures_(std::max(1u, breaker_failures)),
        capacity_(capacity),
        backoff_initial_(backoff_initial),
        backoff_max_(backoff_max),
        backoff_timer_(io),
        rate_timer_(io),
        rate_limiter_(std::move(rate_limiter)) {}
  ~PoolBase() {
    PoolMetrics::add(metrics_.queued, -reported_queued_);
    *alive_ = false;
    backoff_timer_.cancel();
    rate_timer_.cancel();
  }

  // False (counted) when the queue is full and this is not a resend.
  bool push(Queued&& item, bool front) {
    if (!front && queue_.size() >= capacity_) {
      wants_space_ = true;
      PoolMetrics::inc(metrics_.queue_full);
      return false;
    }
    if (front) {
      queue_.push_front(std::move(item));
    } else {
      queue_.push_back(std::move(item));
    }
    reportQueued();
    scheduleDispatch();
    return true;
  }

  // dispatch() on the next loop turn, once however often asked.
  void scheduleDispatch() {
    if (dispatch_posted_) return;
    dispatch_posted_ = true;
    boost::asio::post(io_, [this, alive = alive_] {
      if (!*alive) return;
      dispatch_posted_ = false;
      static_cast<Derived&>(*this).dispatch();
    });
  }

  // The queue depth gauge (shared by the pools of every shard) follows this queue.
  void reportQueued() {
    const auto now = static_cast<int64_t>(queue_.size());
    PoolMetrics::add(metrics_.queued, now - reported_queued_);
    reported_queued_ = now;
  }

  // After dispatching: tell a waiting caller there is room again.
  void signalSpace() {
    reportQueued();
    if (wants_space_ && queue_.size() < capacity_) {
      wants_space_ = false;
      if (on_space_) on_space_();
    }
  }

  // One more request may go out now under the credential's rate limit; if not, dispatch() runs
  // again when it may.
  bool takeRate() {
    if (!rate_limiter_) return true;
    if (rate_waiting_) return false;
    const auto wait = rate_limiter_->take();
    if (wait == RateLimiter::Clock::duration::zero()) return true;
    rate_waiting_ = true;
    rate_timer_.expires_after(wait);
    rate_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
      if (ec || !*alive) return;
      rate_waiting_ = false;
      static_cast<Derived&>(*this).dispatch();
    });
    return false;
  }

  void connectSucceeded() { failures_in_a_row_ = 0; }
  // A connection failed before it was usable: no new one until a jittered, growing delay.
  void connectFailed() {
    ++failures_in_a_row_;
    PoolMetrics::inc(metrics_.connect_failures);
    backing_off_ = true;
    backoff_timer_.expires_after(
        jitteredBackoff(failures_in_a_row_, backoff_initial_, backoff_max_, rng_));
    backoff_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
      if (ec || !*alive) return;
      backing_off_ = false;
      static_cast<Derived&>(*this).dispatch();
    });
  }
  bool backingOff() const { return backing_off_; }
  unsigned failuresInARow() const { return failures_in_a_row_; }
  bool breakerOpen() const { return failures_in_a_row_ >= breaker_failures_; }
  // Ends every queued request at once as unreachable (the breaker is open); `fail(item)` reports
  // one. Safe against `fail` queueing more.
  template <class Fail>
  void failQueued(Fail&& fail) {
    auto failed = std::move(queue_);
    queue_.clear();
    reportQueued();
    for (auto& item : failed) {
      PoolMetrics::inc(metrics_.unreachable);
      fail(item);
    }
  }
  void cancelBackoff() { backoff_timer_.cancel(); }

  boost::asio::io_context& io_;
  std::deque<Queued> queue_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  PoolMetrics metrics_;
  const unsigned breaker_failures_;

 private:
  size_t capacity_;
  std::chrono::milliseconds backoff_initial_;
  std::chrono::milliseconds backoff_max_;
  std::function<void()> on_space_;
  bool wants_space_ = false;
  bool dispatch_posted_ = false;
  bool backing_off_ = false;
  unsigned failures_in_a_row_ = 0;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer rate_timer_;
  std::shared_ptr<RateLimiter> rate_limiter_;
  bool rate_waiting_ = false;
  int64_t reported_queued_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace pushhub::connectors
