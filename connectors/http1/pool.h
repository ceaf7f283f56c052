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
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "common/metrics.h"
#include "connectors/http1/client.h"

namespace pushhub::connectors::http1 {

class Pool {
 public:
  struct Options {
    Connection::Options connection;
    size_t max_connections = 32;
    size_t queue_capacity = 8192;
    std::chrono::milliseconds idle_close{60000};
    std::chrono::milliseconds backoff_initial{100};
    std::chrono::milliseconds backoff_max{30000};
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
  void setOnSpace(std::function<void()> on_space) { on_space_ = std::move(on_space); }
  size_t queued() const { return queue_.size(); }
  size_t connections() const { return connections_.size(); }

  struct Stats {
    uint64_t connects = 0;  // connections opened (their first exchange got an answer)
    uint64_t connect_failures = 0;
    uint64_t submitted = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Queued {
    Request request;
    uint64_t tag;
    std::string host;
    uint16_t port;
  };
  void dispatch();
  void start(const std::shared_ptr<Connection>& connection, Queued&& item);
  std::chrono::milliseconds backoff();

  boost::asio::io_context& io_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  Options options_;
  Done done_;
  std::function<void()> on_space_;
  bool wants_space_ = false;
  std::deque<Queued> queue_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::shared_ptr<SSL_SESSION> tls_session_;
  boost::asio::steady_timer backoff_timer_;
  bool backing_off_ = false;
  bool dispatch_posted_ = false;
  unsigned failures_in_a_row_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
  Stats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  Counter* metric_requests_ = nullptr;
  Counter* metric_connect_failures_ = nullptr;
  Counter* metric_queue_full_ = nullptr;
  Gauge* metric_connections_ = nullptr;
};

}  // namespace pushhub::connectors::http1
