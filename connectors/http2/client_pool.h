#pragma once

// A pool of HTTP/2 connections to one endpoint with one credential, owned by one shard (one
// io_context, no locks): a bounded queue in front, as many streams in flight as each connection's
// server allows, more connections opened under load (one at a time, with exponential back-off
// and jitter after failures — never a connect storm), idle ones closed down to the minimum.
// A full queue refuses (the caller waits for onSpace), it never drops. Every request's end is
// reported to the owner, which decides about retries (see connectors/README.md).

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "connectors/http2/client_connection.h"
#include "connectors/pool_base.h"

namespace pushhub::connectors::http2 {

struct ClientPoolQueued {
  ClientRequest request;
  uint64_t tag;
};

class ClientPool : public PoolBase<ClientPool, ClientPoolQueued> {
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
    // Failed connects in a row after which the endpoint counts as unreachable: queued and new
    // requests end at once (StreamEnd::kUnreachable) until a probe connect succeeds.
    unsigned breaker_failures = 3;
    // For /metrics (nullptr: none): pushhub_connector_* series labelled with `labels`.
    // Shared by the pools of one credential on every shard (FCM: 600,000 a minute); null: none.
    std::shared_ptr<RateLimiter> rate_limiter;
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
  friend class PoolBase<ClientPool, ClientPoolQueued>;
  using Queued = ClientPoolQueued;
  void dispatch();
  void maybeConnect();
  void onChanged(ClientConnection& connection);

  std::shared_ptr<boost::asio::ssl::context> tls_;
  Options options_;
  Done done_;
  std::vector<std::shared_ptr<ClientConnection>> connections_;
  std::vector<const ClientConnection*> counted_;  // ready connections already counted
  std::shared_ptr<SSL_SESSION> tls_session_;
  Stats stats_;
  bool closing_ = false;
};

}  // namespace pushhub::connectors::http2
