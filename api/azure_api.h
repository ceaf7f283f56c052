#pragma once

// The Azure Notification Hubs REST routes, as the official SDKs use them
// (../shared/reference/notification-hubs-api.md, its section 0 quirks by number):
//
//   PUT/GET/PATCH/DELETE /{hub}/installations/{id}   Listen; 200, 200, 200 (#2), 204 (#2)
//   POST /{hub}/messages                              Send; 201 (#1), absolute Location (#3)
//   GET  /{hub}/messages/{id}                         Manage; NotificationDetails XML
//   POST /{hub}/schedulednotifications                Send; 201 + Location
//   DELETE /{hub}/schedulednotifications/{id}         Send; 200
//   POST /{hub}/registrationIDs                       Listen; 201, Location https://… (#4)
//
// Errors are Azure's XML: <Error><Code>400</Code><Detail>…</Detail></Error> (#9). Installation
// writes run on the owning shard (the engine), so a GET after a PUT sees it (unlike #11).

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
  boost::asio::awaitable<HttpResponse> send(const HttpRequest&, const PathParams&, bool scheduled);
  boost::asio::awaitable<HttpResponse> telemetry(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> cancelScheduled(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> newRegistrationId(const HttpRequest&, const PathParams&);

  // The failure response when the request may not act on `hub` with `right`; nullopt when it
  // may.
  std::optional<HttpResponse> refuse(const HttpRequest& request, const std::string& hub,
                                     uint8_t right) const;
  std::string absoluteUrl(const HttpRequest& request, std::string_view path) const;
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
