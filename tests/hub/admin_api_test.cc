// The admin API over real HTTP: a hub created with inline credentials and its own SAS rules
// reaches pushhub-sim, is shown without secrets, survives a restart, is replaced, refuses what
// is wrong without storing it, and is deleted with its devices.
#include "api/admin_api.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "connectors/sim/keygen.h"
#include "tests/hub/azure_fixture.h"

namespace pushhub::hub {
namespace {

using namespace engine_testing;

class AdminApiTest : public AzureApiTest, public ::testing::WithParamInterface<bool> {
 protected:
  bool useTls() const override { return GetParam(); }
  void SetUp() override {
    AzureApiTest::SetUp();
    startAdmin();
  }
  void startAdmin() {
    api::AdminApi::Options options;
    options.configured_hubs = {std::string(kHub)};
    admin_ = std::make_unique<api::AdminApi>(*engine_, *database_, *auth_, options);
    auto loaded = admin_->loadStored();
    ASSERT_TRUE(loaded.has_value()) << loaded.error();
    loaded_ = *loaded;
    admin_->addRoutes(router_);
  }

  // The simulator's credentials with their endpoints, the APNs key inline as PEM, and `rules`.
  std::string hubJson(const std::string& rules) {
    rapidjson::Document doc;
    const std::string text = readFile(credentialsDir() / "credentials.json");
    doc.Parse(text.c_str());
    auto& a = doc.GetAllocator();
    const auto set = [&](rapidjson::Value& object, const char* key, const std::string& value) {
      object.RemoveMember(key);
      object.AddMember(rapidjson::Value(key, a), rapidjson::Value(value.c_str(), a), a);
    };
    auto& apns = doc["apns"];
    const std::string pem = readFile(apns["private_key_file"].GetString());
    apns.RemoveMember("private_key_file");
    set(apns, "private_key", pem);
    set(apns, "endpoint", fmt::format("https://localhost:{}", apns_port_));
    set(doc["fcm"], "endpoint", fmt::format("https://localhost:{}", fcm_port_));
    set(doc["fcm"], "token_endpoint", fmt::format("https://localhost:{}/token", fcm_port_));
    set(doc["wns"], "token_endpoint",
        fmt::format("https://localhost:{}/accesstoken.srf", wns_port_));
    rapidjson::Document parsed_rules;
    parsed_rules.Parse(rules.c_str());
    doc.AddMember("rules", rapidjson::Value(parsed_rules, a), a);
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    doc.Accept(w);
    return buffer.GetString();
  }

  std::unique_ptr<api::AdminApi> admin_;
  size_t loaded_ = 0;
};

const SasRule kHubListen{"AppListen", "app-listen-key", api::kListen};
const std::string kRules = R"([{"name":"AppListen","key":"app-listen-key","rights":"Listen"},)"
                           R"({"name":"AppSend","key":"app-send-key","rights":["Send","Listen"]}])";

TEST_P(AdminApiTest, AHubIsCreatedShownWithoutSecretsUsedAndDeletedWithItsDevices) {
  const std::string body = hubJson(kRules);
  auto created = call("PUT", "/admin/hubs/app2", body);
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_THAT(created.body, HasSubstr(R"("name":"app2","source":"api")"));
  auto shown = call("GET", "/admin/hubs/app2");
  EXPECT_EQ(shown.status, 200u);
  EXPECT_THAT(shown.body, HasSubstr(R"("bundle_id":"com.example.pushhub")"));
  EXPECT_THAT(shown.body,
              HasSubstr(fmt::format(R"("endpoint":"https://localhost:{}")", apns_port_)));
  EXPECT_THAT(shown.body, HasSubstr(R"({"name":"AppSend","rights":"Listen,Send"})"));
  for (const char* secret : {"PRIVATE KEY", "app-listen-key", "app-send-key", "\"secret\"",
                             "private_key", "service_account"}) {
    EXPECT_THAT(shown.body, Not(HasSubstr(secret))) << secret;
  }
  auto list = call("GET", "/admin/hubs");
  EXPECT_THAT(list.body, HasSubstr(R"({"name":"app2","source":"api"})"));
  EXPECT_THAT(list.body, HasSubstr(R"({"name":"demo","source":"configuration"})"));

  // The hub's own rule works on its hub only, and the credentials reach the simulator.
  const std::string hub_token = token(kHubListen, scheme() + "://127.0.0.1/app2");
  ASSERT_EQ(
      call("PUT", "/app2/installations/a1", apnsInstallationJson("a1", R"("t")"), {}, hub_token)
          .status,
      200u);
  EXPECT_EQ(call("PUT", "/demo/installations/a1", apnsInstallationJson("a1", R"("t")"), {},
                 token(kHubListen, scheme() + "://127.0.0.1/demo"))
                .status,
            401u);
  EXPECT_EQ(call("GET", "/admin/hubs/app2", {}, {}, hub_token).status, 401u);
  auto sent = call("POST", "/app2/messages", R"({"msg":"via app2"})",
                   {{"ServiceBusNotification-Format", "template"}});
  ASSERT_EQ(sent.status, 201u) << sent.body;
  std::smatch m;
  const std::string location = sent.header("location");
  ASSERT_TRUE(std::regex_search(location, m, std::regex(R"(/messages/(\w+)\?)")));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (accepted("apns") < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(accepted("apns"), 1u);

  // Replaced: 200; the old rule is gone with the new set.
  auto replaced = call("PUT", "/admin/hubs/app2",
                       hubJson(R"([{"name":"Other","key":"other-key","rights":"Manage"}])"));
  EXPECT_EQ(replaced.status, 200u) << replaced.body;
  EXPECT_EQ(call("GET", "/app2/installations/a1", {}, {}, hub_token).status, 401u);

  // Stored: back after a restart.
  client_.reset();
  http_->stop(std::chrono::milliseconds(500));
  http_.reset();
  close();
  open();
  auth_ = std::make_unique<api::SasAuthenticator>(std::vector<SasRule>{kFull, kListen});
  api::AdminApi::Options options;
  options.configured_hubs = {std::string(kHub)};
  api::AdminApi again(*engine_, *database_, *auth_, options);
  auto loaded = again.loadStored();
  ASSERT_TRUE(loaded.has_value()) << loaded.error();
  EXPECT_EQ(*loaded, 1u);
  EXPECT_TRUE(engine_->hasHub("app2"));
  auto device = store_->get("app2", "a1");
  ASSERT_TRUE(device.has_value());
  EXPECT_TRUE(device->has_value());
}

TEST_P(AdminApiTest, AHubWithAnApnsCertificateDeliversThroughIt) {
  // The simulator trusts a push CA; the hub presents a certificate it signed, inline as PEM.
  const auto d = dir_->path();
  ASSERT_TRUE(
      connectors::sim::writeCertificateAuthority(d / "push-ca.crt", d / "push-ca.key").has_value());
  connectors::sim::CertificateRequest request{
      "Apple Push Services: com.example.pushhub", "com.example.pushhub", {}, {}, true};
  ASSERT_TRUE(connectors::sim::writeSignedCertificate(d / "push-ca.crt", d / "push-ca.key", request,
                                                      d / "push.crt", d / "push.key")
                  .has_value());
  start({"--record", record_, "--client-ca", (d / "push-ca.crt").string()});
  rapidjson::Document doc;
  doc.Parse(hubJson("[]").c_str());
  auto& apns = doc["apns"];
  for (const char* token_field : {"key_id", "team_id", "private_key", "bundle_id"}) {
    apns.RemoveMember(token_field);
  }
  const std::string pem = readFile(d / "push.crt") + readFile(d / "push.key");
  apns.AddMember("certificate", rapidjson::Value(pem.c_str(), doc.GetAllocator()),
                 doc.GetAllocator());
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  doc.Accept(w);

  auto created = call("PUT", "/admin/hubs/certhub", buffer.GetString());
  ASSERT_EQ(created.status, 201u) << created.body;
  auto shown = call("GET", "/admin/hubs/certhub");
  EXPECT_THAT(shown.body, HasSubstr(R"("auth":"certificate")"));
  EXPECT_THAT(shown.body, HasSubstr("Apple Push Services: com.example.pushhub"));
  EXPECT_THAT(shown.body, HasSubstr(R"("bundle_id":"com.example.pushhub")")) << "from the UID";
  EXPECT_THAT(shown.body, HasSubstr(R"("certificate_expires":")"));
  EXPECT_THAT(shown.body, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(shown.body, Not(HasSubstr("BEGIN CERTIFICATE")));

  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(call("PUT", fmt::format("/certhub/installations/c{}", i),
                   apnsInstallationJson(fmt::format("c{}", i), R"("t")"))
                  .status,
              200u);
  }
  auto sent = call("POST", "/certhub/messages", R"({"msg":"over a certificate"})",
                   {{"ServiceBusNotification-Format", "template"}});
  ASSERT_EQ(sent.status, 201u) << sent.body;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (accepted("apns") < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(accepted("apns"), 3u);
  // No provider token was sent: the simulator authenticated the connection by its certificate.
  const auto recorded = records();
  ASSERT_EQ(recorded.size(), 3u);
  for (const auto& r : recorded) {
    EXPECT_EQ(r.service, "apns");
    EXPECT_EQ(r.headers.count("authorization"), 0u);
    EXPECT_EQ(r.headers.at("apns-topic"), "com.example.pushhub");
  }

  // A certificate from a CA the simulator does not trust is a credential failure, not a success.
  ASSERT_TRUE(connectors::sim::writeCertificateAuthority(d / "rogue-ca.crt", d / "rogue-ca.key")
                  .has_value());
  ASSERT_TRUE(connectors::sim::writeSignedCertificate(d / "rogue-ca.crt", d / "rogue-ca.key",
                                                      request, d / "rogue.crt", d / "rogue.key")
                  .has_value());
  const std::string rogue = readFile(d / "rogue.crt") + readFile(d / "rogue.key");
  apns["certificate"].SetString(rogue.c_str(), doc.GetAllocator());
  rapidjson::StringBuffer rogue_buffer;
  rapidjson::Writer<rapidjson::StringBuffer> rw(rogue_buffer);
  doc.Accept(rw);
  ASSERT_EQ(call("PUT", "/admin/hubs/certhub", rogue_buffer.GetString()).status, 200u);
  auto refused = call("POST", "/certhub/messages", R"({"msg":"refused"})",
                      {{"ServiceBusNotification-Format", "template"}});
  ASSERT_EQ(refused.status, 201u);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(accepted("apns"), 3u) << "nothing more reached the simulator";
}

TEST_P(AdminApiTest, DeletingAHubDeletesItsDevicesOnly) {
  ASSERT_EQ(call("PUT", "/admin/hubs/app3", hubJson("[]")).status, 201u);
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(call("PUT", fmt::format("/app3/installations/d{}", i),
                   apnsInstallationJson(fmt::format("d{}", i), R"("t")"))
                  .status,
              200u);
  }
  ASSERT_EQ(call("PUT", "/demo/installations/k1", apnsInstallationJson("k1", R"("t")")).status,
            200u);
  EXPECT_EQ(store_->installationCount(), 41u);
  auto deleted = call("DELETE", "/admin/hubs/app3");
  ASSERT_EQ(deleted.status, 200u) << deleted.body;
  EXPECT_EQ(deleted.body, R"({"name":"app3","devices_deleted":40})");
  EXPECT_EQ(store_->installationCount(), 1u);
  EXPECT_EQ(call("GET", "/admin/hubs/app3").status, 404u);
  EXPECT_EQ(call("GET", "/app3/installations/d1").status, 404u);
  EXPECT_EQ(call("DELETE", "/admin/hubs/app3").status, 404u);
  EXPECT_EQ(call("GET", "/demo/installations/k1").status, 200u);
  // A hub of the same name starts empty, its devices' handles free again.
  ASSERT_EQ(call("PUT", "/admin/hubs/app3", hubJson("[]")).status, 201u);
  EXPECT_EQ(call("GET", "/app3/installations/d1").status, 404u);
  EXPECT_EQ(call("GET", "/app3/installations?top=10").body,
            R"({"installations":[],"continuationToken":null})");
}

TEST_P(AdminApiTest, RefusalsNameTheProblemAndStoreNothing) {
  const std::string good = hubJson("[]");
  struct Case {
    std::string target, body, authorization;
    unsigned status;
    const char* detail;
  };
  const std::vector<Case> cases = {
      {"/admin/hubs/app4", good, "", 401, "Authorization header is missing"},
      {"/admin/hubs/app4", good, token(kListen), 403, "this needs Manage"},
      {"/admin/hubs/demo", good, token(kFull), 409, "declared in the configuration file"},
      {"/admin/hubs/app4", "{nope", token(kFull), 400, "the body is not JSON"},
      {"/admin/hubs/app4", std::string(110'000, '['), token(kFull), 400, "nested deeper"},
      {"/admin/hubs/%2E%2E", good, token(kFull), 400, "'.' and '..' are not hub names"},
      {"/admin/hubs/%2e", good, token(kFull), 400, "'.' and '..' are not hub names"},
      {"/admin/hubs/app4", "{}", token(kFull), 400, "at least one of apns, fcm, wns"},
      {"/admin/hubs/app4", hubJson(R"([{"name":"x","key":"k","rights":"Fly"}])"), token(kFull), 400,
       "rules/0/rights"},
      {"/admin/hubs/app4", hubJson(R"([{"name":"x","rights":"Send"}])"), token(kFull), 400,
       "rules/0/key"},
      {"/admin/hubs/bad%20name", good, token(kFull), 400, "only letters, digits"},
  };
  for (const auto& c : cases) {
    auto reply = call("PUT", c.target, c.body, {}, c.authorization);
    EXPECT_EQ(reply.status, c.status) << c.target << ": " << reply.body;
    EXPECT_THAT(reply.body, HasSubstr(c.detail)) << c.target << ": " << reply.body;
  }
  EXPECT_FALSE(engine_->hasHub("app4"));
  EXPECT_EQ(call("GET", "/admin/hubs/app4").status, 404u);
  EXPECT_EQ(call("DELETE", "/admin/hubs/demo").status, 409u);
  EXPECT_TRUE(engine_->hasHub("demo"));
  EXPECT_EQ(loaded_, 0u);
}

INSTANTIATE_TEST_SUITE_P(Transports, AdminApiTest, ::testing::Bool(), transportName);

}  // namespace
}  // namespace pushhub::hub
