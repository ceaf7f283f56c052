#include "connectors/sim/wns.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "common/json.h"
#include "common/text.h"

namespace pushhub::connectors::sim {
namespace {

constexpr std::string_view kClassicScope = "notify.windows.com";
constexpr std::string_view kPhoneScope = "s.notify.live.net";
constexpr std::string_view kEntraScope = "https://wns.windows.com/.default";
constexpr std::array<std::string_view, 4> kTypes = {"wns/toast", "wns/tile", "wns/badge",
                                                    "wns/raw"};

std::string_view pathOf(const std::string& target) {
  return std::string_view(target).substr(0, target.find('?'));
}

// The correlation vector: echoed when the sender gave one.
std::string correlationVector(const http2::Request& request) {
  const std::string* cv = request.find("ms-cv");
  return cv != nullptr && !cv->empty() ? *cv : randomToken(12) + ".0";
}

Outcome sendError(const http2::Request& request, int status, std::string_view reason,
                  std::string_view description) {
  Outcome outcome;
  outcome.reason = std::string(reason);
  outcome.response.status = status;
  outcome.response.headers.push_back({"X-WNS-Error-Description", std::string(description)});
  outcome.response.headers.push_back({"X-WNS-Debug-Trace", "pushhub-sim"});
  outcome.response.headers.push_back({"MS-CV", correlationVector(request)});
  return outcome;
}

bool isDigits(std::string_view s) {
  return !s.empty() && s.size() <= 10 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

WnsService::WnsService(WnsOptions options, const DeviceFates& fates)
    : options_(std::move(options)),
      fates_(fates),
      app_quota_(options_.app_quota_per_minute),
      channel_quota_(options_.channel_quota_per_minute) {}

Outcome WnsService::fault(Fault fault, const http2::Request& request, SystemTime /*now*/) const {
  switch (fault) {
    case Fault::kInternalError:
      return sendError(request, 500, "InternalServerError", "Internal server error");
    case Fault::kUnavailable:
      return sendError(request, 503, "ServiceUnavailable", "The service is unavailable");
    case Fault::kThrottled: break;
  }
  Outcome outcome =
      sendError(request, 406, "Throttled", "The cloud service exceeded its throttle limit");
  outcome.response.headers.push_back(
      {"X-WNS-CONTINUE-AFTER", std::to_string(options_.continue_after.count())});
  return outcome;
}

bool WnsService::isTokenRequest(const http2::Request& request) {
  const std::string* target = request.find(":path");
  if (target == nullptr) return false;
  const std::string_view path = pathOf(*target);
  return path == "/accesstoken.srf" || path.ends_with("/oauth2/v2.0/token");
}

Outcome WnsService::handle(const http2::Request& request, SystemTime now) {
  const std::string* target = request.find(":path");
  if (target == nullptr) return sendError(request, 404, "NotFound", "No request target");
  const std::string_view path = pathOf(*target);
  if (path == "/accesstoken.srf") return token(request, false, now);
  // /{tenant}/oauth2/v2.0/token
  constexpr std::string_view kEntraSuffix = "/oauth2/v2.0/token";
  if (path.size() > kEntraSuffix.size() + 1 && path.ends_with(kEntraSuffix) &&
      path.substr(1, path.size() - kEntraSuffix.size() - 1).find('/') == std::string_view::npos) {
    const std::string_view tenant = path.substr(1, path.size() - kEntraSuffix.size() - 1);
    if (std::find(options_.tenants.begin(), options_.tenants.end(), tenant) ==
        options_.tenants.end()) {
      return oauthError(400, "invalid_request",
                        fmt::format("AADSTS90002: Tenant '{}' not found.", tenant));
    }
    return token(request, true, now);
  }
  if (path == "/" || path == "/w/") {
    // The channel is the token query value exactly as sent: never decoded or re-encoded.
    std::string_view query = std::string_view(*target).substr(path.size());
    if (query.starts_with('?')) query.remove_prefix(1);
    for (size_t p = 0; p <= query.size();) {
      const size_t amp = std::min(query.find('&', p), query.size());
      const std::string_view field = query.substr(p, amp - p);
      if (field.starts_with("token=") && field.size() > 6) {
        return send(request, field.substr(6), now);
      }
      p = amp + 1;
    }
  }
  return sendError(request, 404, "NotFound",
                   "The channel URI is not valid: expected /?token=… or /w/?token=…");
}

Outcome WnsService::token(const http2::Request& request, bool entra, SystemTime now) {
  auto form = tokenRequestForm(request);
  if (!form) return std::move(form.error());
  const std::string& grant_type = (*form)["grant_type"];
  const std::string& client_id = (*form)["client_id"];
  const std::string& client_secret = (*form)["client_secret"];
  const std::string& scope = (*form)["scope"];
  if (grant_type != "client_credentials") {
    return oauthError(400, "unsupported_grant_type",
                      fmt::format("grant_type must be client_credentials, not '{}'", grant_type));
  }
  if (client_id.empty() || client_secret.empty()) {
    return oauthError(400, "invalid_request", "client_id and client_secret are required");
  }
  if (entra ? scope != kEntraScope : scope != kClassicScope && scope != kPhoneScope) {
    return oauthError(400, "invalid_scope",
                      fmt::format("The scope must be {}", entra ? kEntraScope : kClassicScope));
  }
  auto app = std::find_if(options_.apps.begin(), options_.apps.end(),
                          [&](const WnsApp& a) { return a.client_id == client_id; });
  if (app == options_.apps.end()) {
    return entra ? oauthError(400, "unauthorized_client",
                              fmt::format("AADSTS700016: Application with identifier '{}' was "
                                          "not found in the directory.",
                                          client_id))
                 : oauthError(400, "invalid_client", "Invalid client id");
  }
  // Constant time is not a concern of a simulator; exactness is.
  if (app->secret != client_secret) {
    return entra
               ? oauthError(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
               : oauthError(400, "invalid_client", "Invalid client secret");
  }
  const std::string access_token = tokens_.issue(
      "EgA.sim.", IssuedTokens::Grant{client_id, scope, {}, now + options_.token_lifetime});
  Outcome outcome;
  outcome.reason = "TokenIssued";
  outcome.response.headers.push_back({"Content-Type", "application/json"});
  outcome.response.headers.push_back({"Cache-Control", "no-store"});
  const int64_t lifetime = options_.token_lifetime.count();
  outcome.response.body =
      entra
          ? fmt::format(
                R"({{"token_type":"Bearer","expires_in":{},"ext_expires_in":{},"access_token":{}}})",
                lifetime - 1, lifetime - 1, jsonQuoted(access_token))
          : fmt::format(R"({{"access_token":{},"token_type":"bearer","expires_in":{}}})",
                        jsonQuoted(access_token), lifetime);
  return outcome;
}

Outcome WnsService::send(const http2::Request& request, std::string_view channel, SystemTime now) {
  const auto bad = [&](std::string_view reason, std::string_view description) {
    return sendError(request, 400, reason, description);
  };
  const std::string* method = request.find(":method");
  if (method == nullptr || *method != "POST") {
    Outcome outcome =
        sendError(request, 405, "MethodNotAllowed", "Notifications are sent with POST");
    outcome.response.headers.push_back({"Allow", "POST"});
    return outcome;
  }
  const std::string* authorization = request.find("authorization");
  constexpr std::string_view kBearer = "bearer ";
  if (authorization == nullptr || authorization->size() <= kBearer.size() ||
      !equalsIgnoreCase(std::string_view(*authorization).substr(0, kBearer.size()), kBearer)) {
    return sendError(request, 401, "Unauthorized", "Missing or malformed bearer token");
  }
  auto grant = tokens_.find(std::string_view(*authorization).substr(kBearer.size()), now);
  if (!grant) {
    return sendError(request, 401, "Unauthorized", "The access token is invalid or expired");
  }

  const std::string* transfer_encoding = request.find("transfer-encoding");
  if (transfer_encoding != nullptr) {
    return bad("Chunked", "Chunked transfer encoding is not supported");
  }
  if (request.find("content-length") == nullptr) {
    return bad("MissingContentLength", "Content-Length must be specified");
  }
  const std::string* type = request.find("x-wns-type");
  if (type == nullptr) return bad("MissingType", "X-WNS-Type is required");
  if (std::find(kTypes.begin(), kTypes.end(), *type) == kTypes.end()) {
    return bad("InvalidType", "X-WNS-Type must be wns/toast, wns/tile, wns/badge or wns/raw");
  }
  const bool raw = *type == "wns/raw";
  const std::string* content_type = request.find("content-type");
  const std::string_view media =
      content_type == nullptr ? std::string_view()
                              : std::string_view(*content_type).substr(0, content_type->find(';'));
  if (raw ? media != "application/octet-stream" : media != "text/xml") {
    return bad("ContentTypeMismatch",
               raw ? "wns/raw needs Content-Type: application/octet-stream"
                   : "wns/toast, wns/tile and wns/badge need Content-Type: text/xml");
  }
  if (const std::string* v = request.find("x-wns-cache-policy");
      v != nullptr && *v != "cache" && *v != "no-cache") {
    return bad("InvalidCachePolicy", "X-WNS-Cache-Policy must be cache or no-cache");
  }
  const std::string* status_wanted = request.find("x-wns-requestforstatus");
  if (status_wanted != nullptr && *status_wanted != "true" && *status_wanted != "false") {
    return bad("InvalidRequestForStatus", "X-WNS-RequestForStatus must be true or false");
  }
  if (const std::string* v = request.find("x-wns-ttl"); v != nullptr && !isDigits(*v)) {
    return bad("InvalidTtl", "X-WNS-TTL must be a number of seconds");
  }
  for (std::string_view name : {"x-wns-tag", "x-wns-group"}) {
    const std::string* v = request.find(name);
    if (v != nullptr && (v->empty() || v->size() > options_.max_tag)) {
      return bad("InvalidTag",
                 fmt::format("{} must be 1 to {} characters",
                             name == "x-wns-tag" ? "X-WNS-Tag" : "X-WNS-Group", options_.max_tag));
    }
  }
  if (const std::string* v = request.find("x-wns-priority");
      v != nullptr && (v->size() != 1 || (*v)[0] < '1' || (*v)[0] > '4')) {
    return bad("InvalidPriority", "X-WNS-PRIORITY must be 1, 2, 3 or 4");
  }
  if (request.find("x-wns-suppresspopup") != nullptr) {
    return bad("SuppressPopup", "X-WNS-SuppressPopup is for Windows Phone channels only");
  }
  if (request.body_too_large || request.body.size() > options_.max_payload) {
    return sendError(
        request, 413, "PayloadTooLarge",
        fmt::format("The payload exceeds the {} byte size limit", options_.max_payload));
  }

  const DeviceFate fate = fates_.fate(channel);
  switch (fate) {
    case DeviceFate::kActive:
    case DeviceFate::kOffline: break;
    case DeviceFate::kBad: return sendError(request, 404, "NotFound", "The channel is not valid");
    case DeviceFate::kUnregistered:
      return sendError(request, 410, "ChannelExpired", "The channel has expired");
    case DeviceFate::kForeign:
      return sendError(request, 403, "Forbidden",
                       "The access token's application does not own this channel");
  }
  if (auto wait = app_quota_.take(grant->owner, now)) {
    Outcome outcome =
        sendError(request, 406, "Throttled", "The cloud service exceeded its throttle limit");
    outcome.response.headers.push_back({"X-WNS-CONTINUE-AFTER", std::to_string(wait->count())});
    return outcome;
  }

  Outcome outcome;
  const bool connected = fate == DeviceFate::kActive;
  std::string_view status = "received";
  if (channel_quota_.take(channel, now)) {
    status = "channelthrottled";
    outcome.reason = "ChannelThrottled";
  } else if (!connected && *type == "wns/toast") {
    status = "dropped";  // toasts to an offline device are dropped
    outcome.reason = "Dropped";
  } else {
    outcome.accepted = true;
    outcome.handle = std::string(channel);
  }
  outcome.response.headers.push_back({"X-WNS-Status", std::string(status)});
  outcome.response.headers.push_back({"X-WNS-Msg-ID", randomHex(16)});
  outcome.response.headers.push_back({"X-WNS-Debug-Trace", "pushhub-sim"});
  outcome.response.headers.push_back({"MS-CV", correlationVector(request)});
  if (status_wanted != nullptr && *status_wanted == "true") {
    outcome.response.headers.push_back(
        {"X-WNS-DeviceConnectionStatus", connected ? "connected" : "disconnected"});
  }
  return outcome;
}

}  // namespace pushhub::connectors::sim
