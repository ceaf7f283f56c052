#include "connectors/http1/client.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "connectors/tls.h"

namespace pushhub::connectors::http1 {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

std::expected<Url, std::string> parseHttpUrl(std::string_view url) {
  Url parsed;
  parsed.https = url.starts_with("https://");
  if (!parsed.https && !url.starts_with("http://")) {
    return std::unexpected(fmt::format("{}: not an http:// or https:// URL", url));
  }
  parsed.port = parsed.https ? 443 : 80;
  std::string_view rest = url.substr(parsed.https ? 8 : 7);
  const size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  parsed.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (parsed.target.front() == '?') parsed.target.insert(0, "/");
  std::string_view port;
  if (authority.starts_with('[')) {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::unexpected(fmt::format("{}: bad host", url));
    parsed.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (parsed.host.empty()) return std::unexpected(fmt::format("{}: no host", url));
  if (!port.empty()) {
    unsigned value = 0;
    for (const char c : port) {
      if (c < '0' || c > '9' || value > 65535) {
        return std::unexpected(fmt::format("{}: bad port", url));
      }
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return std::unexpected(fmt::format("{}: bad port", url));
    parsed.port = static_cast<uint16_t>(value);
  }
  return parsed;
}

std::expected<Url, std::string> parseHttpsUrl(std::string_view url) {
  if (!url.starts_with("https://")) {
    return std::unexpected(fmt::format("{}: only https:// URLs are supported", url));
  }
  return parseHttpUrl(url);
}

struct Connection::Impl {
  Impl(asio::io_context& io, std::shared_ptr<asio::ssl::context> context, Options opts)
      : io_context(io),
        tls(std::move(context)),
        options(std::move(opts)),
        stream(io, *tls),
        resolver(io),
        timer(io) {}
  asio::io_context& io_context;
  std::shared_ptr<asio::ssl::context> tls;
  Options options;
  asio::ssl::stream<tcp::socket> stream;
  tcp::resolver resolver;
  asio::steady_timer timer;
  beast::flat_buffer buffer;
  std::shared_ptr<SSL_SESSION> resume;
};

std::shared_ptr<Connection> Connection::create(asio::io_context& io,
                                               std::shared_ptr<asio::ssl::context> tls,
                                               Options options,
                                               std::shared_ptr<SSL_SESSION> resume) {
  std::shared_ptr<Connection> self(new Connection());
  self->impl_ = std::make_unique<Impl>(io, std::move(tls), std::move(options));
  self->impl_->resume = std::move(resume);
  return self;
}

Connection::~Connection() = default;

const std::string& Connection::host() const { return impl_->options.host; }
uint16_t Connection::port() const { return impl_->options.port; }

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  impl_->timer.cancel();
  impl_->resolver.cancel();
  impl_->stream.lowest_layer().shutdown(tcp::socket::shutdown_both, ec);
  impl_->stream.lowest_layer().close(ec);
}

void Connection::send(Request request, Callback done) {
  if (busy_ || closed_) {
    asio::post(impl_->io_context, [done = std::move(done), busy = busy_] {
      done(std::unexpected(
          Failure{StreamEnd::kRefused, busy ? "connection busy" : "connection closed"}));
    });
    return;
  }
  busy_ = true;
  auto run = [](std::shared_ptr<Connection> self, Request request,
                Callback done) -> asio::awaitable<void> {
    Impl& impl = *self->impl_;
    boost::system::error_code ec;
    // One timer bounds the whole exchange (connect included): on expiry the socket closes and
    // whatever was pending fails. `active` keeps a late expiry from touching the next exchange.
    auto active = std::make_shared<bool>(true);
    auto expired = std::make_shared<bool>(false);
    bool sent = false;  // once the request may have left, a failure is no longer a refusal
    const auto fail = [&](std::string why) {
      *active = false;
      impl.timer.cancel();
      self->close();
      self->busy_ = false;
      const StreamEnd end = *expired && sent ? StreamEnd::kReset
                            : sent           ? StreamEnd::kConnectionLost
                                             : StreamEnd::kRefused;
      done(std::unexpected(Failure{end, std::move(why)}));
    };
    impl.timer.expires_after(self->connected_
                                 ? impl.options.request_timeout
                                 : impl.options.connect_timeout + impl.options.request_timeout);
    impl.timer.async_wait(
        [weak = std::weak_ptr<Connection>(self), active, expired](boost::system::error_code error) {
          if (error || !*active) return;
          *expired = true;
          if (auto c = weak.lock()) c->close();
        });
    const auto timed_out_flag = [&] { return *expired; };
    if (!self->connected_) {
      if (auto ok = prepareTlsClient(impl.stream.native_handle(), impl.options.host,
                                     impl.options.verify_peer, impl.resume.get());
          !ok) {
        fail(ok.error());
        co_return;
      }
      auto endpoints =
          co_await impl.resolver.async_resolve(impl.options.host, std::to_string(impl.options.port),
                                               asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) {
        co_await asio::async_connect(impl.stream.lowest_layer(), endpoints,
                                     asio::redirect_error(asio::use_awaitable, ec));
      }
      if (ec || timed_out_flag()) {
        fail(timed_out_flag() ? "connect: timed out" : "connect: " + ec.message());
        co_return;
      }
      impl.stream.lowest_layer().set_option(tcp::no_delay(true), ec);
      co_await impl.stream.async_handshake(asio::ssl::stream_base::client,
                                           asio::redirect_error(asio::use_awaitable, ec));
      if (ec || timed_out_flag()) {
        fail(timed_out_flag() ? "TLS handshake: timed out" : "TLS handshake: " + ec.message());
        co_return;
      }
      SSL* ssl = impl.stream.native_handle();
      const std::string alpn = negotiatedAlpn(ssl);
      if (!alpn.empty() && alpn != "http/1.1") {
        fail("the server negotiated " + alpn + ", not http/1.1");
        co_return;
      }
      self->resumed_ = SSL_session_reused(ssl) == 1;
      if (SSL_SESSION* current = SSL_get0_session(ssl)) {
        self->tls_session_ =
            std::shared_ptr<SSL_SESSION>(SSL_SESSION_dup(current), SSL_SESSION_free);
      }
      self->connected_ = true;
    }
    namespace http = beast::http;
    http::request<http::string_body> message;
    message.version(11);
    message.method_string(request.method);
    message.target(request.path);
    message.set(http::field::host,
                impl.options.port == 443
                    ? impl.options.host
                    : fmt::format("{}:{}", impl.options.host, impl.options.port));
    for (auto& h : request.headers) message.insert(h.name, h.value);
    message.body() = std::move(request.body);
    message.keep_alive(true);
    message.content_length(message.body().size());  // never chunked, even when empty
    sent = true;
    co_await http::async_write(impl.stream, message, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || timed_out_flag()) {
      impl.timer.cancel();
      fail(timed_out_flag() ? "request timed out" : "write: " + ec.message());
      co_return;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(impl.options.max_response_body);
    co_await http::async_read(impl.stream, impl.buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec || timed_out_flag()) {
      fail(timed_out_flag() ? "request timed out" : "read: " + ec.message());
      co_return;
    }
    auto reply = parser.release();
    Response response;
    response.status = static_cast<int>(reply.result_int());
    for (const auto& field : reply) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      response.headers.push_back({std::move(name), std::string(field.value())});
    }
    response.body = std::move(reply.body());
    *active = false;
    impl.timer.cancel();
    self->last_active_ = Clock::now();
    if (!reply.keep_alive()) self->close();
    self->busy_ = false;
    done(std::move(response));
  };
  asio::co_spawn(impl_->io_context, run(shared_from_this(), std::move(request), std::move(done)),
                 asio::detached);
}

void fetch(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls, const Url& url,
           Request request, Connection::Callback done, std::chrono::milliseconds timeout,
           bool verify_peer) {
  Connection::Options options;
  options.host = url.host;
  options.port = url.port;
  options.verify_peer = verify_peer;
  options.connect_timeout = timeout;
  options.request_timeout = timeout;
  auto connection = Connection::create(io, std::move(tls), options);
  request.path = url.target;
  connection->send(std::move(request),
                   [connection, done = std::move(done)](Connection::Result&& result) {
                     connection->close();
                     done(std::move(result));
                   });
}

}  // namespace pushhub::connectors::http1
