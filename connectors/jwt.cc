#include "connectors/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <array>

namespace pushhub::connectors {
namespace {

constexpr std::string_view kBase64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string encode(std::string_view bytes, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (rest == 2) out += alphabet[(v >> 6) & 63];
    if (pad) out.append(rest == 1 ? "==" : "=");
  }
  return out;
}

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using Bio = std::unique_ptr<BIO, BioDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

std::string opensslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  std::array<char, 256> text{};
  ERR_error_string_n(code, text.data(), text.size());
  return text.data();
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

constexpr size_t kEs256Half = 32;

// DER ECDSA-Sig-Value -> raw r||s, 32 bytes each.
std::optional<std::string> derToRaw(const unsigned char* der, size_t size) {
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(size));
  if (sig == nullptr) return std::nullopt;
  std::string raw(2 * kEs256Half, '\0');
  const BIGNUM* r = ECDSA_SIG_get0_r(sig);
  const BIGNUM* s = ECDSA_SIG_get0_s(sig);
  const bool ok =
      BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), kEs256Half) == kEs256Half &&
      BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + kEs256Half, kEs256Half) ==
          kEs256Half;
  ECDSA_SIG_free(sig);
  if (!ok) return std::nullopt;
  return raw;
}

std::optional<std::string> rawToDer(std::string_view raw) {
  if (raw.size() != 2 * kEs256Half) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), kEs256Half, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + kEs256Half, kEs256Half,
                        nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  const int size = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (size <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(size));
  OPENSSL_free(der);
  return out;
}

}  // namespace

std::string base64UrlEncode(std::string_view bytes) { return encode(bytes, kBase64Url, false); }
std::string base64Encode(std::string_view bytes) { return encode(bytes, kBase64, true); }

namespace {

// Padding tolerated; `skip_whitespace` for text that may be wrapped in lines (PEM-like base64).
std::optional<std::string> base64DecodeWith(std::string_view alphabet, std::string_view text,
                                            bool skip_whitespace) {
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t buffer = 0;
  int bits = 0;
  size_t digits = 0;
  bool padding = false;
  for (const char c : text) {
    if (skip_whitespace && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    const size_t value = alphabet.find(c);
    if (value == std::string_view::npos || padding) return std::nullopt;
    ++digits;
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  if (digits % 4 == 1) return std::nullopt;
  return out;
}

}  // namespace

std::optional<std::string> base64UrlDecode(std::string_view text) {
  return base64DecodeWith(kBase64Url, text, false);
}

std::optional<std::string> base64Decode(std::string_view text) {
  return base64DecodeWith(kBase64, text, true);
}

std::expected<EvpKey, std::string> loadPrivateKeyPem(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return std::unexpected("not a PEM private key: " + opensslError());
  return EvpKey(key);
}

std::expected<EvpKey, std::string> loadPublicKeyPem(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return std::unexpected("not a PEM public key: " + opensslError());
  return EvpKey(key);
}

std::string publicKeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key);
  return bioText(bio.get());
}

std::string privateKeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return bioText(bio.get());
}

std::expected<EvpKey, std::string> generateEcP256Key() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) return std::unexpected("generating a P-256 key: " + opensslError());
  return EvpKey(key);
}

std::expected<EvpKey, std::string> generateRsaKey(int bits) {
  EVP_PKEY* key = EVP_RSA_gen(static_cast<unsigned>(bits));
  if (key == nullptr) return std::unexpected("generating an RSA key: " + opensslError());
  return EvpKey(key);
}

std::expected<std::string, std::string> signJwt(std::string_view header_json,
                                                std::string_view claims_json, EVP_PKEY* key,
                                                JwtAlgorithm algorithm) {
  std::string token = base64UrlEncode(header_json);
  token += '.';
  token += base64UrlEncode(claims_json);
  MdCtx ctx(EVP_MD_CTX_new());
  size_t size = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(token.data()), token.size()) != 1) {
    return std::unexpected("signing a JWT: " + opensslError());
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(token.data()), token.size()) != 1) {
    return std::unexpected("signing a JWT: " + opensslError());
  }
  signature.resize(size);
  if (algorithm == JwtAlgorithm::kEs256) {
    auto raw = derToRaw(reinterpret_cast<const unsigned char*>(signature.data()), size);
    if (!raw) return std::unexpected("signing a JWT: the key is not a P-256 key");
    signature = std::move(*raw);
  }
  token += '.';
  token += base64UrlEncode(signature);
  return token;
}

std::optional<Jwt> parseJwt(std::string_view token) {
  const size_t first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  auto header = base64UrlDecode(token.substr(0, first));
  auto claims = base64UrlDecode(token.substr(first + 1, second - first - 1));
  auto signature = base64UrlDecode(token.substr(second + 1));
  if (!header || !claims || !signature) return std::nullopt;
  return Jwt{std::move(*header), std::move(*claims), token.substr(0, second),
             std::move(*signature)};
}

bool verifyJwt(const Jwt& jwt, EVP_PKEY* public_key, JwtAlgorithm algorithm) {
  std::string der;
  std::string_view signature = jwt.signature;
  if (algorithm == JwtAlgorithm::kEs256) {
    if (EVP_PKEY_get_base_id(public_key) != EVP_PKEY_EC) return false;
    auto converted = rawToDer(jwt.signature);
    if (!converted) return false;
    der = std::move(*converted);
    signature = der;
  } else if (EVP_PKEY_get_base_id(public_key) != EVP_PKEY_RSA) {
    return false;
  }
  MdCtx ctx(EVP_MD_CTX_new());
  const bool ok =
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, public_key) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(),
                       reinterpret_cast<const unsigned char*>(jwt.signing_input.data()),
                       jwt.signing_input.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace pushhub::connectors
