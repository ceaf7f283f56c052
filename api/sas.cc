#include "api/sas.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <unordered_map>

#include "common/log.h"
#include "common/url.h"
#include "connectors/jwt.h"

namespace pushhub::api {

namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = moduleLogger("auth");
  return logger;
}

}  // namespace

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// "https://host/path" → "host/path" (any scheme), lowercased.
std::string withoutScheme(std::string_view uri) {
  const size_t scheme = uri.find("://");
  if (scheme != std::string_view::npos) uri.remove_prefix(scheme + 3);
  return lower(uri);
}

}  // namespace

std::expected<uint8_t, std::string> parseRights(std::string_view text) {
  uint8_t rights = 0;
  while (!text.empty()) {
    const size_t comma = text.find_first_of(",|");
    const std::string name = lower(trim(text.substr(0, comma)));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (name == "listen") {
      rights |= kListen;
    } else if (name == "send") {
      rights |= kSend;
    } else if (name == "manage") {
      rights |= kManage;
    } else {
      return std::unexpected(fmt::format("\"{}\" is not a right (Listen, Send, Manage)", name));
    }
  }
  if (rights == 0) return std::unexpected("a rule needs at least one right (Listen, Send, Manage)");
  return rights;
}

std::string rightsText(uint8_t rights) {
  std::string out;
  for (auto [bit, name] :
       {std::pair{kListen, "Listen"}, std::pair{kSend, "Send"}, std::pair{kManage, "Manage"}}) {
    if ((rights & bit) == 0) continue;
    if (!out.empty()) out += ',';
    out += name;
  }
  return out;
}

std::expected<std::vector<SasRule>, std::string> parseSasRules(std::string_view text) {
  std::vector<SasRule> rules;
  while (!text.empty()) {
    const size_t semicolon = text.find(';');
    const std::string_view item = trim(text.substr(0, semicolon));
    text = semicolon == std::string_view::npos ? std::string_view() : text.substr(semicolon + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const size_t colon = item.rfind(':');
    if (eq == std::string_view::npos || colon == std::string_view::npos || colon < eq || eq == 0) {
      return std::unexpected(fmt::format(
          "a rule is name=key:rights, e.g. DefaultFullSharedAccessSignature=<key>:Listen,Send,"
          "Manage (rule {})",
          rules.size() + 1));
    }
    SasRule rule;
    rule.name = std::string(item.substr(0, eq));
    rule.key = std::string(item.substr(eq + 1, colon - eq - 1));
    if (rule.key.empty()) return std::unexpected(fmt::format("rule {}: empty key", rule.name));
    auto rights = parseRights(item.substr(colon + 1));
    if (!rights) return std::unexpected(fmt::format("rule {}: {}", rule.name, rights.error()));
    rule.rights = *rights;
    for (const auto& seen : rules) {
      if (seen.name == rule.name) {
        return std::unexpected(fmt::format("rule {} is declared twice", rule.name));
      }
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::expected<SasToken, std::string> parseSasToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "SharedAccessSignature ";
  authorization = trim(authorization);
  if (authorization.empty()) return std::unexpected("the Authorization header is missing");
  if (authorization.size() < kScheme.size() ||
      lower(authorization.substr(0, kScheme.size())) != lower(kScheme)) {
    return std::unexpected("the Authorization header is not a SharedAccessSignature");
  }
  authorization.remove_prefix(kScheme.size());
  SasToken token;
  bool has_sr = false, has_sig = false, has_se = false, has_skn = false;
  while (!authorization.empty()) {
    const size_t amp = authorization.find('&');
    const std::string_view field = trim(authorization.substr(0, amp));
    authorization =
        amp == std::string_view::npos ? std::string_view() : authorization.substr(amp + 1);
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = field.substr(0, eq);
    const std::string_view raw = field.substr(eq + 1);
    auto value = percentDecode(raw, false);
    if (!value) return std::unexpected(fmt::format("SharedAccessSignature: {} is malformed", name));
    if (name == "sr") {
      token.resource_encoded = std::string(raw);
      token.resource = std::move(*value);
      has_sr = true;
    } else if (name == "sig") {
      token.signature = std::move(*value);
      has_sig = true;
    } else if (name == "se") {
      try {
        size_t used = 0;
        token.expiry = std::stoll(*value, &used);
        if (used != value->size()) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        return std::unexpected("SharedAccessSignature: se is not a number of seconds");
      }
      has_se = true;
    } else if (name == "skn") {
      token.rule = std::move(*value);
      has_skn = true;
    }
  }
  for (auto [present, name] : {std::pair{has_sr, "sr"}, std::pair{has_sig, "sig"},
                               std::pair{has_se, "se"}, std::pair{has_skn, "skn"}}) {
    if (!present) return std::unexpected(fmt::format("SharedAccessSignature: {} is missing", name));
  }
  return token;
}

std::string sasSignature(std::string_view key, std::string_view resource_encoded, int64_t expiry) {
  const std::string to_sign = fmt::format("{}\n{}", resource_encoded, expiry);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(to_sign.data()), to_sign.size(), mac, &mac_length);
  return connectors::base64Encode(std::string_view(reinterpret_cast<const char*>(mac), mac_length));
}

std::string makeSasToken(std::string_view resource_uri, const SasRule& rule, int64_t expiry) {
  const std::string resource = percentEncode(lower(resource_uri));
  return fmt::format("SharedAccessSignature sr={}&sig={}&se={}&skn={}", resource,
                     percentEncode(sasSignature(rule.key, resource, expiry)), expiry,
                     percentEncode(rule.name));
}

SasAuthenticator::SasAuthenticator(std::vector<SasRule> namespace_rules,
                                   std::string_view public_url)
    : namespace_rules_(std::move(namespace_rules)), public_base_(withoutScheme(lower(public_url))) {
  while (!public_base_.empty() && public_base_.back() == '/') public_base_.pop_back();
}

void SasAuthenticator::setHubRules(const std::string& hub, std::vector<SasRule> rules) {
  std::lock_guard lock(mutex_);
  hub_rules_[hub] = std::move(rules);
}

std::expected<SasRule, AuthFailure> SasAuthenticator::check(std::string_view authorization,
                                                            std::string_view host,
                                                            std::string_view path,
                                                            std::string_view hub, uint8_t needed,
                                                            int64_t now_seconds) const {
  const auto unauthorized = [&](std::string detail) {
    log()->debug("401 for {}: {}", path, detail);
    return std::unexpected(AuthFailure{401, std::move(detail)});
  };
  auto token = parseSasToken(authorization);
  if (!token) return unauthorized(token.error());
  if (token->expiry < now_seconds) return unauthorized("the SharedAccessSignature has expired");

  // The resource must be the request URL or a path prefix of it (segment-wise).
  std::string resource = withoutScheme(token->resource);
  const std::string target =
      (public_base_.empty() ? lower(host) : public_base_) + std::string(path);
  if (!resource.empty() && resource.back() == '/') resource.pop_back();
  const bool covers =
      target == resource || (target.size() > resource.size() && target.starts_with(resource) &&
                             target[resource.size()] == '/');
  if (resource.empty() || !covers) {
    return unauthorized(
        fmt::format("the SharedAccessSignature's resource (sr) does not cover {}", path));
  }

  const SasRule* rule = nullptr;
  for (const auto& r : namespace_rules_) {
    if (r.name == token->rule) rule = &r;
  }
  SasRule hub_rule;
  if (rule == nullptr && !hub.empty()) {
    std::lock_guard lock(mutex_);
    auto it = hub_rules_.find(hub);
    if (it != hub_rules_.end()) {
      for (const auto& r : it->second) {
        if (r.name == token->rule) {
          hub_rule = r;
          rule = &hub_rule;
        }
      }
    }
  }
  if (rule == nullptr) {
    return unauthorized(fmt::format("no authorization rule named \"{}\"", token->rule));
  }
  // Clients reuse one token for many requests (the SDKs for an hour): the signature it should
  // carry is remembered per thread, by key, resource and expiry, and still compared in constant
  // time.
  thread_local std::unordered_map<std::string, std::string> expected_signatures;
  std::string cache_key = rule->key;
  cache_key += '\0';
  cache_key += token->resource_encoded;
  cache_key += '\0';
  cache_key += std::to_string(token->expiry);
  auto cached = expected_signatures.find(cache_key);
  if (cached == expected_signatures.end()) {
    if (expected_signatures.size() >= 256) expected_signatures.clear();
    cached = expected_signatures
                 .emplace(std::move(cache_key),
                          sasSignature(rule->key, token->resource_encoded, token->expiry))
                 .first;
  }
  const std::string& expected = cached->second;
  if (expected.size() != token->signature.size() ||
      CRYPTO_memcmp(expected.data(), token->signature.data(), expected.size()) != 0) {
    return unauthorized("the SharedAccessSignature's signature does not match");
  }
  const uint8_t granted =
      (rule->rights & kManage) != 0 ? (kListen | kSend | kManage) : rule->rights;
  if ((granted & needed) != needed) {
    auto detail = fmt::format("rule \"{}\" grants {}, this needs {}", rule->name,
                              rightsText(rule->rights), rightsText(needed));
    log()->debug("403 for {}: {}", path, detail);
    return std::unexpected(AuthFailure{403, std::move(detail)});
  }
  return *rule;
}

}  // namespace pushhub::api
