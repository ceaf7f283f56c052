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

ApnsClient::ApnsClient(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls,
                       Options options, std::shared_ptr<ApnsTokenProvider> tokens)
    : io_(io),
      options_(std::move(options)),
      tokens_(std::move(tokens)),
      pool_(
          io, std::move(tls),
          [&] {
            http2::ClientPool::Options pool = options_.pool;
            // Apple: never index :path, authorization, or the per-notification headers.
            pool.connection.session.never_index = {":path", "authorization", "apns-id",
                                                   "apns-expiration", "apns-collapse-id"};
            return pool;
          }(),
          [this](uint64_t tag, http2::StreamEnd end, http2::ClientResponse&& response) {
            onEnd(tag, end, std::move(response));
          }) {}

ApnsClient::~ApnsClient() { *alive_ = false; }

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
    pending.token = token_;
    request.headers.push_back({"authorization", token_->authorization});
  }
  request.headers.push_back({"apns-topic", apnsTopicFor(n.topic, n.push_type)});
  request.headers.push_back({"apns-push-type", n.push_type});
  if (n.priority) request.headers.push_back({"apns-priority", std::to_string(*n.priority)});
  if (n.expiration) request.headers.push_back({"apns-expiration", std::to_string(*n.expiration)});
  if (!n.collapse_id.empty()) request.headers.push_back({"apns-collapse-id", n.collapse_id});
  if (!n.apns_id.empty()) request.headers.push_back({"apns-id", n.apns_id});
  request.body = n.payload;
  ++pending.attempts;
  return request;
}

bool ApnsClient::send(ApnsNotification notification, Clock::time_point deadline, Callback done) {
  if (notification.payload.size() > apnsPayloadLimit(notification.push_type)) {
    DeliveryResult result;
    result.outcome = PnsOutcome::kInvalidNotificationSize;
    result.reason = fmt::format("payload of {} bytes over APNs' {}", notification.payload.size(),
                                apnsPayloadLimit(notification.push_type));
    asio::post(io_, [done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
    return true;
  }
  const uint64_t tag = next_tag_++;
  Pending& pending = pending_[tag];
  pending.notification = std::move(notification);
  pending.deadline = deadline;
  pending.done = std::move(done);
  if (!pool_.enqueue(build(pending), tag)) {
    pending_.erase(tag);
    return false;
  }
  return true;
}

void ApnsClient::finish(uint64_t tag, DeliveryResult&& result) {
  auto it = pending_.find(tag);
  if (it == pending_.end()) return;
  Callback done = std::move(it->second.done);
  result.attempts = it->second.attempts;
  pending_.erase(it);
  done(std::move(result));
}

void ApnsClient::retryLater(uint64_t tag, Pending& pending,
                            std::optional<std::chrono::seconds> delay, const Classification& why,
                            int status) {
  std::chrono::milliseconds wait;
  if (delay) {
    wait = *delay;
  } else {
    const unsigned shift = std::min(pending.attempts > 0 ? pending.attempts - 1 : 0, 16u);
    const int64_t ceiling =
        std::min<int64_t>(options_.backoff_max.count(), options_.backoff_initial.count() << shift);
    wait = std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(ceiling / 2, std::max<int64_t>(ceiling, 1))(rng_));
  }
  if (Clock::now() + wait >= pending.deadline) {
    // Azure's figure: what could not be delivered within its time-to-live is abandoned.
    finish(tag, DeliveryResult{PnsOutcome::kAbandoned, false, status,
                               fmt::format("time-to-live reached; last: {}", why.reason), 0});
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(io_, wait);
  timer->async_wait([this, alive = alive_, timer, tag](boost::system::error_code ec) {
    if (ec || !*alive) return;
    auto it = pending_.find(tag);
    if (it == pending_.end()) return;
    pool_.enqueue(build(it->second), tag, true);
  });
}

void ApnsClient::onEnd(uint64_t tag, http2::StreamEnd end, http2::ClientResponse&& response) {
  auto it = pending_.find(tag);
  if (it == pending_.end()) return;
  Pending& pending = it->second;
  if (end == http2::StreamEnd::kRefused || end == http2::StreamEnd::kConnectionLost) {
    // Never processed (or the connection went first): again, at once, on another connection.
    if (Clock::now() >= pending.deadline) {
      finish(tag, DeliveryResult{PnsOutcome::kAbandoned, false, 0,
                                 std::string(http2::streamEndName(end)), 0});
      return;
    }
    pool_.enqueue(build(pending), tag, true);
    return;
  }
  if (end == http2::StreamEnd::kReset) {
    retryLater(tag, pending, std::nullopt, classifyNoAnswer("stream reset or timed out"), 0);
    return;
  }
  Classification c = classifyApns(response.status, response.body);
  switch (c.action) {
    case Action::kDone:
    case Action::kDeadHandle:
      finish(tag, DeliveryResult{c.outcome, c.action == Action::kDeadHandle, response.status,
                                 std::move(c.reason), 0});
      return;
    case Action::kRetry: retryLater(tag, pending, c.retry_after, c, response.status); return;
    case Action::kRefreshAuth:
      if (tokens_ && !pending.auth_refreshed) {
        pending.auth_refreshed = true;
        token_ = tokens_->refuse(pending.token);
        token_checked_ = std::chrono::system_clock::now();
        pool_.enqueue(build(pending), tag, true);
        return;
      }
      finish(tag, DeliveryResult{c.outcome, false, response.status, std::move(c.reason), 0});
      return;
  }
}

}  // namespace pushhub::connectors
