// The Azure-compatible REST routes over real HTTP, with SAS auth, the engine and pushhub-sim
// behind them: installations CRUD with read-your-writes, sends (tags, direct, scheduled),
// telemetry, and every refusal with Azure's XML error and nothing stored.
#include "tests/hub/azure_fixture.h"

namespace pushhub::hub {
namespace {

using namespace engine_testing;

TEST_P(AzureRoutes, InstallationsAreReadableRightAfterTheyAreWrittenWithTheSdksStatusCodes) {
  auto put = call("PUT", "/demo/installations/i1?api-version=2020-06",
                  apnsInstallationJson("i1", R"("news")"), {{"Content-Type", "application/json"}},
                  token(kListen));
  EXPECT_EQ(put.status, 200u) << put.body;
  EXPECT_EQ(put.header("content-location"), scheme() + "://127.0.0.1/demo/installations/i1");
  auto get = call("GET", "/demo/installations/i1", {}, {}, token(kListen));
  EXPECT_EQ(get.status, 200u);
  EXPECT_THAT(get.body, HasSubstr(R"("installationId":"i1")"));
  // PATCH with the JS SDK's content type: 200 (not the docs' 204).
  auto patch =
      call("PATCH", "/demo/installations/i1", R"([{"op":"add","path":"/tags","value":"sport"}])",
           {{"Content-Type", "application/json"}}, token(kListen));
  EXPECT_EQ(patch.status, 200u) << patch.body;
  EXPECT_THAT(call("GET", "/demo/installations/i1").body, HasSubstr(R"("sport")"));
  EXPECT_EQ(call("DELETE", "/demo/installations/i1", {}, {}, token(kListen)).status, 204u);
  auto gone = call("GET", "/demo/installations/i1");
  EXPECT_EQ(gone.status, 404u);
  EXPECT_THAT(
      gone.body,
      HasSubstr("<Error><Code>404</Code><Detail>installation &quot;i1&quot; does not exist"));
  EXPECT_EQ(gone.header("content-type"), "application/xml; charset=utf-8");
}

TEST_P(AzureRoutes, RefusalsAnswerWithAzuresErrorAndStoreNothing) {
  const std::string body = apnsInstallationJson("i2", "");
  struct Case {
    std::string method, target, body, authorization;
    unsigned status;
    const char* detail;
  };
  const std::vector<Case> cases = {
      {"PUT", "/demo/installations/i2", body, "", 401, "Authorization header is missing"},
      {"PUT", "/demo/installations/i2", body, "SharedAccessSignature sr=x", 401, "sig is missing"},
      {"PUT", "/demo/installations/i2", body, token(kFull, "http://127.0.0.1/", -10), 401,
       "expired"},
      {"PUT", "/demo/installations/i2", body, token(kFull, "http://127.0.0.1/other"), 401,
       "does not cover"},
      {"PUT", "/demo/installations/i2", body,
       token({"DefaultFullSharedAccessSignature", "wrong", 7}), 401, "signature does not match"},
      {"POST", "/demo/messages", R"({"msg":"x"})", token(kListen), 403,
       "grants Listen, this needs Send"},
      {"GET", "/demo/messages/abc", "", token(kListen), 403, "this needs Manage"},
      {"GET", "/demo/messages/abc", "", token(kSendOnly), 403, "grants Send, this needs Manage"},
      {"GET", "/demo/installations?tag=a", "", token(kSendOnly), 403, "this needs Manage"},
      {"GET", "/demo/registrations", "", token(kSendOnly), 403, "this needs Manage"},
      {"PUT", "/demo/installations/i2", body, token(kSendOnly), 403, "this needs Listen"},
      {"PUT", "/nohub/installations/i2", body, token(kFull), 404,
       "hub &quot;nohub&quot; does not exist"},
      {"PUT", "/demo/installations/i2", "{not json", token(kFull), 400, ""},
      {"PUT", "/demo/installations/other", body, token(kFull), 400, "does not match the URL"},
      {"PUT", "/demo/installations/i2",
       R"({"installationId":"i2","platform":"nokia","pushChannel":"x"})", token(kFull), 400,
       "platform"},
      {"PATCH", "/demo/installations/i2", R"([{"op":"add","path":"/nope","value":"x"}])",
       token(kFull), 404, ""},
  };
  for (const auto& c : cases) {
    auto reply = call(c.method, c.target, c.body, {}, c.authorization);
    EXPECT_EQ(reply.status, c.status) << c.method << " " << c.target << ": " << reply.body;
    EXPECT_THAT(reply.body, HasSubstr(fmt::format("<Error><Code>{}</Code>", c.status)));
    EXPECT_THAT(reply.body, HasSubstr(c.detail)) << c.method << " " << c.target;
    EXPECT_THAT(reply.body, Not(HasSubstr("secret")));
  }
  EXPECT_EQ(store_->installationCount(), 0u);
  // A bad patch path on an installation that exists: 400 naming the operation, nothing changed.
  ASSERT_EQ(call("PUT", "/demo/installations/i3", apnsInstallationJson("i3", R"("keep")")).status,
            200u);
  auto bad_path =
      call("PATCH", "/demo/installations/i3",
           R"([{"op":"add","path":"/tags","value":"x"},{"op":"add","path":"/nope","value":"y"}])");
  EXPECT_EQ(bad_path.status, 400u) << bad_path.body;
  EXPECT_THAT(bad_path.body, HasSubstr("/1 (add /nope)"));
  auto unchanged = store_->get(kHub, "i3");
  ASSERT_TRUE(unchanged && *unchanged);
  EXPECT_EQ((*unchanged)->tags, std::vector<std::string>{"keep"});
  EXPECT_EQ((*unchanged)->version, 1u);
  ASSERT_EQ(call("DELETE", "/demo/installations/i3").status, 204u);
  auto no_format = call("POST", "/demo/messages", R"({"msg":"x"})");
  EXPECT_EQ(no_format.status, 400u);
  EXPECT_THAT(no_format.body, HasSubstr("ServiceBusNotification-Format header is missing"));
  auto bad_tags = call(
      "POST", "/demo/messages", R"({"msg":"x"})",
      {{"ServiceBusNotification-Format", "template"}, {"ServiceBusNotification-Tags", "a && (b"}});
  EXPECT_EQ(bad_tags.status, 400u);
  EXPECT_THAT(bad_tags.body, HasSubstr("tags: position"));
  EXPECT_TRUE(engine_->notifications().active()->empty());
}

TEST_P(AzureRoutes, ATemplateSendToATagIsDeliveredAndItsTelemetryShowsTheCounts) {
  for (int i = 0; i < 6; ++i) {
    const std::string id = fmt::format("d{}", i);
    ASSERT_EQ(call("PUT", "/demo/installations/" + id,
                   apnsInstallationJson(id, i % 2 == 0 ? R"("even")" : R"("odd")"))
                  .status,
              200u);
  }
  auto sent = call("POST", "/demo/messages?api-version=2020-06", R"({"msg":"from REST"})",
                   {{"ServiceBusNotification-Format", "template"},
                    {"ServiceBusNotification-Tags", "even"},
                    {"Content-Type", "application/json;charset=utf-8"}});
  ASSERT_EQ(sent.status, 201u) << sent.body;
  const std::string location = sent.header("location");
  // Absolute, and the id at pathname.split("/")[3] as the JS SDK reads it.
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      location, m,
      std::regex(scheme() + R"(://127\.0\.0\.1/demo/messages/(\w+)\?api-version=2015-04)")))
      << location;
  EXPECT_FALSE(sent.header("trackingid").empty());
  EXPECT_EQ(sent.header("trackingid"), sent.header("x-ms-correlation-request-id"));
  const std::string id = m[1];
  waitDone(id);
  auto details = call("GET", "/demo/messages/" + id + "?api-version=2016-07");
  EXPECT_EQ(details.status, 200u);
  EXPECT_THAT(details.body, HasSubstr("<State>Completed</State>"));
  EXPECT_THAT(details.body,
              HasSubstr("<ApnsOutcomeCounts><Outcome><Name>Success</Name><Count>3</Count>"));
  size_t delivered = 0;
  for (const auto& r : records()) delivered += r.body == R"({"aps":{"alert":"from REST"}})";
  EXPECT_EQ(delivered, 3u);
  auto json = call("GET", "/demo/messages/" + id, {}, {{"Accept", "application/json"}});
  EXPECT_EQ(json.status, 200u);
  EXPECT_EQ(json.header("content-type"), "application/json; charset=utf-8");
  EXPECT_THAT(json.body, HasSubstr(R"("state":"Completed")"));
  EXPECT_THAT(json.body,
              HasSubstr(R"("targetPlatforms":["template"],"counts":{"apns":{"Success":3}})"));
  EXPECT_EQ(call("GET", "/demo/messages/nope").status, 404u);
}

TEST_P(AzureRoutes, RegistrationIdsComeWithAnHttpsLocationTheJsSdkAccepts) {
  auto reply = call("POST", "/demo/registrationIDs?api-version=2020-06", {}, {}, token(kListen));
  EXPECT_EQ(reply.status, 201u) << reply.body;
  std::smatch m;
  const std::string location = reply.header("location");
  // new URL(location).pathname.split("/")[3] is the id; the SDK requires "https://".
  ASSERT_TRUE(std::regex_match(
      location, m, std::regex(R"(https://127\.0\.0\.1/demo/registrations/(\d+-\d+-\d+))")))
      << location;
  EXPECT_NE(call("POST", "/demo/registrationIDs").header("location"), location);
  EXPECT_EQ(call("POST", "/demo/registrationIDs", {}, {}, "").status, 401u);
}

TEST_P(AzureRoutes, DirectSendAndScheduledSendWithCancel) {
  // The JS SDK's direct=true; the docs' bare ?direct works the same.
  for (const char* query : {"?direct=true&api-version=2020-06", "?direct&api-version=2015-04"}) {
    auto direct =
        call("POST", std::string("/demo/messages") + query, R"({"aps":{"alert":"direct"}})",
             {{"ServiceBusNotification-Format", "apple"},
              {"ServiceBusNotification-DeviceHandle", std::string(64, 'd')},
              {"apns-priority", "5"}});
    ASSERT_EQ(direct.status, 201u) << direct.body;
  }
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (accepted("apns") < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(accepted("apns"), 2u);
  for (const auto& r : records()) {
    EXPECT_EQ(r.handle, std::string(64, 'd'));
    EXPECT_EQ(r.headers.count("apns-priority") ? r.headers.at("apns-priority") : "", "5");
  }

  auto scheduled =
      call("POST", "/demo/schedulednotifications", R"({"aps":{"alert":"later"}})",
           {{"ServiceBusNotification-Format", "apple"},
            {"ServiceBusNotification-ScheduleTime", formatIso8601(nowMillis() + 60'000)}});
  ASSERT_EQ(scheduled.status, 201u) << scheduled.body;
  std::smatch m;
  const std::string location = scheduled.header("location");
  ASSERT_TRUE(std::regex_search(location, m, std::regex(R"(/demo/schedulednotifications/(\w+)\?)")))
      << location;
  EXPECT_EQ(call("DELETE", "/demo/schedulednotifications/" + std::string(m[1])).status, 200u);
  EXPECT_EQ(call("DELETE", "/demo/schedulednotifications/" + std::string(m[1])).status, 404u);
  auto bad_time = call("POST", "/demo/schedulednotifications", "{}",
                       {{"ServiceBusNotification-Format", "apple"},
                        {"ServiceBusNotification-ScheduleTime", "tomorrow"}});
  EXPECT_EQ(bad_time.status, 400u);
}

TEST_P(AzureRoutes, BatchDirectSendTakesTheJsSdksMultipartBody) {
  const std::string boundary = "nh-boundary-9c1d";
  std::string devices = "[";
  for (int i = 0; i < 6; ++i) devices += fmt::format(R"({}"{:c>64}")", i ? "," : "", i);
  devices += "]";
  const std::string body = "--" + boundary +
                           "\r\nContent-type: application/json;charset=utf-8\r\n"
                           "Content-Disposition: inline; name=notification\r\n\r\n"
                           R"({"aps":{"alert":"batch"}})"
                           "\r\n--" +
                           boundary +
                           "\r\nContent-type: application/json\r\n"
                           "Content-Disposition: inline; name=devices\r\n\r\n" +
                           devices + "\r\n--" + boundary + "--";
  auto sent = call("POST", "/demo/messages/$batch?direct=true&api-version=2020-06", body,
                   {{"ServiceBusNotification-Format", "apple"},
                    {"Content-Type", "multipart/mixed; boundary = \"" + boundary + "\""}});
  ASSERT_EQ(sent.status, 201u) << sent.body;
  std::smatch m;
  const std::string location = sent.header("location");
  ASSERT_TRUE(std::regex_search(location, m, std::regex(R"(/demo/messages/(\w+)\?)")));
  waitDone(m[1]);
  std::set<std::string> handles;
  for (const auto& r : records()) {
    EXPECT_EQ(r.body, R"({"aps":{"alert":"batch"}})");
    handles.insert(r.handle);
  }
  EXPECT_EQ(handles.size(), 6u);
  auto details = call("GET", "/demo/messages/" + std::string(m[1]));
  EXPECT_THAT(details.body, HasSubstr("<Name>Success</Name><Count>6</Count>"));
  auto no_devices = call("POST", "/demo/messages/$batch?direct", "--b\r\n\r\nx\r\n--b--",
                         {{"ServiceBusNotification-Format", "apple"},
                          {"Content-Type", "multipart/mixed; boundary=b"}});
  EXPECT_EQ(no_devices.status, 400u);
  EXPECT_THAT(no_devices.body, HasSubstr("a part named notification and a part named devices"));
  auto not_multipart = call("POST", "/demo/messages/$batch?direct", "{}",
                            {{"ServiceBusNotification-Format", "apple"}});
  EXPECT_EQ(not_multipart.status, 400u);
  EXPECT_TRUE(engine_->notifications().active()->empty());
}

TEST_P(AzureRoutes, TestSendsReachTenDevicesAndAnswerWithEachResult) {
  for (int i = 0; i < 14; ++i) {
    const std::string id = fmt::format("t{}", i);
    ASSERT_EQ(
        call("PUT", "/demo/installations/" + id, apnsInstallationJson(id, R"("news")")).status,
        200u);
  }
  ASSERT_EQ(call("PUT", "/demo/installations/bad",
                 R"({"installationId":"bad","platform":"apns","pushChannel":")" +
                     std::string(64, 'b') + R"(","tags":["broken"]})")
                .status,
            200u);
  // The JS SDK's form: test=true (the docs' bare &test works the same).
  auto sent = call(
      "POST", "/demo/messages?test=true&api-version=2020-06", R"({"msg":"debug"})",
      {{"ServiceBusNotification-Format", "template"}, {"ServiceBusNotification-Tags", "news"}});
  ASSERT_EQ(sent.status, 201u) << sent.body;
  EXPECT_FALSE(sent.header("location").empty());
  EXPECT_EQ(sent.header("content-type"), "application/xml; charset=utf-8");
  EXPECT_THAT(sent.body, HasSubstr("<NotificationOutcome xmlns="));
  EXPECT_THAT(sent.body, HasSubstr("<Success>10</Success><Failure>0</Failure><Results>"));
  const std::regex result_re(
      "<RegistrationResult><ApplicationPlatform>apple</ApplicationPlatform><PnsHandle>a+[0-9a-f]"
      "</PnsHandle><RegistrationId>t\\d+</RegistrationId><Outcome>The Notification was "
      "successfully sent to the Push Notification System</Outcome></RegistrationResult>");
  EXPECT_EQ(std::distance(std::sregex_iterator(sent.body.begin(), sent.body.end(), result_re),
                          std::sregex_iterator()),
            10);
  EXPECT_EQ(accepted("apns"), 10u);

  auto failed =
      call("POST", "/demo/messages?test", R"({"aps":{"alert":"x"}})",
           {{"ServiceBusNotification-Format", "apple"}, {"ServiceBusNotification-Tags", "broken"}});
  ASSERT_EQ(failed.status, 201u) << failed.body;
  EXPECT_THAT(failed.body, HasSubstr("<Success>0</Success><Failure>1</Failure>"));
  EXPECT_THAT(failed.body, HasSubstr("<RegistrationId>bad</RegistrationId><Outcome>"));
  EXPECT_THAT(failed.body, HasSubstr("BadDeviceToken"));
  // No device: the Results element is there anyway (the JS SDK dereferences it, quirk #10).
  auto nobody = call(
      "POST", "/demo/messages?test=true", R"({"msg":"x"})",
      {{"ServiceBusNotification-Format", "template"}, {"ServiceBusNotification-Tags", "nobody"}});
  ASSERT_EQ(nobody.status, 201u);
  EXPECT_THAT(nobody.body,
              HasSubstr("<Success>0</Success><Failure>0</Failure><Results></Results>"));
}

TEST_P(AzureRoutes, LimitsAndUnknownRoutesAnswerInAzuresForm) {
  // Refused from the Content-Length alone, before the body is read.
  auto big = client_->raw(
      "PUT /demo/installations/big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 307200\r\n\r\n");
  EXPECT_EQ(big.status, 413u);
  EXPECT_THAT(big.body, HasSubstr("<Error><Code>413</Code><Detail>request body larger than 262144 "
                                  "bytes (http.max_body_bytes)</Detail></Error>"));
  EXPECT_EQ(store_->installationCount(), 0u);
  client_ = std::make_unique<HttpClient>(
      http_->port(), useTls() ? (credentialsDir() / "ca.crt").string() : std::string());
  auto huge_header = call("GET", "/demo/installations/x", {}, {{"X-Pad", std::string(9000, 'p')}});
  EXPECT_EQ(huge_header.status, 431u);
  EXPECT_THAT(huge_header.body, HasSubstr("<Code>431</Code>"));
  client_ = std::make_unique<HttpClient>(
      http_->port(), useTls() ? (credentialsDir() / "ca.crt").string() : std::string());
  auto nowhere = call("GET", "/demo/nothing/here");
  EXPECT_EQ(nowhere.status, 404u);
  EXPECT_THAT(nowhere.body, HasSubstr("<Code>404</Code><Detail>no resource at /demo/nothing/here"));
  auto wrong_method = call("POST", "/demo/installations/x");
  EXPECT_EQ(wrong_method.status, 405u);
  EXPECT_THAT(wrong_method.header("allow"), HasSubstr("PUT"));
  // api-version as every SDK sends it is accepted (and ignored).
  for (const char* version : {"2013-10", "2015-01", "2015-04", "2016-07", "2020-06"}) {
    EXPECT_EQ(call("GET", std::string("/demo/installations/x?api-version=") + version).status,
              404u);
  }
}

TEST_F(AzureApiTest, AnHttpsPortRefusesPlainHttpAndTheWrongCaNothingLeaks) {
  // A plain-HTTP fixture here; make an HTTPS server beside it on the same router.
  api::HttpServer tls_server(*shards_, router_, limits_, *metrics_);
  ASSERT_TRUE(tls_server.listen(ListenAddress{"127.0.0.1", 0}).has_value());
  ASSERT_TRUE(tls_server
                  .useTls((credentialsDir() / "server.crt").string(),
                          (credentialsDir() / "server.key").string())
                  .has_value());
  auto wrong = tls_server.useTls((credentialsDir() / "ca.crt").string(),
                                 (credentialsDir() / "server.key").string());
  ASSERT_FALSE(wrong.has_value());
  EXPECT_THAT(wrong.error(), HasSubstr("server.key: not a PEM private key: key values mismatch"));
  auto missing = tls_server.useTls("/nonexistent.crt", "/nonexistent.key");
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error(), HasSubstr("/nonexistent.crt"));
  tls_server.start();
  {
    HttpClient plain(tls_server.port());
    plain.sendRaw("GET /demo/installations/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    EXPECT_TRUE(plain.serverClosed());
  }
  // A client trusting another CA (its own server certificate as the only anchor) refuses.
  EXPECT_ANY_THROW(HttpClient(tls_server.port(), (credentialsDir() / "server.key").string()));
  HttpClient good(tls_server.port(), (credentialsDir() / "ca.crt").string());
  EXPECT_EQ(
      good.request("GET", "/demo/installations/x", {}, {{"Authorization", token(kFull)}}).status,
      404u);
  tls_server.stop(std::chrono::milliseconds(500));
}

// Every AzureRoutes test of this binary (here and azure_registrations_test.cc), both ways.
INSTANTIATE_TEST_SUITE_P(Transports, AzureRoutes, ::testing::Bool(), transportName);

}  // namespace
}  // namespace pushhub::hub
