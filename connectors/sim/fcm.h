#pragma once

// FCM HTTP v1 as pushhub-sim serves it (../../../shared/reference/pns-protocols.md §2): Google's
// OAuth token endpoint for service accounts (RS256 assertions) and
// POST /v1/projects/{project}/messages:send with strict proto-JSON parsing, google.rpc.Status
// errors with the FcmError detail, a per-project per-minute quota and device fates. Pure logic,
// like apns.*.

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connectors/jwt.h"
#include "connectors/sim/devices.h"
#include "connectors/sim/service.h"

namespace pushhub::connectors::sim {

struct FcmServiceAccount {
  std::string client_email;
  std::string project_id;
  std::string private_key_id;  // a `kid` in the assertion header, when present, must match
  std::shared_ptr<EVP_PKEY> public_key;
};

// A service-account JSON file as Google issues it (client_email, project_id, private_key_id,
// private_key); the simulator keeps the public half of the key.
std::expected<FcmServiceAccount, std::string> loadFcmServiceAccount(const std::string& path);

struct FcmOptions {
  std::vector<FcmServiceAccount> accounts;
  std::chrono::seconds token_lifetime{3600};  // answered as expires_in = lifetime - 1 (3599)
  uint64_t quota_per_minute = 0;  // messages per project per minute; 0 = unlimited (Google: 600k)
  std::chrono::seconds unavailable_retry_after{10};  // Retry-After of 503 UNAVAILABLE
  std::chrono::seconds throttled_retry_after{60};    // Retry-After of injected 429s
  size_t min_token_length = 32;  // shorter registration tokens are INVALID_ARGUMENT [derived]
};

// What one connection remembers: the last bearer token it proved, so the token table is not
// consulted per request.
struct FcmConnection {
  std::string bearer;
  IssuedTokens::Grant grant;
};

class FcmService {
 public:
  FcmService(FcmOptions options, const DeviceFates& fates);

  Outcome handle(const http2::Request& request, FcmConnection& connection, SystemTime now);
  Outcome fault(Fault fault, const http2::Request& request, SystemTime now) const;
  // A request to the OAuth token endpoint (/token) rather than to FCM itself.
  static bool isTokenRequest(const http2::Request& request);

  // google.rpc.Status as FCM answers it; `error_code` adds the FcmError detail, `extra_detail`
  // (a JSON object) another one.
  static Outcome error(int http_status, std::string_view status, std::string_view message,
                       std::string_view error_code = {}, std::string_view extra_detail = {});

 private:
  Outcome token(const http2::Request& request, SystemTime now);
  Outcome send(const http2::Request& request, std::string_view project, FcmConnection& connection,
               SystemTime now);

  FcmOptions options_;
  const DeviceFates& fates_;
  IssuedTokens tokens_;
  MinuteQuota quota_;
};

}  // namespace pushhub::connectors::sim
