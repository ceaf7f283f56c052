#pragma once

// pushhub's own administration routes (not Azure's), namespace-level Manage right:
//
//   PUT    /admin/hubs/{hub}   create (201) or replace (200) a hub: its push-service credentials
//                              (the hub definition JSON of hub/hub_definition.h) and its SAS rules
//                              {"rules":[{"name","key","rights":"Listen,Send"}]}
//   GET    /admin/hubs/{hub}   the hub without secrets (keys, private keys, service accounts)
//   GET    /admin/hubs         the hubs' names and where each is declared
//   DELETE /admin/hubs/{hub}   removes the hub and deletes its devices
//
// Hubs put through the API are stored in the database (the hubs column family) and come back at
// start; hubs declared in the configuration file (engine.hubs) are read-only here. Errors are
// JSON {"error": "..."} naming the field. api/openapi.yaml documents the routes.

#include <functional>
#include <set>
#include <string>

#include "api/http_server.h"
#include "api/sas.h"
#include "hub/engine.h"
#include "storage/database.h"

namespace pushhub::api {

class AdminApi {
 public:
  struct Options {
    std::set<std::string> configured_hubs;  // declared in the configuration file
    std::function<int64_t()> now_seconds;   // default: the system clock
  };
  AdminApi(hub::Engine& engine, storage::Database& database, SasAuthenticator& auth,
           Options options);

  // Adds the hubs an earlier run stored (before the engine starts). Answers how many.
  std::expected<size_t, std::string> loadStored();
  void addRoutes(Router& router);

 private:
  boost::asio::awaitable<HttpResponse> putHub(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> getHub(const HttpRequest&, const PathParams&);
  boost::asio::awaitable<HttpResponse> listHubs(const HttpRequest&);
  boost::asio::awaitable<HttpResponse> deleteHub(const HttpRequest&, const PathParams&);
  std::optional<HttpResponse> refuse(const HttpRequest& request) const;
  // refuse(), and 409 for a hub of the configuration file.
  std::optional<HttpResponse> refuseChange(const HttpRequest& request,
                                           const std::string& hub) const;
  // Parses a stored or submitted document and installs it: engine credentials, SAS rules.
  std::expected<void, std::string> install(const std::string& hub, std::string_view json);
  std::string describe(const std::string& hub) const;

  hub::Engine& engine_;
  storage::Database& database_;
  SasAuthenticator& auth_;
  Options options_;
  mutable std::mutex rules_mutex_;
  std::map<std::string, std::vector<SasRule>, std::less<>> hub_rules_;  // for GET, keys kept
};

}  // namespace pushhub::api
