#pragma once

// A pool of HTTP/2 connections to one endpoint with one credential, owned by one shard (one
// io_context, no locks): a bounded queue in front, as many streams in flight as each connection's
// server allows, more connections opened under load (one at a time, with exponential back-off
// and jitter after failures — never a connect storm), idle ones closed down to the minimum.
// A full queue refuses (the caller waits for onSpace), it never drops. Every request's end is
// reported to the owner, which decides about retries (see connectors/README.md).

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "connectors/http2/client_connection.h"

namespace pushhub::connectors::http2 {

class ClientPool {
 public:
  struct Options {
    ClientConnection::Options connection;
    size_t min_connections = 1;
    size_t max_connections = 4;
    size_t queue_capacity = 8192;
    std::chrono::milliseconds request_timeout{10000};  // per stream, from submission
    std::chrono::milliseconds idle_close{60000};       // close connections above the minimum
    std::chrono::milliseconds backoff_initial{100};
    std::chrono::milliseconds backoff_max{30000};
    // For /metrics (nullptr: none): pushhub_connector_* series labelled with `labels`.
    MetricsRegistry* metrics = nullptr;
    MetricLabels labels;
  };
  using Done = std::function<void(uint64_t tag, StreamEnd end, ClientResponse&& response)>;

  ClientPool(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
             Options options, Done done);
  ~ClientPool();
  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;

  // Queues a request (at the front for a resend). False when the queue is full: call again after
  // `onSpace` fires.
  bool enqueue(ClientRequest&& request, uint64_t tag, bool front = false);
  void setOnSpace(std::function<void()> on_space) { on_space_ = std::move(on_space); }

  size_t queued() const { return queue_.size(); }
  size_t inFlight() const;
  size_t connections() const { return connections_.size(); }
  // Closes every connection at once; open and queued requests end kConnectionLost.
  void close();

  struct Stats {
    uint64_t connects = 0;          // connections that became ready
    uint64_t connect_failures = 0;  // connections that closed before becoming ready
    uint64_t resumed_tls = 0;       // handshakes that resumed a TLS session
    uint64_t goaways = 0;
    uint64_t submitted = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Queued {
    ClientRequest request;
    uint64_t tag;
  };
  void dispatch();
  void maybeConnect();
  void onChanged(ClientConnection& connection);
  std::chrono::milliseconds backoff();

  boost::asio::io_context& io_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  Options options_;
  Done done_;
  std::function<void()> on_space_;
  bool wants_space_ = false;
  std::deque<Queued> queue_;
  std::vector<std::shared_ptr<ClientConnection>> connections_;
  std::vector<const ClientConnection*> counted_;  // ready connections already counted
  std::shared_ptr<SSL_SESSION> tls_session_;
  boost::asio::steady_timer backoff_timer_;
  bool backing_off_ = false;
  bool dispatch_posted_ = false;
  unsigned failures_in_a_row_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
  Stats stats_;
  bool closing_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  Counter* metric_requests_ = nullptr;
  Counter* metric_connects_ = nullptr;
  Counter* metric_connect_failures_ = nullptr;
  Counter* metric_goaways_ = nullptr;
  Counter* metric_queue_full_ = nullptr;
  Gauge* metric_connections_ = nullptr;
};

}  // namespace pushhub::connectors::http2
