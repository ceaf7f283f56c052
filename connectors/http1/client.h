#pragma once

// HTTPS/1.1 client connections (Beast over OpenSSL, ALPN http/1.1): keep-alive, one request in
// flight at a time, never pipelined, never chunked (Content-Length always), no
// `Expect: 100-continue` — what WNS and the OAuth token endpoints want. A connection lives on one
// io_context and is driven from it only.

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/http2/client_session.h"  // ClientRequest, ClientResponse, StreamEnd

namespace pushhub::connectors::http1 {

using http2::Header;
// The same request and response shapes as the HTTP/2 client (`path` is the request target).
using Request = http2::ClientRequest;
using Response = http2::ClientResponse;
using http2::StreamEnd;

// Why an exchange produced no response: kRefused (never sent: connect or TLS failed), kReset
// (timed out), kConnectionLost (the connection failed after the request went out).
struct Failure {
  StreamEnd end = StreamEnd::kConnectionLost;
  std::string why;
};

struct Url {
  bool https = true;
  std::string host;
  uint16_t port = 443;
  std::string target;  // path and query, as given (never re-encoded)
};
// "http[s]://host[:port]/path?query", the port 80 or 443 when not given; other schemes are
// refused. The errors name the URL and what is wrong with it.
std::expected<Url, std::string> parseHttpUrl(std::string_view url);
// The same, https:// only (the push services' endpoints).
std::expected<Url, std::string> parseHttpsUrl(std::string_view url);

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  struct Options {
    std::string host;
    uint16_t port = 443;
    bool verify_peer = true;
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds request_timeout{10000};
    size_t max_response_body = 64 << 10;
  };
  using Result = std::expected<Response, Failure>;
  using Callback = std::function<void(Result&&)>;

  static std::shared_ptr<Connection> create(boost::asio::io_context& io,
                                            std::shared_ptr<boost::asio::ssl::context> tls,
                                            Options options,
                                            std::shared_ptr<SSL_SESSION> resume = nullptr);
  ~Connection();

  // Connects first if needed. One at a time: a request while busy() fails at once. The callback
  // runs on the io_context, never inside this call.
  void send(Request request, Callback done);
  bool busy() const { return busy_; }
  // Open and reusable (connected, keep-alive, not failed).
  bool reusable() const { return connected_ && !closed_; }
  bool closed() const { return closed_; }
  const std::string& host() const;
  uint16_t port() const;
  std::chrono::steady_clock::time_point lastActive() const { return last_active_; }
  std::shared_ptr<SSL_SESSION> tlsSession() const { return tls_session_; }
  bool resumedTls() const { return resumed_; }
  void close();

  struct Impl;

 private:
  Connection() = default;
  std::unique_ptr<Impl> impl_;
  bool busy_ = false;
  bool connected_ = false;
  bool closed_ = false;
  bool resumed_ = false;
  std::shared_ptr<SSL_SESSION> tls_session_;
  std::chrono::steady_clock::time_point last_active_{};
};

// One request on a connection of its own, closed afterwards (OAuth token fetches).
void fetch(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
           const Url& url, Request request, Connection::Callback done,
           std::chrono::milliseconds timeout = std::chrono::seconds(10), bool verify_peer = true);

}  // namespace pushhub::connectors::http1
