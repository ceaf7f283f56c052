#include "api/azure_api.h"

#include "api/azure_common.h"
#include "api/multipart.h"
#include "common/json_parse.h"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/asio/steady_timer.hpp>

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <chrono>
#include <random>

#include "common/url.h"
#include "common/xml.h"
#include "connectors/classify.h"
#include "hub/outcomes.h"
#include "storage/installation_json.h"

namespace pushhub::api {

namespace asio = boost::asio;

namespace azure_detail {

std::string queryOf(const HttpRequest& request) {
  const std::string_view target = request.target();
  const size_t q = target.find('?');
  return q == std::string_view::npos ? std::string() : std::string(target.substr(q + 1));
}

std::optional<std::string> queryParam(const HttpRequest& request, std::string_view name) {
  auto fields = parseForm(queryOf(request));
  if (!fields) return std::nullopt;
  for (auto& [k, v] : *fields) {
    if (k == name) return std::move(v);
  }
  return std::nullopt;
}

bool hasQueryFlag(const HttpRequest& request, std::string_view name) {
  return queryParam(request, name).has_value();
}

std::string pathOf(const HttpRequest& request) {
  const std::string_view target = request.target();
  return std::string(target.substr(0, target.find('?')));
}

}  // namespace azure_detail

namespace {

constexpr uint32_t kTestSendDevices = 10;  // Azure's: "debug notifications are sent to 10 devices"

std::string_view azurePlatformName(storage::Platform platform) {
  switch (platform) {
    case storage::Platform::kApns: return "apple";
    case storage::Platform::kFcmV1: return "fcmv1";
    case storage::Platform::kWns: return "windows";
    default: return storage::platformName(platform);
  }
}

// Azure's answer to a test send: counts and one RegistrationResult per device. The JS SDK reads
// Results.RegistrationResult without checking it exists (quirk #10): Results is always there.
std::string notificationOutcomeXml(const std::vector<hub::TestResult>& results) {
  size_t success = 0;
  for (const auto& r : results) success += r.outcome == connectors::PnsOutcome::kSuccess;
  std::string out = fmt::format(
      "<NotificationOutcome xmlns=\"http://schemas.microsoft.com/netservices/2010/10/servicebus/"
      "connect\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><Success>{}</Success>"
      "<Failure>{}</Failure><Results>",
      success, results.size() - success);
  for (const auto& r : results) {
    out += "<RegistrationResult><ApplicationPlatform>";
    out += azurePlatformName(r.platform);
    out += "</ApplicationPlatform><PnsHandle>";
    appendXmlEscaped(out, r.handle);
    out += "</PnsHandle><RegistrationId>";
    appendXmlEscaped(out, r.installation_id);
    out += "</RegistrationId><Outcome>";
    if (r.outcome == connectors::PnsOutcome::kSuccess) {
      out += "The Notification was successfully sent to the Push Notification System";
    } else {
      appendXmlEscaped(out, connectors::outcomeName(r.outcome));
      if (!r.detail.empty()) {
        out += ": ";
        appendXmlEscaped(out, r.detail);
      }
    }
    out += "</Outcome></RegistrationResult>";
  }
  out += "</Results></NotificationOutcome>";
  return out;
}

std::string newTrackingId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t a = rng(), b = rng();
  return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff,
                     0x8000 | (b >> 48 & 0x3fff), b & 0xffffffffffffull);
}

}  // namespace

namespace azure_detail {

HttpResponse withBody(http::status status, std::string body, std::string_view content_type) {
  HttpResponse response{status, 11};
  response.set(http::field::content_type, content_type);
  response.body() = std::move(body);
  return response;
}

HttpResponse storeError(const storage::StoreError& error) {
  switch (error.code) {
    case storage::StoreError::Code::kInvalid:
      return azureError(http::status::bad_request, error.message);
    case storage::StoreError::Code::kNotFound:
      return azureError(http::status::not_found, error.message);
    case storage::StoreError::Code::kPreconditionFailed:
      return azureError(http::status::precondition_failed, error.message);
    case storage::StoreError::Code::kUnavailable: {
      auto response = azureError(http::status::service_unavailable, error.message);
      response.set(http::field::retry_after, "10");
      return response;
    }
    case storage::StoreError::Code::kStorage: break;
  }
  return azureError(http::status::internal_server_error, "storage failed: " + error.message);
}

}  // namespace azure_detail

using namespace azure_detail;

HttpResponse azureError(http::status status, std::string_view detail) {
  std::string body = fmt::format("<Error><Code>{}</Code><Detail>", static_cast<unsigned>(status));
  appendXmlEscaped(body, detail);
  body += "</Detail></Error>";
  return withBody(status, std::move(body), "application/xml; charset=utf-8");
}

AzureApi::AzureApi(hub::Engine& engine, storage::InstallationStore& installations,
                   const SasAuthenticator& auth, Options options)
    : engine_(engine), installations_(installations), auth_(auth), options_(std::move(options)) {
  if (!options_.now_seconds) {
    options_.now_seconds = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

void AzureApi::addRoutes(Router& router) {
  using V = http::verb;
  const auto bind = [this](auto method) { return bindRoute(this, method); };
  router.addPattern(V::put, "/{hub}/installations/{id}", bind(&AzureApi::putInstallation));
  router.addPattern(V::get, "/{hub}/installations/{id}", bind(&AzureApi::getInstallation));
  router.addPattern(V::patch, "/{hub}/installations/{id}", bind(&AzureApi::patchInstallation));
  router.addPattern(V::delete_, "/{hub}/installations/{id}", bind(&AzureApi::deleteInstallation));
  const auto sender = [this](SendKind kind) {
    return
        [this, kind](const HttpRequest& r, const PathParams& p) -> asio::awaitable<HttpResponse> {
          co_return co_await send(r, p, kind);
        };
  };
  router.addPattern(V::post, "/{hub}/messages", sender(SendKind::kSend));
  // Before /{hub}/messages/{id}: a literal segment, so that POST reaches it.
  router.addPattern(V::post, "/{hub}/messages/$batch", sender(SendKind::kBatch));
  router.addPattern(V::get, "/{hub}/messages/{id}", bind(&AzureApi::telemetry));
  router.addPattern(V::post, "/{hub}/schedulednotifications", sender(SendKind::kScheduled));
  router.addPattern(V::delete_, "/{hub}/schedulednotifications/{id}",
                    bind(&AzureApi::cancelScheduled));
  router.addPattern(V::post, "/{hub}/registrationIDs", bind(&AzureApi::newRegistrationId));
  addRegistrationRoutes(router);
}

std::optional<HttpResponse> AzureApi::refuse(const HttpRequest& request, const std::string& hub,
                                             uint8_t right) const {
  auto ok = auth_.check(request[http::field::authorization], request[http::field::host],
                        pathOf(request), hub, right, options_.now_seconds());
  if (!ok) {
    return azureError(
        ok.error().status == 403 ? http::status::forbidden : http::status::unauthorized,
        ok.error().detail);
  }
  if (!engine_.hasHub(hub)) {
    return azureError(http::status::not_found, fmt::format("hub \"{}\" does not exist", hub));
  }
  return std::nullopt;
}

asio::awaitable<std::expected<std::optional<storage::Installation>, storage::StoreError>>
AzureApi::readDevice(std::string hub, std::string id) {
  using Result = std::expected<std::optional<storage::Installation>, storage::StoreError>;
  return awaitCallback<Result>([this, hub = std::move(hub),
                                id = std::move(id)](std::function<void(Result)> done) {
    engine_.readInstallation(hub, id, [done = std::move(done)](Result&& r) { done(std::move(r)); });
  });
}

asio::awaitable<std::expected<storage::InstallationStore::Page, storage::StoreError>>
AzureApi::queryDevices(hub::InstallationQuery query) {
  using Result = std::expected<storage::InstallationStore::Page, storage::StoreError>;
  return awaitCallback<Result>(
      [this, query = std::move(query)](std::function<void(Result)> done) mutable {
        engine_.queryInstallations(std::move(query), std::move(done));
      });
}

std::string AzureApi::absoluteUrl(const HttpRequest& request, std::string_view path) const {
  return fmt::format("{}://{}{}", options_.scheme, std::string(request[http::field::host]), path);
}

HttpResponse AzureApi::written(
    const HttpRequest& request, const std::string& hub, const std::string& id,
    const std::expected<storage::WriteOutcome, storage::StoreError>& result) const {
  if (!result) return storeError(result.error());
  // PUT and PATCH: 200 (PATCH not the docs' 204: the JS SDK wants 200).
  HttpResponse response{http::status::ok, 11};
  response.set(http::field::content_location,
               absoluteUrl(request, fmt::format("/{}/installations/{}", hub, percentEncode(id))));
  return response;
}

asio::awaitable<HttpResponse> AzureApi::putInstallation(const HttpRequest& request,
                                                        const PathParams& params) {
  const std::string& hub = params.at("hub");
  const std::string& id = params.at("id");
  if (auto refused = refuse(request, hub, kListen)) co_return *refused;
  auto parsed = storage::parseInstallationJson(request.body());
  if (!parsed) co_return azureError(http::status::bad_request, parsed.error().message());
  if (parsed->id != id) {
    co_return azureError(
        http::status::bad_request,
        fmt::format("installationId \"{}\" does not match the URL's \"{}\"", parsed->id, id));
  }
  using Result = std::expected<storage::WriteOutcome, storage::StoreError>;
  Result result = co_await awaitCallback<Result>([&](std::function<void(Result)> done) {
    engine_.upsertInstallation(hub, std::move(*parsed),
                               [done = std::move(done)](Result&& r) { done(std::move(r)); });
  });
  co_return written(request, hub, id, result);
}

asio::awaitable<HttpResponse> AzureApi::getInstallation(const HttpRequest& request,
                                                        const PathParams& params) {
  const std::string& hub = params.at("hub");
  const std::string& id = params.at("id");
  if (auto refused = refuse(request, hub, kListen)) co_return *refused;
  auto result = co_await readDevice(hub, id);
  if (!result) co_return storeError(result.error());
  if (!*result) {
    co_return azureError(http::status::not_found,
                         fmt::format("installation \"{}\" does not exist", id));
  }
  co_return withBody(http::status::ok, storage::installationToJson(**result),
                     "application/json; charset=utf-8");
}

asio::awaitable<HttpResponse> AzureApi::patchInstallation(const HttpRequest& request,
                                                          const PathParams& params) {
  const std::string& hub = params.at("hub");
  const std::string& id = params.at("id");
  if (auto refused = refuse(request, hub, kListen)) co_return *refused;
  auto operations = storage::parsePatchJson(request.body());
  if (!operations) co_return azureError(http::status::bad_request, operations.error().message());
  using Result = std::expected<storage::WriteOutcome, storage::StoreError>;
  Result result = co_await awaitCallback<Result>([&](std::function<void(Result)> done) {
    engine_.patchInstallation(hub, id, std::move(*operations),
                              [done = std::move(done)](Result&& r) { done(std::move(r)); });
  });
  co_return written(request, hub, id, result);
}

asio::awaitable<HttpResponse> AzureApi::deleteInstallation(const HttpRequest& request,
                                                           const PathParams& params) {
  const std::string& hub = params.at("hub");
  const std::string& id = params.at("id");
  if (auto refused = refuse(request, hub, kListen)) co_return *refused;
  using Result = std::expected<bool, storage::StoreError>;
  Result result = co_await awaitCallback<Result>([&](std::function<void(Result)> done) {
    engine_.removeInstallation(hub, id,
                               [done = std::move(done)](Result&& r) { done(std::move(r)); });
  });
  if (!result) co_return storeError(result.error());
  co_return HttpResponse{http::status::no_content, 11};  // also when there was none
}

asio::awaitable<HttpResponse> AzureApi::send(const HttpRequest& request, const PathParams& params,
                                             SendKind kind) {
  const std::string& hub = params.at("hub");
  const bool scheduled = kind == SendKind::kScheduled;
  if (auto refused = refuse(request, hub, kSend)) co_return *refused;
  hub::Notification n;
  n.hub = hub;
  std::string_view body = request.body();
  std::vector<std::string> batch_handles;
  // Holds the parts `body` may view.
  std::expected<std::vector<MultipartPart>, std::string> parts;
  if (kind == SendKind::kBatch) {
    // multipart/mixed: the notification part, and the devices part (a JSON array of handles).
    auto boundary = multipartBoundary(request[http::field::content_type]);
    if (!boundary) co_return azureError(http::status::bad_request, boundary.error());
    parts = parseMultipart(request.body(), *boundary);
    if (!parts) co_return azureError(http::status::bad_request, parts.error());
    const MultipartPart* notification = nullptr;
    const MultipartPart* devices = nullptr;
    for (const auto& part : *parts) {
      for (auto [name, slot] : {std::pair{"notification", &notification}, {"devices", &devices}}) {
        if (part.name() != name) continue;
        if (*slot != nullptr) {
          co_return azureError(
              http::status::bad_request,
              fmt::format("a batch has one part named {}, this one has two", name));
        }
        *slot = &part;
      }
    }
    if (notification == nullptr || devices == nullptr) {
      co_return azureError(http::status::bad_request,
                           "a batch needs a part named notification and a part named devices "
                           "(Content-Disposition: inline; name=…)");
    }
    body = notification->body;
    rapidjson::Document doc;
    if (auto ok = parseJson(doc, devices->body); !ok) {
      co_return azureError(http::status::bad_request, "the devices part is not JSON " + ok.error());
    }
    if (!doc.IsArray()) {
      co_return azureError(http::status::bad_request,
                           "the devices part is not a JSON array of device handles");
    }
    for (const auto& handle : doc.GetArray()) {
      if (!handle.IsString() || handle.GetStringLength() == 0) {
        co_return azureError(http::status::bad_request,
                             "the devices part holds something other than a device handle");
      }
      batch_handles.emplace_back(handle.GetString(), handle.GetStringLength());
    }
  }
  const std::string_view format = request["ServiceBusNotification-Format"];
  if (format.empty()) {
    co_return azureError(http::status::bad_request,
                         "the ServiceBusNotification-Format header is missing");
  }
  if (auto ok = hub::parseFormat(format, n.content); !ok) {
    co_return azureError(http::status::bad_request, "ServiceBusNotification-Format: " + ok.error());
  }
  if (n.content.kind == hub::NotificationContent::Kind::kTemplate) {
    // A JSON object with only string properties.
    rapidjson::Document doc;
    if (auto ok = parseJson(doc, body); !ok) {
      co_return azureError(http::status::bad_request,
                           "a template notification's body is not JSON " + ok.error());
    }
    if (!doc.IsObject()) {
      co_return azureError(http::status::bad_request,
                           "a template notification's body is a JSON object of string properties");
    }
    for (const auto& m : doc.GetObject()) {
      if (!m.value.IsString()) {
        co_return azureError(http::status::bad_request,
                             fmt::format("property \"{}\" is not a string", m.name.GetString()));
      }
      n.content.properties.set(m.name.GetString(),
                               std::string(m.value.GetString(), m.value.GetStringLength()));
    }
  } else {
    n.content.body = std::string(body);
  }
  for (const auto& field : request) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name.starts_with("apns-") || name.starts_with("x-wns-")) {
      n.content.headers.emplace_back(std::move(name), std::string(field.value()));
    } else if (name == "servicebusnotification-apns-expiry") {
      n.content.headers.emplace_back("apns-expiration", std::string(field.value()));
    }
  }
  const std::string_view tags = request["ServiceBusNotification-Tags"];
  if (kind == SendKind::kBatch) {
    n.target = hub::TargetKind::kHandles;
    n.handles = std::move(batch_handles);
  } else if (hasQueryFlag(request, "direct")) {
    const std::string_view handle = request["ServiceBusNotification-DeviceHandle"];
    if (handle.empty()) {
      co_return azureError(http::status::bad_request,
                           "a direct send needs the ServiceBusNotification-DeviceHandle header");
    }
    n.target = hub::TargetKind::kHandles;
    n.handles = {std::string(handle)};
  } else if (!tags.empty()) {
    n.target = hub::TargetKind::kExpression;
    n.expression = std::string(tags);
  }
  if (scheduled) {
    const std::string_view when = request["ServiceBusNotification-ScheduleTime"];
    auto at = parseIso8601(when);
    if (!at) {
      co_return azureError(
          http::status::bad_request,
          "ServiceBusNotification-ScheduleTime is missing or not an ISO 8601 time");
    }
    n.scheduled_for = std::max<UnixMillis>(*at, 1);
  }
  // A test send (`&test` in the docs, test=true from the JS SDK): at most 10 devices, answered
  // with their results. Not for direct or scheduled sends (Azure has none).
  const bool test = kind == SendKind::kSend && n.target != hub::TargetKind::kHandles &&
                    hasQueryFlag(request, "test");
  if (test) n.max_targets = kTestSendDevices;
  auto accepted = engine_.send(std::move(n));
  if (!accepted) {
    const auto& e = accepted.error();
    const auto status = e.code == hub::SendError::Code::kInvalid ? http::status::bad_request
                        : e.code == hub::SendError::Code::kUnknownHub
                            ? http::status::not_found
                            : http::status::service_unavailable;
    co_return azureError(status, e.message);
  }
  HttpResponse response{http::status::created, 11};  // not the docs' 200: the JS SDK wants 201
  const std::string resource = scheduled ? "schedulednotifications" : "messages";
  response.set(http::field::location,
               absoluteUrl(request, fmt::format("/{}/{}/{}?api-version=2015-04", hub, resource,
                                                accepted->notification.id)));
  const std::string tracking = newTrackingId();
  response.set("TrackingId", tracking);
  response.set("x-ms-correlation-request-id", tracking);
  if (test) {
    const std::string& id = accepted->notification.id;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto results = engine_.testResults(hub, id);
    while (!results && std::chrono::steady_clock::now() < give_up) {
      timer.expires_after(std::chrono::milliseconds(5));
      co_await timer.async_wait(asio::use_awaitable);
      results = engine_.testResults(hub, id);
    }
    if (!results) {
      co_return azureError(
          http::status::gateway_timeout,
          fmt::format("the test send did not finish within 30 s; GET /{}/messages/{} shows it", hub,
                      id));
    }
    response.set(http::field::content_type, "application/xml; charset=utf-8");
    response.body() = notificationOutcomeXml(*results);
  }
  co_return response;
}

asio::awaitable<HttpResponse> AzureApi::telemetry(const HttpRequest& request,
                                                  const PathParams& params) {
  const std::string& hub = params.at("hub");
  const std::string& id = params.at("id");
  if (auto refused = refuse(request, hub, kManage)) co_return *refused;
  auto view = engine_.details(hub, id);
  if (!view) co_return azureError(http::status::internal_server_error, view.error());
  if (!*view) {
    co_return azureError(http::status::not_found,
                         fmt::format("notification \"{}\" does not exist", id));
  }
  hub::NotificationDetails details;
  details.id = id;
  details.location =
      absoluteUrl(request, fmt::format("/{}/messages/{}?api-version=2015-04", hub, id));
  details.state = (*view)->status.state;
  details.enqueue_time = (*view)->notification.enqueue_time;
  details.start_time = (*view)->status.start_time;
  details.end_time = (*view)->status.end_time;
  details.body = (*view)->notification.content.body;
  details.target_platforms = {(*view)->notification.formatName()};
  details.resends = (*view)->status.resends;
  hub::OutcomeTally tally;
  for (const auto& c : (*view)->status.counts) tally.add(c.platform, c.outcome, c.n);
  // pushhub's JSON form when asked for; Azure's XML otherwise.
  if (std::string_view(request[http::field::accept]).find("application/json") !=
      std::string_view::npos) {
    co_return withBody(http::status::ok, hub::notificationDetailsJson(details, tally),
                       "application/json; charset=utf-8");
  }
  co_return withBody(http::status::ok, hub::notificationDetailsXml(details, tally),
                     "application/xml; charset=utf-8");
}

asio::awaitable<HttpResponse> AzureApi::cancelScheduled(const HttpRequest& request,
                                                        const PathParams& params) {
  const std::string& hub = params.at("hub");
  const std::string& id = params.at("id");
  if (auto refused = refuse(request, hub, kSend)) co_return *refused;
  auto cancelled = engine_.cancel(hub, id);
  if (!cancelled) co_return azureError(http::status::internal_server_error, cancelled.error());
  if (!*cancelled) {
    co_return azureError(http::status::not_found,
                         fmt::format("no scheduled notification \"{}\" waits to be sent", id));
  }
  co_return HttpResponse{http::status::ok, 11};
}

asio::awaitable<HttpResponse> AzureApi::newRegistrationId(const HttpRequest& request,
                                                          const PathParams& params) {
  const std::string& hub = params.at("hub");
  if (auto refused = refuse(request, hub, kListen)) co_return *refused;
  // Nothing is stored until the registration itself is written.
  const std::string id = newRegistrationIdText();
  HttpResponse response{http::status::created, 11};
  // The JS SDK checks that the Location starts with "https://" literally, whatever the scheme.
  response.set(http::field::location,
               fmt::format("https://{}/{}/registrations/{}",
                           std::string(request[http::field::host]), hub, id));
  co_return response;
}

}  // namespace pushhub::api
