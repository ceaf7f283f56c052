#pragma once

// JSON Web Tokens as the push services use them: APNs provider tokens (ES256) and Google
// service-account assertions (RS256). Signing is for the connectors (and the simulator's key
// generator), verification for the simulator. OpenSSL 3 underneath.

#include <openssl/evp.h>

#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace pushhub::connectors {

struct EvpKeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using EvpKey = std::unique_ptr<EVP_PKEY, EvpKeyDeleter>;

enum class JwtAlgorithm { kEs256, kRs256 };

std::string base64UrlEncode(std::string_view bytes);
// Unpadded base64url (padding tolerated); nullopt on any other character.
std::optional<std::string> base64UrlDecode(std::string_view text);
std::string base64Encode(std::string_view bytes);
// Standard base64 (padding and line breaks tolerated); nullopt on any other character.
std::optional<std::string> base64Decode(std::string_view text);

// PEM: PKCS#8 private keys (an APNs .p8 file, a service account's private_key),
// SubjectPublicKeyInfo public keys. Errors name what was wrong, never the key material.
std::expected<EvpKey, std::string> loadPrivateKeyPem(std::string_view pem);
std::expected<EvpKey, std::string> loadPublicKeyPem(std::string_view pem);
std::string publicKeyPem(EVP_PKEY* key);
std::string privateKeyPem(EVP_PKEY* key);  // PKCS#8

std::expected<EvpKey, std::string> generateEcP256Key();
std::expected<EvpKey, std::string> generateRsaKey(int bits);

// header.claims.signature; ES256 signatures are raw r||s (64 bytes), as JWS requires.
std::expected<std::string, std::string> signJwt(std::string_view header_json,
                                                std::string_view claims_json, EVP_PKEY* key,
                                                JwtAlgorithm algorithm);

// A compact JWS split and decoded; nothing verified yet.
struct Jwt {
  std::string header_json;
  std::string claims_json;
  std::string_view signing_input;  // into the token passed to parseJwt
  std::string signature;
};
std::optional<Jwt> parseJwt(std::string_view token);
bool verifyJwt(const Jwt& jwt, EVP_PKEY* public_key, JwtAlgorithm algorithm);

}  // namespace pushhub::connectors
