#pragma once

// TLS contexts for the push-service connections: servers (the simulator) negotiate ALPN from
// their own preference list; clients (the connectors) come with the connector issue.

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

// OpenSSL decodes a certificate's extensions (key identifiers, constraints, usages) on first use,
// while a handshake builds or verifies a chain, and caches them in the certificate. A context's
// certificates (its own chain, its trust store) are shared by every shard's handshakes: this
// decodes them once, before any handshake, rather than in whichever handshakes come first at
// once. The make*Context functions call it; a context configured elsewhere calls it when done.
void cacheCertificateExtensions(SSL_CTX* ctx);

// A client certificate held in memory (APNs certificate auth from a hub definition): the leaf
// first, then its chain, and the leaf's private key, all PEM.
struct ClientCertificate {
  std::string chain_pem;
  std::string private_key_pem;
};

// What a client certificate says of itself, for validation and for showing without secrets.
struct ClientCertificateInfo {
  std::string subject;  // one line, RFC 2253
  std::string uid;      // the subject's UID (an APNs certificate's bundle id), or empty
  std::chrono::system_clock::time_point not_after;
};

// Parses `pem` (a chain, with or without the key) and `key_pem` (the key, when `pem` does not
// hold it); the key must match the leaf. Errors say which part is wrong.
std::expected<ClientCertificate, std::string> clientCertificateFromPem(std::string_view pem,
                                                                       std::string_view key_pem);
// A PKCS#12 archive (.p12 as Keychain exports it; DER bytes) and its password.
std::expected<ClientCertificate, std::string> clientCertificateFromPkcs12(
    std::string_view der, std::string_view password);
std::expected<ClientCertificateInfo, std::string> describeClientCertificate(
    const ClientCertificate& certificate);

struct TlsClientOptions {
  std::vector<std::string> alpn;  // offered, in order ("h2"; "http/1.1" for WNS)
  // Trusted besides the system's store (/etc/ssl/certs): the simulator's development CA, a
  // corporate proxy's CA.
  std::string extra_ca_file;
  bool verify_peer = true;  // the certificate chain and the host name
  // A client certificate (APNs certificate auth), PEM; both or neither.
  std::string certificate_file;
  std::string private_key_file;
  // Or the same from memory (not with the files).
  std::optional<ClientCertificate> certificate;
};

// A client context with TLS 1.2+, the system's trust store plus the extra CA, ALPN offered, and
// a client-side session cache (resumption: reconnects skip the full handshake).
std::expected<std::shared_ptr<boost::asio::ssl::context>, std::string> makeTlsClientContext(
    const TlsClientOptions& options);

// Prepares a client connection's SSL object: SNI and, when verifying, the host name to check.
// Reuses `session` (a previous connection's to the same server) when given.
std::expected<void, std::string> prepareTlsClient(SSL* ssl, const std::string& host,
                                                  bool verify_peer, SSL_SESSION* session);

// The protocol ALPN selected on an established connection ("" when none was negotiated).
std::string negotiatedAlpn(SSL* ssl);

}  // namespace pushhub::connectors
