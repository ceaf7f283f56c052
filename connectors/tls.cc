#include "connectors/tls.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>

namespace pushhub::connectors {
namespace {

int selectAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_length,
               const unsigned char* offered, unsigned int offered_length, void* arg) {
  const auto& preference = *static_cast<const std::string*>(arg);
  // Server preference order: the first of ours that the client offers.
  for (size_t i = 0; i < preference.size();) {
    const auto length = static_cast<unsigned char>(preference[i]);
    const std::string_view ours(preference.data() + i + 1, length);
    for (unsigned int j = 0; j < offered_length;) {
      const unsigned char theirs_length = offered[j];
      if (j + 1 + theirs_length > offered_length) break;
      if (std::string_view(reinterpret_cast<const char*>(offered) + j + 1, theirs_length) == ours) {
        *out = offered + j + 1;
        *out_length = theirs_length;
        return SSL_TLSEXT_ERR_OK;
      }
      j += 1 + theirs_length;
    }
    i += 1 + length;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

std::string lastError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace

std::expected<std::unique_ptr<TlsServerContext>, std::string> makeTlsServerContext(
    const TlsServerOptions& options) {
  auto tls = std::make_unique<TlsServerContext>(boost::asio::ssl::context::tls_server);
  SSL_CTX* ctx = tls->context.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, options.certificate_file.c_str()) != 1) {
    return std::unexpected(
        fmt::format("TLS certificate {}: {}", options.certificate_file, lastError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return std::unexpected(
        fmt::format("TLS private key {}: {}", options.private_key_file, lastError()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return std::unexpected(fmt::format("TLS private key {} does not match certificate {}",
                                       options.private_key_file, options.certificate_file));
  }
  if (!options.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.client_ca_file.c_str(), nullptr) != 1) {
      return std::unexpected(
          fmt::format("TLS client CA {}: {}", options.client_ca_file, lastError()));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  for (const auto& protocol : options.alpn) {
    tls->alpn_wire += static_cast<char>(protocol.size());
    tls->alpn_wire += protocol;
  }
  if (!tls->alpn_wire.empty()) SSL_CTX_set_alpn_select_cb(ctx, selectAlpn, &tls->alpn_wire);
  return tls;
}

std::expected<std::shared_ptr<boost::asio::ssl::context>, std::string> makeTlsClientContext(
    const TlsClientOptions& options) {
  auto context = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
  if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return std::unexpected("TLS: cannot load the system trust store: " + lastError());
  }
  if (!options.extra_ca_file.empty() &&
      SSL_CTX_load_verify_locations(ctx, options.extra_ca_file.c_str(), nullptr) != 1) {
    return std::unexpected(fmt::format("TLS CA file {}: {}", options.extra_ca_file, lastError()));
  }
  SSL_CTX_set_verify(ctx, options.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (options.certificate_file.empty() != options.private_key_file.empty()) {
    return std::unexpected("TLS client certificate: give both the certificate and its key");
  }
  if (!options.certificate_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, options.certificate_file.c_str()) != 1) {
      return std::unexpected(
          fmt::format("TLS client certificate {}: {}", options.certificate_file, lastError()));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, options.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      return std::unexpected(
          fmt::format("TLS client key {}: {}", options.private_key_file, lastError()));
    }
  }
  std::string wire;
  for (const auto& protocol : options.alpn) {
    wire += static_cast<char>(protocol.size());
    wire += protocol;
  }
  if (!wire.empty() &&
      SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size())) != 0) {
    return std::unexpected("TLS: cannot set ALPN");
  }
  return context;
}

std::expected<void, std::string> prepareTlsClient(SSL* ssl, const std::string& host,
                                                  bool verify_peer, SSL_SESSION* session) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  const bool ip_literal = !ec;
  if (ip_literal) {
    // No SNI for an address (RFC 6066); the certificate must name the address itself.
    if (verify_peer && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
      return std::unexpected("TLS: cannot set the address to verify " + host);
    }
  } else {
    if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
      return std::unexpected("TLS: cannot set SNI " + host);
    }
    if (verify_peer && SSL_set1_host(ssl, host.c_str()) != 1) {
      return std::unexpected("TLS: cannot set the host name to verify " + host);
    }
  }
  if (session != nullptr) SSL_set_session(ssl, session);
  return {};
}

std::string negotiatedAlpn(SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl, &data, &length);
  return std::string(reinterpret_cast<const char*>(data), length);
}

}  // namespace pushhub::connectors
