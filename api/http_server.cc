#include "api/http_server.h"

#include "common/url.h"

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <future>
#include <limits>
#include <list>
#include <optional>
#include <thread>

#include "common/build_info.h"
#include "common/json.h"
#include "common/log.h"
#include "connectors/tls.h"

namespace pushhub::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = moduleLogger("api");
  return logger;
}

enum class HeadRead { kComplete, kTooLarge, kFieldTooLarge, kFailed };

// Reads until `buffer` holds a whole request head within `limit` bytes (checkRequestHead). Bytes
// after the head (a body, a pipelined request) may be read too and stay in `buffer`.
template <class Stream>
asio::awaitable<HeadRead> readHead(Stream& stream, beast::flat_buffer& buffer, size_t limit,
                                   boost::system::error_code& ec) {
  size_t scanned = 0;
  for (;;) {
    const std::string_view data(static_cast<const char*>(buffer.data().data()), buffer.size());
    const RequestHead head = checkRequestHead(data, limit, scanned);
    switch (head.state) {
      case RequestHead::State::kComplete: co_return HeadRead::kComplete;
      case RequestHead::State::kTooLarge: co_return HeadRead::kTooLarge;
      case RequestHead::State::kFieldTooLarge: co_return HeadRead::kFieldTooLarge;
      case RequestHead::State::kIncomplete: break;
    }
    scanned = data.size();
    const size_t n = co_await stream.async_read_some(buffer.prepare(8192),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    buffer.commit(n);
    if (ec) co_return HeadRead::kFailed;
  }
}

const std::string& serverHeader() {
  static const std::string value = fmt::format("pushhub/{}", buildInfo().version);
  return value;
}

}  // namespace

HttpResponse errorResponse(http::status status, std::string_view detail) {
  HttpResponse response{status, 11};
  response.set(http::field::content_type, "application/json");
  response.body() = "{\"error\":" + jsonQuoted(detail) + "}\n";
  return response;
}

namespace {

// Beast keeps a field's name and value in at most 65,535 bytes and throws beyond that, from inside
// its read operation where no caller can catch it: a head whose field (with any continuation
// lines) is longer must not reach the parser.
constexpr size_t kMaxFieldBytes = 65'535;

bool hasOversizedField(std::string_view head) {
  size_t field = 0;
  size_t start = head.find("\r\n");  // after the request line
  while (start != std::string_view::npos && start + 2 < head.size()) {
    start += 2;
    const size_t end = head.find("\r\n", start);
    const size_t line = (end == std::string_view::npos ? head.size() : end) - start;
    const bool continuation = line > 0 && (head[start] == ' ' || head[start] == '\t');
    field = continuation ? field + line : line;
    if (field > kMaxFieldBytes) return true;
    start = end;
  }
  return false;
}

}  // namespace

RequestHead checkRequestHead(std::string_view received, size_t limit, size_t scanned) {
  const std::string_view window = received.substr(0, std::min(received.size(), limit));
  // Resume where the last scan stopped, less the terminator's length.
  const size_t end = window.find("\r\n\r\n", scanned > 3 ? scanned - 3 : 0);
  if (end != std::string_view::npos) {
    if (hasOversizedField(window.substr(0, end + 2))) return {RequestHead::State::kFieldTooLarge};
    return {RequestHead::State::kComplete, end + 4};
  }
  if (received.size() >= limit) return {RequestHead::State::kTooLarge};
  return {RequestHead::State::kIncomplete};
}

HttpResponse textResponse(std::string body, std::string_view content_type) {
  HttpResponse response{http::status::ok, 11};
  response.set(http::field::content_type, content_type);
  response.body() = std::move(body);
  return response;
}

void Router::add(http::verb method, const std::string& path, Handler handler) {
  routes_[path][method] = std::move(handler);
}

namespace {

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') path.remove_prefix(1);
    if (path.empty()) break;  // a trailing slash: "/hub/messages/" is "/hub/messages"
    const size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return out;
}

template <class Handlers>
HttpResponse methodNotAllowed(const Router& router, std::string_view target, http::verb method,
                              const Handlers& handlers) {
  std::string allow;
  for (const auto& [m, unused] : handlers) {
    if (!allow.empty()) allow += ", ";
    allow += std::string(http::to_string(m));
  }
  auto response = router.error(http::status::method_not_allowed,
                               fmt::format("{} does not accept {}; it accepts {}", target,
                                           std::string(http::to_string(method)), allow));
  response.set(http::field::allow, allow);
  return response;
}

}  // namespace

void Router::addPattern(http::verb method, const std::string& pattern, PatternHandler handler) {
  std::vector<std::string> segments;
  for (auto s : splitPath(pattern)) segments.emplace_back(s);
  for (auto& p : patterns_) {
    if (p.segments == segments) {
      p.handlers[method] = std::move(handler);
      return;
    }
  }
  patterns_.push_back(Pattern{std::move(segments), {}});
  patterns_.back().handlers[method] = std::move(handler);
}

asio::awaitable<HttpResponse> Router::dispatch(const HttpRequest& request) const {
  std::string_view target = request.target();
  target = target.substr(0, target.find('?'));
  const auto route = routes_.find(target);
  if (route != routes_.end()) {
    const auto handler = route->second.find(request.method());
    if (handler == route->second.end()) {
      co_return methodNotAllowed(*this, target, request.method(), route->second);
    }
    co_return co_await handler->second(request);
  }
  const auto segments = splitPath(target);
  for (const auto& pattern : patterns_) {
    if (pattern.segments.size() != segments.size()) continue;
    PathParams params;
    bool matched = true;
    for (size_t i = 0; i < segments.size() && matched; ++i) {
      const std::string& want = pattern.segments[i];
      if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
        auto value = percentDecode(segments[i], false);
        matched = value.has_value() && !value->empty();
        if (matched) params[want.substr(1, want.size() - 2)] = std::move(*value);
      } else {
        matched = segments[i] == want;
      }
    }
    if (!matched) continue;
    const auto handler = pattern.handlers.find(request.method());
    if (handler == pattern.handlers.end()) {
      co_return methodNotAllowed(*this, target, request.method(), pattern.handlers);
    }
    co_return co_await handler->second(request, params);
  }
  co_return error(http::status::not_found, fmt::format("no resource at {}", target));
}

struct HttpServer::Connection {
  Connection(tcp::socket socket, uint64_t id, asio::ip::address peer)
      : stream(std::move(socket)), id(id), peer(peer) {}
  beast::tcp_stream stream;
  const uint64_t id;
  const asio::ip::address peer;
  // True while waiting for the first byte of the next request: such a connection can be closed
  // at shutdown, or to make room for a new one, without cutting a request.
  bool idle = true;
  bool evicted = false;       // closed to make room (HttpServer::admit)
  bool reserve = false;       // beyond http.max_connections: health and metrics only
  bool reading_head = false;  // waiting for (the rest of) a request head
};

struct HttpServer::ShardState {
  ShardState(unsigned index, asio::io_context& context, size_t max_connections)
      : index(index), context(context), max_connections(max_connections) {}
  const unsigned index;
  asio::io_context& context;
  std::optional<tcp::acceptor> acceptor;
  std::list<Connection*> connections;  // touched only on this shard's loop
  const size_t max_connections;
  bool stopping = false;
};

HttpServer::HttpServer(ShardSet& shards, const Router& router, HttpLimits limits,
                       MetricsRegistry& metrics)
    : shards_(shards),
      router_(router),
      limits_(limits),
      metrics_(metrics),
      open_gauge_(metrics.gauge("pushhub_http_connections_open", "Open HTTP client connections")),
      accepted_(
          metrics.counter("pushhub_http_connections_total", "HTTP client connections accepted")),
      rejected_(metrics.counter("pushhub_http_connections_rejected_total",
                                "HTTP connections refused with 503 because http.max_connections "
                                "was reached")),
      rejected_per_client_(
          metrics.counter("pushhub_http_connections_rejected_per_client_total",
                          "HTTP connections refused with 503 because their client address held "
                          "http.max_connections_per_client connections already")),
      evicted_(metrics.counter("pushhub_http_connections_evicted_total",
                               "Idle keep-alive connections closed to make room for new ones at "
                               "http.max_connections")),
      reserve_served_(metrics.counter("pushhub_http_reserve_connections_total",
                                      "Connections beyond http.max_connections served from the "
                                      "reserve for health checks and metrics")),
      timeouts_(metrics.counter("pushhub_http_timeouts_total",
                                "HTTP connections closed for taking longer than "
                                "http.idle_timeout_ms to send a request")),
      header_timeouts_(metrics.counter("pushhub_http_header_timeouts_total",
                                       "HTTP connections closed for taking longer than "
                                       "http.header_timeout_ms to send a request head or finish "
                                       "a TLS handshake")),
      bad_requests_(metrics.counter("pushhub_http_bad_requests_total",
                                    "HTTP requests refused as malformed or too large")),
      tls_failures_(metrics.counter("pushhub_http_tls_handshake_failures_total",
                                    "HTTPS connections closed because the TLS handshake failed")),
      handler_failures_(metrics.counter("pushhub_http_handler_failures_total",
                                        "Requests answered 500 because their handler failed "
                                        "unexpectedly (an exception; logged)")),
      connection_failures_(metrics.counter("pushhub_http_connection_failures_total",
                                           "Connections closed by an unexpected error in their "
                                           "handling (an exception; logged)")) {
  const size_t per_shard = (limits.max_connections + shards.size() - 1) / shards.size();
  for (unsigned i = 0; i < shards.size(); ++i) {
    shard_states_.push_back(std::make_unique<ShardState>(i, shards.context(i), per_shard));
  }
}

HttpServer::~HttpServer() {
  // After stop() the acceptors are gone already; without it (start-up failed) no loop runs them.
  for (auto& shard : shard_states_) shard->acceptor.reset();
}

Counter& HttpServer::responsesCounter(unsigned status) {
  const size_t slot = status < responses_.size() ? status : 0;
  Counter* counter = responses_[slot].load(std::memory_order_acquire);
  if (counter == nullptr) {
    // The registry returns the same counter for the same labels, so a race here is harmless.
    counter = &metrics_.counter("pushhub_http_responses_total", "HTTP responses sent, by status",
                                {{"code", std::to_string(status)}});
    responses_[slot].store(counter, std::memory_order_release);
  }
  return *counter;
}

std::expected<void, std::string> HttpServer::listen(const ListenAddress& address) {
  std::vector<asio::io_context*> contexts;
  for (auto& shard : shard_states_) contexts.push_back(&shard->context);
  auto listening = listenOnEach(address, contexts);
  if (!listening) return std::unexpected(listening.error());
  for (size_t i = 0; i < shard_states_.size(); ++i) {
    shard_states_[i]->acceptor.emplace(std::move(listening->acceptors[i]));
  }
  port_ = listening->port;
  return {};
}

std::expected<void, std::string> HttpServer::useTls(const std::string& cert_file,
                                                    const std::string& key_file) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  boost::system::error_code ec;
  context->use_certificate_chain_file(cert_file, ec);
  if (ec)
    return std::unexpected(
        fmt::format("{}: not a PEM certificate chain: {}", cert_file, ec.message()));
  context->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec)
    return std::unexpected(fmt::format("{}: not a PEM private key: {}", key_file, ec.message()));
  // ALPN: HTTP/1.1 only (clients offering h2 fall back to it).
  SSL_CTX_set_alpn_select_cb(
      context->native_handle(),
      [](SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
         unsigned int in_len, void*) -> int {
        static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        unsigned char* selected = nullptr;
        if (SSL_select_next_proto(&selected, out_len, kHttp11, sizeof kHttp11, in, in_len) !=
            OPENSSL_NPN_NEGOTIATED) {
          return SSL_TLSEXT_ERR_NOACK;
        }
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
      },
      nullptr);
  connectors::cacheCertificateExtensions(context->native_handle());
  tls_ = std::move(context);
  return {};
}

void HttpServer::start() {
  for (auto& shard : shard_states_) {
    if (!shard->acceptor) continue;
    accept_loops_.fetch_add(1);
    asio::co_spawn(shard->context, acceptLoop(*shard), asio::detached);
  }
}

asio::awaitable<void> HttpServer::acceptLoop(ShardState& shard) {
  // stop() waits for every accept loop to have left (its last resumption reads `shard`).
  struct Running {
    std::atomic<size_t>& loops;
    ~Running() { loops.fetch_sub(1); }
  } running{accept_loops_};
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await shard.acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (shard.stopping) co_return;  // the acceptor is gone (stop())
    if (ec) {
      // EMFILE and friends: wait a little rather than spin, then go on accepting.
      log()->warn("shard {}: accept failed: {}", shard.index, ec.message());
      asio::steady_timer pause(shard.context, std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    const auto peer = socket.remote_endpoint(ec);
    if (ec) continue;  // gone already
    accepted_.inc();
    auto connection =
        std::make_unique<Connection>(std::move(socket), next_connection_id_++, peer.address());
    asio::co_spawn(
        shard.context,
        [this, &shard, connection = std::move(connection)]() mutable -> asio::awaitable<void> {
          // Nothing that goes wrong with one connection may end the shard: an exception here is
          // a bug, logged and counted, and costs only this connection.
          std::string failure;
          try {
            co_await serve(shard, *connection);
          } catch (const std::exception& e) {
            failure = e.what();
          }
          if (!failure.empty()) {
            connection_failures_.inc();
            log()->error("connection {}: closed by an unexpected error: {}", connection->id,
                         failure);
          }
        },
        asio::detached);
  }
}

bool HttpServer::claimClientSlot(const asio::ip::address& address) {
  std::lock_guard lock(clients_mutex_);
  size_t& held = connections_per_client_[address];
  if (limits_.max_connections_per_client != 0 && held >= limits_.max_connections_per_client) {
    if (held == 0) connections_per_client_.erase(address);
    return false;
  }
  ++held;
  return true;
}

void HttpServer::releaseClientSlot(const asio::ip::address& address) {
  std::lock_guard lock(clients_mutex_);
  auto it = connections_per_client_.find(address);
  if (it != connections_per_client_.end() && --it->second == 0) connections_per_client_.erase(it);
}

HttpServer::Admission HttpServer::admit(ShardState& shard, Connection& connection) {
  size_t live = 0, reserve = 0;
  for (const Connection* other : shard.connections) {
    if (other->evicted) continue;
    ++live;
    if (other->reserve) ++reserve;
  }
  if (live - reserve <= shard.max_connections) return Admission::kServe;
  const auto evict = [&](Connection& other) {
    other.evicted = true;
    other.stream.cancel();
    evicted_.inc();
    log()->debug("connection {}: closed to make room for connection {}", other.id, connection.id);
  };
  // Full: the oldest connection waiting for a request gives its slot to the new one. It has no
  // request in progress, so closing it loses nothing; a client reconnects when it needs to.
  for (Connection* other : shard.connections) {
    if (other == &connection || !other->idle || other->evicted || other->reserve) continue;
    evict(*other);
    return Admission::kServe;
  }
  connection.reserve = true;
  if (reserve < limits_.reserve_connections) return Admission::kReserveOnly;
  // The reserve is full too: its oldest connection still waiting for its head gives way. A health
  // check sends its head at once, so a flood of silent sockets cannot keep it out.
  for (Connection* other : shard.connections) {
    if (other == &connection || !other->reserve || !other->reading_head || other->evicted) {
      continue;
    }
    evict(*other);
    return Admission::kReserveOnly;
  }
  connection.reserve = false;
  return Admission::kRefuse;
}

asio::awaitable<void> HttpServer::serve(ShardState& shard, Connection& connection) {
  open_connections_.fetch_add(1);
  open_gauge_.add(1);
  const auto position = shard.connections.insert(shard.connections.end(), &connection);
  const bool claimed = claimClientSlot(connection.peer);
  struct Cleanup {
    HttpServer& server;
    ShardState& shard;
    Connection& connection;
    std::list<Connection*>::iterator position;
    bool claimed;
    ~Cleanup() {
      if (claimed) server.releaseClientSlot(connection.peer);
      shard.connections.erase(position);
      server.open_gauge_.add(-1);
      server.open_connections_.fetch_sub(1);
    }
  } cleanup{*this, shard, connection, position, claimed};

  boost::system::error_code ec;
  if (tls_) {
    asio::ssl::stream<beast::tcp_stream&> tls_stream(connection.stream, *tls_);
    connection.stream.expires_after(limits_.header_timeout);
    co_await tls_stream.async_handshake(asio::ssl::stream_base::server,
                                        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      tls_failures_.inc();
      if (ec == beast::error::timeout) header_timeouts_.inc();
      log()->debug("connection {}: TLS handshake failed: {}", connection.id, ec.message());
    } else {
      co_await exchange(shard, connection, tls_stream, claimed);
      // close_notify, briefly: a client that went away must not hold the connection.
      connection.stream.expires_after(std::chrono::milliseconds(500));
      co_await tls_stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    }
  } else {
    co_await exchange(shard, connection, connection.stream, claimed);
  }
  connection.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  connection.stream.close();
  log()->debug("connection {} closed", connection.id);
}

template <class Stream>
asio::awaitable<void> HttpServer::exchange(ShardState& shard, Connection& connection,
                                           Stream& stream, bool client_slot) {
  boost::system::error_code ec;
  const auto respond_and_close = [&](HttpResponse response) -> asio::awaitable<void> {
    response.set(http::field::server, serverHeader());
    response.keep_alive(false);
    response.prepare_payload();
    responsesCounter(response.result_int()).inc();
    connection.stream.expires_after(limits_.idle_timeout);
    co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
  };

  if (!client_slot) {
    rejected_per_client_.inc();
    log()->debug("connection {}: refused, its address holds {} connections already", connection.id,
                 limits_.max_connections_per_client);
    co_await respond_and_close(
        router_.error(http::status::service_unavailable,
                      "too many connections from this address (http.max_connections_per_client)"));
    co_return;
  }
  const Admission admission = admit(shard, connection);
  if (admission == Admission::kRefuse) {
    rejected_.inc();
    co_await respond_and_close(router_.error(http::status::service_unavailable,
                                             "too many connections (http.max_connections)"));
    co_return;
  }
  log()->debug("connection {} opened on shard {}", connection.id, shard.index);

  beast::flat_buffer buffer;
  bool first_request = true;
  for (;;) {
    if (shard.stopping || connection.evicted) break;
    if (buffer.size() == 0) {
      connection.reading_head = true;
      // Idle until the first byte of the next request arrives; a new connection has less time
      // to send it than a keep-alive one between requests.
      connection.idle = true;
      connection.stream.expires_after(first_request ? limits_.header_timeout
                                                    : limits_.idle_timeout);
      const size_t n = co_await stream.async_read_some(
          buffer.prepare(8192), asio::redirect_error(asio::use_awaitable, ec));
      buffer.commit(n);
      connection.idle = false;
      if (ec) {
        if (ec == beast::error::timeout) (first_request ? header_timeouts_ : timeouts_).inc();
        break;
      }
    }
    first_request = false;

    // The head, whole, within http.max_header_bytes and http.header_timeout_ms of its first byte.
    connection.stream.expires_after(limits_.header_timeout);
    connection.reading_head = true;
    const HeadRead head = co_await readHead(stream, buffer, limits_.max_header_bytes, ec);
    connection.reading_head = false;
    if (head == HeadRead::kTooLarge) {
      bad_requests_.inc();
      co_await respond_and_close(
          router_.error(http::status::request_header_fields_too_large,
                        fmt::format("request header larger than {} bytes (http.max_header_bytes)",
                                    limits_.max_header_bytes)));
      break;
    }
    if (head == HeadRead::kFieldTooLarge) {
      bad_requests_.inc();
      co_await respond_and_close(router_.error(http::status::request_header_fields_too_large,
                                               "a request header field is longer than 65,535 "
                                               "bytes"));
      break;
    }
    if (head == HeadRead::kFailed) {
      if (ec == beast::error::timeout) header_timeouts_.inc();
      break;
    }

    http::request_parser<http::string_body> parser;
    // readHead has bounded the head exactly; Beast's own count is looser and must not refuse
    // what was accepted.
    parser.header_limit(std::numeric_limits<std::uint32_t>::max());
    parser.body_limit(limits_.max_body_bytes);
    connection.stream.expires_after(limits_.idle_timeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == http::error::body_limit) {
        bad_requests_.inc();
        co_await respond_and_close(
            router_.error(http::status::payload_too_large,
                          fmt::format("request body larger than {} bytes (http.max_body_bytes)",
                                      limits_.max_body_bytes)));
      } else if (ec == http::error::header_limit) {
        bad_requests_.inc();
        co_await respond_and_close(
            router_.error(http::status::request_header_fields_too_large,
                          fmt::format("request header larger than {} bytes (http.max_header_bytes)",
                                      limits_.max_header_bytes)));
      } else if (ec == beast::error::timeout) {
        timeouts_.inc();
      } else if (ec.category() == make_error_code(http::error::bad_target).category() &&
                 ec != http::error::end_of_stream && ec != http::error::partial_message) {
        bad_requests_.inc();
        co_await respond_and_close(router_.error(
            http::status::bad_request, fmt::format("malformed HTTP request: {}", ec.message())));
      }
      break;
    }

    HttpRequest request = parser.release();
    if (admission == Admission::kReserveOnly) {
      const std::string_view target = request.target();
      const std::string_view path = target.substr(0, target.find('?'));
      if (std::find(limits_.reserve_paths.begin(), limits_.reserve_paths.end(), path) ==
          limits_.reserve_paths.end()) {
        rejected_.inc();
        co_await respond_and_close(router_.error(http::status::service_unavailable,
                                                 "too many connections (http.max_connections)"));
        break;
      }
      reserve_served_.inc();
    }
    std::optional<HttpResponse> answer;
    std::string failure;
    try {
      answer = co_await router_.dispatch(request);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!answer) {
      // A handler must not throw; one that does costs its request, not the shard.
      handler_failures_.inc();
      log()->error("connection {}: {} {} failed: {}", connection.id,
                   std::string(http::to_string(request.method())),
                   std::string(request.target().substr(0, request.target().find('?'))), failure);
      answer = router_.error(http::status::internal_server_error,
                             "the server failed to handle this request (logged)");
    }
    HttpResponse& response = *answer;
    const bool keep_alive =
        request.keep_alive() && !shard.stopping && admission == Admission::kServe;
    response.version(request.version());
    response.set(http::field::server, serverHeader());
    response.keep_alive(keep_alive);
    response.prepare_payload();
    responsesCounter(response.result_int()).inc();
    connection.stream.expires_after(limits_.idle_timeout);
    co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep_alive || admission == Admission::kReserveOnly) break;
  }
}

void HttpServer::onEveryShard(const std::function<void(ShardState&)>& fn) {
  std::vector<std::future<void>> done;
  for (auto& shard : shard_states_) {
    auto task = std::make_shared<std::packaged_task<void()>>([&fn, &shard] { fn(*shard); });
    done.push_back(task->get_future());
    asio::post(shard->context, [task] { (*task)(); });
  }
  for (auto& f : done) f.wait();
}

size_t HttpServer::stop(std::chrono::milliseconds grace) {
  onEveryShard([](ShardState& shard) {
    shard.stopping = true;
    // Destroyed here, on its shard, so that no Asio object outlives the shard's loop.
    shard.acceptor.reset();
    for (Connection* connection : shard.connections) {
      if (connection->idle) connection->stream.cancel();
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + grace;
  // The cancelled accepts complete on their shards: their coroutines read the shard state once
  // more before they end, so the server must not go away before they have.
  const auto accept_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (accept_loops_.load() > 0 && std::chrono::steady_clock::now() < accept_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  while (open_connections_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const size_t cut = open_connections_.load();
  if (cut > 0) {
    log()->warn("closing {} connections still busy after {} ms", cut, grace.count());
    onEveryShard([](ShardState& shard) {
      for (Connection* connection : shard.connections) connection->stream.close();
    });
    // Cancelled coroutines unwind on their shard; give them a moment to do so.
    const auto unwind_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (open_connections_.load() > 0 && std::chrono::steady_clock::now() < unwind_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return cut;
}

}  // namespace pushhub::api
