#pragma once

// What the simulated services share: the outcome of one request, the kinds of injected failure,
// the access tokens their OAuth endpoints issue, and per-minute quotas. Each service (apns.*,
// fcm.*, wns.*) is pure logic over http2::Request / http2::Response; server.cc carries them over
// HTTP/2 or HTTP/1.1.

#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "connectors/http2/server_session.h"

namespace pushhub::connectors::sim {

using SystemTime = std::chrono::system_clock::time_point;

struct Outcome {
  http2::Response response;
  bool accepted = false;  // a notification was taken for delivery (counted, recorded)
  std::string reason;     // empty when accepted; what /stats counts otherwise
  std::string handle;     // the device handle (APNs token, FCM token, WNS channel), when accepted
};

// Failures injected at random before a request is looked at (FaultOptions in server.h).
enum class Fault {
  kInternalError,  // APNs 500 InternalServerError, FCM 500 INTERNAL, WNS 500
  kUnavailable,    // APNs 503 ServiceUnavailable, FCM 503 UNAVAILABLE + Retry-After, WNS 503
  kThrottled,      // APNs 429 TooManyRequests, FCM 429 QUOTA_EXCEEDED, WNS 406
};

// Opaque bearer tokens handed out by a token endpoint: who they were issued to, with what scope,
// until when. Thread-safe; expired tokens are dropped as new ones are issued.
class IssuedTokens {
 public:
  struct Grant {
    std::string owner;  // service account email / WNS client id
    std::string scope;
    std::string project;  // FCM: the service account's project
    SystemTime expires;
  };
  // A new random token with `prefix` (e.g. "ya29.").
  std::string issue(std::string_view prefix, Grant grant);
  // The grant of a token still valid at `now`.
  std::optional<Grant> find(std::string_view token, SystemTime now) const;

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, Grant> grants_;
  size_t issued_since_sweep_ = 0;
};

// A quota of N requests per minute per key (project, app). As FCM documents, windows are not
// clock-aligned: a key's minute starts with its first request after the last window ended.
// Thread-safe. A quota of 0 is unlimited.
class MinuteQuota {
 public:
  explicit MinuteQuota(uint64_t per_minute) : per_minute_(per_minute) {}
  // Counts one request; nullopt when within the quota, else how long until it refills.
  std::optional<std::chrono::seconds> take(std::string_view key, SystemTime now);
  bool limited() const { return per_minute_ != 0; }

 private:
  struct Window {
    SystemTime start;
    uint64_t used = 0;
  };
  uint64_t per_minute_;
  std::mutex mutex_;
  std::unordered_map<std::string, Window> windows_;
};

// An OAuth 2.0 error as token endpoints answer it: {"error":…,"error_description":…}.
Outcome oauthError(int status, std::string_view error, std::string_view description);

// The fields of a token request (a POST of an application/x-www-form-urlencoded body) by name,
// the last occurrence winning; otherwise the OAuth error to answer.
std::expected<std::map<std::string, std::string, std::less<>>, Outcome> tokenRequestForm(
    const http2::Request& request);

// Random lowercase hex, `digits` long (message ids, debug traces).
std::string randomHex(size_t digits);
// A random base64url token of `bytes` random bytes.
std::string randomToken(size_t bytes);

}  // namespace pushhub::connectors::sim
