#include "connectors/sim/server.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <fstream>
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
  std::optional<tcp::acceptor> apns_acceptor;
  std::mt19937_64 rng;
};

}  // namespace

struct SimServer::Impl {
  SimOptions options;
  DeviceFates fates;
  std::unique_ptr<ShardSet> loops_set;
  std::vector<std::unique_ptr<Loop>> loops;
  std::unique_ptr<TlsServerContext> apns_tls;
  std::unique_ptr<ApnsService> apns;
  std::unique_ptr<Stats> stats;
  std::unique_ptr<Recorder> recorder;
  std::optional<tcp::acceptor> admin_acceptor;
  uint16_t apns_port = 0;
  uint16_t admin_port = 0;
  std::atomic<bool> stopping{false};

  asio::awaitable<void> acceptApns(Loop& loop);
  asio::awaitable<void> acceptAdmin();
  asio::awaitable<void> serveAdmin(tcp::socket socket);
};

namespace {

// One TLS + HTTP/2 connection to the APNs listener; lives on the loop that accepted it.
class ApnsConnectionHandler : public std::enable_shared_from_this<ApnsConnectionHandler> {
 public:
  ApnsConnectionHandler(SimServer::Impl& server, Loop& loop, tcp::socket socket)
      : server_(server), loop_(loop), stream_(std::move(socket), server.apns_tls->context) {}

  // Static, with the owner as a parameter: the coroutine frame keeps the connection alive.
  static asio::awaitable<void> run(std::shared_ptr<ApnsConnectionHandler> self) {
    co_await self->serve();
  }

 private:
  asio::awaitable<void> serve() {
    boost::system::error_code ec;
    co_await stream_.async_handshake(asio::ssl::stream_base::server,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    // HTTP/2 over TLS: a client that negotiated something else is not APNs's kind of client.
    const std::string alpn = negotiatedAlpn(stream_.native_handle());
    if (!alpn.empty() && alpn != "h2") co_return;
    server_.stats->countConnection(loop_.index, "apns");
    if (X509* certificate = SSL_get1_peer_certificate(stream_.native_handle())) {
      state_.client_certificate = true;
      state_.certificate_topic = certificateTopic(certificate);
      X509_free(certificate);
    }
    http2::ServerSession::Options session_options;
    session_options.max_concurrent_streams = state_.client_certificate
                                                 ? server_.options.apns.raised_max_streams
                                                 : server_.options.apns.initial_max_streams;
    session_options.max_body_bytes = 8192;
    session_.emplace(
        session_options, [this](http2::Request&& request) { onRequest(std::move(request)); },
        [this] {
          session_->goAway(7 /* REFUSED_STREAM */,
                           R"({"reason":"Maximum active streams violated for this endpoint."})");
        });
    flush();
    std::array<char, 16 << 10> buffer{};
    while (!closed_) {
      const size_t n = co_await stream_.async_read_some(
          asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      if (ec || closed_) break;
      const bool more = session_->receive(std::string_view(buffer.data(), n));
      flush();
      if (!more) break;
    }
    if (!closed_ && !writing_) close();
  }

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

  void onRequest(http2::Request&& request) {
    const FaultOptions& faults = server_.options.apns_faults;
    ++requests_;
    const double dice = std::uniform_real_distribution<double>(0, 1)(loop_.rng);
    ApnsOutcome outcome;
    bool reset = false;
    if (dice < faults.reset_rate) {
      reset = true;
    } else if (double edge = faults.reset_rate + faults.internal_error_rate; dice < edge) {
      outcome =
          server_.apns->rejection(request, "InternalServerError", std::chrono::system_clock::now());
    } else if (dice < (edge += faults.unavailable_rate)) {
      outcome =
          server_.apns->rejection(request, "ServiceUnavailable", std::chrono::system_clock::now());
    } else if (dice < (edge += faults.throttle_rate)) {
      outcome =
          server_.apns->rejection(request, "TooManyRequests", std::chrono::system_clock::now());
    } else {
      outcome = server_.apns->handle(request, state_, std::chrono::system_clock::now());
    }
    if (reset) {
      server_.stats->count(loop_.index, "apns", 0, "ConnectionReset");
      close();
      return;
    }
    server_.stats->count(loop_.index, "apns", outcome.response.status, outcome.reason);
    if (outcome.accepted && server_.recorder) {
      server_.recorder->record("apns", outcome.token, request);
    }
    // The stream-limit dance: raised after an accepted push, optionally back to 1 after a
    // rejected one.
    if (outcome.accepted) {
      session_->setMaxConcurrentStreams(server_.options.apns.raised_max_streams);
    } else if (server_.options.apns.drop_streams_after_rejection) {
      session_->setMaxConcurrentStreams(1);
    }
    const int32_t stream_id = request.stream_id;
    auto delay = faults.latency;
    if (faults.latency_jitter.count() > 0) {
      delay += std::chrono::microseconds(
          std::uniform_int_distribution<int64_t>(0, faults.latency_jitter.count() - 1)(loop_.rng));
    }
    const bool goaway = faults.goaway_every != 0 && requests_ % faults.goaway_every == 0;
    if (delay.count() == 0) {
      session_->respond(stream_id, std::move(outcome.response));
      if (goaway) session_->goAway(0, R"({"reason":"Shutdown"})");
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(*loop_.context, delay);
    timer->async_wait([self = shared_from_this(), timer, stream_id, goaway,
                       response = std::move(outcome.response)](boost::system::error_code) mutable {
      if (self->closed_) return;
      self->session_->respond(stream_id, std::move(response));
      if (goaway) self->session_->goAway(0, R"({"reason":"Shutdown"})");
      self->flush();
    });
  }

  void flush() {
    if (writing_ || closed_) return;
    session_->collectOutput(out_);
    if (out_.empty()) {
      if (session_->finished()) close();
      return;
    }
    writing_ = true;
    asio::co_spawn(*loop_.context, writeLoop(shared_from_this()), asio::detached);
  }

  asio::awaitable<void> writeLoop([[maybe_unused]] std::shared_ptr<ApnsConnectionHandler> self) {
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
    if (!closed_ && session_->finished()) close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_both, ec);
    stream_.lowest_layer().close(ec);
  }

  SimServer::Impl& server_;
  Loop& loop_;
  asio::ssl::stream<tcp::socket> stream_;
  std::optional<http2::ServerSession> session_;
  ApnsConnection state_;
  std::string out_;
  std::string writing_buffer_;
  bool writing_ = false;
  bool closed_ = false;
  uint64_t requests_ = 0;
};

}  // namespace

asio::awaitable<void> SimServer::Impl::acceptApns(Loop& loop) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await loop.apns_acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping) co_return;
    if (ec) {
      asio::steady_timer pause(*loop.context, std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto connection = std::make_shared<ApnsConnectionHandler>(*this, loop, std::move(socket));
    asio::co_spawn(*loop.context, ApnsConnectionHandler::run(std::move(connection)),
                   asio::detached);
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
  const unsigned count = impl->options.loops != 0
                             ? impl->options.loops
                             : std::max(1u, std::thread::hardware_concurrency());
  impl->loops_set = std::make_unique<ShardSet>(count);
  impl->stats = std::make_unique<Stats>(count);
  TlsServerOptions tls;
  tls.certificate_file = impl->options.tls_certificate;
  tls.private_key_file = impl->options.tls_private_key;
  tls.alpn = {"h2"};
  tls.client_ca_file = impl->options.client_ca;
  auto context = makeTlsServerContext(tls);
  if (!context) return std::unexpected(context.error());
  impl->apns_tls = std::move(*context);
  impl->apns = std::make_unique<ApnsService>(impl->options.apns, impl->fates);
  if (!impl->options.record_file.empty()) {
    impl->recorder = std::make_unique<Recorder>(impl->options.record_file);
    if (!impl->recorder->ok()) {
      return std::unexpected(
          fmt::format("cannot write the record file {}", impl->options.record_file));
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
  auto apns = listenOnEach(impl->options.apns_listen, contexts);
  if (!apns) return std::unexpected("APNs listener: " + apns.error());
  for (unsigned i = 0; i < count; ++i)
    impl->loops[i]->apns_acceptor.emplace(std::move(apns->acceptors[i]));
  impl->apns_port = apns->port;
  std::array<asio::io_context*, 1> admin_context{contexts.front()};
  auto admin = listenOnEach(impl->options.admin_listen, admin_context);
  if (!admin) return std::unexpected("admin listener: " + admin.error());
  impl->admin_acceptor.emplace(std::move(admin->acceptors.front()));
  impl->admin_port = admin->port;
  return std::unique_ptr<SimServer>(new SimServer(std::move(impl)));
}

uint16_t SimServer::apnsPort() const { return impl_->apns_port; }
uint16_t SimServer::adminPort() const { return impl_->admin_port; }
Stats& SimServer::stats() { return *impl_->stats; }

void SimServer::start() {
  for (auto& loop : impl_->loops) {
    asio::co_spawn(*loop->context, impl_->acceptApns(*loop), asio::detached);
  }
  asio::co_spawn(*impl_->loops.front()->context, impl_->acceptAdmin(), asio::detached);
  impl_->loops_set->start();
  log()->info("APNs on port {} (TLS, HTTP/2), admin on port {}, {} loops", impl_->apns_port,
              impl_->admin_port, impl_->loops.size());
}

void SimServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  for (auto& loop : impl_->loops) {
    asio::post(*loop->context, [&loop = *loop] {
      boost::system::error_code ec;
      if (loop.apns_acceptor) loop.apns_acceptor->close(ec);
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
