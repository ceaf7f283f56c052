#include "connectors/fcm.h"

#include <fmt/format.h>

#include "common/json.h"
#include "connectors/fcm_protocol.h"

namespace pushhub::connectors {

FcmClient::FcmClient(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
                     Options options, std::shared_ptr<AccessTokenSource> tokens)
    : OAuthPushClient(io, std::move(tls), std::move(options.pool), options.retry,
                      std::move(tokens)),
      path_(fmt::format("/v1/projects/{}/messages:send", options.project_id)) {}

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
  pending.auth = auth_.token();
  request.headers = {{"authorization", auth_.authorization()},
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

}  // namespace pushhub::connectors
