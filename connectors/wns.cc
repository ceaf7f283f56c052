#include "connectors/wns.h"

#include <fmt/format.h>

namespace pushhub::connectors {
std::string wnsTypeOf(std::string_view payload) {
  size_t p = 0;
  // Skip whitespace, an XML declaration and comments.
  for (;;) {
    while (p < payload.size() && std::isspace(static_cast<unsigned char>(payload[p]))) ++p;
    if (payload.substr(p).starts_with("<?") || payload.substr(p).starts_with("<!--")) {
      const size_t end = payload.find('>', p);
      if (end == std::string_view::npos) return "wns/raw";
      p = end + 1;
      continue;
    }
    break;
  }
  for (std::string_view root : {"toast", "tile", "badge"}) {
    const std::string_view rest = payload.substr(std::min(p + 1, payload.size()));
    if (p < payload.size() && payload[p] == '<' && rest.starts_with(root) &&
        rest.size() > root.size() &&
        (rest[root.size()] == '>' || rest[root.size()] == '/' ||
         std::isspace(static_cast<unsigned char>(rest[root.size()])))) {
      return "wns/" + std::string(root);
    }
  }
  return "wns/raw";
}

WnsClient::WnsClient(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
                     Options options, std::shared_ptr<AccessTokenSource> tokens)
    : OAuthPushClient(io, std::move(tls), options.pool, options.retry, std::move(tokens)),
      options_(std::move(options)) {}

bool WnsClient::send(WnsNotification notification, Clock::time_point deadline, Callback done) {
  auto url = http1::parseHttpsUrl(notification.channel_uri);
  if (!url ||
      (!options_.endpoint_override && !(url->host.ends_with(options_.allowed_host_suffix)))) {
    reject(std::move(done),
           DeliveryResult{
               PnsOutcome::kBadChannel, true, 0,
               url ? fmt::format("channel host {} is not a WNS host", url->host) : url.error(), 0});
    return true;
  }
  if (notification.payload.size() > kWnsMaxPayload) {
    reject(std::move(done), DeliveryResult{PnsOutcome::kInvalidNotificationSize, false, 0,
                                           fmt::format("payload of {} bytes over WNS' {}",
                                                       notification.payload.size(), kWnsMaxPayload),
                                           0});
    return true;
  }
  if (notification.type.empty()) notification.type = wnsTypeOf(notification.payload);
  return admit(std::move(notification), deadline, std::move(done));
}

http2::ClientRequest WnsClient::build(Pending& pending) {
  const WnsNotification& n = pending.notification;
  http2::ClientRequest request;
  // The URI was checked in send(); the path and query go out exactly as given.
  auto url = http1::parseHttpsUrl(n.channel_uri);
  request.path = url->target;
  if (!options_.endpoint_override) request.authority = fmt::format("{}:{}", url->host, url->port);
  pending.auth = auth_.token();
  request.headers.reserve(8);
  request.headers.push_back({"Authorization", auth_.authorization()});
  request.headers.push_back(
      {"Content-Type", n.type == "wns/raw" ? "application/octet-stream" : "text/xml"});
  request.headers.push_back({"X-WNS-Type", n.type});
  if (n.ttl) request.headers.push_back({"X-WNS-TTL", std::to_string(*n.ttl)});
  if (!n.tag.empty()) request.headers.push_back({"X-WNS-Tag", n.tag});
  if (!n.cache_policy.empty()) request.headers.push_back({"X-WNS-Cache-Policy", n.cache_policy});
  if (n.request_for_status) request.headers.push_back({"X-WNS-RequestForStatus", "true"});
  if (n.priority) request.headers.push_back({"X-WNS-PRIORITY", std::to_string(*n.priority)});
  request.body = n.payload;
  return request;
}

Classification WnsClient::classify(const http2::ClientResponse& response) const {
  const auto header = [&](std::string_view name) -> std::string_view {
    const std::string* v = response.find(name);
    return v != nullptr ? std::string_view(*v) : std::string_view();
  };
  std::string_view status = header("x-wns-status");
  if (status.empty()) status = header("x-wns-notificationstatus");  // older name
  std::string_view wait = header("x-wns-continue-after");
  if (wait.empty()) wait = header("retry-after");
  return classifyWns(response.status, status, wait);
}

}  // namespace pushhub::connectors
