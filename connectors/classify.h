#pragma once

// What a push service's answer means, as pure functions of the response: the outcome to count
// (Azure Notification Hubs' telemetry names) and what the connector does next (done, prune the
// handle, retry later, refresh the credential's token). Table-tested against every status and
// reason of ../shared/reference/pns-protocols.md; unknown reasons fall back on the status.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pushhub::connectors {

// Azure's outcome names (NotificationDetails' {Apns,Gcm,Wns}OutcomeCounts).
enum class PnsOutcome : uint8_t {
  kSuccess,
  kExpiredChannel,             // the handle is dead: uninstalled, expired, unregistered
  kWrongToken,                 // the handle is not valid (for this app)
  kBadChannel,                 // WNS: the channel is unknown
  kInvalidCredentials,         // the hub's credential is wrong or not allowed
  kInvalidNotificationFormat,  // the request was refused as malformed
  kInvalidNotificationSize,    // over the service's payload limit
  kThrottled,                  // rate-limited by the service
  kChannelThrottled,           // WNS: this channel is rate-limited
  kDropped,                    // WNS: accepted but dropped (device offline for toasts)
  kPnsUnreachable,             // no answer: connection failed, reset, timed out
  kPnsUnavailable,             // 503 and the like
  kPnsServerError,             // 500 and the like
  kPnsInterfaceError,          // an answer the protocol does not have (wrong endpoint?)
  kAbandoned,                  // retried until the notification's time-to-live ran out
  kUnknownError,
  kSkipped,  // not sent: another installation has the same handle (the engine)
};
inline constexpr size_t kPnsOutcomeCount = 17;
static_assert(static_cast<size_t>(PnsOutcome::kSkipped) + 1 == kPnsOutcomeCount);
std::string_view outcomeName(PnsOutcome outcome);

enum class Action : uint8_t {
  kDone,         // success or a permanent failure: count the outcome
  kDeadHandle,   // permanent, and the handle will never work: count, and report it for pruning
  kRetry,        // transient: send again after retry_after (or back-off), until the TTL
  kRefreshAuth,  // the access/provider token was refused: refresh it once and retry once
};
std::string_view actionName(Action action);

struct Classification {
  Action action = Action::kDone;
  PnsOutcome outcome = PnsOutcome::kUnknownError;
  std::optional<std::chrono::seconds> retry_after;  // what the server asked for, if it did
  std::string reason;  // the service's own word: APNs reason, FCM errorCode, WNS status
};

// APNs: status and the JSON body ({"reason": …}).
Classification classifyApns(int status, std::string_view body);
// FCM HTTP v1: status, body (google.rpc.Status with FcmError details) and the Retry-After header.
Classification classifyFcm(int status, std::string_view body, std::string_view retry_after);
// WNS: status and the X-WNS-Status, X-WNS-CONTINUE-AFTER (or Retry-After) headers.
Classification classifyWns(int status, std::string_view wns_status,
                           std::string_view continue_after);
// No answer at all (connect failure, reset, timeout, a stream refused or cut by GOAWAY).
Classification classifyNoAnswer(std::string_view what);

// "120" → 120 s; HTTP dates and anything else → nullopt.
std::optional<std::chrono::seconds> parseDelaySeconds(std::string_view value);

}  // namespace pushhub::connectors
