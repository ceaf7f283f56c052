// Response classification, table-tested against every status and reason in
// ../shared/reference/pns-protocols.md (APNs §1.7, FCM §2.4, WNS §3.5), plus unknown reasons and
// bodies that are not what the protocol promises.
#include "connectors/classify.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <vector>

namespace pushhub::connectors {
namespace {

using namespace std::chrono_literals;
using enum PnsOutcome;

struct Expect {
  Action action;
  PnsOutcome outcome;
};

void check(const Classification& got, const Expect& want, const std::string& what) {
  EXPECT_EQ(actionName(got.action), actionName(want.action)) << what;
  EXPECT_EQ(outcomeName(got.outcome), outcomeName(want.outcome)) << what;
}

TEST(ClassifyApns, EveryDocumentedReason) {
  struct Row {
    int status;
    std::string reason;
    Expect want;
  };
  const std::vector<Row> rows = {
      {400, "BadCollapseId", {Action::kDone, kInvalidNotificationFormat}},
      {400, "BadDeviceToken", {Action::kDeadHandle, kWrongToken}},
      {400, "BadExpirationDate", {Action::kDone, kInvalidNotificationFormat}},
      {400, "BadMessageId", {Action::kDone, kInvalidNotificationFormat}},
      {400, "BadPriority", {Action::kDone, kInvalidNotificationFormat}},
      {400, "BadTopic", {Action::kDone, kInvalidNotificationFormat}},
      {400, "DeviceTokenNotForTopic", {Action::kDeadHandle, kWrongToken}},
      {400, "DuplicateHeaders", {Action::kDone, kInvalidNotificationFormat}},
      {400, "IdleTimeout", {Action::kRetry, kPnsUnreachable}},
      {400, "InvalidPushType", {Action::kDone, kInvalidNotificationFormat}},
      {400, "MissingDeviceToken", {Action::kDone, kInvalidNotificationFormat}},
      {400, "MissingTopic", {Action::kDone, kInvalidNotificationFormat}},
      {400, "PayloadEmpty", {Action::kDone, kInvalidNotificationFormat}},
      {400, "TopicDisallowed", {Action::kDone, kInvalidCredentials}},
      {403, "BadCertificate", {Action::kDone, kInvalidCredentials}},
      {403, "BadCertificateEnvironment", {Action::kDone, kInvalidCredentials}},
      {403, "ExpiredProviderToken", {Action::kRefreshAuth, kInvalidCredentials}},
      {403, "Forbidden", {Action::kDone, kInvalidCredentials}},
      {403, "InvalidProviderToken", {Action::kRefreshAuth, kInvalidCredentials}},
      {403, "MissingProviderToken", {Action::kRefreshAuth, kInvalidCredentials}},
      {403, "UnrelatedKeyIdInToken", {Action::kDone, kInvalidCredentials}},
      {403, "BadEnvironmentKeyIdInToken", {Action::kDone, kInvalidCredentials}},
      {404, "BadPath", {Action::kDone, kPnsInterfaceError}},
      {405, "MethodNotAllowed", {Action::kDone, kPnsInterfaceError}},
      {410, "ExpiredToken", {Action::kDeadHandle, kExpiredChannel}},
      {410, "Unregistered", {Action::kDeadHandle, kExpiredChannel}},
      {413, "PayloadTooLarge", {Action::kDone, kInvalidNotificationSize}},
      {429, "TooManyProviderTokenUpdates", {Action::kRetry, kThrottled}},
      {429, "TooManyRequests", {Action::kRetry, kThrottled}},
      {500, "InternalServerError", {Action::kRetry, kPnsServerError}},
      {503, "ServiceUnavailable", {Action::kRetry, kPnsUnavailable}},
      {503, "Shutdown", {Action::kRetry, kPnsUnavailable}},
      // Unknown reasons: the status decides.
      {400, "SomethingNew", {Action::kDone, kUnknownError}},
      {403, "SomethingNew", {Action::kRefreshAuth, kInvalidCredentials}},
      {410, "SomethingNew", {Action::kDeadHandle, kExpiredChannel}},
      {429, "SomethingNew", {Action::kRetry, kThrottled}},
      {502, "SomethingNew", {Action::kRetry, kPnsUnavailable}},
      {500, "SomethingNew", {Action::kRetry, kPnsServerError}},
  };
  for (const auto& row : rows) {
    const std::string body = row.reason == "Unregistered"
                                 ? R"({"reason":"Unregistered","timestamp":1700000000000})"
                                 : fmt::format(R"({{"reason":"{}"}})", row.reason);
    auto got = classifyApns(row.status, body);
    check(got, row.want, row.reason);
    EXPECT_EQ(got.reason, row.reason);
  }
  check(classifyApns(200, ""), {Action::kDone, kSuccess}, "200");
}

TEST(ClassifyApns, BodiesThatAreNotJsonFallBackOnTheStatus) {
  check(classifyApns(500, "<html>oops</html>"), {Action::kRetry, kPnsServerError}, "html 500");
  check(classifyApns(400, ""), {Action::kDone, kUnknownError}, "empty 400");
  check(classifyApns(410, R"({"reason":5})"), {Action::kDeadHandle, kExpiredChannel}, "410");
  check(classifyApns(404, "{}"), {Action::kDone, kUnknownError}, "404 without reason");
}

std::string fcmError(int code, std::string_view status, std::string_view message,
                     std::string_view error_code) {
  const std::string details =
      error_code.empty()
          ? ""
          : fmt::format(
                R"(,"details":[{{"@type":"type.googleapis.com/google.rpc.BadRequest"}},)"
                R"({{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"{}"}}])",
                error_code);
  return fmt::format(R"({{"error":{{"code":{},"message":"{}","status":"{}"{}}}}})", code, message,
                     status, details);
}

TEST(ClassifyFcm, EveryErrorCodeAndTheAuthAnswers) {
  struct Row {
    int status;
    std::string rpc_status;
    std::string message;
    std::string error_code;
    Expect want;
  };
  const std::vector<Row> rows = {
      {404,
       "NOT_FOUND",
       "Requested entity was not found.",
       "UNREGISTERED",
       {Action::kDeadHandle, kExpiredChannel}},
      // firebase-admin-go's fixture pairs INVALID_ARGUMENT with UNREGISTERED: errorCode wins.
      {400, "INVALID_ARGUMENT", "x", "UNREGISTERED", {Action::kDeadHandle, kExpiredChannel}},
      {400,
       "INVALID_ARGUMENT",
       "The registration token is not a valid FCM registration token",
       "INVALID_ARGUMENT",
       {Action::kDeadHandle, kWrongToken}},
      {400,
       "INVALID_ARGUMENT",
       "Message too big",
       "INVALID_ARGUMENT",
       {Action::kDone, kInvalidNotificationSize}},
      {400,
       "INVALID_ARGUMENT",
       "Invalid TTL",
       "INVALID_ARGUMENT",
       {Action::kDone, kInvalidNotificationFormat}},
      {400,
       "INVALID_ARGUMENT",
       "Invalid JSON payload received. Unknown name",
       "",
       {Action::kDone, kInvalidNotificationFormat}},
      {403,
       "PERMISSION_DENIED",
       "SenderId mismatch",
       "SENDER_ID_MISMATCH",
       {Action::kDeadHandle, kWrongToken}},
      {429, "RESOURCE_EXHAUSTED", "Quota exceeded", "QUOTA_EXCEEDED", {Action::kRetry, kThrottled}},
      {503, "UNAVAILABLE", "unavailable", "UNAVAILABLE", {Action::kRetry, kPnsUnavailable}},
      {500, "INTERNAL", "internal", "INTERNAL", {Action::kRetry, kPnsServerError}},
      {401,
       "UNAUTHENTICATED",
       "APNs auth key",
       "THIRD_PARTY_AUTH_ERROR",
       {Action::kDone, kInvalidCredentials}},
      {401,
       "UNAUTHENTICATED",
       "Request had invalid authentication credentials.",
       "",
       {Action::kRefreshAuth, kInvalidCredentials}},
      {403,
       "PERMISSION_DENIED",
       "Permission 'cloudmessaging.messages.create' denied",
       "",
       {Action::kDone, kInvalidCredentials}},
      {404, "NOT_FOUND", "No such resource", "", {Action::kDone, kPnsInterfaceError}},
      {429, "RESOURCE_EXHAUSTED", "busy", "", {Action::kRetry, kThrottled}},
      {503, "UNAVAILABLE", "busy", "", {Action::kRetry, kPnsUnavailable}},
      {500, "INTERNAL", "oops", "", {Action::kRetry, kPnsServerError}},
      {400, "FAILED_PRECONDITION", "new", "SOMETHING_NEW", {Action::kDone, kUnknownError}},
      {502, "", "", "", {Action::kRetry, kPnsUnavailable}},
  };
  for (const auto& row : rows) {
    auto got = classifyFcm(row.status,
                           fcmError(row.status, row.rpc_status, row.message, row.error_code), "");
    check(got, row.want, row.error_code + " " + row.message);
  }
  check(classifyFcm(200, R"({"name":"projects/p/messages/1"})", ""), {Action::kDone, kSuccess},
        "200");
}

TEST(ClassifyFcm, RetryAfterIsHonouredAndQuotaWaitsAtLeastAMinute) {
  auto unavailable = classifyFcm(503, fcmError(503, "UNAVAILABLE", "x", "UNAVAILABLE"), "7");
  ASSERT_TRUE(unavailable.retry_after.has_value());
  EXPECT_EQ(*unavailable.retry_after, 7s);
  EXPECT_FALSE(classifyFcm(500, fcmError(500, "INTERNAL", "x", "INTERNAL"), "").retry_after);
  auto quota = classifyFcm(429, fcmError(429, "RESOURCE_EXHAUSTED", "x", "QUOTA_EXCEEDED"), "");
  EXPECT_EQ(quota.retry_after, 60s);
  auto told = classifyFcm(429, fcmError(429, "RESOURCE_EXHAUSTED", "x", "QUOTA_EXCEEDED"), "12");
  EXPECT_EQ(told.retry_after, 12s);
  // An HTTP date is not understood: back-off decides.
  EXPECT_FALSE(classifyFcm(503, "", "Wed, 21 Oct 2026 07:28:00 GMT").retry_after);
  check(classifyFcm(503, "not json", ""), {Action::kRetry, kPnsUnavailable}, "html 503");
}

TEST(ClassifyWns, EveryDocumentedStatus) {
  struct Row {
    int status;
    std::string wns_status;
    Expect want;
  };
  const std::vector<Row> rows = {
      {200, "received", {Action::kDone, kSuccess}},
      {200, "", {Action::kDone, kSuccess}},
      {200, "dropped", {Action::kDone, kDropped}},
      {200, "channelthrottled", {Action::kRetry, kChannelThrottled}},
      {400, "", {Action::kDone, kInvalidNotificationFormat}},
      {401, "", {Action::kRefreshAuth, kInvalidCredentials}},
      {403, "", {Action::kDone, kInvalidCredentials}},
      {404, "", {Action::kDeadHandle, kBadChannel}},
      {405, "", {Action::kDone, kPnsInterfaceError}},
      {406, "", {Action::kRetry, kThrottled}},
      {410, "", {Action::kDeadHandle, kExpiredChannel}},
      {413, "", {Action::kDone, kInvalidNotificationSize}},
      {500, "", {Action::kRetry, kPnsServerError}},
      {503, "", {Action::kRetry, kPnsUnavailable}},
      {429, "", {Action::kRetry, kThrottled}},
      {418, "", {Action::kDone, kUnknownError}},
  };
  for (const auto& row : rows) {
    check(classifyWns(row.status, row.wns_status, ""), row.want,
          fmt::format("{} {}", row.status, row.wns_status));
  }
  EXPECT_EQ(classifyWns(406, "", "30").retry_after, 30s);
  EXPECT_EQ(classifyWns(200, "channelthrottled", "5").retry_after, 5s);
}

TEST(Classify, NoAnswerIsRetriedAsUnreachable) {
  auto c = classifyNoAnswer("connection reset");
  check(c, {Action::kRetry, kPnsUnreachable}, "reset");
  EXPECT_EQ(c.reason, "connection reset");
}

TEST(Classify, ParsesDelaySeconds) {
  EXPECT_EQ(parseDelaySeconds("120"), 120s);
  EXPECT_EQ(parseDelaySeconds(" 3 "), 3s);
  EXPECT_EQ(parseDelaySeconds(""), std::nullopt);
  EXPECT_EQ(parseDelaySeconds("-1"), std::nullopt);
  EXPECT_EQ(parseDelaySeconds("1.5"), std::nullopt);
  EXPECT_EQ(parseDelaySeconds("9999999999"), std::nullopt);
}

TEST(Classify, OutcomeNamesAreAzures) {
  EXPECT_EQ(outcomeName(kAbandoned), "AbandonedNotificationMessages");
  EXPECT_EQ(outcomeName(kExpiredChannel), "ExpiredChannel");
  EXPECT_EQ(outcomeName(kInvalidNotificationSize), "InvalidNotificationSize");
}

}  // namespace
}  // namespace pushhub::connectors
