#pragma once

// The APNs client of one shard: builds provider-API requests from notifications, sends them
// through the shard's HTTP/2 pool, classifies the answers, retries what is transient (with the
// server's delay or jittered exponential back-off, until the notification's deadline), refreshes
// the provider token once when APNs refuses it, and reports one final result per notification.
// The provider token is per (team, key) and shared by every shard: ApnsTokenProvider.

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "connectors/classify.h"
#include "connectors/http2/client_pool.h"
#include "connectors/jwt.h"
#include "connectors/push_client.h"

namespace pushhub::connectors {

// ES256 provider tokens for one (team, key), shared by all shards and connections. A token is
// renewed after `refresh_after` (50 min, under Apple's hour) and never sooner than
// `min_interval` (20 min: APNs answers TooManyProviderTokenUpdates otherwise). Thread-safe.
class ApnsTokenProvider {
 public:
  struct Options {
    std::string key_id;
    std::string team_id;
    std::chrono::seconds refresh_after{50 * 60};
    std::chrono::seconds min_interval{20 * 60};
    std::function<std::chrono::system_clock::time_point()> clock = [] {
      return std::chrono::system_clock::now();
    };
  };
  struct Token {
    std::string authorization;  // "bearer <jwt>"
    std::chrono::system_clock::time_point issued;
  };

  // `p8_pem`: the .p8 private key (PKCS#8 PEM, P-256).
  static std::expected<std::shared_ptr<ApnsTokenProvider>, std::string> create(
      Options options, std::string_view p8_pem);

  // The token to use now (renewed here when due).
  std::shared_ptr<const Token> current();
  // APNs refused `seen` (ExpiredProviderToken, InvalidProviderToken): renew unless it is younger
  // than min_interval or already replaced. Returns the token to retry with.
  std::shared_ptr<const Token> refuse(const std::shared_ptr<const Token>& seen);
  uint64_t issuedCount() const;

 private:
  ApnsTokenProvider(Options options, EvpKey key)
      : options_(std::move(options)), key_(std::move(key)) {}
  std::shared_ptr<const Token> issueLocked(std::chrono::system_clock::time_point now);

  Options options_;
  EvpKey key_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Token> token_;
  uint64_t issued_ = 0;
};

// One notification to one device.
struct ApnsNotification {
  std::string device_token;  // hex
  std::string payload;       // JSON
  std::string topic;         // the bundle id; the push type's suffix is added when missing
  std::string push_type = "alert";
  std::optional<int> priority;        // 10, 5 or 1
  std::optional<int64_t> expiration;  // unix seconds; 0 = once
  std::string collapse_id;            // ≤ 64 bytes
  std::string apns_id;                // a lowercase UUID, or empty for APNs to choose
};

// The topic APNs expects for a push type: "com.app" + ".voip" for voip, and so on.
std::string apnsTopicFor(std::string_view bundle_id, std::string_view push_type);
// 4096 bytes, 5120 for voip.
size_t apnsPayloadLimit(std::string_view push_type);

class ApnsClient : public PushClient<ApnsClient, ApnsNotification> {
 public:
  struct Options {
    http2::ClientPool::Options pool;  // host api.push.apple.com (or the simulator), port 443
    RetryOptions retry;
  };

  // `tokens` null: certificate auth (the pool's TLS context carries the client certificate).
  ApnsClient(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
             Options options, std::shared_ptr<ApnsTokenProvider> tokens);

  // Takes a notification to deliver by `deadline` (its time-to-live). False when the pool's
  // queue is full: call again after onSpace. Too-large payloads end at once
  // (InvalidNotificationSize) without a request.
  bool send(ApnsNotification notification, std::chrono::steady_clock::time_point deadline,
            Callback done);

  // PushClient's hooks.
  http2::ClientRequest build(Pending& pending);
  Classification classify(const http2::ClientResponse& response) const;
  bool authReady() const { return true; }  // provider tokens are signed locally
  void awaitAuth(std::function<void(std::optional<AuthError>)> ready) { ready(std::nullopt); }
  void refuseAuth(Pending& pending);

 private:
  static http2::ClientPool::Options poolOptions(http2::ClientPool::Options pool);

  std::shared_ptr<ApnsTokenProvider> tokens_;
  std::shared_ptr<const ApnsTokenProvider::Token> token_;  // this shard's copy
  std::chrono::system_clock::time_point token_checked_{};
};

}  // namespace pushhub::connectors
