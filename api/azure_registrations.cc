// The registration routes of AzureApi (Atom XML) and pushhub's device query.

#include <fmt/format.h>

#include <charconv>
#include <random>

#include "api/azure_api.h"
#include "api/azure_common.h"
#include "api/registration_xml.h"
#include "common/url.h"
#include "storage/installation_json.h"

namespace pushhub::api {

using namespace azure_detail;

namespace {

constexpr std::string_view kAtomEntry = "application/atom+xml;type=entry;charset=utf-8";
constexpr std::string_view kAtomFeed = "application/atom+xml;type=feed;charset=utf-8";
constexpr size_t kDefaultTop = 100;
constexpr size_t kMaxTop = 1000;

// If-Match as the SDKs send it: "*", an ETag with or without quotes (W/ tolerated).
std::optional<std::string> ifMatch(const HttpRequest& request) {
  std::string_view value = request[http::field::if_match];
  if (value.empty()) return std::nullopt;
  if (value.starts_with("W/")) value.remove_prefix(2);
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  return std::string(value);
}

storage::StoreError notARegistration(const std::string& id) {
  return {storage::StoreError::Code::kNotFound,
          fmt::format("registration \"{}\" does not exist", id),
          {}};
}

// The precondition of a conditional write or delete.
hub::Engine::Precondition etagCheck(std::string id, std::optional<std::string> expected,
                                    bool must_exist) {
  return [id = std::move(id), expected = std::move(expected),
          must_exist](const std::optional<storage::Installation>& stored)
             -> std::optional<storage::StoreError> {
    if (stored && stored->kind != storage::DeviceKind::kRegistration) {
      return storage::StoreError{
          storage::StoreError::Code::kInvalid,
          fmt::format("\"{}\" is an installation, not a registration: use /installations/{}", id,
                      id),
          {}};
    }
    if (!stored) {
      // If-Match (even "*") names an existing registration.
      if (must_exist || expected) return notARegistration(id);
      return std::nullopt;
    }
    if (expected && *expected != "*" && *expected != std::to_string(stored->version)) {
      return storage::StoreError{
          storage::StoreError::Code::kPreconditionFailed,
          fmt::format("registration \"{}\" has ETag {}, not {}: it changed since it was read", id,
                      stored->version, *expected),
          {}};
    }
    return std::nullopt;
  };
}

std::optional<size_t> parseTop(const std::optional<std::string>& text, std::string& problem) {
  if (!text) return kDefaultTop;
  size_t top = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), top);
  if (ec != std::errc() || end != text->data() + text->size() || top == 0 || top > kMaxTop) {
    problem = fmt::format("'{}' is not a page size from 1 to {}", *text, kMaxTop);
    return std::nullopt;
  }
  return top;
}

}  // namespace

std::string azure_detail::newRegistrationIdText() {
  // Azure's form: two 63-bit numbers and a sequence ("7619785862101227384-7840974832647865618-3").
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{}-1", rng() >> 1, rng() >> 1);
}

HttpResponse AzureApi::registrationResponse(const HttpRequest& request, const std::string& hub,
                                            const storage::Installation& registration) const {
  HttpResponse response =
      withBody(http::status::ok,
               registrationEntryXml(registration, absoluteUrl(request, "/" + hub)), kAtomEntry);
  response.set(http::field::etag, fmt::format("\"{}\"", registration.version));
  return response;
}

void AzureApi::addRegistrationRoutes(Router& router) {
  using V = http::verb;
  const auto bind = [this](auto method) { return bindRoute(this, method); };
  router.addPattern(V::post, "/{hub}/registrations", bind(&AzureApi::createRegistration));
  router.addPattern(V::get, "/{hub}/registrations", bind(&AzureApi::listRegistrations));
  router.addPattern(V::put, "/{hub}/registrations/{id}", bind(&AzureApi::putRegistration));
  router.addPattern(V::get, "/{hub}/registrations/{id}", bind(&AzureApi::getRegistration));
  router.addPattern(V::delete_, "/{hub}/registrations/{id}", bind(&AzureApi::deleteRegistration));
  router.addPattern(V::get, "/{hub}/tags/{tag}/registrations",
                    bind(&AzureApi::listRegistrationsByTag));
  router.addPattern(V::get, "/{hub}/installations", bind(&AzureApi::queryInstallations));
}

asio::awaitable<HttpResponse> AzureApi::createRegistration(const HttpRequest& request,
                                                           const PathParams& params) {
  co_return co_await writeRegistration(request, params.at("hub"), newRegistrationIdText(), true);
}

asio::awaitable<HttpResponse> AzureApi::putRegistration(const HttpRequest& request,
                                                        const PathParams& params) {
  co_return co_await writeRegistration(request, params.at("hub"), params.at("id"), false);
}

asio::awaitable<HttpResponse> AzureApi::writeRegistration(const HttpRequest& request,
                                                          const std::string& hub, std::string id,
                                                          bool created_by_post) {
  if (auto refused = refuse(request, hub, kListen)) co_return *refused;
  auto parsed = parseRegistrationXml(request.body());
  if (!parsed) co_return azureError(http::status::bad_request, parsed.error());
  if (!created_by_post && !parsed->id.empty() && parsed->id != id) {
    co_return azureError(
        http::status::bad_request,
        fmt::format("RegistrationId \"{}\" does not match the URL's \"{}\"", parsed->id, id));
  }
  parsed->id = id;
  if (auto unnamed = parsed->templates.find(""); unnamed != parsed->templates.end()) {
    auto node = parsed->templates.extract(unnamed);
    node.key() = id;
    parsed->templates.insert(std::move(node));
  }
  using Result = std::expected<storage::WriteOutcome, storage::StoreError>;
  Result result = co_await awaitCallback<Result>([&](std::function<void(Result)> done) {
    engine_.upsertInstallationIf(hub, std::move(*parsed), etagCheck(id, ifMatch(request), false),
                                 [done = std::move(done)](Result&& r) { done(std::move(r)); });
  });
  if (!result) co_return storeError(result.error());
  HttpResponse response = registrationResponse(request, hub, result->installation);
  response.set(http::field::content_location,
               absoluteUrl(request, fmt::format("/{}/registrations/{}", hub, percentEncode(id))));
  co_return response;
}

asio::awaitable<HttpResponse> AzureApi::getRegistration(const HttpRequest& request,
                                                        const PathParams& params) {
  const std::string& hub = params.at("hub");
  const std::string& id = params.at("id");
  if (auto refused = refuse(request, hub, kListen)) co_return *refused;
  auto result = co_await readDevice(hub, id);
  if (!result) co_return storeError(result.error());
  if (!*result || (*result)->kind != storage::DeviceKind::kRegistration) {
    co_return storeError(notARegistration(id));
  }
  co_return registrationResponse(request, hub, **result);
}

asio::awaitable<HttpResponse> AzureApi::deleteRegistration(const HttpRequest& request,
                                                           const PathParams& params) {
  const std::string& hub = params.at("hub");
  const std::string& id = params.at("id");
  if (auto refused = refuse(request, hub, kListen)) co_return *refused;
  using Result = std::expected<bool, storage::StoreError>;
  Result result = co_await awaitCallback<Result>([&](std::function<void(Result)> done) {
    engine_.removeInstallationIf(hub, id, etagCheck(id, ifMatch(request), true),
                                 [done = std::move(done)](Result&& r) { done(std::move(r)); });
  });
  if (!result) co_return storeError(result.error());
  co_return HttpResponse{http::status::ok, 11};
}

asio::awaitable<HttpResponse> AzureApi::listRegistrations(const HttpRequest& request,
                                                          const PathParams& params) {
  co_return co_await registrationFeed(request, params.at("hub"), std::nullopt);
}

asio::awaitable<HttpResponse> AzureApi::listRegistrationsByTag(const HttpRequest& request,
                                                               const PathParams& params) {
  co_return co_await registrationFeed(request, params.at("hub"), params.at("tag"));
}

asio::awaitable<HttpResponse> AzureApi::registrationFeed(const HttpRequest& request,
                                                         const std::string& hub,
                                                         std::optional<std::string> tag) {
  if (auto refused = refuse(request, hub, kManage)) co_return *refused;
  std::string problem;
  const auto top = parseTop(queryParam(request, "$top"), problem);
  if (!top) co_return azureError(http::status::bad_request, "$top: " + problem);
  std::string continuation = queryParam(request, "continuationtoken")
                                 .value_or(queryParam(request, "ContinuationToken").value_or(""));
  std::vector<storage::Installation> registrations;
  std::string next;
  const auto filter = queryParam(request, "$filter");
  if (filter && !filter->empty()) {
    // A channel's registrations: few, found through the handle index.
    auto channel = parseChannelFilter(*filter);
    if (!channel) co_return azureError(http::status::bad_request, channel.error());
    auto ids = installations_.registrationsWithHandle(hub, channel->platform, channel->handle);
    if (!ids) co_return storeError(ids.error());
    for (const auto& id : *ids) {
      auto one = co_await readDevice(hub, id);
      if (!one) co_return storeError(one.error());
      if (*one && (*one)->kind == storage::DeviceKind::kRegistration) {
        registrations.push_back(std::move(**one));
      }
    }
  } else {
    hub::InstallationQuery query;
    query.hub = hub;
    if (tag) {
      auto expression = storage::TagExpression::parse(*tag);
      if (!expression) {
        co_return azureError(http::status::bad_request, fmt::format("'{}' is not a tag: {}", *tag,
                                                                    expression.error().message));
      }
      query.expression.emplace(std::move(*expression));
    }
    query.keep = [](const storage::Installation& i) {
      return i.kind == storage::DeviceKind::kRegistration;
    };
    query.continuation = std::move(continuation);
    query.limit = *top;
    auto page = co_await queryDevices(std::move(query));
    if (!page) co_return storeError(page.error());
    registrations = std::move(page->installations);
    next = std::move(page->continuation);
  }
  HttpResponse response =
      withBody(http::status::ok,
               registrationFeedXml(registrations, absoluteUrl(request, "/" + hub),
                                   absoluteUrl(request, std::string(request.target()))),
               kAtomFeed);
  if (!next.empty()) response.set("x-ms-continuationtoken", next);
  co_return response;
}

asio::awaitable<HttpResponse> AzureApi::queryInstallations(const HttpRequest& request,
                                                           const PathParams& params) {
  const std::string& hub = params.at("hub");
  if (auto refused = refuse(request, hub, kManage)) co_return *refused;
  std::string problem;
  const auto top = parseTop(queryParam(request, "top"), problem);
  if (!top) co_return azureError(http::status::bad_request, "top: " + problem);
  hub::InstallationQuery query;
  query.hub = hub;
  // The tag expression and the user id combine: both must hold.
  std::string expression = queryParam(request, "tag").value_or("");
  if (auto user = queryParam(request, "userId"); user && !user->empty()) {
    const std::string user_leaf = fmt::format("$UserId:{{{}}}", *user);
    expression = expression.empty() ? user_leaf : fmt::format("({}) && {}", expression, user_leaf);
  }
  if (!expression.empty()) {
    auto parsed = storage::TagExpression::parse(expression);
    if (!parsed) {
      co_return azureError(http::status::bad_request,
                           fmt::format("tag: '{}': {}", expression, parsed.error().message));
    }
    query.expression.emplace(std::move(*parsed));
  }
  query.keep = [](const storage::Installation& i) {
    return i.kind == storage::DeviceKind::kInstallation;
  };
  query.continuation = queryParam(request, "continuation").value_or("");
  query.limit = *top;
  auto page = co_await queryDevices(std::move(query));
  if (!page) co_return storeError(page.error());
  std::string body = "{\"installations\":[";
  for (size_t i = 0; i < page->installations.size(); ++i) {
    if (i != 0) body += ',';
    body += storage::installationToJson(page->installations[i]);
  }
  body += "],\"continuationToken\":";
  body += page->continuation.empty() ? std::string("null") : '"' + page->continuation + '"';
  body += '}';
  HttpResponse response =
      withBody(http::status::ok, std::move(body), "application/json; charset=utf-8");
  if (!page->continuation.empty()) response.set("x-ms-continuationtoken", page->continuation);
  co_return response;
}

}  // namespace pushhub::api
