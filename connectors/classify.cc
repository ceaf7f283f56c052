#include "connectors/classify.h"
#include "common/json_parse.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <utility>

namespace pushhub::connectors {
namespace {

using enum PnsOutcome;

Classification make(Action action, PnsOutcome outcome, std::string_view reason,
                    std::optional<std::chrono::seconds> retry_after = std::nullopt) {
  return Classification{action, outcome, retry_after, std::string(reason)};
}

// By status alone, for answers whose reason is missing or unknown.
Classification byStatus(int status, std::string_view reason) {
  if (status >= 200 && status < 300) return make(Action::kDone, kSuccess, reason);
  if (status == 429) return make(Action::kRetry, kThrottled, reason);
  if (status == 503 || status == 502 || status == 504) {
    return make(Action::kRetry, kPnsUnavailable, reason);
  }
  if (status >= 500) return make(Action::kRetry, kPnsServerError, reason);
  if (status == 401) return make(Action::kRefreshAuth, kInvalidCredentials, reason);
  if (status == 403) return make(Action::kDone, kInvalidCredentials, reason);
  if (status == 413) return make(Action::kDone, kInvalidNotificationSize, reason);
  return make(Action::kDone, kUnknownError, reason);
}

struct ApnsReason {
  std::string_view reason;
  Action action;
  PnsOutcome outcome;
};
// pns-protocols.md §1.7, every reason Apple documents.
constexpr std::array<ApnsReason, 33> kApnsReasons{{
    {"BadCollapseId", Action::kDone, kInvalidNotificationFormat},
    {"BadDeviceToken", Action::kDeadHandle, kWrongToken},
    {"BadExpirationDate", Action::kDone, kInvalidNotificationFormat},
    {"BadMessageId", Action::kDone, kInvalidNotificationFormat},
    {"BadPriority", Action::kDone, kInvalidNotificationFormat},
    {"BadTopic", Action::kDone, kInvalidNotificationFormat},
    {"DeviceTokenNotForTopic", Action::kDeadHandle, kWrongToken},
    {"DuplicateHeaders", Action::kDone, kInvalidNotificationFormat},
    {"IdleTimeout", Action::kRetry, kPnsUnreachable},
    {"InvalidPushType", Action::kDone, kInvalidNotificationFormat},
    {"MissingDeviceToken", Action::kDone, kInvalidNotificationFormat},
    {"MissingTopic", Action::kDone, kInvalidNotificationFormat},
    {"PayloadEmpty", Action::kDone, kInvalidNotificationFormat},
    {"TopicDisallowed", Action::kDone, kInvalidCredentials},
    {"BadRequestPayload", Action::kDone, kInvalidNotificationFormat},
    {"BadCertificate", Action::kDone, kInvalidCredentials},
    {"BadCertificateEnvironment", Action::kDone, kInvalidCredentials},
    {"ExpiredProviderToken", Action::kRefreshAuth, kInvalidCredentials},
    {"Forbidden", Action::kDone, kInvalidCredentials},
    {"InvalidProviderToken", Action::kRefreshAuth, kInvalidCredentials},
    {"MissingProviderToken", Action::kRefreshAuth, kInvalidCredentials},
    {"UnrelatedKeyIdInToken", Action::kDone, kInvalidCredentials},
    {"BadEnvironmentKeyIdInToken", Action::kDone, kInvalidCredentials},
    {"BadPath", Action::kDone, kPnsInterfaceError},
    {"MethodNotAllowed", Action::kDone, kPnsInterfaceError},
    {"ExpiredToken", Action::kDeadHandle, kExpiredChannel},
    {"Unregistered", Action::kDeadHandle, kExpiredChannel},
    {"PayloadTooLarge", Action::kDone, kInvalidNotificationSize},
    {"TooManyProviderTokenUpdates", Action::kRetry, kThrottled},
    {"TooManyRequests", Action::kRetry, kThrottled},
    {"InternalServerError", Action::kRetry, kPnsServerError},
    {"ServiceUnavailable", Action::kRetry, kPnsUnavailable},
    {"Shutdown", Action::kRetry, kPnsUnavailable},
}};

std::string_view stringMember(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return {};
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

}  // namespace

std::string_view outcomeName(PnsOutcome outcome) {
  switch (outcome) {
    case kSuccess: return "Success";
    case kExpiredChannel: return "ExpiredChannel";
    case kWrongToken: return "WrongToken";
    case kBadChannel: return "BadChannel";
    case kInvalidCredentials: return "InvalidCredentials";
    case kInvalidNotificationFormat: return "InvalidNotificationFormat";
    case kInvalidNotificationSize: return "InvalidNotificationSize";
    case kThrottled: return "Throttled";
    case kChannelThrottled: return "ChannelThrottled";
    case kDropped: return "Dropped";
    case kPnsUnreachable: return "PnsUnreachable";
    case kPnsUnavailable: return "PnsUnavailable";
    case kPnsServerError: return "PnsServerError";
    case kPnsInterfaceError: return "PnsInterfaceError";
    case kAbandoned: return "AbandonedNotificationMessages";
    case kUnknownError: return "UnknownError";
    case kSkipped: return "Skipped";
  }
  return "UnknownError";
}

std::string_view actionName(Action action) {
  switch (action) {
    case Action::kDone: return "done";
    case Action::kDeadHandle: return "dead handle";
    case Action::kRetry: return "retry";
    case Action::kRefreshAuth: return "refresh auth";
  }
  return "done";
}

std::optional<std::chrono::seconds> parseDelaySeconds(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty() || value.size() > 9 ||
      !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int64_t seconds = 0;
  for (const char c : value) seconds = seconds * 10 + (c - '0');
  return std::chrono::seconds(seconds);
}

Classification classifyApns(int status, std::string_view body) {
  if (status == 200) return make(Action::kDone, kSuccess, "");
  rapidjson::Document document;
  const std::string_view reason = parseJson(document, body) ? stringMember(document, "reason") : "";
  auto it = std::find_if(kApnsReasons.begin(), kApnsReasons.end(),
                         [&](const ApnsReason& r) { return r.reason == reason; });
  if (it != kApnsReasons.end()) return make(it->action, it->outcome, reason);
  // An unknown reason: the status decides. A 403 without a known reason is most likely about
  // the provider token.
  if (status == 403) return make(Action::kRefreshAuth, kInvalidCredentials, reason);
  if (status == 410) return make(Action::kDeadHandle, kExpiredChannel, reason);
  return byStatus(status, reason);
}

Classification classifyFcm(int status, std::string_view body, std::string_view retry_after) {
  if (status == 200) return make(Action::kDone, kSuccess, "");
  rapidjson::Document document;
  const bool parsed = parseJson(document, body).has_value();
  std::string_view error_code;
  std::string_view message;
  std::string_view rpc_status;
  if (parsed && document.IsObject() && document.HasMember("error")) {
    const rapidjson::Value& error = document["error"];
    message = stringMember(error, "message");
    rpc_status = stringMember(error, "status");
    if (error.IsObject() && error.HasMember("details") && error["details"].IsArray()) {
      for (const auto& detail : error["details"].GetArray()) {
        if (stringMember(detail, "@type") ==
            "type.googleapis.com/google.firebase.fcm.v1.FcmError") {
          error_code = stringMember(detail, "errorCode");
        }
      }
    }
  }
  const auto delay = parseDelaySeconds(retry_after);
  if (error_code == "UNREGISTERED") return make(Action::kDeadHandle, kExpiredChannel, error_code);
  if (error_code == "SENDER_ID_MISMATCH") {
    return make(Action::kDeadHandle, kWrongToken, error_code);
  }
  if (error_code == "INVALID_ARGUMENT" || (error_code.empty() && status == 400)) {
    const std::string_view reason = error_code.empty() ? rpc_status : error_code;
    // "The registration token is not a valid FCM registration token": the handle is bad.
    if (message.find("registration token") != std::string_view::npos) {
      return make(Action::kDeadHandle, kWrongToken, reason);
    }
    if (message.find("too big") != std::string_view::npos) {
      return make(Action::kDone, kInvalidNotificationSize, reason);
    }
    return make(Action::kDone, kInvalidNotificationFormat, reason);
  }
  if (error_code == "QUOTA_EXCEEDED" || (error_code.empty() && status == 429)) {
    // Google asks for at least a minute of back-off on the message rate quota.
    return make(Action::kRetry, kThrottled, error_code.empty() ? rpc_status : error_code,
                delay.value_or(std::chrono::seconds(60)));
  }
  if (error_code == "UNAVAILABLE" || (error_code.empty() && status == 503)) {
    return make(Action::kRetry, kPnsUnavailable, error_code.empty() ? rpc_status : error_code,
                delay);
  }
  if (error_code == "INTERNAL" || (error_code.empty() && status == 500)) {
    return make(Action::kRetry, kPnsServerError, error_code.empty() ? rpc_status : error_code,
                delay);
  }
  if (error_code == "THIRD_PARTY_AUTH_ERROR") {
    return make(Action::kDone, kInvalidCredentials, error_code);
  }
  if (error_code.empty() && status == 401) {
    // UNAUTHENTICATED, no FcmError: the OAuth access token expired or was revoked.
    return make(Action::kRefreshAuth, kInvalidCredentials, rpc_status);
  }
  if (error_code.empty() && status == 403) {
    return make(Action::kDone, kInvalidCredentials, rpc_status);  // project or IAM
  }
  if (error_code.empty() && status == 404) {
    return make(Action::kDone, kPnsInterfaceError, rpc_status);  // wrong URL or project
  }
  Classification c = byStatus(status, error_code.empty() ? rpc_status : error_code);
  if (c.action == Action::kRetry) c.retry_after = delay;
  return c;
}

Classification classifyWns(int status, std::string_view wns_status,
                           std::string_view continue_after) {
  const auto delay = parseDelaySeconds(continue_after);
  switch (status) {
    case 200:
      if (wns_status == "dropped") return make(Action::kDone, kDropped, wns_status);
      // [O] A throttled channel answers 200: not a delivery, send again later.
      if (wns_status == "channelthrottled") {
        return make(Action::kRetry, kChannelThrottled, wns_status, delay);
      }
      return make(Action::kDone, kSuccess, wns_status);
    case 400: return make(Action::kDone, kInvalidNotificationFormat, "BadRequest");
    case 401: return make(Action::kRefreshAuth, kInvalidCredentials, "Unauthorized");
    case 403: return make(Action::kDone, kInvalidCredentials, "Forbidden");
    case 404: return make(Action::kDeadHandle, kBadChannel, "NotFound");
    case 405: return make(Action::kDone, kPnsInterfaceError, "MethodNotAllowed");
    case 406: return make(Action::kRetry, kThrottled, "NotAcceptable", delay);
    case 410: return make(Action::kDeadHandle, kExpiredChannel, "Gone");
    case 413: return make(Action::kDone, kInvalidNotificationSize, "RequestEntityTooLarge");
    default: break;
  }
  Classification c = byStatus(status, std::to_string(status));
  if (c.action == Action::kRetry) c.retry_after = delay;
  return c;
}

Classification classifyNoAnswer(std::string_view what) {
  return make(Action::kRetry, kPnsUnreachable, what);
}

}  // namespace pushhub::connectors
