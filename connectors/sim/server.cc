#include "connectors/sim/server.h"

#include <fmt/format.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "common/json.h"
#include "common/log.h"
#include "common/shard_set.h"
#include "connectors/http2/server_session.h"
#include "connectors/tls.h"

namespace pushhub::connectors::sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = moduleLogger("sim");
  return logger;
}

// Accepted notifications as JSON lines, for tests that check exactly what was delivered.
class Recorder {
 public:
  explicit Recorder(const std::string& path) : out_(path, std::ios::app) {}
  bool ok() const { return out_.good(); }
  void record(std::string_view service, std::string_view handle, const http2::Request& request) {
    std::string line = fmt::format(R"({{"service":{},"handle":{},"headers":{{)",
                                   jsonQuoted(service), jsonQuoted(handle));
    bool first = true;
    for (const auto& h : request.headers) {
      if (h.name.starts_with(':')) continue;
      line += fmt::format("{}{}:{}", first ? "" : ",", jsonQuoted(h.name), jsonQuoted(h.value));
      first = false;
    }
    line += fmt::format(R"(}},"body":{}}})", jsonQuoted(request.body));
    line += '\n';
    std::lock_guard lock(mutex_);
    out_ << line;
    out_.flush();
  }

 private:
  std::mutex mutex_;
  std::ofstream out_;
};

struct Loop {
  unsigned index = 0;
  asio::io_context* context = nullptr;
  std::mt19937_64 rng;
};

// What one connection does with requests, whatever carries them: the service's rules plus the
// connection's own state.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  virtual Outcome handle(const http2::Request& request, SystemTime now) = 0;
  virtual Outcome fault(Fault fault, const http2::Request& request, SystemTime now) = 0;
  // HTTP/2: SETTINGS_MAX_CONCURRENT_STREAMS at the start, and after an outcome if it changes.
  virtual uint32_t initialStreams() const { return 100; }
  virtual std::optional<uint32_t> streamsAfter(const Outcome& /*outcome*/) { return std::nullopt; }
  virtual std::string_view goAwayDebug() const { return {}; }
  // Token endpoints stand for other hosts (oauth2.googleapis.com, login.live.com): the service's
  // injected faults do not apply to them.
  virtual bool faultable(const http2::Request& /*request*/) const { return true; }
};

class ApnsEndpoint final : public Endpoint {
 public:
  ApnsEndpoint(const ApnsService& service, SSL* ssl) : service_(service) {
    if (X509* certificate = SSL_get1_peer_certificate(ssl)) {
      state_.client_certificate = true;
      state_.certificate_topic = certificateTopic(certificate);
      X509_free(certificate);
    }
  }
  Outcome handle(const http2::Request& request, SystemTime now) override {
    return service_.handle(request, state_, now);
  }
  Outcome fault(Fault fault, const http2::Request& request, SystemTime now) override {
    return service_.fault(fault, request, now);
  }
  uint32_t initialStreams() const override {
    // Certificate-authenticated connections are trusted from the start.
    return state_.client_certificate ? service_.options().raised_max_streams
                                     : service_.options().initial_max_streams;
  }
  // The stream-limit dance: raised after an accepted push, optionally back to 1 after a rejected
  // one.
  std::optional<uint32_t> streamsAfter(const Outcome& outcome) override {
    if (outcome.accepted) return service_.options().raised_max_streams;
    if (service_.options().drop_streams_after_rejection) return 1;
    return std::nullopt;
  }
  std::string_view goAwayDebug() const override { return R"({"reason":"Shutdown"})"; }

 private:
  static std::string certificateTopic(X509* certificate) {
    // Apple's push certificates carry the bundle id as the subject's UID.
    X509_NAME* subject = X509_get_subject_name(certificate);
    for (int nid : {NID_userId, NID_commonName}) {
      const int index = X509_NAME_get_index_by_NID(subject, nid, -1);
      if (index < 0) continue;
      const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                         static_cast<size_t>(ASN1_STRING_length(data)));
    }
    return {};
  }

  const ApnsService& service_;
  ApnsConnection state_;
};

class FcmEndpoint final : public Endpoint {
 public:
  explicit FcmEndpoint(FcmService& service) : service_(service) {}
  bool faultable(const http2::Request& request) const override {
    return !FcmService::isTokenRequest(request);
  }
  Outcome handle(const http2::Request& request, SystemTime now) override {
    return service_.handle(request, state_, now);
  }
  Outcome fault(Fault fault, const http2::Request& request, SystemTime now) override {
    return service_.fault(fault, request, now);
  }

 private:
  FcmService& service_;
  FcmConnection state_;
};

class WnsEndpoint final : public Endpoint {
 public:
  explicit WnsEndpoint(WnsService& service) : service_(service) {}
  bool faultable(const http2::Request& request) const override {
    return !WnsService::isTokenRequest(request);
  }
  Outcome handle(const http2::Request& request, SystemTime now) override {
    return service_.handle(request, now);
  }
  Outcome fault(Fault fault, const http2::Request& request, SystemTime now) override {
    return service_.fault(fault, request, now);
  }

 private:
  WnsService& service_;
};

// One service's listener: its TLS context (ALPN decides HTTP/2 or HTTP/1.1; a client without
// ALPN gets the first protocol), faults, acceptors (one per loop) and per-connection endpoints.
struct Listener {
  std::string name;  // "apns", "fcm", "wns": /stats and --record use it
  std::unique_ptr<TlsServerContext> tls;
  std::vector<std::string> protocols;
  const FaultOptions* faults = nullptr;
  size_t max_body_bytes = 8192;
  std::function<std::unique_ptr<Endpoint>(SSL*)> endpoint;
  std::vector<tcp::acceptor> acceptors;
  uint16_t port = 0;
};

enum class Injected { kNone, kReset, kInternalError, kUnavailable, kThrottled };

Injected rollFault(const FaultOptions& faults, std::mt19937_64& rng) {
  const double total = faults.reset_rate + faults.internal_error_rate + faults.unavailable_rate +
                       faults.throttle_rate;
  if (total <= 0) return Injected::kNone;
  const double dice = std::uniform_real_distribution<double>(0, 1)(rng);
  double edge = faults.reset_rate;
  if (dice < edge) return Injected::kReset;
  if (dice < (edge += faults.internal_error_rate)) return Injected::kInternalError;
  if (dice < (edge += faults.unavailable_rate)) return Injected::kUnavailable;
  if (dice < (edge += faults.throttle_rate)) return Injected::kThrottled;
  return Injected::kNone;
}

std::chrono::microseconds rollDelay(const FaultOptions& faults, std::mt19937_64& rng) {
  auto delay = faults.latency;
  if (faults.latency_jitter.count() > 0) {
    delay += std::chrono::microseconds(
        std::uniform_int_distribution<int64_t>(0, faults.latency_jitter.count() - 1)(rng));
  }
  return delay;
}

}  // namespace

struct SimServer::Impl {
  SimOptions options;
  DeviceFates fates;
  std::unique_ptr<ShardSet> loops_set;
  std::vector<std::unique_ptr<Loop>> loops;
  std::unique_ptr<ApnsService> apns;
  std::unique_ptr<FcmService> fcm;
  std::unique_ptr<WnsService> wns;
  std::vector<std::unique_ptr<Listener>> listeners;  // apns, fcm, wns
  std::unique_ptr<Stats> stats;
  std::unique_ptr<Recorder> recorder;
  std::optional<tcp::acceptor> admin_acceptor;
  uint16_t admin_port = 0;
  std::atomic<bool> stopping{false};

  asio::awaitable<void> accept(Listener& listener, Loop& loop);
  asio::awaitable<void> acceptAdmin();
  asio::awaitable<void> serveAdmin(tcp::socket socket);
};

namespace {

// One TLS connection to a service listener; lives on the loop that accepted it. After the
// handshake it speaks HTTP/2 (nghttp2 ServerSession) or HTTP/1.1 (Beast, one request at a time,
// keep-alive), as ALPN chose.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(SimServer::Impl& server, Listener& listener, Loop& loop, tcp::socket socket)
      : server_(server),
        listener_(listener),
        loop_(loop),
        stream_(std::move(socket), listener.tls->context) {}

  // Static, with the owner as a parameter: the coroutine frame keeps the connection alive.
  static asio::awaitable<void> run(std::shared_ptr<Connection> self) { co_await self->serve(); }

 private:
  asio::awaitable<void> serve() {
    boost::system::error_code ec;
    if (listener_.faults->tls_stall_rate > 0 && std::uniform_real_distribution<double>(0, 1)(
                                                    loop_.rng) < listener_.faults->tls_stall_rate) {
      // Read and ignore whatever comes until the client closes.
      std::array<char, 4096> sink;
      for (;;) {
        co_await stream_.next_layer().async_read_some(
            asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
        if (ec || server_.stopping) co_return;
      }
    }
    co_await stream_.async_handshake(asio::ssl::stream_base::server,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    std::string alpn = negotiatedAlpn(stream_.native_handle());
    if (alpn.empty()) alpn = listener_.protocols.front();
    server_.stats->countConnection(loop_.index, listener_.name);
    endpoint_ = listener_.endpoint(stream_.native_handle());
    if (alpn == "h2") {
      co_await serveHttp2();
    } else {
      co_await serveHttp1();
    }
  }

  // The outcome of one request: an injected fault or the service's answer, counted and recorded.
  // nullopt: cut the connection.
  std::optional<Outcome> decide(const http2::Request& request) {
    const auto now = std::chrono::system_clock::now();
    Outcome outcome;
    const Injected injected =
        endpoint_->faultable(request) ? rollFault(*listener_.faults, loop_.rng) : Injected::kNone;
    switch (injected) {
      case Injected::kReset:
        server_.stats->count(loop_.index, listener_.name, 0, "ConnectionReset");
        return std::nullopt;
      case Injected::kInternalError:
        outcome = endpoint_->fault(Fault::kInternalError, request, now);
        break;
      case Injected::kUnavailable:
        outcome = endpoint_->fault(Fault::kUnavailable, request, now);
        break;
      case Injected::kThrottled: outcome = endpoint_->fault(Fault::kThrottled, request, now); break;
      case Injected::kNone: outcome = endpoint_->handle(request, now); break;
    }
    server_.stats->count(loop_.index, listener_.name, outcome.response.status, outcome.reason);
    if (outcome.accepted && server_.recorder) {
      server_.recorder->record(listener_.name, outcome.handle, request);
    }
    return outcome;
  }

  bool goAwayDue() {
    const uint64_t every = listener_.faults->goaway_every;
    return every != 0 && requests_ % every == 0;
  }

  // ---- HTTP/2 ----

  asio::awaitable<void> serveHttp2() {
    http2::ServerSession::Options session_options;
    session_options.max_concurrent_streams = endpoint_->initialStreams();
    session_options.max_body_bytes = listener_.max_body_bytes;
    session_.emplace(
        session_options, [this](http2::Request&& request) { onHttp2Request(std::move(request)); },
        [this] {
          session_->goAway(7 /* REFUSED_STREAM */,
                           R"({"reason":"Maximum active streams violated for this endpoint."})");
        });
    flush();
    std::array<char, 16 << 10> buffer{};
    boost::system::error_code ec;
    while (!closed_) {
      const size_t n = co_await stream_.async_read_some(
          asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      if (ec || closed_) break;
      // Once the session is over, what the client still sends (streams it opened before it saw
      // the GOAWAY) is read and dropped until it closes: see finish().
      if (session_->finished()) continue;
      const bool more = session_->receive(std::string_view(buffer.data(), n));
      flush();
      if (!more && !session_->finished()) break;
    }
    if (!closed_ && !writing_) close();
  }

  void onHttp2Request(http2::Request&& request) {
    ++requests_;
    std::optional<Outcome> outcome = decide(request);
    if (!outcome) {
      close();
      return;
    }
    if (auto limit = endpoint_->streamsAfter(*outcome)) session_->setMaxConcurrentStreams(*limit);
    const int32_t stream_id = request.stream_id;
    const bool goaway = goAwayDue();
    const auto delay = rollDelay(*listener_.faults, loop_.rng);
    if (delay.count() == 0) {
      session_->respond(stream_id, std::move(outcome->response));
      if (goaway) session_->goAway(0, endpoint_->goAwayDebug());
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(*loop_.context, delay);
    timer->async_wait([self = shared_from_this(), timer, stream_id, goaway,
                       response = std::move(outcome->response)](boost::system::error_code) mutable {
      if (self->closed_) return;
      self->session_->respond(stream_id, std::move(response));
      if (goaway) self->session_->goAway(0, self->endpoint_->goAwayDebug());
      self->flush();
    });
  }

  void flush() {
    if (writing_ || closed_) return;
    session_->collectOutput(out_);
    if (out_.empty()) {
      if (session_->finished()) finish();
      return;
    }
    writing_ = true;
    asio::co_spawn(*loop_.context, writeLoop(shared_from_this()), asio::detached);
  }

  asio::awaitable<void> writeLoop([[maybe_unused]] std::shared_ptr<Connection> self) {
    boost::system::error_code ec;
    while (!out_.empty() && !closed_) {
      writing_buffer_.swap(out_);
      co_await asio::async_write(stream_, asio::buffer(writing_buffer_),
                                 asio::redirect_error(asio::use_awaitable, ec));
      writing_buffer_.clear();
      if (ec) {
        close();
        co_return;
      }
      session_->collectOutput(out_);
    }
    writing_ = false;
    if (!closed_ && session_->finished()) finish();
  }

  // ---- HTTP/1.1 ----

  asio::awaitable<void> serveHttp1() {
    namespace http = beast::http;
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    while (!closed_) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 << 10);
      parser.body_limit(listener_.max_body_bytes);
      co_await http::async_read(stream_, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == asio::ssl::error::stream_truncated) {
        break;
      }
      if (ec) {
        // Unparseable or over a limit: answer once, then close (the framing is lost).
        http::response<http::string_body> refusal;
        refusal.version(11);
        refusal.result(ec == http::error::body_limit ? http::status::payload_too_large
                                                     : http::status::bad_request);
        refusal.set(http::field::connection, "close");
        refusal.set(http::field::content_type, "text/plain");
        refusal.body() = fmt::format("pushhub-sim: {}\n", ec.message());
        refusal.prepare_payload();
        server_.stats->count(loop_.index, listener_.name, refusal.result_int(),
                             ec == http::error::body_limit ? "PayloadTooLarge" : "MalformedHttp");
        co_await http::async_write(stream_, refusal, asio::redirect_error(asio::use_awaitable, ec));
        break;
      }
      http::request<http::string_body> message = parser.release();
      http2::Request request;
      request.headers.push_back({":method", std::string(message.method_string())});
      request.headers.push_back({":path", std::string(message.target())});
      request.headers.push_back({":scheme", "https"});
      if (auto host = message.find(http::field::host); host != message.end()) {
        request.headers.push_back({":authority", std::string(host->value())});
      }
      for (const auto& field : message) {
        std::string name(field.name_string());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        request.headers.push_back({std::move(name), std::string(field.value())});
      }
      request.body = std::move(message.body());
      ++requests_;
      std::optional<Outcome> outcome = decide(request);
      if (!outcome) break;
      const auto delay = rollDelay(*listener_.faults, loop_.rng);
      if (delay.count() > 0) {
        asio::steady_timer timer(*loop_.context, delay);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      http::response<http::string_body> response;
      response.version(11);
      response.result(static_cast<unsigned>(outcome->response.status));
      for (auto& header : outcome->response.headers) response.insert(header.name, header.value);
      response.body() = std::move(outcome->response.body);
      const bool keep_alive = message.keep_alive() && !goAwayDue();
      response.keep_alive(keep_alive);
      response.prepare_payload();
      co_await http::async_write(stream_, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !keep_alive) break;
    }
    if (!closed_) {
      co_await stream_.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
      close();
    }
  }

  // The HTTP/2 session is over: its GOAWAY and last answers are written. Closing the socket now,
  // with frames the client sent meanwhile still unread, would make the kernel answer with a
  // reset — and a reset can destroy answers the client has received but not read yet (it would
  // send them again: duplicates). So, as HTTP servers' lingering close does: half-close, keep
  // reading (serveHttp2 drops what arrives) until the client closes too, or a second passes.
  void finish() {
    if (closed_ || finishing_) return;
    finishing_ = true;
    boost::system::error_code ec;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_send, ec);
    auto timer = std::make_shared<asio::steady_timer>(*loop_.context, std::chrono::seconds(1));
    timer->async_wait(
        [self = shared_from_this(), timer](boost::system::error_code) { self->close(); });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_both, ec);
    stream_.lowest_layer().close(ec);
  }

  SimServer::Impl& server_;
  Listener& listener_;
  Loop& loop_;
  asio::ssl::stream<tcp::socket> stream_;
  std::unique_ptr<Endpoint> endpoint_;
  std::optional<http2::ServerSession> session_;
  std::string out_;
  std::string writing_buffer_;
  bool writing_ = false;
  bool closed_ = false;
  bool finishing_ = false;
  uint64_t requests_ = 0;
};

}  // namespace

asio::awaitable<void> SimServer::Impl::accept(Listener& listener, Loop& loop) {
  tcp::acceptor& acceptor = listener.acceptors[loop.index];
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping) co_return;
    if (ec) {
      asio::steady_timer pause(*loop.context, std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto connection = std::make_shared<Connection>(*this, listener, loop, std::move(socket));
    asio::co_spawn(*loop.context, Connection::run(std::move(connection)), asio::detached);
  }
}

asio::awaitable<void> SimServer::Impl::acceptAdmin() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await admin_acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping) co_return;
    if (ec) continue;
    asio::co_spawn(admin_acceptor->get_executor(), serveAdmin(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> SimServer::Impl::serveAdmin(tcp::socket socket) {
  namespace http = beast::http;
  beast::flat_buffer buffer;
  for (;;) {
    boost::system::error_code ec;
    http::request<http::string_body> request;
    co_await http::async_read(socket, buffer, request,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    http::response<http::string_body> response;
    response.version(11);
    response.keep_alive(request.keep_alive());
    response.set(http::field::content_type, "application/json");
    if (request.target() == "/stats" && request.method() == http::verb::get) {
      response.result(http::status::ok);
      response.body() = stats->json();
    } else if (request.target() == "/stats/reset" && request.method() == http::verb::post) {
      stats->reset();
      response.result(http::status::ok);
      response.body() = "{}";
    } else if (request.target() == "/stats" || request.target() == "/stats/reset") {
      response.result(http::status::method_not_allowed);
      response.body() = R"({"error":"use GET /stats or POST /stats/reset"})";
    } else {
      response.result(http::status::not_found);
      response.body() = R"({"error":"the admin port serves GET /stats and POST /stats/reset"})";
    }
    response.prepare_payload();
    co_await http::async_write(socket, response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !request.keep_alive()) co_return;
  }
}

SimServer::SimServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SimServer::~SimServer() { stop(); }

std::expected<std::unique_ptr<SimServer>, std::string> SimServer::create(SimOptions options,
                                                                         DeviceFates fates) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->fates = std::move(fates);
  const SimOptions& o = impl->options;
  const unsigned count = o.loops != 0 ? o.loops : std::max(1u, std::thread::hardware_concurrency());
  impl->loops_set = std::make_unique<ShardSet>(count);
  impl->stats = std::make_unique<Stats>(count);
  impl->apns = std::make_unique<ApnsService>(o.apns, impl->fates);
  impl->fcm = std::make_unique<FcmService>(o.fcm, impl->fates);
  impl->wns = std::make_unique<WnsService>(o.wns, impl->fates);
  if (!o.record_file.empty()) {
    impl->recorder = std::make_unique<Recorder>(o.record_file);
    if (!impl->recorder->ok()) {
      return std::unexpected(fmt::format("cannot write the record file {}", o.record_file));
    }
  }
  std::vector<asio::io_context*> contexts;
  for (unsigned i = 0; i < count; ++i) {
    auto loop = std::make_unique<Loop>();
    loop->index = i;
    loop->context = &impl->loops_set->context(i);
    loop->rng.seed(0x5eed + i);
    contexts.push_back(loop->context);
    impl->loops.push_back(std::move(loop));
  }

  Impl& server = *impl;
  struct Spec {
    std::string name;
    std::string label;
    const ListenAddress* address;
    std::vector<std::string> protocols;
    std::string client_ca;
    const FaultOptions* faults;
    size_t max_body_bytes;
    std::function<std::unique_ptr<Endpoint>(SSL*)> endpoint;
  };
  std::vector<Spec> specs;
  // APNs: HTTP/2 only; bodies beyond 5120 bytes are PayloadTooLarge whatever their size.
  specs.push_back({"apns",
                   "APNs",
                   &o.apns_listen,
                   {"h2"},
                   o.client_ca,
                   &o.apns_faults,
                   8192,
                   [&server](SSL* ssl) -> std::unique_ptr<Endpoint> {
                     return std::make_unique<ApnsEndpoint>(*server.apns, ssl);
                   }});
  // FCM: Google's front end speaks HTTP/2 and HTTP/1.1.
  specs.push_back({"fcm",
                   "FCM",
                   &o.fcm_listen,
                   {"h2", "http/1.1"},
                   "",
                   &o.fcm_faults,
                   64 << 10,
                   [&server](SSL*) -> std::unique_ptr<Endpoint> {
                     return std::make_unique<FcmEndpoint>(*server.fcm);
                   }});
  // WNS: HTTP/1.1 only; a client that offers nothing else is refused in the handshake.
  specs.push_back({"wns",
                   "WNS",
                   &o.wns_listen,
                   {"http/1.1"},
                   "",
                   &o.wns_faults,
                   64 << 10,
                   [&server](SSL*) -> std::unique_ptr<Endpoint> {
                     return std::make_unique<WnsEndpoint>(*server.wns);
                   }});
  for (auto& spec : specs) {
    auto listener = std::make_unique<Listener>();
    listener->name = spec.name;
    listener->protocols = spec.protocols;
    listener->faults = spec.faults;
    listener->max_body_bytes = spec.max_body_bytes;
    listener->endpoint = std::move(spec.endpoint);
    TlsServerOptions tls;
    tls.certificate_file = o.tls_certificate;
    tls.private_key_file = o.tls_private_key;
    tls.alpn = spec.protocols;
    tls.client_ca_file = spec.client_ca;
    auto context = makeTlsServerContext(tls);
    if (!context) return std::unexpected(context.error());
    listener->tls = std::move(*context);
    auto listening = listenOnEach(*spec.address, contexts);
    if (!listening) return std::unexpected(spec.label + " listener: " + listening.error());
    listener->acceptors = std::move(listening->acceptors);
    listener->port = listening->port;
    impl->listeners.push_back(std::move(listener));
  }
  std::array<asio::io_context*, 1> admin_context{contexts.front()};
  auto admin = listenOnEach(o.admin_listen, admin_context);
  if (!admin) return std::unexpected("admin listener: " + admin.error());
  impl->admin_acceptor.emplace(std::move(admin->acceptors.front()));
  impl->admin_port = admin->port;
  return std::unique_ptr<SimServer>(new SimServer(std::move(impl)));
}

uint16_t SimServer::apnsPort() const { return impl_->listeners[0]->port; }
uint16_t SimServer::fcmPort() const { return impl_->listeners[1]->port; }
uint16_t SimServer::wnsPort() const { return impl_->listeners[2]->port; }
uint16_t SimServer::adminPort() const { return impl_->admin_port; }
Stats& SimServer::stats() { return *impl_->stats; }

void SimServer::start() {
  for (auto& listener : impl_->listeners) {
    for (auto& loop : impl_->loops) {
      asio::co_spawn(*loop->context, impl_->accept(*listener, *loop), asio::detached);
    }
  }
  asio::co_spawn(*impl_->loops.front()->context, impl_->acceptAdmin(), asio::detached);
  impl_->loops_set->start();
  log()->info(
      "APNs on port {} (HTTP/2), FCM on port {} (HTTP/2, HTTP/1.1), WNS on port {} "
      "(HTTP/1.1), all TLS; admin on port {}; {} loops",
      apnsPort(), fcmPort(), wnsPort(), impl_->admin_port, impl_->loops.size());
}

void SimServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  for (auto& loop : impl_->loops) {
    asio::post(*loop->context, [this, &loop = *loop] {
      boost::system::error_code ec;
      for (auto& listener : impl_->listeners) listener->acceptors[loop.index].close(ec);
    });
  }
  asio::post(*impl_->loops.front()->context, [this] {
    boost::system::error_code ec;
    impl_->admin_acceptor->close(ec);
  });
  // Open connections are abandoned with the loops: a simulator has nothing to drain.
  for (unsigned i = 0; i < impl_->loops_set->size(); ++i) impl_->loops_set->context(i).stop();
  impl_->loops_set->stop(std::chrono::milliseconds(100));
}

}  // namespace pushhub::connectors::sim
