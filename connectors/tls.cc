#include "connectors/tls.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

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

std::string negotiatedAlpn(SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl, &data, &length);
  return std::string(reinterpret_cast<const char*>(data), length);
}

}  // namespace pushhub::connectors
