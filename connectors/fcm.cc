#include "connectors/fcm.h"

#include <fmt/format.h>

#include "common/json.h"
#include "connectors/fcm_protocol.h"

namespace pushhub::connectors {

FcmClient::FcmClient(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
                     Options options, std::shared_ptr<AccessTokenSource> tokens)
    : PushClient(io, std::move(tls), std::move(options.pool), options.retry),
      path_(fmt::format("/v1/projects/{}/messages:send", options.project_id)),
      tokens_(std::move(tokens)) {}

bool FcmClient::send(FcmNotification notification, Clock::time_point deadline, Callback done) {
  std::string_view message = notification.message_json;
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.front()))) {
    message.remove_prefix(1);
  }
  const auto size = fcmPayloadSize(message, kFcmMaxMessage);
  if (!size || !message.starts_with('{')) {
    reject(std::move(done), DeliveryResult{PnsOutcome::kInvalidNotificationFormat, false, 0,
                                           "the FCM message is not a JSON object", 0});
    return true;
  }
  if (*size > kFcmMaxMessage) {
    reject(
        std::move(done),
        DeliveryResult{PnsOutcome::kInvalidNotificationSize, false, 0,
                       fmt::format("payload of {} bytes over FCM's {}", *size, kFcmMaxMessage), 0});
    return true;
  }
  return admit(std::move(notification), deadline, std::move(done));
}

http2::ClientRequest FcmClient::build(Pending& pending) {
  const FcmNotification& n = pending.notification;
  http2::ClientRequest request;
  request.path = path_;
  pending.auth = token_;
  request.headers = {{"authorization", token_ ? token_->authorization : std::string()},
                     {"content-type", "application/json; charset=UTF-8"}};
  // {"message":{"token":"…", <the message's own members>}}: no parse per device.
  std::string_view inner = n.message_json;
  while (!inner.empty() && inner.front() != '{') inner.remove_prefix(1);
  inner.remove_prefix(1);  // '{'
  size_t first = 0;
  while (first < inner.size() && std::isspace(static_cast<unsigned char>(inner[first]))) ++first;
  const bool empty_object = first < inner.size() && inner[first] == '}';
  request.body.reserve(n.message_json.size() + n.device_token.size() + 48);
  request.body +=
      n.validate_only ? R"({"validate_only":true,"message":{"token":)" : R"({"message":{"token":)";
  request.body += jsonQuoted(n.device_token);
  if (!empty_object) request.body += ',';
  request.body.append(inner);
  request.body += '}';
  return request;
}

Classification FcmClient::classify(const http2::ClientResponse& response) const {
  const std::string* retry_after = response.find("retry-after");
  return classifyFcm(response.status, response.body,
                     retry_after != nullptr ? std::string_view(*retry_after) : "");
}

bool FcmClient::authReady() {
  // Re-read the shared source only when this shard's copy is due (it renews ahead of expiry).
  if (token_ && token_->usable(std::chrono::system_clock::now(), std::chrono::seconds(300))) {
    return true;
  }
  token_ = tokens_->current();
  return token_ != nullptr;
}

void FcmClient::awaitAuth(std::function<void(std::optional<std::string>)> ready) {
  // The callback may outlive this client: it only passes the word on (PushClient checks), and
  // authReady() picks the token up from the shared source.
  tokens_->get(io(), [ready = std::move(ready)](
                         std::expected<std::shared_ptr<const AccessToken>, std::string> result) {
    ready(result ? std::nullopt : std::optional<std::string>(result.error()));
  });
}

void FcmClient::refuseAuth(Pending& pending) {
  tokens_->refuse(std::static_pointer_cast<const AccessToken>(pending.auth));
  token_.reset();
}

}  // namespace pushhub::connectors
