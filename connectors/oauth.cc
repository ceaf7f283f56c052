#include "connectors/oauth.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include "common/json.h"
#include "common/json_parse.h"
#include "common/url.h"

namespace pushhub::connectors {

namespace asio = boost::asio;

std::expected<std::shared_ptr<AccessTokenSource>, std::string> AccessTokenSource::create(
    Options options, MakeForm form) {
  auto url = http1::parseHttpsUrl(options.token_url);
  if (!url) return std::unexpected("token endpoint: " + url.error());
  if (!options.tls) return std::unexpected("token endpoint: no TLS context");
  return std::shared_ptr<AccessTokenSource>(
      new AccessTokenSource(std::move(options), std::move(*url), std::move(form)));
}

std::shared_ptr<const AccessToken> AccessTokenSource::current() const {
  const auto now = options_.clock();
  std::lock_guard lock(mutex_);
  if (token_ && token_->usable(now, options_.refresh_margin)) return token_;
  return nullptr;
}

uint64_t AccessTokenSource::fetches() const {
  std::lock_guard lock(mutex_);
  return fetches_;
}

void AccessTokenSource::refuse(const std::shared_ptr<const AccessToken>& seen) {
  std::lock_guard lock(mutex_);
  if (token_ == seen) token_.reset();
}

void AccessTokenSource::get(asio::io_context& io, Ready ready) {
  const auto now = options_.clock();
  std::unique_lock lock(mutex_);
  if (token_ && token_->usable(now, options_.refresh_margin)) {
    asio::post(io, [ready = std::move(ready), token = token_] { ready(token); });
    return;
  }
  waiters_.emplace_back(&io, std::move(ready));
  if (fetching_) return;
  fetching_ = true;
  ++fetches_;
  lock.unlock();

  auto body = form_(now);
  if (!body) {
    complete(std::unexpected(AuthError{body.error(), true}));
    return;
  }
  http1::Request request;
  request.method = "POST";
  request.headers = {{"content-type", "application/x-www-form-urlencoded"},
                     {"accept", "application/json"}};
  request.body = std::move(*body);
  http1::fetch(
      io, options_.tls, url_, std::move(request),
      [this, self = shared_from_this(), now](http1::Connection::Result&& result) {
        if (!result) {
          complete(std::unexpected(AuthError{
              fmt::format("token endpoint {}: {}", options_.token_url, result.error().why),
              false}));
          return;
        }
        auto answer = parseTokenAnswer(result->status, result->body, options_.token_url);
        if (!answer) {
          complete(std::unexpected(std::move(answer.error())));
          return;
        }
        complete(std::make_shared<const AccessToken>(
            AccessToken{"Bearer " + answer->access_token, now, now + answer->expires_in}));
      },
      options_.timeout, options_.verify_peer);
}

std::expected<TokenAnswer, AuthError> parseTokenAnswer(int status, std::string_view body,
                                                       std::string_view endpoint) {
  rapidjson::Document json;
  const bool parsed = parseJson(json, body).has_value();
  const auto text = [&](const char* name) -> std::string {
    if (!parsed || !json.IsObject() || !json.HasMember(name)) return "";
    const auto& v = json[name];
    if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
    if (v.IsInt64()) return std::to_string(v.GetInt64());
    return "";
  };
  if (status != 200) {
    const std::string error = text("error");
    const std::string description = text("error_description");
    // 4xx: the credential was refused; 5xx and 429: try again later.
    const bool permanent = status >= 400 && status < 500 && status != 429 && status != 408;
    return std::unexpected(
        AuthError{fmt::format("token endpoint {} answered {}{}{}", endpoint, status,
                              error.empty() ? "" : ": " + error,
                              description.empty() ? "" : " (" + description + ")"),
                  permanent});
  }
  TokenAnswer answer;
  answer.access_token = text("access_token");
  // expires_in is a number (Google, Microsoft's v2.0 endpoint) or a string (its samples); more
  // than nine digits (30 years) is not a lifetime.
  const std::string expires_in = text("expires_in");
  int64_t seconds = expires_in.empty() || expires_in.size() > 9 ? -1 : 0;
  for (size_t i = 0; seconds >= 0 && i < expires_in.size(); ++i) {
    const char c = expires_in[i];
    seconds = c < '0' || c > '9' ? -1 : seconds * 10 + (c - '0');
  }
  if (answer.access_token.empty() || seconds <= 0) {
    return std::unexpected(AuthError{
        fmt::format("token endpoint {}: no access_token/expires_in in the answer", endpoint),
        false});
  }
  // It goes into an Authorization header: nothing there may end or fold the header.
  if (!std::all_of(answer.access_token.begin(), answer.access_token.end(),
                   [](char c) { return c > 0x20 && c < 0x7F; })) {
    return std::unexpected(AuthError{
        fmt::format("token endpoint {}: the access_token has characters a header cannot carry",
                    endpoint),
        false});
  }
  answer.expires_in = std::chrono::seconds(seconds);
  return answer;
}

void AccessTokenSource::complete(Result result) {
  std::vector<std::pair<asio::io_context*, Ready>> waiters;
  {
    std::lock_guard lock(mutex_);
    fetching_ = false;
    if (result) token_ = *result;
    waiters.swap(waiters_);
  }
  for (auto& [io, ready] : waiters) {
    asio::post(*io, [ready = std::move(ready), result] { ready(result); });
  }
}

bool BearerAuth::ready() {
  if (token_ && token_->usable(std::chrono::system_clock::now(), std::chrono::seconds(300))) {
    return true;
  }
  token_ = source_->current();
  return token_ != nullptr;
}

const std::string& BearerAuth::authorization() const {
  static const std::string kNone;
  return token_ ? token_->authorization : kNone;
}

void BearerAuth::await(asio::io_context& io, std::function<void(std::optional<AuthError>)> ready) {
  source_->get(io, [ready = std::move(ready)](AccessTokenSource::Result result) {
    ready(result ? std::nullopt : std::optional<AuthError>(result.error()));
  });
}

void BearerAuth::refuse(const std::shared_ptr<const void>& used) {
  source_->refuse(std::static_pointer_cast<const AccessToken>(used));
  token_.reset();
}

std::expected<ServiceAccount, std::string> parseServiceAccount(std::string_view json) {
  rapidjson::Document document;
  if (!parseJson(document, json) || !document.IsObject()) {
    return std::unexpected("service account: not a JSON object");
  }
  const auto field = [&](const char* name) -> std::string {
    auto it = document.FindMember(name);
    return it != document.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
  };
  ServiceAccount account;
  account.client_email = field("client_email");
  account.private_key_id = field("private_key_id");
  account.project_id = field("project_id");
  account.token_uri = field("token_uri");
  if (account.token_uri.empty()) account.token_uri = "https://oauth2.googleapis.com/token";
  const std::string pem = field("private_key");
  if (account.client_email.empty() || account.project_id.empty() || pem.empty()) {
    return std::unexpected(
        "service account: client_email, project_id and private_key are required");
  }
  auto key = loadPrivateKeyPem(pem);
  if (!key) return std::unexpected("service account private_key: " + key.error());
  if (EVP_PKEY_get_base_id(key->get()) != EVP_PKEY_RSA) {
    return std::unexpected("service account private_key: not an RSA key");
  }
  account.private_key = std::shared_ptr<EVP_PKEY>(key->release(), EvpKeyDeleter{});
  return account;
}

std::expected<std::string, std::string> serviceAccountForm(
    const ServiceAccount& account, std::chrono::system_clock::time_point now,
    std::string_view scope) {
  const int64_t iat =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const std::string header = account.private_key_id.empty()
                                 ? std::string(R"({"alg":"RS256","typ":"JWT"})")
                                 : fmt::format(R"({{"alg":"RS256","typ":"JWT","kid":{}}})",
                                               jsonQuoted(account.private_key_id));
  auto assertion = signJwt(header,
                           fmt::format(R"({{"iss":{},"scope":{},"aud":{},"iat":{},"exp":{}}})",
                                       jsonQuoted(account.client_email), jsonQuoted(scope),
                                       jsonQuoted(account.token_uri), iat, iat + 3600),
                           account.private_key.get(), JwtAlgorithm::kRs256);
  if (!assertion) return std::unexpected("signing the assertion: " + assertion.error());
  return "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + *assertion;
}

std::string clientCredentialsForm(std::string_view client_id, std::string_view secret,
                                  std::string_view scope) {
  return fmt::format("grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
                     percentEncode(client_id), percentEncode(secret), percentEncode(scope));
}

}  // namespace pushhub::connectors
