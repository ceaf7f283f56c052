#pragma once

// A pool of HTTPS/1.1 keep-alive connections, owned by one shard: one request in flight per
// connection and many connections (WNS allows no pipelining), a bounded queue with
// backpressure, new connections opened as the queue needs them (with jittered exponential
// back-off after connect failures), idle ones closed. Requests go to the pool's host, or to the
// host their `authority` names (WNS channels are spread over clusters); connections are reused
// per host. The same interface as http2::ClientPool,
// so PushClient drives either.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

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

  std::shared_ptr<boost::asio::ssl::context> tls_;
  Options options_;
  Done done_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::shared_ptr<SSL_SESSION> tls_session_;
  Stats stats_;
};

}  // namespace pushhub::connectors::http1
