#pragma once

// One HTTP/2 connection to a push service: TCP connect with a timeout, TLS (SNI, verification,
// ALPN h2, session resumption), the ClientSession over it, PING when idle with a timeout on the
// ACK, and per-stream deadlines. Lives on one io_context (a shard's) and is driven from it only.
// The owner (a pool) learns every stream's end and every change of what the connection can
// take through Events.

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "connectors/http2/client_session.h"

namespace pushhub::connectors::http2 {

class ClientConnection : public std::enable_shared_from_this<ClientConnection> {
 public:
  enum class State { kConnecting, kReady, kDraining, kClosed };

  struct Options {
    std::string host;
    uint16_t port = 443;
    bool verify_peer = true;
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds idle_ping{30000};    // PING after this long without a frame
    std::chrono::milliseconds ping_timeout{5000};  // no ACK by then: the connection is dead
    ClientSession::Options session;
  };
  struct Events {
    ClientSession::Done done;  // each stream's end (called from inside the session: do not
                               // submit on this connection from it)
    // Ready, streams freed, going away, closed: the owner may submit (or replace) now.
    std::function<void(ClientConnection&)> changed;
  };

  // Starts connecting at once. `resume`: a TLS session from an earlier connection, or null.
  static std::shared_ptr<ClientConnection> start(boost::asio::io_context& io,
                                                 std::shared_ptr<boost::asio::ssl::context> tls,
                                                 Options options, Events events,
                                                 std::shared_ptr<SSL_SESSION> resume);
  ~ClientConnection();

  State state() const { return state_; }
  // It got as far as the server's SETTINGS (a failure before is a failed connect).
  bool everReady() const { return ever_ready_; }
  bool canSubmit() const;
  bool submit(ClientRequest&& request, uint64_t tag,
              std::chrono::steady_clock::time_point deadline = {});
  size_t openStreams() const;
  uint32_t remoteMaxStreams() const;
  // Why it closed (or is draining): "GOAWAY (NO_ERROR)", "connect: …", "PING timeout", …
  const std::string& reason() const { return reason_; }
  // The TLS session, for the next connection to resume (null until the handshake is done).
  std::shared_ptr<SSL_SESSION> tlsSession() const { return tls_session_; }
  bool resumedTls() const { return resumed_; }
  std::chrono::steady_clock::time_point lastActive() const { return last_active_; }

  // No new streams; open ones finish, then the connection closes.
  void shutdown();
  // At once: open streams end kConnectionLost.
  void close(const std::string& reason);

  struct Impl;

 private:
  ClientConnection() = default;
  std::unique_ptr<Impl> impl_;
  State state_ = State::kConnecting;
  bool ever_ready_ = false;
  std::string reason_;
  std::shared_ptr<SSL_SESSION> tls_session_;
  bool resumed_ = false;
  std::chrono::steady_clock::time_point last_active_{};
};

}  // namespace pushhub::connectors::http2
