#include "api/admin_api.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <rocksdb/db.h>

#include <chrono>
#include <filesystem>

#include "api/azure_common.h"
#include "common/json_parse.h"
#include "common/log.h"
#include "common/time.h"
#include "connectors/tls.h"

namespace pushhub::api {

using namespace azure_detail;

namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = moduleLogger("admin");
  return logger;
}

HttpResponse jsonReply(http::status status, std::string body) {
  return withBody(status, std::move(body), "application/json");
}

// "rules": [{"name": "…", "key": "…", "rights": "Listen,Send" or ["Listen", "Send"]}]
std::expected<std::vector<SasRule>, std::string> parseRules(const rapidjson::Document& doc) {
  std::vector<SasRule> rules;
  auto it = doc.FindMember("rules");
  if (it == doc.MemberEnd() || it->value.IsNull()) return rules;
  if (!it->value.IsArray()) return std::unexpected("rules: not an array");
  for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
    const auto& v = it->value[i];
    const std::string at = fmt::format("rules/{}", i);
    if (!v.IsObject()) return std::unexpected(at + ": not an object");
    SasRule rule;
    for (auto [field, out] : {std::pair{"name", &rule.name}, std::pair{"key", &rule.key}}) {
      auto m = v.FindMember(field);
      if (m == v.MemberEnd() || !m->value.IsString() || m->value.GetStringLength() == 0) {
        return std::unexpected(fmt::format("{}/{}: a non-empty string is required", at, field));
      }
      *out = m->value.GetString();
    }
    auto rights = v.FindMember("rights");
    std::string text;
    if (rights != v.MemberEnd() && rights->value.IsString()) {
      text = rights->value.GetString();
    } else if (rights != v.MemberEnd() && rights->value.IsArray()) {
      for (const auto& r : rights->value.GetArray()) {
        if (!r.IsString()) return std::unexpected(at + "/rights: names are strings");
        if (!text.empty()) text += ',';
        text += r.GetString();
      }
    } else {
      return std::unexpected(at + "/rights: \"Listen,Send,Manage\" or an array of them");
    }
    auto parsed = parseRights(text);
    if (!parsed) return std::unexpected(at + "/rights: " + parsed.error());
    rule.rights = *parsed;
    for (const auto& seen : rules) {
      if (seen.name == rule.name) return std::unexpected(at + "/name: \"" + rule.name + "\" twice");
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::string endpointUrl(const hub::Endpoint& e) {
  return e.port == 443 ? fmt::format("https://{}", e.host)
                       : fmt::format("https://{}:{}", e.host, e.port);
}

}  // namespace

AdminApi::AdminApi(hub::Engine& engine, storage::Database& database, SasAuthenticator& auth,
                   Options options)
    : engine_(engine), database_(database), auth_(auth), options_(std::move(options)) {
  if (!options_.now_seconds) {
    options_.now_seconds = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

std::expected<void, std::string> AdminApi::install(const std::string& hub, std::string_view json) {
  rapidjson::Document doc;
  if (auto ok = parseJson(doc, json); !ok)
    return std::unexpected("the body is not JSON " + ok.error());
  if (!doc.IsObject()) return std::unexpected("the body is not a JSON object");
  auto rules = parseRules(doc);
  if (!rules) return std::unexpected(rules.error());
  // Relative file names (private_key_file, ca_file …) are the server's working directory's.
  auto definition = hub::parseHubDefinition(hub, json, std::filesystem::current_path());
  if (!definition) return std::unexpected(definition.error());
  if (auto added = engine_.addHub(std::move(*definition)); !added) {
    return std::unexpected(added.error());
  }
  auth_.setHubRules(hub, *rules);
  std::lock_guard lock(rules_mutex_);
  hub_rules_[hub] = std::move(*rules);
  return {};
}

std::expected<size_t, std::string> AdminApi::loadStored() {
  std::unique_ptr<rocksdb::Iterator> it(database_.db().NewIterator(
      rocksdb::ReadOptions(), database_.handle(storage::ColumnFamily::kHubs)));
  size_t loaded = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string hub = it->key().ToString();
    if (options_.configured_hubs.contains(hub)) {
      log()->warn("hub {} is declared in the configuration file; its stored definition is ignored",
                  hub);
      continue;
    }
    if (auto ok = install(hub, it->value().ToStringView()); !ok) {
      return std::unexpected(fmt::format("stored hub {}: {}", hub, ok.error()));
    }
    ++loaded;
  }
  if (!it->status().ok()) return std::unexpected("reading stored hubs: " + it->status().ToString());
  return loaded;
}

void AdminApi::addRoutes(Router& router) {
  using V = http::verb;
  const auto bind = [this](auto method) { return bindRoute(this, method); };
  router.addPattern(V::put, "/admin/hubs/{hub}", bind(&AdminApi::putHub));
  router.addPattern(V::get, "/admin/hubs/{hub}", bind(&AdminApi::getHub));
  router.addPattern(V::delete_, "/admin/hubs/{hub}", bind(&AdminApi::deleteHub));
  router.add(V::get, "/admin/hubs", [this](const HttpRequest& r) -> asio::awaitable<HttpResponse> {
    co_return co_await listHubs(r);
  });
}

std::optional<HttpResponse> AdminApi::refuse(const HttpRequest& request) const {
  // Namespace-level rules only: a hub's own rules do not administer hubs.
  auto ok = auth_.check(request[http::field::authorization], request[http::field::host],
                        pathOf(request), "", kManage, options_.now_seconds());
  if (!ok) {
    return errorResponse(
        ok.error().status == 403 ? http::status::forbidden : http::status::unauthorized,
        ok.error().detail);
  }
  return std::nullopt;
}

std::optional<HttpResponse> AdminApi::refuseChange(const HttpRequest& request,
                                                   const std::string& hub) const {
  if (auto refused = refuse(request)) return refused;
  if (options_.configured_hubs.contains(hub)) {
    return errorResponse(
        http::status::conflict,
        fmt::format("hub {} is declared in the configuration file (engine.hubs); change it there",
                    hub));
  }
  return std::nullopt;
}

std::string AdminApi::describe(const std::string& hub) const {
  auto definition = engine_.hubDefinition(hub);
  if (!definition) return {};
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  const auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  str("name", hub);
  str("source", options_.configured_hubs.contains(hub) ? "configuration" : "api");
  if (!definition->ca_file.empty()) str("ca_file", definition->ca_file);
  if (definition->apns) {
    w.Key("apns");
    w.StartObject();
    const auto& apns = *definition->apns;
    if (apns.usesCertificate()) {
      // The certificate's public facts, never its key.
      str("auth", "certificate");
      if (auto info = connectors::describeClientCertificate(
              {apns.certificate_chain_pem, apns.certificate_key_pem})) {
        str("certificate_subject", info->subject);
        str("certificate_expires",
            formatIso8601(std::chrono::duration_cast<std::chrono::milliseconds>(
                              info->not_after.time_since_epoch())
                              .count()));
      }
    } else {
      str("auth", "token");
      str("key_id", apns.key_id);
      str("team_id", apns.team_id);
    }
    str("bundle_id", apns.bundle_id);
    str("endpoint", endpointUrl(definition->apns->endpoint));
    w.EndObject();
  }
  if (definition->fcm) {
    w.Key("fcm");
    w.StartObject();
    str("project_id", definition->fcm->project_id);
    str("endpoint", endpointUrl(definition->fcm->endpoint));
    if (!definition->fcm->token_endpoint.empty()) {
      str("token_endpoint", definition->fcm->token_endpoint);
    }
    w.EndObject();
  }
  if (definition->wns) {
    w.Key("wns");
    w.StartObject();
    str("package_sid", definition->wns->package_sid);
    if (!definition->wns->tenant_id.empty()) str("tenant_id", definition->wns->tenant_id);
    str("token_endpoint", definition->wns->token_endpoint);
    str("channel_host_suffix", definition->wns->channel_host_suffix);
    w.EndObject();
  }
  w.Key("rules");
  w.StartArray();
  {
    std::lock_guard lock(rules_mutex_);
    if (auto it = hub_rules_.find(hub); it != hub_rules_.end()) {
      for (const auto& rule : it->second) {
        w.StartObject();
        str("name", rule.name);
        str("rights", rightsText(rule.rights));
        w.EndObject();
      }
    }
  }
  w.EndArray();
  w.EndObject();
  return buffer.GetString();
}

asio::awaitable<HttpResponse> AdminApi::putHub(const HttpRequest& request,
                                               const PathParams& params) {
  const std::string& hub = params.at("hub");
  if (auto refused = refuseChange(request, hub)) co_return *refused;
  if (auto name = hub::validateHubName(hub); !name) {
    co_return errorResponse(http::status::bad_request, name.error());
  }
  const bool existed = engine_.hasHub(hub);
  if (auto ok = install(hub, request.body()); !ok) {
    co_return errorResponse(http::status::bad_request, ok.error());
  }
  const auto status =
      database_.db().Put(database_.writeOptions(), database_.handle(storage::ColumnFamily::kHubs),
                         hub, request.body());
  if (!status.ok()) {
    co_return errorResponse(http::status::internal_server_error,
                            "storing the hub failed: " + status.ToString());
  }
  log()->info("hub {} {} through the admin API", hub, existed ? "replaced" : "created");
  co_return jsonReply(existed ? http::status::ok : http::status::created, describe(hub));
}

asio::awaitable<HttpResponse> AdminApi::getHub(const HttpRequest& request,
                                               const PathParams& params) {
  if (auto refused = refuse(request)) co_return *refused;
  const std::string& hub = params.at("hub");
  std::string body = describe(hub);
  if (body.empty()) {
    co_return errorResponse(http::status::not_found, fmt::format("hub {} does not exist", hub));
  }
  co_return jsonReply(http::status::ok, std::move(body));
}

asio::awaitable<HttpResponse> AdminApi::listHubs(const HttpRequest& request) {
  if (auto refused = refuse(request)) co_return *refused;
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("hubs");
  w.StartArray();
  for (const auto& name : engine_.hubNames()) {
    w.StartObject();
    w.Key("name");
    w.String(name.c_str());
    w.Key("source");
    w.String(options_.configured_hubs.contains(name) ? "configuration" : "api");
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  co_return jsonReply(http::status::ok, buffer.GetString());
}

asio::awaitable<HttpResponse> AdminApi::deleteHub(const HttpRequest& request,
                                                  const PathParams& params) {
  const std::string& hub = params.at("hub");
  if (auto refused = refuseChange(request, hub)) co_return *refused;
  if (!engine_.hasHub(hub)) {
    co_return errorResponse(http::status::not_found, fmt::format("hub {} does not exist", hub));
  }
  // Devices first, the record last: a crash midway leaves the hub declared (it comes back at
  // start), and deleting it again finishes the job.
  using Result = std::expected<uint64_t, std::string>;
  Result removed = co_await awaitCallback<Result>([&](std::function<void(Result)> done) {
    engine_.removeHub(hub, [done = std::move(done)](Result&& r) { done(std::move(r)); });
  });
  if (!removed) co_return errorResponse(http::status::internal_server_error, removed.error());
  auth_.setHubRules(hub, {});
  {
    std::lock_guard lock(rules_mutex_);
    hub_rules_.erase(hub);
  }
  const auto status = database_.db().Delete(database_.writeOptions(),
                                            database_.handle(storage::ColumnFamily::kHubs), hub);
  if (!status.ok()) {
    co_return errorResponse(http::status::internal_server_error,
                            "deleting the hub's record failed: " + status.ToString());
  }
  log()->info("hub {} deleted with its {} devices", hub, *removed);
  co_return jsonReply(http::status::ok,
                      fmt::format(R"({{"name":"{}","devices_deleted":{}}})", hub, *removed));
}

}  // namespace pushhub::api
