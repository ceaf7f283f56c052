#include "connectors/sim/fcm.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <span>

#include "common/json.h"
#include "common/json_parse.h"
#include "connectors/fcm_protocol.h"

namespace pushhub::connectors::sim {
namespace {

constexpr std::string_view kJson = "application/json; charset=UTF-8";
constexpr std::string_view kJwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
constexpr std::string_view kMessagingScope = "https://www.googleapis.com/auth/firebase.messaging";
constexpr std::string_view kCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform";
constexpr std::array<std::string_view, 3> kGoogleAudiences = {
    "https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token"};
constexpr int64_t kMaxAssertionLifetime = 3600;
constexpr int64_t kClockSkew = 300;
constexpr double kMaxTtlSeconds = 2419200;  // 4 weeks
constexpr size_t kMaxConditionTopics = 5;

// The proto3 JSON shape of a send request, field by field: names are the proto names; the JSON
// may also use their lowerCamelCase forms. Unknown fields are errors, as Google answers them.
enum class Kind { kString, kBool, kInt, kStringMap, kStringList, kObject, kStruct };
struct Schema;
struct Field {
  std::string_view name;
  Kind kind;
  const Schema* schema = nullptr;
};
struct Schema {
  std::string_view type;  // the proto message, for error texts
  std::span<const Field> fields;
};

constexpr Field kFcmOptionsFields[] = {{"analytics_label", Kind::kString}};
constexpr Schema kFcmOptions{"FcmOptions", kFcmOptionsFields};
constexpr Field kNotificationFields[] = {
    {"title", Kind::kString}, {"body", Kind::kString}, {"image", Kind::kString}};
constexpr Schema kNotification{"Notification", kNotificationFields};
constexpr Field kAndroidNotificationFields[] = {
    {"title", Kind::kString},
    {"body", Kind::kString},
    {"icon", Kind::kString},
    {"color", Kind::kString},
    {"sound", Kind::kString},
    {"tag", Kind::kString},
    {"click_action", Kind::kString},
    {"body_loc_key", Kind::kString},
    {"body_loc_args", Kind::kStringList},
    {"title_loc_key", Kind::kString},
    {"title_loc_args", Kind::kStringList},
    {"channel_id", Kind::kString},
    {"ticker", Kind::kString},
    {"sticky", Kind::kBool},
    {"event_time", Kind::kString},
    {"local_only", Kind::kBool},
    {"notification_priority", Kind::kString},
    {"default_sound", Kind::kBool},
    {"default_vibrate_timings", Kind::kBool},
    {"default_light_settings", Kind::kBool},
    {"vibrate_timings", Kind::kStringList},
    {"visibility", Kind::kString},
    {"notification_count", Kind::kInt},
    {"light_settings", Kind::kStruct},
    {"image", Kind::kString},
    {"bypass_proxy_notification", Kind::kBool},
    {"proxy", Kind::kString},
};
constexpr Schema kAndroidNotification{"AndroidNotification", kAndroidNotificationFields};
constexpr Schema kAndroidFcmOptions{"AndroidFcmOptions", kFcmOptionsFields};
constexpr Field kAndroidFields[] = {
    {"collapse_key", Kind::kString},
    {"priority", Kind::kString},
    {"ttl", Kind::kString},
    {"restricted_package_name", Kind::kString},
    {"data", Kind::kStringMap},
    {"notification", Kind::kObject, &kAndroidNotification},
    {"fcm_options", Kind::kObject, &kAndroidFcmOptions},
    {"direct_boot_ok", Kind::kBool},
    {"bandwidth_constrained_ok", Kind::kBool},
    {"restricted_satellite_ok", Kind::kBool},
};
constexpr Schema kAndroid{"AndroidConfig", kAndroidFields};
constexpr Field kWebpushFcmOptionsFields[] = {{"link", Kind::kString},
                                              {"analytics_label", Kind::kString}};
constexpr Schema kWebpushFcmOptions{"WebpushFcmOptions", kWebpushFcmOptionsFields};
constexpr Field kWebpushFields[] = {
    {"headers", Kind::kStringMap},
    {"data", Kind::kStringMap},
    {"notification", Kind::kStruct},
    {"fcm_options", Kind::kObject, &kWebpushFcmOptions},
};
constexpr Schema kWebpush{"WebpushConfig", kWebpushFields};
constexpr Field kApnsFcmOptionsFields[] = {{"analytics_label", Kind::kString},
                                           {"image", Kind::kString}};
constexpr Schema kApnsFcmOptions{"ApnsFcmOptions", kApnsFcmOptionsFields};
constexpr Field kApnsFields[] = {
    {"headers", Kind::kStringMap},
    {"payload", Kind::kStruct},
    {"fcm_options", Kind::kObject, &kApnsFcmOptions},
    {"live_activity_token", Kind::kString},
};
constexpr Schema kApns{"ApnsConfig", kApnsFields};
constexpr Field kMessageFields[] = {
    {"name", Kind::kString},
    {"data", Kind::kStringMap},
    {"notification", Kind::kObject, &kNotification},
    {"android", Kind::kObject, &kAndroid},
    {"webpush", Kind::kObject, &kWebpush},
    {"apns", Kind::kObject, &kApns},
    {"fcm_options", Kind::kObject, &kFcmOptions},
    {"token", Kind::kString},
    {"topic", Kind::kString},
    {"condition", Kind::kString},
};
constexpr Schema kMessage{"Message", kMessageFields};
constexpr Field kRequestFields[] = {
    {"validate_only", Kind::kBool},
    {"message", Kind::kObject, &kMessage},
};
constexpr Schema kRequest{"SendMessageRequest", kRequestFields};

std::string_view view(const rapidjson::Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

const rapidjson::Value* member(const rapidjson::Value& object, std::string_view name) {
  return fcmField(object, name);
}

std::string_view stringField(const rapidjson::Value& object, std::string_view name) {
  const rapidjson::Value* v = member(object, name);
  return v != nullptr && v->IsString() ? view(*v) : std::string_view();
}

std::string typeName(Kind kind) {
  switch (kind) {
    case Kind::kString: return "TYPE_STRING";
    case Kind::kBool: return "TYPE_BOOL";
    case Kind::kInt: return "TYPE_INT32";
    default: return "TYPE_MESSAGE";
  }
}

std::string shortJson(const rapidjson::Value& v) {
  if (v.IsString()) return jsonQuoted(view(v));
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsNumber())
    return v.IsInt64() ? std::to_string(v.GetInt64()) : fmt::format("{}", v.GetDouble());
  if (v.IsNull()) return "null";
  return v.IsArray() ? "[...]" : "{...}";
}

Outcome fieldViolation(std::string_view path, std::string_view description) {
  const std::string detail = fmt::format(
      R"({{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{{"field":{},"description":{}}}]}})",
      jsonQuoted(path), jsonQuoted(description));
  return FcmService::error(400, "INVALID_ARGUMENT", description, {}, detail);
}

Outcome badValue(std::string_view path, Kind kind, const rapidjson::Value& v) {
  return fieldViolation(
      path, fmt::format("Invalid value at '{}' ({}), {}", path, typeName(kind), shortJson(v)));
}

std::optional<Outcome> checkObject(const rapidjson::Value& object, const Schema& schema,
                                   const std::string& path);

std::optional<Outcome> checkValue(const rapidjson::Value& v, const Field& field,
                                  const std::string& path) {
  if (v.IsNull()) return std::nullopt;  // proto3 JSON: null is the default value
  switch (field.kind) {
    case Kind::kString:
      if (!v.IsString()) return badValue(path, field.kind, v);
      break;
    case Kind::kBool:
      if (!v.IsBool()) return badValue(path, field.kind, v);
      break;
    case Kind::kInt:
      if (!v.IsInt() && !(v.IsString() && !view(v).empty() &&
                          std::all_of(view(v).begin(), view(v).end(), ::isdigit))) {
        return badValue(path, field.kind, v);
      }
      break;
    case Kind::kStringList:
      if (!v.IsArray()) return badValue(path, field.kind, v);
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        if (!v[i].IsString()) return badValue(fmt::format("{}[{}]", path, i), Kind::kString, v[i]);
      }
      break;
    case Kind::kStringMap: {
      if (!v.IsObject()) return badValue(path, field.kind, v);
      size_t index = 0;
      for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it, ++index) {
        if (!it->value.IsString()) {
          return badValue(fmt::format("{}[{}].value", path, index), Kind::kString, it->value);
        }
      }
      break;
    }
    case Kind::kStruct:
      if (!v.IsObject()) return badValue(path, field.kind, v);
      break;
    case Kind::kObject:
      if (!v.IsObject()) return badValue(path, field.kind, v);
      return checkObject(v, *field.schema, path);
  }
  return std::nullopt;
}

std::optional<Outcome> checkObject(const rapidjson::Value& object, const Schema& schema,
                                   const std::string& path) {
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    const std::string name = fcmProtoName(view(it->name));
    auto field = std::find_if(schema.fields.begin(), schema.fields.end(),
                              [&](const Field& f) { return f.name == name; });
    if (field == schema.fields.end()) {
      return fieldViolation(
          path.empty() ? std::string(view(it->name)) : path + "." + std::string(view(it->name)),
          fmt::format("Invalid JSON payload received. Unknown name {} at '{}': Cannot find field.",
                      jsonQuoted(view(it->name)), path));
    }
    if (auto bad = checkValue(it->value, *field, path.empty() ? name : path + "." + name)) {
      return bad;
    }
  }
  return std::nullopt;
}

bool reservedDataKey(std::string_view key) {
  return key == "from" || key == "message_type" || key == "gcm" || key.starts_with("google") ||
         key.starts_with("gcm.notification.");
}

std::optional<Outcome> checkDataKeys(const rapidjson::Value* data, std::string_view path) {
  if (data == nullptr || !data->IsObject()) return std::nullopt;
  for (auto it = data->MemberBegin(); it != data->MemberEnd(); ++it) {
    if (reservedDataKey(view(it->name))) {
      return FcmService::error(400, "INVALID_ARGUMENT",
                               fmt::format("Invalid data payload key at '{}': {} is reserved", path,
                                           jsonQuoted(view(it->name))),
                               "INVALID_ARGUMENT");
    }
  }
  return std::nullopt;
}

// A proto3 Duration string ("3.5s") in seconds.
std::optional<double> parseDuration(std::string_view text) {
  if (text.size() < 2 || text.back() != 's') return std::nullopt;
  text.remove_suffix(1);
  bool negative = false;
  if (text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  const auto digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (whole.empty() || !digits(whole) || !digits(fraction) || fraction.size() > 9 ||
      whole.size() > 12) {
    return std::nullopt;
  }
  double seconds = std::stod(std::string(whole));
  if (!fraction.empty()) seconds += std::stod("0." + std::string(fraction));
  return negative ? -seconds : seconds;
}

bool validTopic(std::string_view topic) {
  return !topic.empty() && std::all_of(topic.begin(), topic.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '~' || c == '%';
  });
}

bool validRegistrationToken(std::string_view token, size_t min_length) {
  return token.size() >= min_length && token.size() <= 4096 &&
         std::all_of(token.begin(), token.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' ||
                  c == '.';
         });
}

std::string pathOnly(const http2::Request& request) {
  const std::string* path = request.find(":path");
  if (path == nullptr) return {};
  return path->substr(0, path->find('?'));
}

// "https://localhost:2198/token" names this endpoint when its port is the one the request came
// in on and its host is this machine (clients connect to 127.0.0.1 or localhost alike).
bool audienceIsThisEndpoint(std::string_view aud, std::string_view authority) {
  constexpr std::string_view kScheme = "https://";
  if (!aud.starts_with(kScheme)) return false;
  aud.remove_prefix(kScheme.size());
  const size_t slash = aud.find('/');
  if (slash == std::string_view::npos || aud.substr(slash) != "/token") return false;
  const std::string_view host_port = aud.substr(0, slash);
  if (host_port == authority) return true;
  const auto port = [](std::string_view hp) {
    const size_t colon = hp.rfind(':');
    return colon == std::string_view::npos || hp.ends_with(']') ? std::string_view("443")
                                                                : hp.substr(colon + 1);
  };
  const std::string_view host = host_port.substr(0, host_port.size() - port(host_port).size() - 1);
  const bool local = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
  return local && port(host_port) == port(authority);
}

}  // namespace

std::expected<FcmServiceAccount, std::string> loadFcmServiceAccount(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::unexpected(fmt::format("cannot read the service account {}", path));
  const std::string text(std::istreambuf_iterator<char>(in), {});
  rapidjson::Document document;
  if (!parseJson(document, text) || !document.IsObject()) {
    return std::unexpected(fmt::format("{} is not a JSON object", path));
  }
  FcmServiceAccount account;
  account.client_email = std::string(stringField(document, "client_email"));
  account.project_id = std::string(stringField(document, "project_id"));
  account.private_key_id = std::string(stringField(document, "private_key_id"));
  const std::string_view pem = stringField(document, "private_key");
  if (account.client_email.empty() || account.project_id.empty() || pem.empty()) {
    return std::unexpected(
        fmt::format("{}: a service account needs client_email, project_id and private_key", path));
  }
  auto key = loadPrivateKeyPem(pem);
  if (!key) return std::unexpected(fmt::format("{}: private_key: {}", path, key.error()));
  if (EVP_PKEY_get_base_id(key->get()) != EVP_PKEY_RSA) {
    return std::unexpected(fmt::format("{}: private_key is not an RSA key", path));
  }
  account.public_key = std::shared_ptr<EVP_PKEY>(key->release(), EvpKeyDeleter{});
  return account;
}

FcmService::FcmService(FcmOptions options, const DeviceFates& fates)
    : options_(std::move(options)), fates_(fates), quota_(options_.quota_per_minute) {}

Outcome FcmService::error(int http_status, std::string_view status, std::string_view message,
                          std::string_view error_code, std::string_view extra_detail) {
  Outcome outcome;
  outcome.reason = std::string(error_code.empty() ? status : error_code);
  outcome.response.status = http_status;
  outcome.response.headers.push_back({"content-type", std::string(kJson)});
  std::string details;
  if (!error_code.empty()) {
    details = fmt::format(
        R"({{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":{}}})",
        jsonQuoted(error_code));
  }
  if (!extra_detail.empty()) {
    if (!details.empty()) details += ',';
    details += extra_detail;
  }
  outcome.response.body = fmt::format(
      R"({{"error":{{"code":{},"message":{},"status":{}{}}}}})", http_status, jsonQuoted(message),
      jsonQuoted(status), details.empty() ? "" : fmt::format(R"(,"details":[{}])", details));
  return outcome;
}

Outcome FcmService::fault(Fault fault, const http2::Request& /*request*/,
                          SystemTime /*now*/) const {
  switch (fault) {
    case Fault::kInternalError:
      return error(500, "INTERNAL", "Internal error encountered.", "INTERNAL");
    case Fault::kUnavailable: {
      Outcome outcome =
          error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE");
      outcome.response.headers.push_back(
          {"retry-after", std::to_string(options_.unavailable_retry_after.count())});
      return outcome;
    }
    case Fault::kThrottled: break;
  }
  Outcome outcome = error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Messages'.",
                          "QUOTA_EXCEEDED");
  outcome.response.headers.push_back(
      {"retry-after", std::to_string(options_.throttled_retry_after.count())});
  return outcome;
}

bool FcmService::isTokenRequest(const http2::Request& request) {
  return pathOnly(request) == "/token";
}

Outcome FcmService::handle(const http2::Request& request, FcmConnection& connection,
                           SystemTime now) {
  const std::string path = pathOnly(request);
  if (path == "/token") return token(request, now);
  if (path == "/fcm/send" || path == "/batch") {
    return error(404, "NOT_FOUND",
                 "The legacy FCM APIs (/fcm/send, /batch) were shut down in 2024: use "
                 "POST /v1/projects/{project}/messages:send",
                 {});
  }
  constexpr std::string_view kPrefix = "/v1/projects/";
  constexpr std::string_view kSuffix = "/messages:send";
  const std::string_view p = path;
  if (p.size() > kPrefix.size() + kSuffix.size() && p.starts_with(kPrefix) &&
      p.ends_with(kSuffix)) {
    const std::string_view project =
        p.substr(kPrefix.size(), p.size() - kPrefix.size() - kSuffix.size());
    if (project.find('/') == std::string_view::npos) {
      return send(request, project, connection, now);
    }
  }
  return error(404, "NOT_FOUND",
               fmt::format("No such resource: {} (FCM serves /v1/projects/{{project}}/"
                           "messages:send, its token endpoint /token)",
                           path),
               {});
}

Outcome FcmService::token(const http2::Request& request, SystemTime now) {
  auto form = tokenRequestForm(request);
  if (!form) return std::move(form.error());
  const std::string& grant_type = (*form)["grant_type"];
  const std::string& assertion = (*form)["assertion"];
  if (grant_type != kJwtBearerGrant) {
    return oauthError(400, "unsupported_grant_type", "Invalid grant_type: " + grant_type);
  }
  if (assertion.empty()) {
    return oauthError(400, "invalid_request", "Missing required parameter: assertion");
  }
  auto jwt = parseJwt(assertion);
  if (!jwt) return oauthError(400, "invalid_grant", "Invalid JWT: not a compact JWS");
  rapidjson::Document header, claims;
  if (!parseJson(header, jwt->header_json) || !parseJson(claims, jwt->claims_json) ||
      !header.IsObject() || !claims.IsObject()) {
    return oauthError(400, "invalid_grant", "Invalid JWT: header or claims are not JSON objects");
  }
  if (stringField(header, "alg") != "RS256") {
    return oauthError(400, "invalid_grant", "Invalid JWT Signature.");
  }
  const std::string_view iss = stringField(claims, "iss");
  auto account = std::find_if(options_.accounts.begin(), options_.accounts.end(),
                              [&](const FcmServiceAccount& a) { return a.client_email == iss; });
  if (account == options_.accounts.end()) {
    return oauthError(400, "invalid_grant", "Invalid grant: account not found");
  }
  const std::string_view kid = stringField(header, "kid");
  if (!kid.empty() && !account->private_key_id.empty() && kid != account->private_key_id) {
    return oauthError(400, "invalid_grant", "Invalid JWT Signature.");
  }
  if (!verifyJwt(*jwt, account->public_key.get(), JwtAlgorithm::kRs256)) {
    return oauthError(400, "invalid_grant", "Invalid JWT Signature.");
  }
  const std::string_view aud = stringField(claims, "aud");
  const std::string* authority = request.find(":authority");
  if (std::find(kGoogleAudiences.begin(), kGoogleAudiences.end(), aud) == kGoogleAudiences.end() &&
      !audienceIsThisEndpoint(aud, authority != nullptr ? *authority : "")) {
    return oauthError(400, "invalid_grant",
                      "Invalid JWT: Failed audience check. The right audience is "
                      "https://oauth2.googleapis.com/token");
  }
  const rapidjson::Value* iat = member(claims, "iat");
  const rapidjson::Value* exp = member(claims, "exp");
  const int64_t seconds_now =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (iat == nullptr || exp == nullptr || !iat->IsInt64() || !exp->IsInt64() ||
      exp->GetInt64() - iat->GetInt64() > kMaxAssertionLifetime ||
      exp->GetInt64() <= iat->GetInt64() || exp->GetInt64() <= seconds_now ||
      iat->GetInt64() > seconds_now + kClockSkew) {
    return oauthError(400, "invalid_grant",
                      "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                      "reasonable timeframe. Check your iat and exp values in the JWT claim.");
  }
  const std::string_view scope = stringField(claims, "scope");
  if (scope.empty()) return oauthError(400, "invalid_scope", "Empty or missing scope not allowed.");
  IssuedTokens::Grant grant{std::string(iss), std::string(scope), account->project_id,
                            now + options_.token_lifetime};
  const std::string access_token = tokens_.issue("ya29.sim.", std::move(grant));
  Outcome outcome;
  outcome.reason = "TokenIssued";  // counted, but not as a notification
  outcome.response.headers.push_back({"content-type", std::string(kJson)});
  outcome.response.headers.push_back({"cache-control", "no-cache, no-store, max-age=0"});
  outcome.response.body =
      fmt::format(R"({{"access_token":{},"expires_in":{},"token_type":"Bearer"}})",
                  jsonQuoted(access_token), options_.token_lifetime.count() - 1);
  return outcome;
}

Outcome FcmService::send(const http2::Request& request, std::string_view project,
                         FcmConnection& connection, SystemTime now) {
  const std::string* method = request.find(":method");
  if (method == nullptr || *method != "POST") {
    return error(404, "NOT_FOUND", "Method not found: messages:send takes POST", {});
  }
  // Authentication: no FcmError detail, the client refreshes its token once and retries.
  const std::string* authorization = request.find("authorization");
  const auto unauthenticated = [](std::string_view message) {
    Outcome outcome = error(401, "UNAUTHENTICATED", message, {});
    outcome.response.headers.push_back(
        {"www-authenticate", R"(Bearer realm="https://accounts.google.com/")"});
    return outcome;
  };
  if (authorization == nullptr || authorization->empty()) {
    return unauthenticated(
        "Request is missing required authentication credential. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential.");
  }
  std::string_view bearer = *authorization;
  constexpr std::string_view kBearer = "bearer ";
  const bool is_bearer =
      bearer.size() > kBearer.size() &&
      std::equal(kBearer.begin(), kBearer.end(), bearer.begin(),
                 [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
  if (is_bearer) bearer.remove_prefix(kBearer.size());
  if (!is_bearer || bearer != connection.bearer || connection.grant.expires <= now) {
    std::optional<IssuedTokens::Grant> grant;
    if (is_bearer) grant = tokens_.find(bearer, now);
    if (!grant) {
      return unauthenticated(
          "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
          "cookie or other valid authentication credential.");
    }
    connection.bearer = std::string(bearer);
    connection.grant = std::move(*grant);
  }
  if (connection.grant.project != project) {
    return error(403, "PERMISSION_DENIED",
                 fmt::format("Permission 'cloudmessaging.messages.create' denied on resource "
                             "'//cloudresourcemanager.googleapis.com/projects/{}' (or it may not "
                             "exist).",
                             project),
                 {});
  }
  const std::string& scope = connection.grant.scope;
  const auto has_scope = [&](std::string_view wanted) {
    for (size_t p = 0; p < scope.size();) {
      const size_t space = std::min(scope.find(' ', p), scope.size());
      if (std::string_view(scope).substr(p, space - p) == wanted) return true;
      p = space + 1;
    }
    return false;
  };
  if (!has_scope(kMessagingScope) && !has_scope(kCloudPlatformScope)) {
    return error(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.", {});
  }
  // The project's quota counts every message it is asked to send, rejected or not (not 429s).
  if (auto wait = quota_.take(project, now)) {
    Outcome outcome = error(
        429, "RESOURCE_EXHAUSTED",
        fmt::format("Quota exceeded for quota metric 'Messages' of project {}.", project),
        "QUOTA_EXCEEDED",
        fmt::format(
            R"({{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{{"subject":{},"description":"Message rate exceeded"}}]}})",
            jsonQuoted(fmt::format("project_id:{}", project))));
    outcome.response.headers.push_back({"retry-after", std::to_string(wait->count())});
    return outcome;
  }

  const std::string* content_type = request.find("content-type");
  if (content_type == nullptr || !content_type->starts_with("application/json")) {
    return error(400, "INVALID_ARGUMENT",
                 "Invalid JSON payload received. Content-Type must be application/json.",
                 "INVALID_ARGUMENT");
  }
  if (request.body_too_large) {
    return error(400, "INVALID_ARGUMENT", "Message too big", "INVALID_ARGUMENT");
  }
  rapidjson::Document document;
  if (auto parsed = parseJson(document, request.body); !parsed) {
    return fieldViolation(
        "", fmt::format("Invalid JSON payload received. Malformed JSON {}.", parsed.error()));
  }
  if (!document.IsObject()) {
    return fieldViolation("", "Invalid JSON payload received. Expected an object.");
  }
  if (auto bad = checkObject(document, kRequest, "")) return *std::move(bad);
  const rapidjson::Value* message = member(document, "message");
  if (message == nullptr || !message->IsObject()) {
    return fieldViolation("message", "Request contains an invalid argument: message is required.");
  }

  // Exactly one target.
  std::string_view target_kind;
  for (std::string_view kind : {"token", "topic", "condition"}) {
    const rapidjson::Value* v = member(*message, kind);
    if (v == nullptr || v->IsNull()) continue;
    if (!target_kind.empty()) {
      return fieldViolation(
          fmt::format("message.{}", kind),
          fmt::format("Invalid JSON payload received. Oneof field 'target' is already set. "
                      "Cannot set '{}'",
                      kind));
    }
    target_kind = kind;
  }
  if (target_kind.empty()) {
    return error(400, "INVALID_ARGUMENT", "Recipient of the message is not set.",
                 "INVALID_ARGUMENT");
  }
  std::string_view target = stringField(*message, target_kind);
  if (target_kind == "topic") {
    if (target.starts_with("/topics/")) target.remove_prefix(8);
    if (!validTopic(target)) {
      return error(400, "INVALID_ARGUMENT", "Invalid topic name.", "INVALID_ARGUMENT");
    }
  } else if (target_kind == "condition") {
    size_t topics = 0;
    for (size_t p = 0; (p = target.find("in topics", p)) != std::string_view::npos; p += 9) {
      ++topics;
    }
    if (topics == 0 || topics > kMaxConditionTopics) {
      return error(400, "INVALID_ARGUMENT", "Invalid condition expression provided.",
                   "INVALID_ARGUMENT");
    }
  }

  if (auto bad = checkDataKeys(member(*message, "data"), "message.data")) return *std::move(bad);
  if (const rapidjson::Value* android = member(*message, "android")) {
    if (auto bad = checkDataKeys(member(*android, "data"), "message.android.data")) {
      return *std::move(bad);
    }
    if (const rapidjson::Value* ttl = member(*android, "ttl"); ttl != nullptr && ttl->IsString()) {
      auto seconds = parseDuration(view(*ttl));
      if (!seconds) {
        return fieldViolation("message.android.ttl",
                              fmt::format("Invalid value at 'message.android.ttl' "
                                          "(type.googleapis.com/google.protobuf.Duration), {}",
                                          shortJson(*ttl)));
      }
      if (*seconds < 0 || *seconds > kMaxTtlSeconds) {
        return error(400, "INVALID_ARGUMENT", "Invalid TTL: between 0s and 2419200s",
                     "INVALID_ARGUMENT");
      }
    }
    const std::string_view priority = stringField(*android, "priority");
    if (!priority.empty() && priority != "NORMAL" && priority != "HIGH" && priority != "normal" &&
        priority != "high") {
      return fieldViolation("message.android.priority",
                            fmt::format("Invalid value at 'message.android.priority' "
                                        "(type.googleapis.com/"
                                        "google.firebase.fcm.v1.AndroidMessagePriority), {}",
                                        jsonQuoted(priority)));
    }
  }
  if (const rapidjson::Value* webpush = member(*message, "webpush")) {
    if (auto bad = checkDataKeys(member(*webpush, "data"), "message.webpush.data")) {
      return *std::move(bad);
    }
  }
  const size_t limit = target_kind == "token" ? kFcmMaxMessage : kFcmMaxTopicMessage;
  if (fcmPayloadSize(*message) > limit) {
    return error(400, "INVALID_ARGUMENT", "Message too big", "INVALID_ARGUMENT");
  }

  if (target_kind == "token") {
    if (!validRegistrationToken(target, options_.min_token_length)) {
      return error(400, "INVALID_ARGUMENT",
                   "The registration token is not a valid FCM registration token",
                   "INVALID_ARGUMENT");
    }
    switch (fates_.fate(target)) {
      case DeviceFate::kActive:
      case DeviceFate::kOffline: break;
      case DeviceFate::kUnregistered:
        return error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED");
      case DeviceFate::kBad:
        return error(400, "INVALID_ARGUMENT",
                     "The registration token is not a valid FCM registration token",
                     "INVALID_ARGUMENT");
      case DeviceFate::kForeign:
        return error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH");
    }
  }

  Outcome outcome;
  outcome.response.headers.push_back({"content-type", std::string(kJson)});
  const rapidjson::Value* validate_only = member(document, "validate_only");
  if (validate_only != nullptr && validate_only->IsBool() && validate_only->GetBool()) {
    outcome.reason = "ValidateOnly";  // answered, not delivered
    outcome.response.body =
        fmt::format(R"({{"name":{}}})", jsonQuoted(fmt::format("projects/{}/messages/"
                                                               "fake_message_id",
                                                               project)));
    return outcome;
  }
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  outcome.accepted = true;
  outcome.handle = target_kind == "token"   ? std::string(target)
                   : target_kind == "topic" ? "/topics/" + std::string(target)
                                            : std::string(target);
  outcome.response.body = fmt::format(
      R"({{"name":{}}})",
      jsonQuoted(fmt::format("projects/{}/messages/0:{}%{}", project, micros, randomHex(16))));
  return outcome;
}

}  // namespace pushhub::connectors::sim
