#pragma once

// The WNS client of one shard: POST to each channel URI over HTTPS/1.1 keep-alive connections
// (http1::Pool), with an OAuth access token from the app's shared AccessTokenSource (login.live.com
// client credentials, or Entra), the X-WNS-* headers, the 5000-byte limit checked first, and
// PushClient's retries (X-WNS-CONTINUE-AFTER honoured; a 200 channelthrottled is retried).

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "connectors/http1/pool.h"
#include "connectors/oauth.h"

namespace pushhub::connectors {

// WNS refuses larger payloads (413).
inline constexpr size_t kWnsMaxPayload = 5000;

struct WnsNotification {
  std::string channel_uri;  // https://<cluster>.notify.windows.com/?token=… (sent byte for byte)
  std::string payload;
  std::string type;  // wns/toast, wns/tile, wns/badge, wns/raw; empty: from the payload's root
  std::optional<int64_t> ttl;       // X-WNS-TTL seconds
  std::string tag;                  // X-WNS-Tag
  std::string cache_policy;         // X-WNS-Cache-Policy: cache | no-cache
  bool request_for_status = false;  // X-WNS-RequestForStatus
  std::optional<int> priority;      // X-WNS-PRIORITY 1..4
};

// The X-WNS-Type a payload implies: its XML root (<toast>, <tile>, <badge>), else wns/raw.
std::string wnsTypeOf(std::string_view payload);

class WnsClient : public OAuthPushClient<WnsClient, WnsNotification, http1::Pool> {
 public:
  struct Options {
    http1::Pool::Options pool;  // its host/port: where channels go when `endpoint_override`
    RetryOptions retry;
    // Channels are only sent to hosts ending with this (an SSRF guard, as Microsoft advises).
    std::string allowed_host_suffix = ".notify.windows.com";
    // Tests and load tests: every channel's path and query go to the pool's host instead.
    bool endpoint_override = false;
  };

  WnsClient(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
            Options options, std::shared_ptr<AccessTokenSource> tokens);

  // False when the pool's queue is full (call again after onSpace). A channel URI that is not
  // https on an allowed host, or a payload over 5000 bytes, ends at once without a request.
  bool send(WnsNotification notification, std::chrono::steady_clock::time_point deadline,
            Callback done);

  // PushClient's hooks.
  http2::ClientRequest build(Pending& pending);
  Classification classify(const http2::ClientResponse& response) const;

 private:
  Options options_;
};

}  // namespace pushhub::connectors
