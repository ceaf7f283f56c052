#pragma once

// OAuth 2.0 access tokens for a push-service credential, shared by every shard: FCM's
// service-account flow (an RS256 assertion exchanged at the token URI) and WNS's client
// credentials (package SID and secret, or an Entra application). A token is cached until
// `refresh_margin` before it expires; one fetch is in flight at a time, whoever asks meanwhile
// waits for it; a refused token (401) is dropped once and fetched again. Thread-safe.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <algorithm>
#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "connectors/http1/client.h"
#include "connectors/jwt.h"
#include "connectors/push_client.h"

namespace pushhub::connectors {

struct AccessToken {
  std::string authorization;  // "Bearer <token>"
  std::chrono::system_clock::time_point fetched;
  std::chrono::system_clock::time_point expires;
  // Still worth using at `now`: before expiry minus the margin (at most half its lifetime, so a
  // short-lived token is used too).
  bool usable(std::chrono::system_clock::time_point now, std::chrono::seconds margin) const {
    const auto lifetime = expires - fetched;
    return now < expires - std::min<std::chrono::system_clock::duration>(margin, lifetime / 2);
  }
};

class AccessTokenSource : public std::enable_shared_from_this<AccessTokenSource> {
 public:
  struct Options {
    std::string token_url;  // https://oauth2.googleapis.com/token, …
    std::shared_ptr<boost::asio::ssl::context> tls;
    bool verify_peer = true;
    std::chrono::seconds refresh_margin{300};
    std::chrono::milliseconds timeout{10000};
    std::function<std::chrono::system_clock::time_point()> clock = [] {
      return std::chrono::system_clock::now();
    };
  };
  // The token request's form body, made fresh for each fetch (an assertion is signed per fetch).
  using MakeForm = std::function<std::expected<std::string, std::string>(
      std::chrono::system_clock::time_point now)>;
  using Result = std::expected<std::shared_ptr<const AccessToken>, AuthError>;
  using Ready = std::function<void(Result)>;

  static std::expected<std::shared_ptr<AccessTokenSource>, std::string> create(Options options,
                                                                               MakeForm form);

  // A token valid now, or null (then call get()).
  std::shared_ptr<const AccessToken> current() const;
  // `ready` is called on `io` with a valid token, or with why there is none (permanent when the
  // endpoint refused the credential, not when it could not be reached or failed); a fetch (run
  // on `io`) starts unless one is in flight.
  void get(boost::asio::io_context& io, Ready ready);
  // The service refused `seen`: forget it, unless it was already replaced.
  void refuse(const std::shared_ptr<const AccessToken>& seen);
  uint64_t fetches() const;

 private:
  AccessTokenSource(Options options, http1::Url url, MakeForm form)
      : options_(std::move(options)), url_(std::move(url)), form_(std::move(form)) {}
  void complete(Result result);

  Options options_;
  http1::Url url_;
  MakeForm form_;
  mutable std::mutex mutex_;
  std::shared_ptr<const AccessToken> token_;
  bool fetching_ = false;
  std::vector<std::pair<boost::asio::io_context*, Ready>> waiters_;
  uint64_t fetches_ = 0;
};

// One shard's view of a shared AccessTokenSource, as the OAuth services' PushClient hooks
// (authReady, awaitAuth, refuseAuth) use it: a local copy of the token, re-read from the source
// only when due.
class BearerAuth {
 public:
  explicit BearerAuth(std::shared_ptr<AccessTokenSource> source) : source_(std::move(source)) {}
  bool ready();
  // "Bearer …" of the token ready() found (empty before).
  const std::string& authorization() const;
  std::shared_ptr<const AccessToken> token() const { return token_; }
  // The callback may outlive the caller: it only passes the word on.
  void await(boost::asio::io_context& io,
             std::function<void(std::optional<AuthError> error)> ready);
  // The service refused the token an attempt used (`used`, as stored by the caller).
  void refuse(const std::shared_ptr<const void>& used);
  const AccessTokenSource& source() const { return *source_; }

 private:
  std::shared_ptr<AccessTokenSource> source_;
  std::shared_ptr<const AccessToken> token_;
};

// A PushClient whose service takes OAuth bearer tokens (FCM, WNS): the auth hooks, over the
// credential's shared AccessTokenSource.
template <class Service, class Notification, class Pool = http2::ClientPool>
class OAuthPushClient : public PushClient<Service, Notification, Pool> {
 public:
  using Base = PushClient<Service, Notification, Pool>;
  bool authReady() { return auth_.ready(); }
  void awaitAuth(std::function<void(std::optional<AuthError>)> ready) {
    auth_.await(this->io(), std::move(ready));
  }
  void refuseAuth(typename Base::Pending& pending) { auth_.refuse(pending.auth); }

 protected:
  OAuthPushClient(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls,
                  typename Pool::Options pool, RetryOptions retry,
                  std::shared_ptr<AccessTokenSource> tokens)
      : Base(io, std::move(tls), std::move(pool), retry), auth_(std::move(tokens)) {}

  BearerAuth auth_;
};

// FCM: a service-account JSON file's contents (client_email, private_key, private_key_id,
// project_id, token_uri).
struct ServiceAccount {
  std::string client_email;
  std::string private_key_id;
  std::string project_id;
  std::string token_uri;
  std::shared_ptr<EVP_PKEY> private_key;
};
std::expected<ServiceAccount, std::string> parseServiceAccount(std::string_view json);
// The form body of a service-account token request: a fresh RS256 assertion for `scope`.
std::expected<std::string, std::string> serviceAccountForm(
    const ServiceAccount& account, std::chrono::system_clock::time_point now,
    std::string_view scope);
inline constexpr std::string_view kFcmScope = "https://www.googleapis.com/auth/firebase.messaging";

// A token endpoint's answer (RFC 6749 §5): the access token and its lifetime, or why there is
// none — 4xx other than 408/429 is permanent (the credential was refused), the rest transient.
// `endpoint` only names it in the error.
struct TokenAnswer {
  std::string access_token;
  std::chrono::seconds expires_in{0};
};
std::expected<TokenAnswer, AuthError> parseTokenAnswer(int status, std::string_view body,
                                                       std::string_view endpoint);

// WNS: client credentials for notify.windows.com (classic) or https://wns.windows.com/.default
// (Entra).
std::string clientCredentialsForm(std::string_view client_id, std::string_view secret,
                                  std::string_view scope);

}  // namespace pushhub::connectors
