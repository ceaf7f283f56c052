#pragma once

// TLS contexts for the push-service connections: servers (the simulator) negotiate ALPN from
// their own preference list; clients (the connectors) come with the connector issue.

#include <boost/asio/ssl/context.hpp>

#include <expected>
#include <memory>
#include <string>
#include <vector>

namespace pushhub::connectors {

struct TlsServerOptions {
  std::string certificate_file;  // PEM, leaf first, then the chain
  std::string private_key_file;  // PEM
  // ALPN protocols in the server's order of preference ("h2", "http/1.1"). A client offering
  // none of them is refused in the handshake; a client offering no ALPN at all gets the first.
  std::vector<std::string> alpn;
  // When set, clients may present a certificate signed by this CA (APNs certificate auth); it is
  // verified if presented, not required.
  std::string client_ca_file;
};

// A server context with TLS 1.2+, and what its ALPN callback reads (kept beside it so its address
// stays fixed).
struct TlsServerContext {
  explicit TlsServerContext(boost::asio::ssl::context::method method) : context(method) {}
  boost::asio::ssl::context context;
  std::string alpn_wire;  // length-prefixed protocol names
};

std::expected<std::unique_ptr<TlsServerContext>, std::string> makeTlsServerContext(
    const TlsServerOptions& options);

// The protocol ALPN selected on an established connection ("" when none was negotiated).
std::string negotiatedAlpn(SSL* ssl);

}  // namespace pushhub::connectors
