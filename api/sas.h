#pragma once

// Azure's Shared Access Signature scheme, as the official SDKs use it:
//
//   Authorization: SharedAccessSignature sr=<resource>&sig=<signature>&se=<expiry>&skn=<rule>
//
// <resource> is the URL-encoded, lowercased resource URI the token is for — the namespace root
// (what the JS SDK signs) or a hub; <signature> is base64(HMAC-SHA256(key, <resource> + "\n" +
// <expiry>)) URL-encoded, computed over <resource> exactly as it appears in the header, with the
// key's UTF-8 bytes (not base64-decoded); <expiry> is unix seconds. A rule grants rights: Listen
// (a device's own registration), Send, Manage (everything).

#include <cstdint>
#include <expected>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pushhub::api {

enum Right : uint8_t {
  kListen = 1,
  kSend = 2,
  kManage = 4,
};

struct SasRule {
  std::string name;
  std::string key;
  uint8_t rights = 0;
};

// "Listen,Send,Manage" (any order, case-insensitive) → rights.
std::expected<uint8_t, std::string> parseRights(std::string_view text);
std::string rightsText(uint8_t rights);

// "name=key:Listen,Send;name2=key2:Listen" (the auth.rules configuration value) → rules.
std::expected<std::vector<SasRule>, std::string> parseSasRules(std::string_view text);

struct SasToken {
  std::string resource_encoded;  // sr as received (what was signed)
  std::string resource;          // sr decoded
  std::string signature;         // sig decoded (base64)
  int64_t expiry = 0;            // se
  std::string rule;              // skn decoded
};
// Parses the Authorization header's value; the error says what is missing or malformed.
std::expected<SasToken, std::string> parseSasToken(std::string_view authorization);

// base64(HMAC-SHA256(key, resource_encoded + "\n" + expiry)).
std::string sasSignature(std::string_view key, std::string_view resource_encoded, int64_t expiry);
// A complete header value for `resource_uri` (what clients and tests do).
std::string makeSasToken(std::string_view resource_uri, const SasRule& rule, int64_t expiry);

struct AuthFailure {
  unsigned status = 401;  // 401 not authenticated, 403 authenticated without the right
  std::string detail;     // never contains a key or a signature
};

// Checks requests against namespace rules (configuration) and hub rules (the admin API).
// Thread-safe.
class SasAuthenticator {
 public:
  // `public_url` ("https://push.example.com", optionally with a path prefix): the URL clients
  // reach pushhub at. When set, a token's resource is checked against it instead of the Host
  // header the client sends, which a client chooses freely.
  explicit SasAuthenticator(std::vector<SasRule> namespace_rules, std::string_view public_url = {});

  void setHubRules(const std::string& hub, std::vector<SasRule> rules);

  // `host` is the request's Host header (ignored when a public URL is set), `path` its target
  // without the query ("/demo/messages"),
  // `hub` the hub the request is about (empty for namespace-level requests). The token's
  // resource must cover host + path (any scheme), the rule must exist at the namespace or on that
  // hub, the signature must match (constant-time), the token must not have expired, and the rule
  // must grant `needed` (Manage grants every right).
  std::expected<SasRule, AuthFailure> check(std::string_view authorization, std::string_view host,
                                            std::string_view path, std::string_view hub,
                                            uint8_t needed, int64_t now_seconds) const;

 private:
  std::vector<SasRule> namespace_rules_;
  std::string public_base_;  // the public URL without its scheme, lower-case; empty: Host header
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<SasRule>, std::less<>> hub_rules_;
};

}  // namespace pushhub::api
