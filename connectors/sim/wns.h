#pragma once

// WNS as pushhub-sim serves it (../../../shared/reference/pns-protocols.md §3): both OAuth
// client-credentials endpoints (login.live.com's /accesstoken.srf and Entra's
// /{tenant}/oauth2/v2.0/token) and POST to a channel URI (/?token=… or /w/?token=…) with the
// documented headers, statuses and X-WNS-* answers. Carried over HTTP/1.1 only. Pure logic, like
// apns.*.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "connectors/sim/devices.h"
#include "connectors/sim/service.h"

namespace pushhub::connectors::sim {

struct WnsApp {
  std::string client_id;  // package SID (ms-app://s-1-15-2-…) or Entra application id
  std::string secret;
};

struct WnsOptions {
  std::vector<WnsApp> apps;
  std::vector<std::string> tenants;  // accepted by /{tenant}/oauth2/v2.0/token
  std::chrono::seconds token_lifetime{86400};
  size_t max_payload = 5000;
  size_t max_tag = 16;                // X-WNS-Tag / X-WNS-Group; newer docs allow 64 for toasts [R]
  uint64_t app_quota_per_minute = 0;  // per app (406 + X-WNS-CONTINUE-AFTER); 0 = unlimited
  uint64_t channel_quota_per_minute = 0;    // per channel (200 + channelthrottled); 0 = unlimited
  std::chrono::seconds continue_after{60};  // X-WNS-CONTINUE-AFTER of injected 406s
};

class WnsService {
 public:
  WnsService(WnsOptions options, const DeviceFates& fates);

  // The request as HTTP/1.1 carried it: its framing headers (content-length, transfer-encoding)
  // are among `request.headers`.
  Outcome handle(const http2::Request& request, SystemTime now);
  Outcome fault(Fault fault, const http2::Request& request, SystemTime now) const;
  // A request to one of the OAuth token endpoints rather than to a channel.
  static bool isTokenRequest(const http2::Request& request);

 private:
  Outcome token(const http2::Request& request, bool entra, SystemTime now);
  Outcome send(const http2::Request& request, std::string_view channel, SystemTime now);

  WnsOptions options_;
  const DeviceFates& fates_;
  IssuedTokens tokens_;
  MinuteQuota app_quota_;
  MinuteQuota channel_quota_;
};

}  // namespace pushhub::connectors::sim
