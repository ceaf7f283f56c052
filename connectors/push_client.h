#pragma once

// What the per-shard push-service clients (APNs, FCM; WNS over HTTP/1.1 follows the same rules)
// share: the table of notifications in flight, one final DeliveryResult each, resends after
// refused streams and lost connections, retries with the server's delay or jittered exponential
// back-off until the notification's deadline (then AbandonedNotificationMessages), one auth
// refresh and one retry when the service refuses the credential's token, and waiting for an
// access token before sending at all. A service supplies, as `Service` (CRTP):
//   http2::ClientRequest build(Pending&)       the request for one attempt
//   Classification classify(const http2::ClientResponse&)
//   bool authReady()                            a token is there (or none is needed)
//   void awaitAuth(std::function<void(std::optional<AuthError> error)>)
//                                               fetch one; the callback runs on the io_context
//   void refuseAuth(Pending&)                   the service refused the token this attempt used

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "connectors/backoff.h"
#include "connectors/classify.h"
#include "connectors/http2/client_pool.h"

namespace pushhub::connectors {

// The final word on one notification.
struct DeliveryResult {
  PnsOutcome outcome = PnsOutcome::kUnknownError;
  bool dead_handle = false;  // prune the installation's channel
  int status = 0;            // the last HTTP status (0: none)
  std::string reason;        // the service's reason, or why there was no answer
  unsigned attempts = 0;     // requests made
  // Of those, sent again because the connection they were in flight on was lost: the service
  // may have received (and delivered) them more than once.
  unsigned resends = 0;
};

// Azure's figure: what could not be delivered in 30 minutes is abandoned. Callers give each
// notification its deadline; this is the default they start from.
inline constexpr std::chrono::minutes kDefaultTimeToLive{30};

// Why no access token could be had: permanent (the token endpoint refused the credential) ends
// the notifications waiting for it as InvalidCredentials; otherwise (unreachable, 5xx) they
// wait, and the token is asked for again after a back-off, until their deadlines.
struct AuthError {
  std::string why;
  bool permanent = true;
};

struct RetryOptions {
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{60000};
  // A notification whose connect failed this many times (HTTP/1.1: a connection is made for a
  // request) ends as PnsUnreachable rather than waiting for its time-to-live.
  unsigned max_connect_failures = 3;
  // Each loss of the connection a notification is in flight on re-sends it once (it may arrive
  // twice); after this many losses it ends as PnsUnreachable.
  unsigned max_resends = 20;
  // What waits for an access token ends PnsUnreachable once the token endpoint has failed
  // max_connect_failures times in a row over at least this long (a short outage is waited out).
  std::chrono::milliseconds token_give_up_after{30000};
};

// `Pool`: http2::ClientPool (APNs, FCM) or http1::Pool (WNS); both take ClientRequests and
// report (tag, StreamEnd, ClientResponse).
template <class Service, class Notification, class Pool = http2::ClientPool>
class PushClient {
 public:
  using Callback = std::function<void(DeliveryResult&&)>;
  using Clock = std::chrono::steady_clock;

  struct Pending {
    Notification notification;
    Clock::time_point deadline;
    Callback done;
    unsigned attempts = 0;
    unsigned connect_failures = 0;  // see RetryOptions
    unsigned resends = 0;           // after a lost connection
    bool auth_refreshed = false;
    std::shared_ptr<const void> auth;  // the token this attempt used (the service's type)
  };

  PushClient(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
             typename Pool::Options pool, RetryOptions retry)
      : io_(io),
        retry_(retry),
        pool_(io, std::move(tls), std::move(pool),
              [this](uint64_t tag, http2::StreamEnd end, http2::ClientResponse&& response) {
                onEnd(tag, end, std::move(response));
              }) {}
  ~PushClient() { *alive_ = false; }
  PushClient(const PushClient&) = delete;
  PushClient& operator=(const PushClient&) = delete;

  void setOnSpace(std::function<void()> on_space) { pool_.setOnSpace(std::move(on_space)); }
  size_t pending() const { return pending_.size(); }
  const Pool& pool() const { return pool_; }

 protected:
  // Takes a notification already checked by the service. False: the pool's queue is full.
  bool admit(Notification&& notification, Clock::time_point deadline, Callback done) {
    if (!self().authReady() && waiting_.size() >= kMaxWaitingForAuth) return false;
    const uint64_t tag = next_tag_++;
    Pending& pending = pending_[tag];
    pending.notification = std::move(notification);
    pending.deadline = deadline;
    pending.done = std::move(done);
    if (!self().authReady()) {
      waitForAuth(tag);
      return true;
    }
    if (!pool_.enqueue(self().build(pending), tag)) {
      pending_.erase(tag);
      return false;
    }
    ++pending.attempts;
    return true;
  }

  // Ends a notification at once, without a request (too large, malformed).
  void reject(Callback done, DeliveryResult&& result) {
    boost::asio::post(io_, [done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }

  boost::asio::io_context& io() { return io_; }

 private:
  static constexpr size_t kMaxWaitingForAuth = 8192;
  Service& self() { return static_cast<Service&>(*this); }

  void send(uint64_t tag, Pending& pending) {
    if (!self().authReady()) {
      waitForAuth(tag);
      return;
    }
    ++pending.attempts;
    pool_.enqueue(self().build(pending), tag, true);
  }

  void waitForAuth(uint64_t tag) {
    waiting_.push_back(tag);
    requestAuth();
  }

  void requestAuth() {
    if (awaiting_auth_ || auth_retry_scheduled_) return;
    awaiting_auth_ = true;
    self().awaitAuth([this, alive = alive_](std::optional<AuthError> error) {
      if (!*alive) return;
      awaiting_auth_ = false;
      auto waiting = std::move(waiting_);
      waiting_.clear();
      const auto now = Clock::now();
      // A token endpoint that cannot be reached makes the service unreachable too: after as many
      // failed fetches in a row as failed connects would take, what waits for a token ends.
      if (error && !error->permanent && auth_failures_ == 0) auth_failing_since_ = now;
      const bool give_up = error && !error->permanent &&
                           auth_failures_ + 1 >= retry_.max_connect_failures &&
                           now - auth_failing_since_ >= retry_.token_give_up_after;
      for (const uint64_t tag : waiting) {
        auto it = pending_.find(tag);
        if (it == pending_.end()) continue;
        if (!error) {
          send(tag, it->second);
        } else if (error->permanent) {
          finish(tag, DeliveryResult{PnsOutcome::kInvalidCredentials, false, 0, error->why, 0});
        } else if (give_up) {
          finish(tag, DeliveryResult{PnsOutcome::kPnsUnreachable, false, 0,
                                     fmt::format("no access token after {} attempts; last: {}",
                                                 auth_failures_ + 1, error->why),
                                     0});
        } else if (now >= it->second.deadline) {
          finish(tag, DeliveryResult{PnsOutcome::kAbandoned, false, 0,
                                     "time-to-live reached; last: " + error->why, 0});
        } else {
          waiting_.push_back(tag);
        }
      }
      if (!error) {
        auth_failures_ = 0;
        return;
      }
      if (error->permanent || waiting_.empty()) return;
      // Ask again later, with the same growing, jittered delay as any retry.
      ++auth_failures_;
      auth_retry_scheduled_ = true;
      auto timer = std::make_shared<boost::asio::steady_timer>(
          io_, jitteredBackoff(auth_failures_, retry_.backoff_initial, retry_.backoff_max, rng_));
      timer->async_wait([this, alive = alive_, timer](boost::system::error_code ec) {
        if (ec || !*alive) return;
        auth_retry_scheduled_ = false;
        if (!waiting_.empty()) requestAuth();
      });
    });
  }

  void finish(uint64_t tag, DeliveryResult&& result) {
    auto it = pending_.find(tag);
    if (it == pending_.end()) return;
    Callback done = std::move(it->second.done);
    result.attempts = it->second.attempts;
    result.resends = it->second.resends;
    pending_.erase(it);
    done(std::move(result));
  }

  void retryLater(uint64_t tag, Pending& pending, std::optional<std::chrono::seconds> delay,
                  const Classification& why, int status) {
    std::chrono::milliseconds wait;
    if (delay) {
      wait = *delay;
    } else {
      const unsigned shift = std::min(pending.attempts > 0 ? pending.attempts - 1 : 0, 16u);
      const int64_t ceiling =
          std::min<int64_t>(retry_.backoff_max.count(), retry_.backoff_initial.count() << shift);
      wait = std::chrono::milliseconds(
          std::uniform_int_distribution<int64_t>(ceiling / 2, std::max<int64_t>(ceiling, 1))(rng_));
    }
    if (Clock::now() + wait >= pending.deadline) {
      // Azure's figure: what could not be delivered within its time-to-live is abandoned.
      finish(tag, DeliveryResult{PnsOutcome::kAbandoned, false, status,
                                 "time-to-live reached; last: " + why.reason, 0});
      return;
    }
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, wait);
    timer->async_wait([this, alive = alive_, timer, tag](boost::system::error_code ec) {
      if (ec || !*alive) return;
      auto it = pending_.find(tag);
      if (it != pending_.end()) send(tag, it->second);
    });
  }

  void onEnd(uint64_t tag, http2::StreamEnd end, http2::ClientResponse&& response) {
    auto it = pending_.find(tag);
    if (it == pending_.end()) return;
    Pending& pending = it->second;
    switch (end) {
      case http2::StreamEnd::kResponse: break;
      case http2::StreamEnd::kUnreachable:
        // The endpoint's breaker is open: nothing gained by waiting in its queue.
        finish(tag,
               DeliveryResult{PnsOutcome::kPnsUnreachable, false, 0,
                              "the push service cannot be reached (its connects keep failing)", 0});
        return;
      case http2::StreamEnd::kConnectFailed:
        if (++pending.connect_failures >= retry_.max_connect_failures) {
          finish(tag, DeliveryResult{
                          PnsOutcome::kPnsUnreachable, false, 0,
                          fmt::format("connect failed {} times", pending.connect_failures), 0});
          return;
        }
        send(tag, pending);
        return;
      case http2::StreamEnd::kConnectionLost:
        if (pending.resends >= retry_.max_resends) {
          finish(tag,
                 DeliveryResult{PnsOutcome::kPnsUnreachable, false, 0,
                                fmt::format("connection lost {} times", pending.resends + 1), 0});
          return;
        }
        // It may have reached the service before the connection went: a possible duplicate,
        // counted.
        ++pending.resends;
        pool_.countResend();
        [[fallthrough]];
      case http2::StreamEnd::kRefused:
        // Not processed (or the connection went first): again, at once, on another connection.
        if (Clock::now() >= pending.deadline) {
          finish(tag, DeliveryResult{PnsOutcome::kAbandoned, false, 0,
                                     std::string(http2::streamEndName(end)), 0});
          return;
        }
        send(tag, pending);
        return;
      case http2::StreamEnd::kReset: break;
    }
    if (end == http2::StreamEnd::kReset) {
      retryLater(tag, pending, std::nullopt, classifyNoAnswer("stream reset or timed out"), 0);
      return;
    }
    Classification c = self().classify(response);
    switch (c.action) {
      case Action::kDone:
      case Action::kDeadHandle:
        finish(tag, DeliveryResult{c.outcome, c.action == Action::kDeadHandle, response.status,
                                   std::move(c.reason), 0});
        return;
      case Action::kRetry: retryLater(tag, pending, c.retry_after, c, response.status); return;
      case Action::kRefreshAuth:
        if (!pending.auth_refreshed) {
          pending.auth_refreshed = true;
          self().refuseAuth(pending);
          send(tag, pending);
          return;
        }
        finish(tag, DeliveryResult{c.outcome, false, response.status, std::move(c.reason), 0});
        return;
    }
  }

  boost::asio::io_context& io_;
  RetryOptions retry_;
  Pool pool_;
  std::unordered_map<uint64_t, Pending> pending_;
  std::vector<uint64_t> waiting_;  // admitted, waiting for an access token
  bool awaiting_auth_ = false;
  bool auth_retry_scheduled_ = false;
  unsigned auth_failures_ = 0;
  Clock::time_point auth_failing_since_{};
  uint64_t next_tag_ = 1;
  std::mt19937_64 rng_{std::random_device{}()};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pushhub::connectors
