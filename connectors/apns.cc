#include "connectors/apns.h"

#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include "common/json.h"
#include "connectors/apns_protocol.h"

namespace pushhub::connectors {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

std::expected<std::shared_ptr<ApnsTokenProvider>, std::string> ApnsTokenProvider::create(
    Options options, std::string_view p8_pem) {
  auto key = loadPrivateKeyPem(p8_pem);
  if (!key) return std::unexpected("APNs key: " + key.error());
  if (EVP_PKEY_get_base_id(key->get()) != EVP_PKEY_EC) {
    return std::unexpected("APNs key: not an EC (P-256) key");
  }
  if (options.key_id.empty() || options.team_id.empty()) {
    return std::unexpected("APNs key: the key id and team id are required");
  }
  return std::shared_ptr<ApnsTokenProvider>(
      new ApnsTokenProvider(std::move(options), std::move(*key)));
}

std::shared_ptr<const ApnsTokenProvider::Token> ApnsTokenProvider::issueLocked(
    std::chrono::system_clock::time_point now) {
  const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  auto jwt =
      signJwt(fmt::format(R"({{"alg":"ES256","kid":{}}})", jsonQuoted(options_.key_id)),
              fmt::format(R"({{"iss":{},"iat":{}}})", jsonQuoted(options_.team_id), iat.count()),
              key_.get(), JwtAlgorithm::kEs256);
  if (!jwt) return token_;  // signing does not fail with a loaded key; keep what there is
  token_ = std::make_shared<const Token>(Token{"bearer " + *jwt, now});
  ++issued_;
  return token_;
}

std::shared_ptr<const ApnsTokenProvider::Token> ApnsTokenProvider::current() {
  const auto now = options_.clock();
  std::lock_guard lock(mutex_);
  if (!token_ || now - token_->issued >= options_.refresh_after) return issueLocked(now);
  return token_;
}

std::shared_ptr<const ApnsTokenProvider::Token> ApnsTokenProvider::refuse(
    const std::shared_ptr<const Token>& seen) {
  const auto now = options_.clock();
  std::lock_guard lock(mutex_);
  if (!token_) return issueLocked(now);
  if (seen && token_ != seen) return token_;  // already renewed by someone else
  if (now - token_->issued < options_.min_interval) return token_;
  return issueLocked(now);
}

uint64_t ApnsTokenProvider::issuedCount() const {
  std::lock_guard lock(mutex_);
  return issued_;
}

std::string apnsTopicFor(std::string_view bundle_id, std::string_view push_type) {
  const ApnsPushType* type = findApnsPushType(push_type);
  if (type == nullptr || type->topic_suffix.empty() || bundle_id.ends_with(type->topic_suffix)) {
    return std::string(bundle_id);
  }
  return std::string(bundle_id) + std::string(type->topic_suffix);
}

size_t apnsPayloadLimit(std::string_view push_type) {
  return push_type == "voip" ? kApnsMaxVoipPayload : kApnsMaxPayload;
}

http2::ClientPool::Options ApnsClient::poolOptions(http2::ClientPool::Options pool) {
  // Apple: never index :path, authorization, or the per-notification headers.
  pool.connection.session.never_index = {":path", "authorization", "apns-id", "apns-expiration",
                                         "apns-collapse-id"};
  return pool;
}

ApnsClient::ApnsClient(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls,
                       Options options, std::shared_ptr<ApnsTokenProvider> tokens)
    : PushClient(io, std::move(tls), poolOptions(std::move(options.pool)), options.retry),
      tokens_(std::move(tokens)) {}

http2::ClientRequest ApnsClient::build(Pending& pending) {
  const ApnsNotification& n = pending.notification;
  http2::ClientRequest request;
  request.path = "/3/device/" + n.device_token;
  request.headers.reserve(7);
  if (tokens_) {
    const auto now = std::chrono::system_clock::now();
    if (!token_ || now - token_checked_ > std::chrono::seconds(1)) {
      token_ = tokens_->current();
      token_checked_ = now;
    }
    pending.auth = token_;
    request.headers.push_back({"authorization", token_->authorization});
  }
  // No topic (a certificate without a UID): APNs takes the certificate's own.
  if (!n.topic.empty())
    request.headers.push_back({"apns-topic", apnsTopicFor(n.topic, n.push_type)});
  request.headers.push_back({"apns-push-type", n.push_type});
  if (n.priority) request.headers.push_back({"apns-priority", std::to_string(*n.priority)});
  if (n.expiration) request.headers.push_back({"apns-expiration", std::to_string(*n.expiration)});
  if (!n.collapse_id.empty()) request.headers.push_back({"apns-collapse-id", n.collapse_id});
  if (!n.apns_id.empty()) request.headers.push_back({"apns-id", n.apns_id});
  request.body = n.payload;
  return request;
}

Classification ApnsClient::classify(const http2::ClientResponse& response) const {
  return classifyApns(response.status, response.body);
}

void ApnsClient::refuseAuth(Pending& pending) {
  if (!tokens_) return;
  token_ = tokens_->refuse(std::static_pointer_cast<const ApnsTokenProvider::Token>(pending.auth));
  token_checked_ = std::chrono::system_clock::now();
}

bool ApnsClient::send(ApnsNotification notification, Clock::time_point deadline, Callback done) {
  if (notification.payload.size() > apnsPayloadLimit(notification.push_type)) {
    reject(std::move(done), DeliveryResult{PnsOutcome::kInvalidNotificationSize, false, 0,
                                           fmt::format("payload of {} bytes over APNs' {}",
                                                       notification.payload.size(),
                                                       apnsPayloadLimit(notification.push_type)),
                                           0});
    return true;
  }
  return admit(std::move(notification), deadline, std::move(done));
}

}  // namespace pushhub::connectors
