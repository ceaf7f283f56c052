#include "connectors/sim/apns.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <random>

#include "common/json_parse.h"
#include "connectors/apns_protocol.h"

namespace pushhub::connectors::sim {
namespace {

using PushType = ApnsPushType;
constexpr const auto& kPushTypes = kApnsPushTypes;
constexpr size_t kMaxPayload = kApnsMaxPayload;
constexpr size_t kMaxVoipPayload = kApnsMaxVoipPayload;
constexpr size_t kMaxCollapseId = kApnsMaxCollapseId;

bool isHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

bool isDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int statusOf(std::string_view reason) {
  static const std::map<std::string_view, int> kStatus = {
      {"BadCollapseId", 400},
      {"BadDeviceToken", 400},
      {"BadExpirationDate", 400},
      {"BadMessageId", 400},
      {"BadPriority", 400},
      {"BadTopic", 400},
      {"DeviceTokenNotForTopic", 400},
      {"DuplicateHeaders", 400},
      {"IdleTimeout", 400},
      {"InvalidPushType", 400},
      {"MissingDeviceToken", 400},
      {"MissingTopic", 400},
      {"PayloadEmpty", 400},
      {"TopicDisallowed", 400},
      {"BadRequestPayload", 400},
      {"BadCertificate", 403},
      {"BadCertificateEnvironment", 403},
      {"ExpiredProviderToken", 403},
      {"Forbidden", 403},
      {"InvalidProviderToken", 403},
      {"MissingProviderToken", 403},
      {"UnrelatedKeyIdInToken", 403},
      {"BadEnvironmentKeyIdInToken", 403},
      {"BadPath", 404},
      {"MethodNotAllowed", 405},
      {"ExpiredToken", 410},
      {"Unregistered", 410},
      {"PayloadTooLarge", 413},
      {"TooManyProviderTokenUpdates", 429},
      {"TooManyRequests", 429},
      {"InternalServerError", 500},
      {"ServiceUnavailable", 503},
      {"Shutdown", 503},
  };
  auto it = kStatus.find(reason);
  return it == kStatus.end() ? 500 : it->second;
}

std::optional<std::string_view> stringMember(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return std::nullopt;
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return std::nullopt;
  return std::string_view(it->value.GetString(), it->value.GetStringLength());
}

}  // namespace

std::string randomUuid() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t a = rng();
  uint64_t b = rng();
  // Version 4, variant 1: xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx
  a = (a & ~0xF000ull) | 0x4000ull;
  b = (b & ~(0xCull << 60)) | (0x8ull << 60);
  std::string out(36, '-');
  size_t pos = 0;
  const auto put = [&](uint64_t bits, int digits) {
    for (int i = digits - 1; i >= 0; --i) out[pos++] = kHex[(bits >> (4 * i)) & 0xF];
  };
  put(a >> 32, 8);
  ++pos;
  put(a >> 16, 4);
  ++pos;
  put(a, 4);
  ++pos;
  put(b >> 48, 4);
  ++pos;
  put(b, 12);
  return out;
}

bool isCanonicalUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

ApnsService::ApnsService(ApnsOptions options, const DeviceFates& fates)
    : options_(std::move(options)), fates_(fates) {}

std::optional<std::string> ApnsService::authenticate(
    const http2::Request& request, ApnsConnection& connection, std::string_view topic,
    std::chrono::system_clock::time_point now) const {
  const std::string* authorization = request.find("authorization");
  if (connection.client_certificate) {
    // Certificate auth: the authorization header is ignored; the certificate names the topic.
    if (topic != connection.certificate_topic &&
        !topic.starts_with(connection.certificate_topic + ".")) {
      return "TopicDisallowed";
    }
    return std::nullopt;
  }
  if (authorization == nullptr || authorization->empty()) return "MissingProviderToken";
  std::string_view value = *authorization;
  constexpr std::string_view kBearer = "bearer ";
  if (value.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), value.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    return "InvalidProviderToken";
  }
  value.remove_prefix(kBearer.size());

  const ApnsKey* key = nullptr;
  int64_t iat = 0;
  if (!connection.current_token.empty() && value == connection.current_token) {
    // The token this connection already proved: nothing to parse or verify again.
    key = connection.current_key;
    iat = connection.current_iat;
  } else {
    auto jwt = parseJwt(value);
    if (!jwt) return "InvalidProviderToken";
    rapidjson::Document header;
    rapidjson::Document claims;
    if (!parseJson(header, jwt->header_json) || !parseJson(claims, jwt->claims_json)) {
      return "InvalidProviderToken";
    }
    const auto alg = stringMember(header, "alg");
    const auto kid = stringMember(header, "kid");
    const auto iss = stringMember(claims, "iss");
    if (!alg || *alg != "ES256" || !kid || !iss) return "InvalidProviderToken";
    for (const auto& candidate : options_.keys) {
      if (candidate.key_id == *kid) key = &candidate;
    }
    if (key == nullptr || key->team_id != *iss) return "InvalidProviderToken";
    auto iat_member = claims.FindMember("iat");
    if (iat_member == claims.MemberEnd() || !iat_member->value.IsInt64()) {
      return "InvalidProviderToken";
    }
    iat = iat_member->value.GetInt64();
    if (!verifyJwt(*jwt, key->public_key.get(), JwtAlgorithm::kEs256)) {
      return "InvalidProviderToken";
    }
  }
  const auto issued = std::chrono::system_clock::time_point(std::chrono::seconds(iat));
  if (issued + options_.token_lifetime < now) return "ExpiredProviderToken";
  // One connection, one team: the first authenticated push pins it.
  if (!connection.pinned_team.empty() && connection.pinned_team != key->team_id) {
    return "InvalidProviderToken";
  }
  if (!key->topics.empty()) {
    const bool allowed = std::any_of(key->topics.begin(), key->topics.end(), [&](const auto& t) {
      return topic == t || topic.starts_with(t + ".");
    });
    if (!allowed) return "TopicDisallowed";
  }
  if (value != connection.current_token) {
    if (!connection.current_token.empty() &&
        now - connection.token_since < options_.token_update_interval) {
      return "TooManyProviderTokenUpdates";
    }
    connection.current_token = std::string(value);
    connection.current_key = key;
    connection.current_iat = iat;
    connection.token_since = now;
  }
  connection.pinned_team = key->team_id;
  return std::nullopt;
}

Outcome ApnsService::fault(Fault fault, const http2::Request& request, SystemTime now) const {
  switch (fault) {
    case Fault::kInternalError: return rejection(request, "InternalServerError", now);
    case Fault::kUnavailable: return rejection(request, "ServiceUnavailable", now);
    case Fault::kThrottled: break;
  }
  return rejection(request, "TooManyRequests", now);
}

Outcome ApnsService::rejection(const http2::Request& request, std::string_view reason,
                               SystemTime now) const {
  Outcome outcome;
  const std::string* apns_id = request.find("apns-id");
  outcome.reason = std::string(reason);
  outcome.response.status = statusOf(reason);
  outcome.response.headers.push_back(
      {"apns-id", apns_id != nullptr && isCanonicalUuid(*apns_id) ? *apns_id : randomUuid()});
  outcome.response.headers.push_back({"content-type", "application/json"});
  if (reason == "Unregistered" || reason == "ExpiredToken") {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
    outcome.response.body = fmt::format(R"({{"reason":"{}","timestamp":{}}})", reason, ms.count());
  } else {
    outcome.response.body = fmt::format(R"({{"reason":"{}"}})", reason);
  }
  if (options_.sandbox) outcome.response.headers.push_back({"apns-unique-id", randomUuid()});
  return outcome;
}

Outcome ApnsService::handle(const http2::Request& request, ApnsConnection& connection,
                            SystemTime now) const {
  const std::string* apns_id = request.find("apns-id");
  const auto reject = [&](std::string_view reason) { return rejection(request, reason, now); };

  // Any header sent twice, pseudo-headers included.
  for (size_t i = 0; i < request.headers.size(); ++i) {
    for (size_t j = i + 1; j < request.headers.size(); ++j) {
      if (request.headers[i].name == request.headers[j].name) return reject("DuplicateHeaders");
    }
  }
  if (apns_id != nullptr && !isCanonicalUuid(*apns_id)) return reject("BadMessageId");
  const std::string* method = request.find(":method");
  if (method == nullptr || *method != "POST") return reject("MethodNotAllowed");

  const std::string* topic_header = request.find("apns-topic");
  std::string topic = topic_header != nullptr ? *topic_header : "";
  if (topic.empty()) {
    if (!connection.client_certificate) return reject("MissingTopic");
    topic = connection.certificate_topic;
  }
  const std::string* collapse_id = request.find("apns-collapse-id");
  if (collapse_id != nullptr && collapse_id->size() > kMaxCollapseId)
    return reject("BadCollapseId");
  const std::string* priority = request.find("apns-priority");
  if (priority != nullptr && *priority != "10" && *priority != "5" && *priority != "1") {
    return reject("BadPriority");
  }
  const std::string* push_type_header = request.find("apns-push-type");
  const PushType* push_type = &kPushTypes[0];
  if (push_type_header != nullptr) {
    auto it = std::find_if(kPushTypes.begin(), kPushTypes.end(),
                           [&](const PushType& t) { return t.name == *push_type_header; });
    if (it == kPushTypes.end()) return reject("InvalidPushType");
    push_type = &*it;
  }

  const std::string* path = request.find(":path");
  constexpr std::string_view kDevicePath = "/3/device/";
  if (path == nullptr || !std::string_view(*path).starts_with(kDevicePath))
    return reject("BadPath");
  const std::string_view token = std::string_view(*path).substr(kDevicePath.size());
  if (token.empty()) return reject("MissingDeviceToken");
  if (token.find('/') != std::string_view::npos || token.find('?') != std::string_view::npos) {
    return reject("BadPath");
  }
  if (token.size() < options_.min_token_hex || token.size() % 2 != 0 || !isHex(token)) {
    return reject("BadDeviceToken");
  }
  const std::string* expiration = request.find("apns-expiration");
  if (expiration != nullptr && !isDigits(*expiration)) return reject("BadExpirationDate");

  if (auto failure = authenticate(request, connection, topic, now)) return reject(*failure);
  if (push_type->name == "location" && connection.client_certificate) {
    return reject("InvalidPushType");  // location pushes need token auth
  }
  if (push_type->name != "mdm" && !topic.ends_with(push_type->topic_suffix)) {
    return reject("TopicDisallowed");
  }
  if (push_type->name == "background" && priority != nullptr && *priority == "10") {
    return reject("BadPriority");
  }
  switch (fates_.fate(token)) {
    case DeviceFate::kActive:
    case DeviceFate::kOffline: break;  // APNs stores it for the device
    case DeviceFate::kUnregistered: return reject("Unregistered");
    case DeviceFate::kBad: return reject("BadDeviceToken");
    case DeviceFate::kForeign: return reject("DeviceTokenNotForTopic");
  }
  if (request.body.empty() && !request.body_too_large) return reject("PayloadEmpty");
  const size_t limit = push_type->name == "voip" ? kMaxVoipPayload : kMaxPayload;
  if (request.body_too_large || request.body.size() > limit) return reject("PayloadTooLarge");
  if (options_.reject_invalid_json) {
    rapidjson::Document payload;
    if (!parseJson(payload, request.body) || !payload.IsObject())
      return reject("BadRequestPayload");
  }
  Outcome outcome;
  outcome.accepted = true;
  outcome.handle = std::string(token);
  outcome.response.status = 200;
  outcome.response.headers.push_back({"apns-id", apns_id != nullptr ? *apns_id : randomUuid()});
  if (options_.sandbox) outcome.response.headers.push_back({"apns-unique-id", randomUuid()});
  return outcome;
}

}  // namespace pushhub::connectors::sim
