#pragma once

// The Azure Notification Hubs REST routes, as the official SDKs use them
// (../shared/reference/notification-hubs-api.md, its section 0 quirks by number):
//
//   PUT/GET/PATCH/DELETE /{hub}/installations/{id}   Listen; 200, 200, 200 (#2), 204 (#2)
//   POST /{hub}/messages                              Send; 201 (#1), absolute Location (#3)
//   POST /{hub}/messages/$batch?direct                Send; multipart/mixed (#7), ≤ 1000 handles
//   GET  /{hub}/messages/{id}                         Manage; NotificationDetails XML
//   POST /{hub}/schedulednotifications                Send; 201 + Location
//   DELETE /{hub}/schedulednotifications/{id}         Send; 200
//   POST /{hub}/registrationIDs                       Listen; 201, Location https://… (#4)
//   POST /{hub}/registrations                         Listen; 200 + Atom entry (new id)
//   PUT/GET/DELETE /{hub}/registrations/{id}          Listen; If-Match (ETag) → 412 on mismatch
//   GET  /{hub}/registrations?$filter&$top&continuationtoken   Manage; Atom feed
//   GET  /{hub}/tags/{tag}/registrations              Manage; Atom feed
//   GET  /{hub}/installations?tag&userId&top&continuation      Manage; pushhub's device query
//
// Errors are Azure's XML: <Error><Code>400</Code><Detail>…</Detail></Error> (#9). Installation
// writes are durable and indexed before the answer (the engine), so a GET after a PUT sees it
// (unlike #11).

#include <functional>
#include <string>

#include "api/http_server.h"
#include "api/sas.h"
#include "hub/engine.h"

namespace pushhub::api {

// <Error><Code>status</Code><Detail>detail</Detail></Error>, application/xml.
HttpResponse azureError(http::status status, std::string_view detail);

class AzureApi {
 public:
  struct Options {
    std::string scheme = "http";  // of absolute URLs in Location headers ("https" with TLS)
    std::function<int64_t()> now_seconds;  // default: the system clock
  };
  AzureApi(hub::Engine& engine, storage::InstallationStore& installations,
           const SasAuthenticator& auth, Options options);

  void addRoutes(Router& router);

 private:
  boost::asio::awaitable<HttpResponse> putInstallation(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> getInstallation(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> patchInstallation(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> deleteInstallation(const HttpRequest&, const PathParams&);
  enum class SendKind { kSend, kScheduled, kBatch };
  boost::asio::awaitable<HttpResponse> send(const HttpRequest&, const PathParams&, SendKind kind);
  boost::asio::awaitable<HttpResponse> telemetry(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> cancelScheduled(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> newRegistrationId(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> queryInstallations(const HttpRequest&, const PathParams&);
  // azure_registrations.cc
  void addRegistrationRoutes(Router& router);
  // 200, the Atom entry and its ETag.
  HttpResponse registrationResponse(const HttpRequest& request, const std::string& hub,
                                    const storage::Installation& registration) const;
  boost::asio::awaitable<HttpResponse> createRegistration(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> putRegistration(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> writeRegistration(const HttpRequest&, const std::string& hub,
                                                         std::string id, bool created_by_post);
  boost::asio::awaitable<HttpResponse> getRegistration(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> deleteRegistration(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> listRegistrations(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> listRegistrationsByTag(const HttpRequest&,
                                                              const PathParams&);
  boost::asio::awaitable<HttpResponse> registrationFeed(const HttpRequest&, const std::string& hub,
                                                        std::optional<std::string> tag);

  // The failure response when the request may not act on `hub` with `right`; nullopt when it
  // may.
  std::optional<HttpResponse> refuse(const HttpRequest& request, const std::string& hub,
                                     uint8_t right) const;
  std::string absoluteUrl(const HttpRequest& request, std::string_view path) const;
  // An installation or registration, read on its shard.
  boost::asio::awaitable<std::expected<std::optional<storage::Installation>, storage::StoreError>>
  readDevice(std::string hub, std::string id);
  // A page of a device query, visited on the shards.
  boost::asio::awaitable<std::expected<storage::InstallationStore::Page, storage::StoreError>>
  queryDevices(hub::InstallationQuery query);
  // The answer to an installation write.
  HttpResponse written(
      const HttpRequest& request, const std::string& hub, const std::string& id,
      const std::expected<storage::WriteOutcome, storage::StoreError>& result) const;

  hub::Engine& engine_;
  storage::InstallationStore& installations_;
  const SasAuthenticator& auth_;
  Options options_;
};

}  // namespace pushhub::api
