#pragma once

// A pool of HTTPS/1.1 keep-alive connections, owned by one shard: one request in flight per
// connection and many connections (WNS allows no pipelining), a bounded queue with
// backpressure, new connections opened as the queue needs them (with jittered exponential
// back-off after connect failures), idle ones closed. Requests go to the pool's host, or to the
// host their `authority` names (WNS channels are spread over clusters); connections are reused
// per host. Connect failures are accounted per host too: a host that cannot be reached backs off
// (one attempt at a time, growing jittered delays) and, after `breaker_failures` in a row, its
// requests end at once as kUnreachable — other hosts are not held up. The same interface as
// http2::ClientPool, so PushClient drives either.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "common/metrics.h"
#include "connectors/http1/client.h"
#include "connectors/pool_base.h"

namespace pushhub::connectors::http1 {

struct PoolQueued {
  Request request;
  uint64_t tag;
  std::string host;
  uint16_t port;
};

class Pool : public PoolBase<Pool, PoolQueued> {
 public:
  struct Options {
    Connection::Options connection;
    size_t max_connections = 32;
    size_t queue_capacity = 8192;
    std::chrono::milliseconds idle_close{60000};
    std::chrono::milliseconds backoff_initial{100};
    std::chrono::milliseconds backoff_max{30000};
    unsigned breaker_failures = 3;  // per host, see above
    // Shared by the pools of one credential on every shard (FCM: 600,000 a minute); null: none.
    std::shared_ptr<RateLimiter> rate_limiter;
    MetricsRegistry* metrics = nullptr;
    MetricLabels labels;
  };
  using Done = std::function<void(uint64_t tag, StreamEnd end, Response&& response)>;

  Pool(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls, Options options,
       Done done);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  bool enqueue(Request&& request, uint64_t tag, bool front = false);
  size_t connections() const { return connections_.size(); }

  struct Stats {
    uint64_t connects = 0;  // connections opened (their first exchange got an answer)
    uint64_t connect_failures = 0;
    uint64_t submitted = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  friend class PoolBase<Pool, PoolQueued>;
  using Queued = PoolQueued;
  void dispatch();
  void start(const std::shared_ptr<Connection>& connection, Queued&& item);
  // Runs dispatch() again at `when` (the earliest end of a host's back-off) unless sooner.
  void wakeAt(std::chrono::steady_clock::time_point when);

  std::shared_ptr<boost::asio::ssl::context> tls_;
  Options options_;
  Done done_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::shared_ptr<SSL_SESSION> tls_session_;
  Stats stats_;
  // A host whose connects fail: absent while they succeed.
  struct HostHealth {
    unsigned failures = 0;                           // failed connects in a row
    std::chrono::steady_clock::time_point retry_at;  // no new connect before
    bool connecting = false;                         // its one attempt is under way
  };
  std::unordered_map<std::string, HostHealth> health_;  // by "host:port"
  boost::asio::steady_timer wake_timer_;
  std::chrono::steady_clock::time_point wake_at_ = std::chrono::steady_clock::time_point::max();
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace pushhub::connectors::http1
