#include "hub/connector_set.h"

#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include <algorithm>

#include "connectors/tls.h"

namespace pushhub::hub {

using connectors::DeliveryResult;
using connectors::PnsOutcome;

std::expected<std::shared_ptr<HubCredentials>, std::string> HubCredentials::create(
    HubDefinition definition, const ConnectorOptions& options) {
  std::shared_ptr<HubCredentials> c(new HubCredentials());
  c->options_ = options;
  connectors::TlsClientOptions tls;
  tls.extra_ca_file = definition.ca_file;
  tls.alpn = {"h2"};
  auto h2 = connectors::makeTlsClientContext(tls);
  if (!h2) return std::unexpected(h2.error());
  c->h2_tls_ = *h2;
  tls.alpn = {"http/1.1"};
  auto h1 = connectors::makeTlsClientContext(tls);
  if (!h1) return std::unexpected(h1.error());
  c->h1_tls_ = *h1;

  if (definition.apns && definition.apns->usesCertificate()) {
    // Certificate auth: APNs connections present the client certificate (FCM's do not).
    connectors::TlsClientOptions apns_tls;
    apns_tls.extra_ca_file = definition.ca_file;
    apns_tls.alpn = {"h2"};
    apns_tls.certificate = connectors::ClientCertificate{definition.apns->certificate_chain_pem,
                                                         definition.apns->certificate_key_pem};
    auto context = connectors::makeTlsClientContext(apns_tls);
    if (!context) return std::unexpected("apns: " + context.error());
    c->apns_tls_ = *context;
  } else if (definition.apns) {
    connectors::ApnsTokenProvider::Options o;
    o.key_id = definition.apns->key_id;
    o.team_id = definition.apns->team_id;
    auto provider = connectors::ApnsTokenProvider::create(o, definition.apns->private_key_pem);
    if (!provider) return std::unexpected("apns: " + provider.error());
    c->apns_tokens_ = *provider;
    c->apns_tls_ = c->h2_tls_;
  }
  if (definition.fcm) {
    auto account = connectors::parseServiceAccount(definition.fcm->service_account_json);
    if (!account) return std::unexpected("fcm.service_account: " + account.error());
    // The assertion's audience is the endpoint it is sent to.
    if (!definition.fcm->token_endpoint.empty())
      account->token_uri = definition.fcm->token_endpoint;
    c->fcm_project_ =
        definition.fcm->project_id.empty() ? account->project_id : definition.fcm->project_id;
    connectors::AccessTokenSource::Options o;
    o.token_url = account->token_uri;
    o.tls = c->h1_tls_;
    auto source = connectors::AccessTokenSource::create(o, [account = *account](auto now) {
      return connectors::serviceAccountForm(account, now, connectors::kFcmScope);
    });
    if (!source) return std::unexpected("fcm: " + source.error());
    c->fcm_tokens_ = *source;
    if (options.fcm_per_minute > 0) {
      c->fcm_limiter_ = std::make_shared<connectors::RateLimiter>(options.fcm_per_minute);
    }
  }
  if (definition.wns) {
    connectors::AccessTokenSource::Options o;
    o.token_url = definition.wns->token_endpoint;
    o.tls = c->h1_tls_;
    const std::string scope =
        definition.wns->usesEntra() ? "https://wns.windows.com/.default" : "notify.windows.com";
    auto source = connectors::AccessTokenSource::create(
        o, [sid = definition.wns->package_sid, secret = definition.wns->secret, scope](auto) {
          return std::expected<std::string, std::string>(
              connectors::clientCredentialsForm(sid, secret, scope));
        });
    if (!source) return std::unexpected("wns: " + source.error());
    c->wns_tokens_ = *source;
  }
  c->definition_ = std::move(definition);
  return c;
}

namespace {

// Connections an HTTP/2 pool may open: enough for the in-flight share at the stream cap (the cap
// bounds what one lost connection duplicates; more connections keep the throughput).
size_t http2Connections(const ConnectorOptions& o, size_t configured) {
  if (o.streams_per_connection == 0) return configured;
  return std::max(configured, (o.in_flight_per_service + o.streams_per_connection - 1) /
                                  o.streams_per_connection);
}

}  // namespace

ShardConnectors::ShardConnectors(boost::asio::io_context& io,
                                 std::shared_ptr<const HubCredentials> credentials)
    : io_(io), credentials_(std::move(credentials)) {}

ShardConnectors::~ShardConnectors() = default;

connectors::ApnsClient* ShardConnectors::apns() {
  if (apns_ || !credentials_->apns_tls_) return apns_.get();
  const auto& def = *credentials_->definition_.apns;
  const auto& o = credentials_->options_;
  connectors::ApnsClient::Options options;
  options.pool.connection.host = def.endpoint.host;
  options.pool.connection.port = def.endpoint.port;
  options.pool.connection.session.authority =
      def.endpoint.port == 443 ? def.endpoint.host
                               : fmt::format("{}:{}", def.endpoint.host, def.endpoint.port);
  options.pool.max_connections = http2Connections(o, o.apns_connections);
  options.pool.connection.session.max_concurrent_streams = o.streams_per_connection;
  options.pool.queue_capacity = o.queue_capacity;
  options.pool.metrics = o.metrics;
  options.pool.labels = {{"service", "apns"}, {"hub", credentials_->definition_.name}};
  options.retry = o.retry;
  apns_ = std::make_unique<connectors::ApnsClient>(io_, credentials_->apns_tls_, options,
                                                   credentials_->apns_tokens_);
  return apns_.get();
}

connectors::FcmClient* ShardConnectors::fcm() {
  if (fcm_ || !credentials_->fcm_tokens_) return fcm_.get();
  const auto& def = *credentials_->definition_.fcm;
  const auto& o = credentials_->options_;
  connectors::FcmClient::Options options;
  options.pool.connection.host = def.endpoint.host;
  options.pool.connection.port = def.endpoint.port;
  options.pool.connection.session.authority =
      def.endpoint.port == 443 ? def.endpoint.host
                               : fmt::format("{}:{}", def.endpoint.host, def.endpoint.port);
  options.pool.max_connections = http2Connections(o, o.fcm_connections);
  options.pool.connection.session.max_concurrent_streams = o.streams_per_connection;
  options.pool.queue_capacity = o.queue_capacity;
  options.pool.rate_limiter = credentials_->fcm_limiter_;
  options.pool.metrics = o.metrics;
  options.pool.labels = {{"service", "fcm"}, {"hub", credentials_->definition_.name}};
  options.project_id = credentials_->fcm_project_;
  options.retry = o.retry;
  fcm_ = std::make_unique<connectors::FcmClient>(io_, credentials_->h2_tls_, options,
                                                 credentials_->fcm_tokens_);
  return fcm_.get();
}

connectors::WnsClient* ShardConnectors::wns() {
  if (wns_ || !credentials_->wns_tokens_) return wns_.get();
  const auto& def = *credentials_->definition_.wns;
  const auto& o = credentials_->options_;
  connectors::WnsClient::Options options;
  options.pool.max_connections = o.wns_connections;
  options.pool.queue_capacity = o.queue_capacity;
  options.pool.metrics = o.metrics;
  options.pool.labels = {{"service", "wns"}, {"hub", credentials_->definition_.name}};
  options.allowed_host_suffix = def.channel_host_suffix;
  options.retry = o.retry;
  wns_ = std::make_unique<connectors::WnsClient>(io_, credentials_->h1_tls_, options,
                                                 credentials_->wns_tokens_);
  return wns_.get();
}

void ShardConnectors::refuse(Callback done, std::string why) {
  boost::asio::post(io_, [done = std::move(done), why = std::move(why)]() mutable {
    done(DeliveryResult{PnsOutcome::kInvalidCredentials, false, 0, std::move(why), 0});
  });
}

namespace {

// The Delivery alternative of a platform's service, or nullopt for platforms without one.
std::optional<size_t> serviceIndex(storage::Platform platform) {
  switch (platform) {
    case storage::Platform::kApns: return 0;
    case storage::Platform::kFcmV1: return 1;
    case storage::Platform::kWns: return 2;
    default: return std::nullopt;
  }
}

}  // namespace

size_t ShardConnectors::inFlight(storage::Platform platform) const {
  const auto service = serviceIndex(platform);
  return service ? in_flight_[*service] : 0;
}

bool ShardConnectors::stalled(storage::Platform platform, Clock::time_point now,
                              Clock::duration quiet) const {
  const auto service = serviceIndex(platform);
  return service && in_flight_[*service] > 0 && now - last_answer_[*service] > quiet;
}

bool ShardConnectors::send(Delivery&& delivery, Clock::time_point deadline, Callback done) {
  static_assert(
      std::is_same_v<std::variant_alternative_t<0, Delivery>, connectors::ApnsNotification> &&
      std::is_same_v<std::variant_alternative_t<1, Delivery>, connectors::FcmNotification> &&
      std::is_same_v<std::variant_alternative_t<2, Delivery>, connectors::WnsNotification>);
  const size_t service = delivery.index();
  if (in_flight_[service]++ == 0) last_answer_[service] = Clock::now();
  Callback counted = [this, service, done = std::move(done)](connectors::DeliveryResult&& result) {
    --in_flight_[service];
    last_answer_[service] = Clock::now();
    done(std::move(result));
  };
  const bool taken = dispatchTo(std::move(delivery), deadline, std::move(counted));
  if (!taken) --in_flight_[service];
  return taken;
}

bool ShardConnectors::dispatchTo(Delivery&& delivery, Clock::time_point deadline, Callback done) {
  return std::visit(
      [&](auto&& n) -> bool {
        using T = std::decay_t<decltype(n)>;
        if constexpr (std::is_same_v<T, connectors::ApnsNotification>) {
          auto* client = apns();
          if (client == nullptr) {
            refuse(std::move(done), "the hub has no APNs credential");
            return true;
          }
          return client->send(std::move(n), deadline, std::move(done));
        } else if constexpr (std::is_same_v<T, connectors::FcmNotification>) {
          auto* client = fcm();
          if (client == nullptr) {
            refuse(std::move(done), "the hub has no FCM credential");
            return true;
          }
          return client->send(std::move(n), deadline, std::move(done));
        } else {
          auto* client = wns();
          if (client == nullptr) {
            refuse(std::move(done), "the hub has no WNS credential");
            return true;
          }
          return client->send(std::move(n), deadline, std::move(done));
        }
      },
      std::move(delivery));
}

size_t ShardConnectors::pending() const {
  return (apns_ ? apns_->pending() : 0) + (fcm_ ? fcm_->pending() : 0) +
         (wns_ ? wns_->pending() : 0);
}

}  // namespace pushhub::hub
