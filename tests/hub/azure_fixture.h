#pragma once

// AzureApiTest: the Azure routes over real HTTP on the engine fixture (pushhub-sim behind it),
// with a full-rights and a Listen-only SAS rule and a client to call them.

#include "api/azure_api.h"
#include "api/http_server.h"
#include "tests/hub/engine_fixture.h"
#include "tests/support/http_client.h"

namespace pushhub::hub::engine_testing {

using api::SasRule;
using pushhub::testing::HttpClient;
using pushhub::testing::HttpReply;

inline const SasRule kFull{"DefaultFullSharedAccessSignature", "full-secret",
                           api::kListen | api::kSend | api::kManage};
inline const SasRule kListen{"DefaultListenSharedAccessSignature", "listen-secret", api::kListen};
inline const SasRule kSendOnly{"BackendSend", "send-secret", api::kSend};

class AzureApiTest : public EngineTest {
 protected:
  virtual bool useTls() const { return false; }
  void SetUp() override {
    EngineTest::SetUp();
    open();
    auth_ =
        std::make_unique<api::SasAuthenticator>(std::vector<SasRule>{kFull, kListen, kSendOnly});
    api::AzureApi::Options options;
    options.scheme = useTls() ? "https" : "http";
    azure_ = std::make_unique<api::AzureApi>(*engine_, *store_, *auth_, options);
    azure_->addRoutes(router_);
    router_.setErrorFormat(api::azureError);
    http_ = std::make_unique<api::HttpServer>(*shards_, router_, limits_, *metrics_);
    ASSERT_TRUE(http_->listen(ListenAddress{"127.0.0.1", 0}).has_value());
    if (useTls()) {
      // The simulator's development certificate (localhost, 127.0.0.1) and its CA.
      auto tls = http_->useTls((credentialsDir() / "server.crt").string(),
                               (credentialsDir() / "server.key").string());
      ASSERT_TRUE(tls.has_value()) << tls.error();
    }
    http_->start();
    client_ = std::make_unique<HttpClient>(
        http_->port(), useTls() ? (credentialsDir() / "ca.crt").string() : std::string());
  }
  void TearDown() override {
    client_.reset();
    if (http_) http_->stop(std::chrono::milliseconds(500));
    EngineTest::TearDown();
  }

  static std::string token(const SasRule& rule, std::string resource = "http://127.0.0.1/",
                           int64_t ttl = 3600) {
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    return api::makeSasToken(resource, rule, now + ttl);
  }
  HttpReply call(const std::string& method, const std::string& target, const std::string& body = {},
                 std::vector<std::pair<std::string, std::string>> headers = {},
                 const std::string& authorization = token(kFull)) {
    if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
    return client_->request(method, target, body, headers);
  }

  static std::string apnsInstallationJson(const std::string& id, const std::string& tags) {
    return fmt::format(
        R"({{"installationId":"{}","platform":"apns","pushChannel":"{:a>64}","tags":[{}],)"
        R"("templates":{{"main":{{"body":"{{\"aps\":{{\"alert\":\"$(msg)\"}}}}"}}}}}})",
        id, id.substr(id.size() - 1), tags);
  }

  std::string scheme() const { return useTls() ? "https" : "http"; }

  api::HttpLimits limits_{.max_header_bytes = 8 << 10, .max_body_bytes = 256 << 10};
  api::Router router_;
  std::unique_ptr<api::SasAuthenticator> auth_;
  std::unique_ptr<api::AzureApi> azure_;
  std::unique_ptr<api::HttpServer> http_;
  std::unique_ptr<HttpClient> client_;
};

// The route tests, run over HTTP and over HTTPS.
class AzureRoutes : public AzureApiTest, public ::testing::WithParamInterface<bool> {
 protected:
  bool useTls() const override { return GetParam(); }
};

inline std::string transportName(const ::testing::TestParamInfo<bool>& info) {
  return info.param ? "Https" : "Http";
}

}  // namespace pushhub::hub::engine_testing
