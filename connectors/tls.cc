#include "connectors/tls.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>

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

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

BioPtr readBio(std::string_view bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

std::vector<X509Ptr> readCertificates(std::string_view pem) {
  std::vector<X509Ptr> out;
  auto bio = readBio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the loop ends on "no start line"
  return out;
}

KeyPtr readKey(std::string_view pem) {
  auto bio = readBio(pem);
  // An empty passphrase callback result: an encrypted key is refused rather than prompted for.
  KeyPtr key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  ERR_clear_error();
  return key;
}

// Puts a parsed certificate into a context (leaf, chain, key).
std::expected<void, std::string> useClientCertificate(SSL_CTX* ctx,
                                                      const ClientCertificate& certificate);

std::string lastError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace

void cacheCertificateExtensions(SSL_CTX* ctx) {
  const auto cache = [](X509* x) {
    if (x != nullptr) X509_check_purpose(x, -1, 0);
  };
  if (X509_STORE* store = SSL_CTX_get_cert_store(ctx)) {
    STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store);
    for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i) {
      cache(X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i)));
    }
  }
  cache(SSL_CTX_get0_certificate(ctx));
  STACK_OF(X509)* chain = nullptr;
  if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && chain != nullptr) {
    for (int i = 0; i < sk_X509_num(chain); ++i) cache(sk_X509_value(chain, i));
  }
  ERR_clear_error();
}

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
  cacheCertificateExtensions(ctx);
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
  if (options.certificate && !options.certificate_file.empty()) {
    return std::unexpected("TLS client certificate: give it from files or from memory, not both");
  }
  if (options.certificate) {
    if (auto used = useClientCertificate(ctx, *options.certificate); !used) {
      return std::unexpected("TLS client certificate: " + used.error());
    }
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
  cacheCertificateExtensions(ctx);
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

namespace {

std::expected<void, std::string> useClientCertificate(SSL_CTX* ctx,
                                                      const ClientCertificate& certificate) {
  auto chain = readCertificates(certificate.chain_pem);
  if (chain.empty()) return std::unexpected("no PEM certificate");
  auto key = readKey(certificate.private_key_pem);
  if (!key) return std::unexpected("no PEM private key");
  if (SSL_CTX_use_certificate(ctx, chain.front().get()) != 1) {
    return std::unexpected("the certificate is refused: " + lastError());
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, chain[i].get()) != 1) {
      return std::unexpected("a chain certificate is refused: " + lastError());
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return std::unexpected("the private key does not match the certificate");
  }
  return {};
}

std::string certificatesPem(const std::vector<X509Ptr>& chain) {
  BioPtr out(BIO_new(BIO_s_mem()));
  for (const auto& x : chain) PEM_write_bio_X509(out.get(), x.get());
  return bioText(out.get());
}

std::string keyPem(EVP_PKEY* key) {
  BioPtr out(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return bioText(out.get());
}

}  // namespace

std::expected<ClientCertificate, std::string> clientCertificateFromPem(std::string_view pem,
                                                                       std::string_view key_pem) {
  auto chain = readCertificates(pem);
  if (chain.empty()) return std::unexpected("no PEM certificate (-----BEGIN CERTIFICATE-----)");
  KeyPtr key = readKey(key_pem.empty() ? pem : key_pem);
  if (!key) {
    return std::unexpected(key_pem.empty() ? "no unencrypted PEM private key beside the certificate"
                                           : "the key is not an unencrypted PEM private key");
  }
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return std::unexpected("the private key does not match the certificate");
  }
  return ClientCertificate{certificatesPem(chain), keyPem(key.get())};
}

std::expected<ClientCertificate, std::string> clientCertificateFromPkcs12(
    std::string_view der, std::string_view password) {
  // Keychain and older OpenSSL export with RC2/3DES, which OpenSSL 3 keeps in its legacy
  // provider; loaded once, beside the default one, and kept for the process's life (held here,
  // so that leak checkers see them reachable).
  struct Providers {
    OSSL_PROVIDER* legacy = OSSL_PROVIDER_try_load(nullptr, "legacy", 1);
    OSSL_PROVIDER* fallback = OSSL_PROVIDER_try_load(nullptr, "default", 1);
    Providers() { ERR_clear_error(); }
  };
  static const Providers providers;
  (void)providers;
  auto bio = readBio(der);
  std::unique_ptr<PKCS12, decltype(&PKCS12_free)> p12(d2i_PKCS12_bio(bio.get(), nullptr),
                                                      &PKCS12_free);
  if (!p12) {
    ERR_clear_error();
    return std::unexpected("not a PKCS#12 archive");
  }
  EVP_PKEY* raw_key = nullptr;
  X509* raw_cert = nullptr;
  STACK_OF(X509)* raw_ca = nullptr;
  const std::string pass(password);
  if (PKCS12_parse(p12.get(), pass.c_str(), &raw_key, &raw_cert, &raw_ca) != 1) {
    ERR_clear_error();
    return std::unexpected("the PKCS#12 archive cannot be opened (wrong password?)");
  }
  KeyPtr key(raw_key);
  std::vector<X509Ptr> chain;
  if (raw_cert != nullptr) chain.emplace_back(raw_cert);
  while (raw_ca != nullptr && sk_X509_num(raw_ca) > 0) chain.emplace_back(sk_X509_shift(raw_ca));
  sk_X509_free(raw_ca);
  if (chain.empty() || !key) {
    return std::unexpected("the PKCS#12 archive holds no certificate with its private key");
  }
  return ClientCertificate{certificatesPem(chain), keyPem(key.get())};
}

std::expected<ClientCertificateInfo, std::string> describeClientCertificate(
    const ClientCertificate& certificate) {
  auto chain = readCertificates(certificate.chain_pem);
  if (chain.empty()) return std::unexpected("no PEM certificate");
  X509* leaf = chain.front().get();
  ClientCertificateInfo info;
  BioPtr subject(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(subject.get(), X509_get_subject_name(leaf), 0, XN_FLAG_RFC2253);
  info.subject = bioText(subject.get());
  const X509_NAME* name = X509_get_subject_name(leaf);
  if (const int at = X509_NAME_get_index_by_NID(name, NID_userId, -1); at >= 0) {
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
    info.uid.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                    static_cast<size_t>(ASN1_STRING_length(value)));
  }
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) == 1) {
    info.not_after = std::chrono::system_clock::from_time_t(timegm(&tm));
  }
  return info;
}

std::string negotiatedAlpn(SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl, &data, &length);
  return std::string(reinterpret_cast<const char*>(data), length);
}

}  // namespace pushhub::connectors
