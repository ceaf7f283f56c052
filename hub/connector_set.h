#pragma once

// A hub's way out to the push services. HubCredentials holds what every shard shares (TLS
// contexts, the APNs provider-token signer, the FCM and WNS access-token sources, FCM's rate
// limiter); ShardConnectors holds one shard's clients and pools for the hub, made on first use,
// and sends a rendered Delivery through the right one.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <array>
#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "connectors/apns.h"
#include "connectors/fcm.h"
#include "connectors/oauth.h"
#include "connectors/rate_limiter.h"
#include "connectors/wns.h"
#include "hub/hub_definition.h"
#include "hub/render.h"

namespace pushhub {
class MetricsRegistry;
}

namespace pushhub::hub {

struct ConnectorOptions {
  size_t apns_connections = 2;  // per shard: the most a pool opens
  size_t fcm_connections = 2;
  size_t wns_connections = 16;            // HTTP/1.1: one request at a time per connection
  uint32_t streams_per_connection = 100;  // HTTP/2: our cap below the service's (0: none)
  // The engine's in-flight share per service and shard: with a stream cap, an HTTP/2 pool opens
  // enough connections to carry it (apns_connections/fcm_connections at least).
  size_t in_flight_per_service = 512;
  size_t queue_capacity = 8192;
  connectors::RetryOptions retry;
  uint64_t fcm_per_minute = 600'000;  // FCM's default project quota
  MetricsRegistry* metrics = nullptr;
};

class HubCredentials {
 public:
  static std::expected<std::shared_ptr<HubCredentials>, std::string> create(
      HubDefinition definition, const ConnectorOptions& options);

  const HubDefinition& definition() const { return definition_; }

 private:
  friend class ShardConnectors;
  HubCredentials() = default;

  HubDefinition definition_;
  ConnectorOptions options_;
  std::shared_ptr<boost::asio::ssl::context> h2_tls_;
  std::shared_ptr<boost::asio::ssl::context> h1_tls_;
  // Null with certificate auth.
  std::shared_ptr<connectors::ApnsTokenProvider> apns_tokens_;
  // h2_tls_ with token auth; with certificate auth, a context presenting the certificate.
  std::shared_ptr<boost::asio::ssl::context> apns_tls_;
  std::shared_ptr<connectors::AccessTokenSource> fcm_tokens_;
  std::string fcm_project_;
  std::shared_ptr<connectors::RateLimiter> fcm_limiter_;
  std::shared_ptr<connectors::AccessTokenSource> wns_tokens_;
};

class ShardConnectors {
 public:
  using Callback = std::function<void(connectors::DeliveryResult&&)>;
  using Clock = std::chrono::steady_clock;

  ShardConnectors(boost::asio::io_context& io, std::shared_ptr<const HubCredentials> credentials);
  ~ShardConnectors();

  // Hands one delivery to its service's client. False: that client's queue was full and the
  // delivery is lost — the engine keeps fewer in flight than a queue holds, so this means a
  // bug or a closing pool. A platform the hub has no credential for ends at once as
  // InvalidCredentials.
  bool send(Delivery&& delivery, Clock::time_point deadline, Callback done);
  // Notifications handed over and not yet answered.
  size_t pending() const;
  // Those of them for `platform`'s service: the engine's per-service budget (one slow or
  // unreachable service holds only its own share of a shard's deliveries).
  size_t inFlight(storage::Platform platform) const;
  // Whether `platform`'s service has deliveries in flight and has answered none of them for
  // `quiet`: slow or stuck rather than merely busy (a busy service answers all the time).
  bool stalled(storage::Platform platform, Clock::time_point now, Clock::duration quiet) const;

 private:
  connectors::ApnsClient* apns();
  connectors::FcmClient* fcm();
  connectors::WnsClient* wns();
  void refuse(Callback done, std::string why);
  bool dispatchTo(Delivery&& delivery, Clock::time_point deadline, Callback done);

  boost::asio::io_context& io_;
  std::shared_ptr<const HubCredentials> credentials_;
  std::unique_ptr<connectors::ApnsClient> apns_;
  std::unique_ptr<connectors::FcmClient> fcm_;
  std::unique_ptr<connectors::WnsClient> wns_;
  std::array<size_t, std::variant_size_v<Delivery>> in_flight_{};  // by Delivery's alternative
  // The last answer, or the send that found nothing in flight.
  std::array<Clock::time_point, std::variant_size_v<Delivery>> last_answer_{};
};

}  // namespace pushhub::hub
