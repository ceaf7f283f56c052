#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/shard_set.h"
#include "hub/config.h"

namespace boost::asio::ssl {
class context;
}

namespace pushhub::api {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

// A response with a JSON body {"error": detail} and the given status.
HttpResponse errorResponse(http::status status, std::string_view detail);
// A response with `body` of `content_type` and status 200.
HttpResponse textResponse(std::string body, std::string_view content_type);

// Where the request head is in the bytes a connection has received so far (`scanned` of them
// looked at before, to resume): complete (its size, up to and including the blank line ending its
// fields), incomplete, larger than `limit` bytes, or with a field over 65,535 bytes (Beast cannot
// hold it). Exact, unlike Beast's own header limit.
struct RequestHead {
  enum class State { kIncomplete, kComplete, kTooLarge, kFieldTooLarge };
  State state = State::kIncomplete;
  size_t size = 0;  // kComplete
};
RequestHead checkRequestHead(std::string_view received, size_t limit, size_t scanned = 0);

// Runs on the shard that owns the connection; may suspend (co_await) without blocking the shard.
using Handler = std::function<boost::asio::awaitable<HttpResponse>(const HttpRequest&)>;

// A pattern route's parameters by name ("/{hub}/installations/{id}" → hub, id), percent-decoded.
using PathParams = std::map<std::string, std::string, std::less<>>;
using PatternHandler =
    std::function<boost::asio::awaitable<HttpResponse>(const HttpRequest&, const PathParams&)>;

// Method + path -> handler: exact paths first, then patterns ("{name}" matches one non-empty
// segment) in the order they were added. Unknown paths get 404, known paths with another method
// 405 with an Allow header. The path is matched without its query string.
class Router {
 public:
  void add(http::verb method, const std::string& path, Handler handler);
  void addPattern(http::verb method, const std::string& pattern, PatternHandler handler);
  boost::asio::awaitable<HttpResponse> dispatch(const HttpRequest& request) const;

  // How errors found before a handler runs (no route, wrong method, and the server's own: too
  // large, malformed, too many connections) are written; default errorResponse (JSON). pushhub
  // answers them in Azure's XML form, which its SDK clients parse.
  using ErrorFormat = std::function<HttpResponse(http::status, std::string_view)>;
  void setErrorFormat(ErrorFormat format) { error_format_ = std::move(format); }
  HttpResponse error(http::status status, std::string_view detail) const {
    return error_format_ ? error_format_(status, detail) : errorResponse(status, detail);
  }

 private:
  struct Pattern {
    std::vector<std::string> segments;  // "{name}" or a literal
    std::map<http::verb, PatternHandler> handlers;
  };
  std::map<std::string, std::map<http::verb, Handler>, std::less<>> routes_;
  std::vector<Pattern> patterns_;
  ErrorFormat error_format_;
};

struct HttpLimits {
  // The request line, the fields and the blank line that ends them, exactly.
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 4 << 20;
  // How long a keep-alive connection may wait between requests, and a request's body may take.
  std::chrono::milliseconds idle_timeout{60'000};
  // How long a TLS handshake, a new connection's first byte and a request head (from its first
  // byte) may take: shorter than idle_timeout, so slow or silent clients give their slot back.
  std::chrono::milliseconds header_timeout{10'000};
  size_t max_connections = 10'000;
  // Connections one client address may hold open at once (0: no limit).
  size_t max_connections_per_client = 1'000;
  // Beyond max_connections, when no idle keep-alive connection can be closed to make room, this
  // many more connections per shard are served for these paths only (health checks and metrics
  // stay answerable under a flood); everything else is answered 503.
  size_t reserve_connections = 8;
  std::vector<std::string> reserve_paths = {"/healthz", "/metrics"};
};

// HTTP/1.1 with keep-alive (Boost.Beast) on every shard: each shard has its own listening socket
// on the same port (SO_REUSEPORT), so the kernel spreads connections and no thread is a
// bottleneck; a connection lives on the shard that accepted it. See api/README.md.
class HttpServer {
 public:
  HttpServer(ShardSet& shards, const Router& router, HttpLimits limits, MetricsRegistry& metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; port 0 picks a free port, port() tells which.
  std::expected<void, std::string> listen(const ListenAddress& address);
  uint16_t port() const { return port_; }

  // Serves HTTPS (TLS 1.2+, HTTP/1.1 by ALPN) with this PEM certificate chain and key; call
  // before start(). Errors name the file.
  std::expected<void, std::string> useTls(const std::string& cert_file,
                                          const std::string& key_file);
  bool tls() const { return tls_ != nullptr; }

  // Starts accepting on every shard.
  void start();

  // Graceful stop, called from outside the shards: stops accepting, closes idle keep-alive
  // connections, lets requests in progress finish (their responses say Connection: close), waits
  // at most `grace`, then closes whatever is left. Returns how many connections had to be cut.
  // Afterwards the server holds no Asio object, so it may outlive the ShardSet's loops.
  size_t stop(std::chrono::milliseconds grace);

  size_t openConnections() const { return open_connections_.load(); }

 private:
  struct Connection;
  struct ShardState;

  enum class Admission { kServe, kReserveOnly, kRefuse };

  boost::asio::awaitable<void> acceptLoop(ShardState& shard);
  // Whether a connection just opened on `shard` may be served, making room by closing the
  // shard's oldest idle keep-alive connection when the shard is full.
  Admission admit(ShardState& shard, Connection& connection);
  // Per-client-address accounting across shards; false when the address is at its limit.
  bool claimClientSlot(const boost::asio::ip::address& address);
  void releaseClientSlot(const boost::asio::ip::address& address);
  boost::asio::awaitable<void> serve(ShardState& shard, Connection& connection);
  // The requests of one connection, over the plain TCP stream or its TLS layer.
  // `client_slot`: whether the client's address was under http.max_connections_per_client.
  template <class Stream>
  boost::asio::awaitable<void> exchange(ShardState& shard, Connection& connection, Stream& stream,
                                        bool client_slot);
  Counter& responsesCounter(unsigned status);
  // Runs `fn(shard)` on every shard's loop and waits until all have run it.
  void onEveryShard(const std::function<void(ShardState&)>& fn);

  ShardSet& shards_;
  const Router& router_;
  const HttpLimits limits_;
  MetricsRegistry& metrics_;
  std::vector<std::unique_ptr<ShardState>> shard_states_;
  uint16_t port_ = 0;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::atomic<size_t> open_connections_{0};
  std::atomic<size_t> accept_loops_{0};
  std::atomic<uint64_t> next_connection_id_{1};
  std::mutex clients_mutex_;
  std::map<boost::asio::ip::address, size_t> connections_per_client_;  // under clients_mutex_

  Gauge& open_gauge_;
  Counter& accepted_;
  Counter& rejected_;
  Counter& rejected_per_client_;
  Counter& evicted_;
  Counter& reserve_served_;
  Counter& timeouts_;
  Counter& header_timeouts_;
  Counter& bad_requests_;
  Counter& tls_failures_;
  Counter& handler_failures_;
  Counter& connection_failures_;
  std::array<std::atomic<Counter*>, 600> responses_{};
};

}  // namespace pushhub::api
