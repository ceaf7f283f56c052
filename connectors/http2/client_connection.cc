#include "connectors/http2/client_connection.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "connectors/tls.h"

namespace pushhub::connectors::http2 {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct ClientConnection::Impl {
  Impl(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls_context, Options opts,
       Events evs)
      : io_context(io),
        tls(std::move(tls_context)),
        options(std::move(opts)),
        events(std::move(evs)),
        stream(io, *tls),
        resolver(io),
        timer(io),
        maintenance(io) {}

  asio::io_context& io_context;
  std::shared_ptr<asio::ssl::context> tls;
  Options options;
  Events events;
  asio::ssl::stream<tcp::socket> stream;
  tcp::resolver resolver;
  asio::steady_timer timer;        // connect timeout
  asio::steady_timer maintenance;  // PING, stream deadlines
  std::unique_ptr<ClientSession> session;
  std::string out;
  std::string writing;
  bool write_pending = false;
  bool closed = false;
  Clock::time_point ping_sent{};
};

namespace {

asio::awaitable<void> writeLoop(std::shared_ptr<ClientConnection> self,
                                ClientConnection::Impl& impl) {
  boost::system::error_code ec;
  while (!impl.out.empty() && !impl.closed) {
    impl.writing.swap(impl.out);
    co_await asio::async_write(impl.stream, asio::buffer(impl.writing),
                               asio::redirect_error(asio::use_awaitable, ec));
    impl.writing.clear();
    if (ec) {
      self->close("write: " + ec.message());
      co_return;
    }
    if (impl.session) impl.session->collectOutput(impl.out);
  }
  impl.write_pending = false;
}

// A copy of the connection's TLS session: OpenSSL marks a session it shares with a connection
// not resumable when that connection ends without close_notify (servers often just close).
std::shared_ptr<SSL_SESSION> copySession(SSL* ssl) {
  SSL_SESSION* current = SSL_get0_session(ssl);
  if (current == nullptr) return nullptr;
  return std::shared_ptr<SSL_SESSION>(SSL_SESSION_dup(current), SSL_SESSION_free);
}

}  // namespace

std::shared_ptr<ClientConnection> ClientConnection::start(asio::io_context& io,
                                                          std::shared_ptr<asio::ssl::context> tls,
                                                          Options options, Events events,
                                                          std::shared_ptr<SSL_SESSION> resume) {
  std::shared_ptr<ClientConnection> self(new ClientConnection());
  self->impl_ = std::make_unique<Impl>(io, std::move(tls), std::move(options), std::move(events));
  Impl& impl = *self->impl_;
  if (auto ok = prepareTlsClient(impl.stream.native_handle(), impl.options.host,
                                 impl.options.verify_peer, resume.get());
      !ok) {
    asio::post(io, [self, why = ok.error()] { self->close(why); });
    return self;
  }

  // Flushes what the session has to say.
  auto flush = [](const std::shared_ptr<ClientConnection>& c) {
    Impl& i = *c->impl_;
    if (i.closed || !i.session || i.write_pending) return;
    i.session->collectOutput(i.out);
    if (i.out.empty()) return;
    i.write_pending = true;
    asio::co_spawn(i.io_context, writeLoop(c, i), asio::detached);
  };

  auto run = [](std::shared_ptr<ClientConnection> self, auto flush) -> asio::awaitable<void> {
    Impl& impl = *self->impl_;
    boost::system::error_code ec;
    impl.timer.expires_after(impl.options.connect_timeout);
    impl.timer.async_wait([weak = std::weak_ptr<ClientConnection>(self)](auto error) {
      if (error) return;
      if (auto c = weak.lock(); c && c->state_ == State::kConnecting) {
        c->close("connect: timed out");
      }
    });
    auto endpoints =
        co_await impl.resolver.async_resolve(impl.options.host, std::to_string(impl.options.port),
                                             asio::redirect_error(asio::use_awaitable, ec));
    if (ec || impl.closed) {
      if (!impl.closed) self->close(fmt::format("resolve {}: {}", impl.options.host, ec.message()));
      co_return;
    }
    co_await asio::async_connect(impl.stream.lowest_layer(), endpoints,
                                 asio::redirect_error(asio::use_awaitable, ec));
    if (ec || impl.closed) {
      if (!impl.closed) self->close("connect: " + ec.message());
      co_return;
    }
    impl.stream.lowest_layer().set_option(tcp::no_delay(true), ec);
    co_await impl.stream.async_handshake(asio::ssl::stream_base::client,
                                         asio::redirect_error(asio::use_awaitable, ec));
    if (ec || impl.closed) {
      if (!impl.closed) self->close("TLS handshake: " + ec.message());
      co_return;
    }
    impl.timer.cancel();
    SSL* ssl = impl.stream.native_handle();
    if (negotiatedAlpn(ssl) != "h2") {
      self->close("the server did not negotiate HTTP/2 (ALPN h2)");
      co_return;
    }
    self->resumed_ = SSL_session_reused(ssl) == 1;
    self->tls_session_ = copySession(ssl);
    impl.session = std::make_unique<ClientSession>(impl.options.session, impl.events.done);
    self->last_active_ = Clock::now();
    flush(self);

    // Maintenance: PING when idle, a timeout on its ACK, stream deadlines.
    asio::co_spawn(
        impl.io_context,
        [](std::shared_ptr<ClientConnection> c, auto flush) -> asio::awaitable<void> {
          Impl& i = *c->impl_;
          const auto tick =
              std::min<Clock::duration>(std::chrono::milliseconds(250), i.options.ping_timeout);
          boost::system::error_code error;
          while (!i.closed) {
            i.maintenance.expires_after(tick);
            co_await i.maintenance.async_wait(asio::redirect_error(asio::use_awaitable, error));
            if (i.closed || !i.session) co_return;
            const auto now = Clock::now();
            if (i.session->pingOutstanding()) {
              if (now - i.ping_sent > i.options.ping_timeout) {
                c->close("PING timeout");
                co_return;
              }
            } else if (now - c->last_active_ > i.options.idle_ping) {
              i.session->ping();
              i.ping_sent = now;
            }
            if (i.session->cancelExpired(now) > 0) {
              // The cancelled streams end as their RST_STREAM frames are written.
              flush(c);
              if (i.events.changed) i.events.changed(*c);
            }
            flush(c);
          }
        }(self, flush),
        asio::detached);

    std::array<char, 16 << 10> buffer{};
    while (!impl.closed) {
      const size_t n = co_await impl.stream.async_read_some(
          asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      if (impl.closed) co_return;
      if (ec) {
        self->close(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
                        ? "closed by the server"
                        : "read: " + ec.message());
        co_return;
      }
      self->last_active_ = Clock::now();
      // TLS 1.3 tickets arrive after the handshake: keep the session once it can be resumed.
      if (!self->tls_session_ || SSL_SESSION_is_resumable(self->tls_session_.get()) == 0) {
        self->tls_session_ = copySession(ssl);
      }
      if (!impl.session->receive(std::string_view(buffer.data(), n))) {
        self->close("HTTP/2 protocol error");
        co_return;
      }
      const bool was_ready = self->state_ == State::kReady;
      if (self->state_ == State::kConnecting && impl.session->ready()) {
        self->state_ = State::kReady;
        self->ever_ready_ = true;
      }
      if (impl.session->goingAway() && self->state_ != State::kDraining) {
        self->state_ = State::kDraining;
        self->reason_ = fmt::format("GOAWAY (error code {})", impl.session->goAwayErrorCode());
      }
      flush(self);
      if (impl.events.changed && (self->state_ != State::kConnecting || was_ready)) {
        impl.events.changed(*self);
      }
      if (impl.session->finished()) {
        self->close(self->reason_.empty() ? "finished" : self->reason_);
        co_return;
      }
    }
  };
  asio::co_spawn(io, run(self, flush), asio::detached);
  return self;
}

ClientConnection::~ClientConnection() = default;

bool ClientConnection::canSubmit() const {
  return state_ == State::kReady && impl_->session && impl_->session->canSubmit();
}

bool ClientConnection::submit(ClientRequest&& request, uint64_t tag, Clock::time_point deadline) {
  if (!canSubmit()) return false;
  if (!impl_->session->submit(std::move(request), tag, deadline)) return false;
  if (!impl_->write_pending) {
    // Batch: the write starts once the caller is done submitting for this turn.
    impl_->write_pending = true;
    asio::post(impl_->io_context, [self = shared_from_this()] {
      Impl& i = *self->impl_;
      i.write_pending = false;
      if (i.closed || !i.session) return;
      i.session->collectOutput(i.out);
      if (i.out.empty()) return;
      i.write_pending = true;
      asio::co_spawn(i.io_context, writeLoop(self, i), asio::detached);
    });
  }
  return true;
}

size_t ClientConnection::openStreams() const {
  return impl_->session ? impl_->session->openStreams() : 0;
}

uint32_t ClientConnection::remoteMaxStreams() const {
  return impl_->session ? impl_->session->remoteMaxStreams() : 0;
}

void ClientConnection::shutdown() {
  if (impl_->closed) return;
  if (!impl_->session || state_ == State::kConnecting) {
    close("shut down");
    return;
  }
  state_ = State::kDraining;
  if (reason_.empty()) reason_ = "shut down";
  impl_->session->shutdown();
  if (impl_->session->openStreams() == 0) {
    close(reason_);
    return;
  }
  if (!impl_->write_pending) {
    impl_->session->collectOutput(impl_->out);
    if (!impl_->out.empty()) {
      impl_->write_pending = true;
      asio::co_spawn(impl_->io_context, writeLoop(shared_from_this(), *impl_), asio::detached);
    }
  }
}

void ClientConnection::close(const std::string& reason) {
  if (impl_->closed) return;
  impl_->closed = true;
  if (reason_.empty() || state_ != State::kDraining) reason_ = reason;
  state_ = State::kClosed;
  boost::system::error_code ec;
  impl_->timer.cancel();
  impl_->maintenance.cancel();
  impl_->resolver.cancel();
  impl_->stream.lowest_layer().shutdown(tcp::socket::shutdown_both, ec);
  impl_->stream.lowest_layer().close(ec);
  auto keep = shared_from_this();
  if (impl_->session) impl_->session->failAll();
  if (impl_->events.changed) impl_->events.changed(*this);
}

}  // namespace pushhub::connectors::http2
