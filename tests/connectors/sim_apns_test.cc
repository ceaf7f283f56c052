// pushhub-sim's APNs listener, driven by independent HTTP/2 clients (curl --http2 and nghttp from
// Debian's packages) against the real binary: every request rule, the token-auth rules, the
// stream-limit SETTINGS, faults, /stats and --record.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>

#include "connectors/jwt.h"
#include "tests/connectors/sim_fixture.h"

namespace pushhub::connectors::sim {
namespace {

using namespace pushhub::connectors::sim::testing;
using ::testing::HasSubstr;

const std::string kToken(64, 'a');

class SimApnsTest : public SimTest {
 protected:
  static void SetUpTestSuite() {
    SimTest::SetUpTestSuite();
    key_id_ = apns_key_id_;
    team_id_ = apns_team_id_;
    auto key = loadPrivateKeyPem(apns_p8_);
    ASSERT_TRUE(key.has_value());
    key_ = key->release();
  }
  static void TearDownTestSuite() {
    EVP_PKEY_free(key_);
    SimTest::TearDownTestSuite();
  }

  static std::string jwt(int64_t iat_offset_seconds = 0, std::string kid = "",
                         std::string team = "") {
    const auto iat = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() +
                     iat_offset_seconds;
    auto token =
        signJwt(fmt::format(R"({{"alg":"ES256","kid":"{}"}})", kid.empty() ? key_id_ : kid),
                fmt::format(R"({{"iss":"{}","iat":{}}})", team.empty() ? team_id_ : team, iat),
                key_, JwtAlgorithm::kEs256);
    return *token;
  }

  // The curl arguments of one request; `headers` replace the defaults of the same name, an empty
  // value drops one.
  std::vector<std::string> requestArgs(std::map<std::string, std::string> headers = {},
                                       std::string body = R"({"aps":{"alert":"hi"}})",
                                       std::string path = "", std::string method = "POST") {
    std::map<std::string, std::string> all = {{"authorization", "bearer " + jwt()},
                                              {"apns-topic", "com.example.pushhub"},
                                              {"apns-push-type", "alert"}};
    for (auto& [k, v] : headers) all[k] = v;
    std::vector<std::string> args = {fmt::format("https://localhost:{}{}", apns_port_,
                                                 path.empty() ? "/3/device/" + kToken : path),
                                     "-X", method};
    for (auto& [k, v] : all) {
      if (!v.empty()) args.insert(args.end(), {"-H", k + ": " + v});
    }
    if (!body.empty()) args.insert(args.end(), {"--data-binary", body});
    return args;
  }

  Reply send(std::map<std::string, std::string> headers = {},
             std::string body = R"({"aps":{"alert":"hi"}})", std::string path = "",
             std::string method = "POST") {
    std::vector<std::string> args = {"curl", "-s", "-i", "--http2", "--cacert", ca_};
    auto request =
        requestArgs(std::move(headers), std::move(body), std::move(path), std::move(method));
    args.insert(args.end(), request.begin(), request.end());
    auto replies = parseReplies(run(args));
    EXPECT_EQ(replies.size(), 1u);
    return replies.empty() ? Reply{} : replies.front();
  }

  std::string reasonOf(const Reply& reply) {
    std::smatch m;
    if (std::regex_search(reply.body, m, std::regex(R"re("reason":"(\w+)")re"))) return m[1];
    return "";
  }

  static inline std::string key_id_, team_id_;
  static inline EVP_PKEY* key_ = nullptr;
};

TEST_F(SimApnsTest, AcceptsAValidPushAndEchoesTheApnsId) {
  start();
  const std::string id = "eabeae54-14a8-11e5-b60b-1697f925ec7b";
  Reply reply = send({{"apns-id", id}, {"apns-priority", "10"}, {"apns-expiration", "0"}});
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["apns-id"], id);
  EXPECT_EQ(reply.body, "");
  // Without an apns-id, one is generated.
  Reply generated = send();
  EXPECT_EQ(generated.status, 200);
  EXPECT_THAT(
      generated.headers["apns-id"],
      ::testing::MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"));
}

TEST_F(SimApnsTest, RejectsEachMalformedRequestWithAppleStatusAndReason) {
  start();
  struct Case {
    std::string name;
    Reply reply;
    int status;
    std::string reason;
  };
  const std::string voip_topic = "com.example.pushhub.voip";
  std::vector<Case> cases;
  cases.push_back({"GET", send({}, "", "", "GET"), 405, "MethodNotAllowed"});
  cases.push_back({"bad path", send({}, "{}", "/3/devices/" + kToken), 404, "BadPath"});
  cases.push_back({"no token", send({}, "{}", "/3/device/"), 400, "MissingDeviceToken"});
  cases.push_back({"short token", send({}, "{}", "/3/device/abcd"), 400, "BadDeviceToken"});
  cases.push_back({"non-hex token", send({}, "{}", "/3/device/" + std::string(64, 'z')), 400,
                   "BadDeviceToken"});
  cases.push_back({"no topic", send({{"apns-topic", ""}}), 400, "MissingTopic"});
  cases.push_back({"long collapse id", send({{"apns-collapse-id", std::string(65, 'c')}}), 400,
                   "BadCollapseId"});
  cases.push_back({"priority 7", send({{"apns-priority", "7"}}), 400, "BadPriority"});
  cases.push_back({"push type", send({{"apns-push-type", "banner"}}), 400, "InvalidPushType"});
  cases.push_back({"apns-id", send({{"apns-id", "not-a-uuid"}}), 400, "BadMessageId"});
  cases.push_back({"uppercase apns-id", send({{"apns-id", "EABEAE54-14A8-11E5-B60B-1697F925EC7B"}}),
                   400, "BadMessageId"});
  cases.push_back({"expiration", send({{"apns-expiration", "soon"}}), 400, "BadExpirationDate"});
  cases.push_back({"no authorization", send({{"authorization", ""}}), 403, "MissingProviderToken"});
  cases.push_back({"garbage token", send({{"authorization", "bearer abc.def.ghi"}}), 403,
                   "InvalidProviderToken"});
  cases.push_back({"unknown key", send({{"authorization", "bearer " + jwt(0, "ZZZZZZZZZZ")}}), 403,
                   "InvalidProviderToken"});
  cases.push_back({"wrong team", send({{"authorization", "bearer " + jwt(0, "", "ZZZZZZZZZZ")}}),
                   403, "InvalidProviderToken"});
  cases.push_back({"old token", send({{"authorization", "bearer " + jwt(-3601)}}), 403,
                   "ExpiredProviderToken"});
  cases.push_back(
      {"other bundle", send({{"apns-topic", "com.other.app"}}), 400, "TopicDisallowed"});
  cases.push_back(
      {"voip without suffix", send({{"apns-push-type", "voip"}}), 400, "TopicDisallowed"});
  cases.push_back({"background at 10",
                   send({{"apns-push-type", "background"}, {"apns-priority", "10"}}), 400,
                   "BadPriority"});
  cases.push_back({"empty payload", send({}, ""), 400, "PayloadEmpty"});
  cases.push_back({"4097 bytes", send({}, std::string(4097, 'x')), 413, "PayloadTooLarge"});
  cases.push_back(
      {"voip 5121 bytes",
       send({{"apns-push-type", "voip"}, {"apns-topic", voip_topic}}, std::string(5121, 'x')), 413,
       "PayloadTooLarge"});
  cases.push_back({"another app's token", send({}, "{}", "/3/device/f0f0" + std::string(60, '0')),
                   400, "DeviceTokenNotForTopic"});
  cases.push_back({"bad token by fate", send({}, "{}", "/3/device/bbbb" + std::string(60, '0')),
                   400, "BadDeviceToken"});
  for (const auto& c : cases) {
    EXPECT_EQ(c.reply.status, c.status) << c.name << ": " << c.reply.body;
    EXPECT_EQ(reasonOf(c.reply), c.reason) << c.name << ": " << c.reply.body;
    EXPECT_TRUE(c.reply.headers.contains("apns-id")) << c.name;
    EXPECT_EQ(c.reply.headers.at("content-type"), "application/json") << c.name;
  }
  // What the limits allow is accepted.
  EXPECT_EQ(send({}, std::string(4096, 'x')).status, 200);
  EXPECT_EQ(
      send({{"apns-push-type", "voip"}, {"apns-topic", voip_topic}}, std::string(5120, 'x')).status,
      200);
  EXPECT_EQ(send({{"apns-collapse-id", std::string(64, 'c')}}).status, 200);
  EXPECT_EQ(send({}, "{}", "/3/device/" + std::string(160, 'a')).status,
            200);  // Live Activity size
}

TEST_F(SimApnsTest, DuplicateHeadersAreRejected) {
  start();
  std::vector<std::string> args = {"curl", "-s", "-i", "--http2", "--cacert", ca_};
  auto request = requestArgs();
  args.insert(args.end(), request.begin(), request.end());
  args.insert(args.end(), {"-H", "apns-priority: 10", "-H", "apns-priority: 5"});
  auto replies = parseReplies(run(args));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].status, 400);
  EXPECT_EQ(reasonOf(replies[0]), "DuplicateHeaders");
}

TEST_F(SimApnsTest, UnregisteredDevicesGet410WithATimestamp) {
  start();
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  Reply reply = send({}, "{}", "/3/device/dead" + std::string(60, '0'));
  EXPECT_EQ(reply.status, 410);
  EXPECT_EQ(reasonOf(reply), "Unregistered");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(reply.body, m, std::regex(R"("timestamp":(\d+))")));
  EXPECT_GE(std::stoll(m[1]), before);
}

TEST_F(SimApnsTest, ANewTokenWithinTwentyMinutesOnOneConnectionIsTooManyUpdates) {
  start();
  // --next keeps the connection: the second request brings another (valid) token.
  std::vector<std::string> args = {"curl", "-s", "-i", "--http2", "--cacert", ca_};
  const std::string in_use = "bearer " + jwt(-10);  // ECDSA: every signing gives another token
  auto first = requestArgs({{"authorization", in_use}});
  auto second = requestArgs({{"authorization", "bearer " + jwt(0)}});
  auto third = requestArgs({{"authorization", in_use}});
  args.insert(args.end(), first.begin(), first.end());
  for (auto* next : {&second, &third}) {
    args.insert(args.end(), {"--next", "-s", "-i", "--http2", "--cacert", ca_});
    args.insert(args.end(), next->begin(), next->end());
  }
  auto replies = parseReplies(run(args));
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].status, 200);
  EXPECT_EQ(replies[1].status, 429);
  EXPECT_EQ(reasonOf(replies[1]), "TooManyProviderTokenUpdates");
  EXPECT_EQ(replies[2].status, 200) << "the token in use stays valid";
  // A fresh connection may bring the new token.
  EXPECT_EQ(send().status, 200);
}

TEST_F(SimApnsTest, OneStreamUntilTheFirstAcceptedPushThenTheRaisedLimit) {
  start({"--apns-max-streams", "777"});
  const std::string body_file = (dir_->path() / "body.json").string();
  std::ofstream(body_file) << R"({"aps":{"alert":"hi"}})";
  const std::string out =
      run({"nghttp", "-nv", "-H", ":method: POST", "-H", "authorization: bearer " + jwt(), "-H",
           "apns-topic: com.example.pushhub", "-d", body_file,
           fmt::format("https://127.0.0.1:{}/3/device/{}", apns_port_, kToken)});
  const size_t first = out.find("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):1]");
  const size_t raised = out.find("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):777");
  const size_t status = out.find(":status: 200");
  ASSERT_NE(first, std::string::npos) << out;
  ASSERT_NE(raised, std::string::npos) << out;
  ASSERT_NE(status, std::string::npos) << out;
  EXPECT_LT(first, raised);
}

TEST_F(SimApnsTest, TheApnsTokenSubcommandSignsAnAcceptedProviderToken) {
  ChildProcess token(PUSHHUB_SIM_BINARY, {"--config", conf_, "apns-token"});
  ASSERT_EQ(token.waitForExit(kTimeout), 0) << token.output();
  std::string jwt = token.output();
  while (!jwt.empty() && jwt.back() == '\n') jwt.pop_back();
  start();
  EXPECT_EQ(send({{"authorization", "bearer " + jwt}}).status, 200);
  ChildProcess no_key(PUSHHUB_SIM_BINARY, {"apns-token"});
  EXPECT_EQ(no_key.waitForExit(kTimeout), 2);
  EXPECT_THAT(no_key.output(), HasSubstr("apns-token needs an --apns-key"));
}

TEST_F(SimApnsTest, OptionallyDropsToOneStreamAfterARejection) {
  // Two initial streams: nghttp sends both requests before it has read the server's SETTINGS.
  start({"--apns-drop-streams-after-rejection", "--apns-initial-streams", "2"});
  const std::string body_file = (dir_->path() / "body.json").string();
  std::ofstream(body_file) << R"({"aps":{"alert":"hi"}})";
  // Two requests on one connection: the first accepted, the second a bad device token.
  const std::string out =
      run({"nghttp", "-nv", "-H", ":method: POST", "-H", "authorization: bearer " + jwt(), "-H",
           "apns-topic: com.example.pushhub", "-d", body_file,
           fmt::format("https://127.0.0.1:{}/3/device/{}", apns_port_, kToken),
           fmt::format("https://127.0.0.1:{}/3/device/{}", apns_port_, "bbbb" + kToken.substr(4))});
  const size_t raised = out.find("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):1000]");
  ASSERT_NE(raised, std::string::npos) << out;
  const size_t dropped = out.find("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):1]", raised);
  EXPECT_NE(dropped, std::string::npos) << out;
  EXPECT_NE(out.find(":status: 400"), std::string::npos) << out;
}

TEST_F(SimApnsTest, InjectsServerErrorsThrottlingAndGoaway) {
  start({"--fault", "apns:500=1"});
  Reply error = send();
  EXPECT_EQ(error.status, 500);
  EXPECT_EQ(reasonOf(error), "InternalServerError");
  sim_.reset();
  start({"--fault", "apns:throttle=1"});
  EXPECT_EQ(reasonOf(send()), "TooManyRequests");
  sim_.reset();
  start({"--fault", "apns:503=1"});
  EXPECT_EQ(send().status, 503);
  sim_.reset();
  // Two requests that curl would send on one connection: after the GOAWAY that follows the
  // first answer, the second needs a connection of its own.
  const auto two_requests = [&] {
    std::vector<std::string> args = {"curl", "-s", "-i", "--http2", "--cacert", ca_};
    const std::string token = "bearer " + jwt();
    auto request = requestArgs({{"authorization", token}});
    args.insert(args.end(), request.begin(), request.end());
    args.insert(args.end(), {"--next", "-s", "-i", "--http2", "--cacert", ca_});
    args.insert(args.end(), request.begin(), request.end());
    return parseReplies(run(args));
  };
  sim_.reset();
  start();
  EXPECT_EQ(two_requests().size(), 2u);
  EXPECT_THAT(adminGet("/stats"), HasSubstr(R"("connections":1,)"));
  sim_.reset();
  start({"--fault", "apns:goaway-every=1"});
  auto replies = two_requests();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].status, 200);
  EXPECT_EQ(replies[1].status, 200);
  EXPECT_THAT(adminGet("/stats"), HasSubstr(R"("connections":2,)"));
}

TEST_F(SimApnsTest, CertificateAuthTakesTheBundleIdFromTheClientCertificate) {
  const auto d = dir_->path();
  ASSERT_TRUE(writeCertificateAuthority(d / "client-ca.crt", d / "client-ca.key").has_value());
  CertificateRequest client{
      "Apple Push Services: com.example.certapp", "com.example.certapp", {}, {}, true};
  ASSERT_TRUE(writeSignedCertificate(d / "client-ca.crt", d / "client-ca.key", client,
                                     d / "client.crt", d / "client.key")
                  .has_value());
  // A certificate from a CA the simulator does not trust.
  ASSERT_TRUE(writeCertificateAuthority(d / "rogue-ca.crt", d / "rogue-ca.key").has_value());
  ASSERT_TRUE(writeSignedCertificate(d / "rogue-ca.crt", d / "rogue-ca.key", client,
                                     d / "rogue.crt", d / "rogue.key")
                  .has_value());
  start({"--client-ca", (d / "client-ca.crt").string()});
  const auto with_certificate = [&](std::map<std::string, std::string> headers,
                                    std::string cert = "client") {
    headers.emplace("authorization", "");  // no provider token: the certificate is the credential
    std::vector<std::string> args = {"curl",     "-s",
                                     "-i",       "--http2",
                                     "--cacert", ca_,
                                     "--cert",   (d / (cert + ".crt")).string(),
                                     "--key",    (d / (cert + ".key")).string()};
    auto request = requestArgs(headers);
    args.insert(args.end(), request.begin(), request.end());
    return parseReplies(run(args));
  };
  auto ok = with_certificate({{"apns-topic", "com.example.certapp"}});
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].status, 200) << ok[0].body;
  auto no_topic = with_certificate({{"apns-topic", ""}});  // the certificate names it
  ASSERT_EQ(no_topic.size(), 1u);
  EXPECT_EQ(no_topic[0].status, 200) << no_topic[0].body;
  auto voip =
      with_certificate({{"apns-topic", "com.example.certapp.voip"}, {"apns-push-type", "voip"}});
  ASSERT_EQ(voip.size(), 1u);
  EXPECT_EQ(voip[0].status, 200) << voip[0].body;
  auto other = with_certificate({{"apns-topic", "com.example.pushhub"}});
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(reasonOf(other[0]), "TopicDisallowed");
  auto location = with_certificate(
      {{"apns-topic", "com.example.certapp.location-query"}, {"apns-push-type", "location"}});
  ASSERT_EQ(location.size(), 1u);
  EXPECT_EQ(reasonOf(location[0]), "InvalidPushType");  // location pushes need token auth
  EXPECT_TRUE(with_certificate({{"apns-topic", "com.example.certapp"}}, "rogue").empty())
      << "an untrusted client certificate fails the handshake";
  // Without a certificate, the same listener still wants a provider token.
  EXPECT_EQ(reasonOf(send({{"authorization", ""}})), "MissingProviderToken");
  // Certificate connections start at the raised stream limit.
  const std::string out = run(
      {"nghttp", "-nv", "--cert", (d / "client.crt").string(), "--key", (d / "client.key").string(),
       "-H", ":method: POST", fmt::format("https://127.0.0.1:{}/3/device/{}", apns_port_, kToken)});
  EXPECT_THAT(out, HasSubstr("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):1000]"));
}

TEST_F(SimApnsTest, InjectsConnectionResetsAndLatencyOverHttp2) {
  start({"--fault", "apns:reset=1"});
  std::vector<std::string> args = {"curl", "-s", "-i", "--http2", "--cacert", ca_};
  auto request = requestArgs();
  args.insert(args.end(), request.begin(), request.end());
  const std::string cut = run(args);
  EXPECT_TRUE(parseReplies(cut).empty()) << cut;
  EXPECT_THAT(adminGet("/stats"), HasSubstr(R"("ConnectionReset":1)"));
  sim_.reset();
  start({"--fault", "all:latency-us=300000"});
  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(send().status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - before, 300ms);
}

TEST_F(SimApnsTest, CountsOutcomesAtStatsAndResets) {
  start();
  send();
  send({{"apns-priority", "7"}});
  const std::string stats = adminGet("/stats");
  EXPECT_THAT(stats, HasSubstr(R"("apns":{"requests":2,"accepted":1)"));
  EXPECT_THAT(stats, HasSubstr(R"("BadPriority":1)"));
  EXPECT_THAT(stats, HasSubstr(R"("200":1,"400":1)"));
  run({"curl", "-s", "-X", "POST", fmt::format("http://127.0.0.1:{}/stats/reset", admin_port_)});
  EXPECT_EQ(adminGet("/stats"), "{}");
  EXPECT_THAT(adminGet("/nope"), HasSubstr("error"));
}

TEST_F(SimApnsTest, RecordsEveryAcceptedNotification) {
  const std::string record = (dir_->path() / "record.jsonl").string();
  start({"--record", record});
  send({{"apns-collapse-id", "c1"}}, R"({"aps":{"alert":"recorded"}})");
  send({{"apns-priority", "7"}});  // rejected: not recorded
  sim_.reset();
  const std::string lines = readFile(record);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 1);
  EXPECT_THAT(lines, HasSubstr(R"("service":"apns","handle":")" + kToken));
  EXPECT_THAT(lines, HasSubstr(R"("apns-collapse-id":"c1")"));
  EXPECT_THAT(lines, HasSubstr(R"("body":"{\"aps\":{\"alert\":\"recorded\"}}")"));
}

TEST_F(SimApnsTest, RefusesToStartWithoutCertificateOrWithABadKey) {
  ChildProcess no_cert(PUSHHUB_SIM_BINARY, {"--apns-listen", "127.0.0.1:0"});
  EXPECT_EQ(no_cert.waitForExit(kTimeout), 2);
  EXPECT_THAT(no_cert.output(), HasSubstr("--tls-cert and --tls-key are required"));
  ChildProcess bad_key(PUSHHUB_SIM_BINARY,
                       {"--config", conf_, "--apns-key", "KEY:TEAM:/nonexistent.p8"});
  EXPECT_EQ(bad_key.waitForExit(kTimeout), 2);
  EXPECT_THAT(bad_key.output(), HasSubstr("cannot read /nonexistent.p8"));
  ChildProcess malformed(PUSHHUB_SIM_BINARY, {"--config", conf_, "--apns-key", "KEYONLY"});
  EXPECT_EQ(malformed.waitForExit(kTimeout), 2);
  EXPECT_THAT(malformed.output(), HasSubstr("expected KEYID:TEAMID:P8FILE"));
  ChildProcess not_a_key(PUSHHUB_SIM_BINARY, {"--config", conf_, "--apns-key", "KEY:TEAM:" + ca_});
  EXPECT_EQ(not_a_key.waitForExit(kTimeout), 2);
  EXPECT_THAT(not_a_key.output(), HasSubstr("neither a PEM private key"));
}

}  // namespace
}  // namespace pushhub::connectors::sim
