#include "connectors/sim/service.h"

#include <fmt/format.h>

#include <random>

#include "common/json.h"
#include "common/url.h"

#include "connectors/jwt.h"

namespace pushhub::connectors::sim {
namespace {

std::mt19937_64& rng() {
  thread_local std::mt19937_64 generator(std::random_device{}());
  return generator;
}

}  // namespace

Outcome oauthError(int status, std::string_view error, std::string_view description) {
  Outcome outcome;
  outcome.reason = std::string(error);
  outcome.response.status = status;
  outcome.response.headers.push_back({"content-type", "application/json; charset=utf-8"});
  outcome.response.headers.push_back({"cache-control", "no-store"});
  outcome.response.body = fmt::format(R"({{"error":{},"error_description":{}}})", jsonQuoted(error),
                                      jsonQuoted(description));
  return outcome;
}

std::expected<std::map<std::string, std::string, std::less<>>, Outcome> tokenRequestForm(
    const http2::Request& request) {
  const std::string* method = request.find(":method");
  if (method == nullptr || *method != "POST") {
    return std::unexpected(
        oauthError(405, "invalid_request", "The token endpoint accepts POST only"));
  }
  const std::string* content_type = request.find("content-type");
  if (content_type == nullptr || !content_type->starts_with("application/x-www-form-urlencoded")) {
    return std::unexpected(oauthError(400, "invalid_request",
                                      "Content-Type must be application/x-www-form-urlencoded"));
  }
  auto form = parseForm(request.body);
  if (!form) {
    return std::unexpected(
        oauthError(400, "invalid_request", "The form body has a malformed %-escape"));
  }
  std::map<std::string, std::string, std::less<>> fields;
  for (auto& [name, value] : *form) fields[name] = std::move(value);
  return fields;
}

std::string randomHex(size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(digits, '0');
  uint64_t bits = 0;
  for (size_t i = 0; i < digits; ++i) {
    if (i % 16 == 0) bits = rng()();
    out[i] = kHex[bits & 0xF];
    bits >>= 4;
  }
  return out;
}

std::string randomToken(size_t bytes) {
  std::string raw(bytes, '\0');
  for (auto& c : raw) c = static_cast<char>(rng()() & 0xFF);
  return base64UrlEncode(raw);
}

std::string IssuedTokens::issue(std::string_view prefix, Grant grant) {
  std::string token = std::string(prefix) + randomToken(48);
  std::unique_lock lock(mutex_);
  if (++issued_since_sweep_ >= 1024) {
    issued_since_sweep_ = 0;
    const auto now = std::chrono::system_clock::now();
    std::erase_if(grants_, [&](const auto& entry) { return entry.second.expires <= now; });
  }
  grants_.emplace(token, std::move(grant));
  return token;
}

std::optional<IssuedTokens::Grant> IssuedTokens::find(std::string_view token,
                                                      SystemTime now) const {
  std::shared_lock lock(mutex_);
  auto it = grants_.find(std::string(token));
  if (it == grants_.end() || it->second.expires <= now) return std::nullopt;
  return it->second;
}

std::optional<std::chrono::seconds> MinuteQuota::take(std::string_view key, SystemTime now) {
  if (per_minute_ == 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto it = windows_.find(std::string(key));
  if (it == windows_.end()) it = windows_.emplace(std::string(key), Window{now, 0}).first;
  Window& window = it->second;
  if (now - window.start >= std::chrono::minutes(1)) window = Window{now, 0};
  if (window.used >= per_minute_) {
    const auto left =
        std::chrono::ceil<std::chrono::seconds>(window.start + std::chrono::minutes(1) - now);
    return std::max(left, std::chrono::seconds(1));
  }
  ++window.used;
  return std::nullopt;
}

}  // namespace pushhub::connectors::sim
