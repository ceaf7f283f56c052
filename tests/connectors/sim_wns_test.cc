// pushhub-sim's WNS listener, driven by curl over HTTP/1.1 against the real binary: both OAuth
// client-credentials endpoints, every send rule with its status and X-WNS-* headers, channel
// fates, the app and channel quotas, keep-alive, ALPN and the faults of an HTTP/1.1 service.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <thread>

#include "common/url.h"
#include "tests/connectors/sim_fixture.h"

namespace pushhub::connectors::sim {
namespace {

using namespace pushhub::connectors::sim::testing;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// A channel token as WNS hands them out: URL-escaped base64, posted byte for byte.
const std::string kChannel = "AwYAAAB%2fQAhYEs5Pd%2b" + std::string(40, 'x');
const std::string kToast = R"(<toast><visual><binding template="ToastGeneric"><text>hi</text>)"
                           R"(</binding></visual></toast>)";

std::string field(const std::string& json, const char* name) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember(name)) return "";
  if (d[name].IsString()) return d[name].GetString();
  if (d[name].IsInt64()) return std::to_string(d[name].GetInt64());
  return "?";
}

class SimWnsTest : public SimTest {
 protected:
  std::string url(const std::string& path) const {
    return fmt::format("https://localhost:{}{}", wns_port_, path);
  }

  Reply post(const std::string& path, const std::string& body, std::vector<std::string> headers,
             std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"curl", "-s", "-i", "--http1.1", "--cacert", ca_};
    for (auto& h : headers) args.insert(args.end(), {"-H", h});
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--data-binary", body, url(path)});
    auto replies = parseReplies(run(args));
    EXPECT_EQ(replies.size(), 1u) << path;
    return replies.empty() ? Reply{} : replies.front();
  }

  Reply classicToken(const std::string& client_id, const std::string& secret,
                     const std::string& scope = "notify.windows.com",
                     const std::string& grant = "client_credentials") {
    return post("/accesstoken.srf",
                fmt::format("grant_type={}&client_id={}&client_secret={}&scope={}", grant,
                            percentEncode(client_id), percentEncode(secret), percentEncode(scope)),
                {"Content-Type: application/x-www-form-urlencoded"});
  }

  Reply entraToken(const std::string& tenant, const std::string& client_id,
                   const std::string& secret,
                   const std::string& scope = "https://wns.windows.com/.default") {
    return post(fmt::format("/{}/oauth2/v2.0/token", tenant),
                fmt::format("grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
                            percentEncode(client_id), percentEncode(secret), percentEncode(scope)),
                {"Content-Type: application/x-www-form-urlencoded"});
  }

  std::string accessToken() {
    return field(classicToken(wns_sid_, wns_secret_).body, "access_token");
  }

  // A toast to `channel`; `headers` replace the defaults of the same name, an empty value drops
  // one.
  Reply notify(std::map<std::string, std::string> headers = {}, std::string body = kToast,
               std::string channel = kChannel, std::vector<std::string> extra = {}) {
    std::map<std::string, std::string> all = {{"Authorization", "Bearer " + token_},
                                              {"Content-Type", "text/xml"},
                                              {"X-WNS-Type", "wns/toast"}};
    for (auto& [k, v] : headers) all[k] = v;
    std::vector<std::string> list;
    for (auto& [k, v] : all) list.push_back(v.empty() ? k + ":" : k + ": " + v);
    return post("/?token=" + channel, body, list, extra);
  }

  void startWithToken(std::vector<std::string> extra = {}) {
    start(std::move(extra));
    token_ = accessToken();
    ASSERT_FALSE(token_.empty());
  }

  std::string token_;
};

TEST_F(SimWnsTest, ClassicTokenEndpointIssuesAndRefusesTokens) {
  start();
  Reply ok = classicToken(wns_sid_, wns_secret_);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_THAT(ok.body, MatchesRegex(R"(\{"access_token":"[^"]+","token_type":"bearer",)"
                                    R"("expires_in":86400\})"));
  EXPECT_EQ(ok.headers["cache-control"], "no-store");
  struct Case {
    std::string name;
    Reply reply;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"secret", classicToken(wns_sid_, "wrong"), "invalid_client"},
      {"client", classicToken("ms-app://s-1-15-2-1", wns_secret_), "invalid_client"},
      {"scope", classicToken(wns_sid_, wns_secret_, "https://wns.windows.com/.default"),
       "invalid_scope"},
      {"grant", classicToken(wns_sid_, wns_secret_, "notify.windows.com", "password"),
       "unsupported_grant_type"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.reply.status, 400) << c.name << ": " << c.reply.body;
    EXPECT_EQ(field(c.reply.body, "error"), c.error) << c.name << ": " << c.reply.body;
  }
}

TEST_F(SimWnsTest, EntraTokenEndpointIssuesAndRefusesTokens) {
  start();
  Reply ok = entraToken(wns_tenant_, wns_sid_, wns_secret_);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(field(ok.body, "token_type"), "Bearer");
  EXPECT_EQ(field(ok.body, "expires_in"), "86399");
  EXPECT_EQ(field(ok.body, "ext_expires_in"), "86399");
  Reply tenant = entraToken("00000000-0000-0000-0000-000000000000", wns_sid_, wns_secret_);
  EXPECT_EQ(tenant.status, 400);
  EXPECT_THAT(field(tenant.body, "error_description"), HasSubstr("AADSTS90002"));
  Reply secret = entraToken(wns_tenant_, wns_sid_, "wrong");
  EXPECT_EQ(secret.status, 401);
  EXPECT_EQ(field(secret.body, "error"), "invalid_client");
  Reply scope = entraToken(wns_tenant_, wns_sid_, wns_secret_, "notify.windows.com");
  EXPECT_EQ(scope.status, 400);
  EXPECT_EQ(field(scope.body, "error"), "invalid_scope");
  // Its tokens are good for sending.
  token_ = field(ok.body, "access_token");
  EXPECT_EQ(notify().status, 200);
}

TEST_F(SimWnsTest, AcceptsANotificationWithWnsHeaders) {
  startWithToken();
  Reply reply = notify({{"MS-CV", "abc.1"}});
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.headers["x-wns-status"], "received");
  EXPECT_THAT(reply.headers["x-wns-msg-id"], MatchesRegex("[0-9a-f]{16}"));
  EXPECT_EQ(reply.headers["ms-cv"], "abc.1");
  EXPECT_FALSE(reply.headers.contains("x-wns-deviceconnectionstatus"));
  Reply with_status = notify({{"X-WNS-RequestForStatus", "true"},
                              {"X-WNS-TTL", "600"},
                              {"X-WNS-Tag", std::string(16, 't')},
                              {"X-WNS-Cache-Policy", "cache"},
                              {"X-WNS-PRIORITY", "1"}});
  EXPECT_EQ(with_status.status, 200);
  EXPECT_EQ(with_status.headers["x-wns-deviceconnectionstatus"], "connected");
  // Every type with its content type; /w/ channel paths too.
  EXPECT_EQ(
      notify({{"X-WNS-Type", "wns/raw"}, {"Content-Type", "application/octet-stream"}}, "raw bytes")
          .status,
      200);
  EXPECT_EQ(notify({{"X-WNS-Type", "wns/badge"}}, R"(<badge value="3"/>)").status, 200);
  EXPECT_EQ(
      notify({{"X-WNS-Type", "wns/tile"}, {"Content-Type", "text/xml; charset=utf-8"}}, "<tile/>")
          .status,
      200);
  EXPECT_EQ(
      post("/w/?token=" + kChannel, kToast,
           {"Authorization: Bearer " + token_, "Content-Type: text/xml", "X-WNS-Type: wns/toast"})
          .status,
      200);
  EXPECT_EQ(notify({}, std::string(5000, 'x')).status, 200);
}

TEST_F(SimWnsTest, RejectsEachMalformedRequestWithTheDocumentedStatus) {
  startWithToken();
  struct Case {
    std::string name;
    Reply reply;
    int status;
  };
  std::vector<Case> cases;
  cases.push_back({"no authorization", notify({{"Authorization", ""}}), 401});
  cases.push_back({"unknown token", notify({{"Authorization", "Bearer nope"}}), 401});
  cases.push_back({"basic auth", notify({{"Authorization", "Basic abc"}}), 401});
  cases.push_back({"no type", notify({{"X-WNS-Type", ""}}), 400});
  cases.push_back({"unknown type", notify({{"X-WNS-Type", "wns/banner"}}), 400});
  cases.push_back({"raw as xml", notify({{"X-WNS-Type", "wns/raw"}}), 400});
  cases.push_back({"toast as bytes", notify({{"Content-Type", "application/octet-stream"}}), 400});
  cases.push_back({"no content type", notify({{"Content-Type", ""}}), 400});
  cases.push_back({"cache policy", notify({{"X-WNS-Cache-Policy", "always"}}), 400});
  cases.push_back({"request for status", notify({{"X-WNS-RequestForStatus", "yes"}}), 400});
  cases.push_back({"ttl", notify({{"X-WNS-TTL", "-1"}}), 400});
  cases.push_back({"tag", notify({{"X-WNS-Tag", std::string(17, 't')}}), 400});
  cases.push_back({"group", notify({{"X-WNS-Group", std::string(17, 'g')}}), 400});
  cases.push_back({"priority", notify({{"X-WNS-PRIORITY", "5"}}), 400});
  cases.push_back({"suppress popup", notify({{"X-WNS-SuppressPopup", "true"}}), 400});
  cases.push_back({"chunked", notify({{"Transfer-Encoding", "chunked"}}), 400});
  cases.push_back({"5001 bytes", notify({}, std::string(5001, 'x')), 413});
  cases.push_back({"unknown channel", notify({}, kToast, "bbbb" + kChannel), 404});
  cases.push_back({"expired channel", notify({}, kToast, "dead" + kChannel), 410});
  cases.push_back({"another app's channel", notify({}, kToast, "f0f0" + kChannel), 403});
  cases.push_back(
      {"no token query", post("/?channel=x", kToast, {"Authorization: Bearer " + token_}), 404});
  cases.push_back({"other path", post("/send", kToast, {"Authorization: Bearer " + token_}), 404});
  cases.push_back({"GET", notify({}, kToast, kChannel, {"-X", "GET"}), 405});
  for (auto& c : cases) {
    EXPECT_EQ(c.reply.status, c.status) << c.name;
    EXPECT_FALSE(c.reply.headers["x-wns-error-description"].empty()) << c.name;
    EXPECT_FALSE(c.reply.headers["ms-cv"].empty()) << c.name;
  }
  EXPECT_EQ(cases.back().reply.headers["allow"], "POST");
}

TEST_F(SimWnsTest, OfflineDevicesDropToastsButKeepOtherTypes) {
  startWithToken();
  Reply toast = notify({{"X-WNS-RequestForStatus", "true"}}, kToast, "0ff" + kChannel);
  EXPECT_EQ(toast.status, 200);
  EXPECT_EQ(toast.headers["x-wns-status"], "dropped");
  EXPECT_EQ(toast.headers["x-wns-deviceconnectionstatus"], "disconnected");
  Reply tile = notify({{"X-WNS-Type", "wns/tile"}}, "<tile/>", "0ff" + kChannel);
  EXPECT_EQ(tile.headers["x-wns-status"], "received");
  const std::string stats = adminGet("/stats");
  EXPECT_THAT(stats, HasSubstr(R"("Dropped":1)"));
  EXPECT_THAT(stats, HasSubstr(R"("accepted":1,)"));
}

TEST_F(SimWnsTest, AppAndChannelQuotasThrottle) {
  startWithToken({"--wns-app-quota-per-minute", "3", "--wns-channel-quota-per-minute", "1"});
  EXPECT_EQ(notify().headers["x-wns-status"], "received");
  Reply channel = notify();
  EXPECT_EQ(channel.status, 200);
  EXPECT_EQ(channel.headers["x-wns-status"], "channelthrottled");
  EXPECT_EQ(notify({}, kToast, "other" + kChannel).headers["x-wns-status"], "received");
  Reply app = notify({}, kToast, "third" + kChannel);
  EXPECT_EQ(app.status, 406);
  const int wait = std::stoi(app.headers["x-wns-continue-after"]);
  EXPECT_GE(wait, 1);
  EXPECT_LE(wait, 60);
}

TEST_F(SimWnsTest, TokensExpire) {
  startWithToken({"--wns-token-lifetime", "1"});
  EXPECT_EQ(notify().status, 200);
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(notify().status, 401);
}

TEST_F(SimWnsTest, KeepsConnectionsAliveAndSpeaksOnlyHttp11) {
  startWithToken();
  // Two notifications on one connection.
  std::vector<std::string> args = {"curl", "-s", "-i", "--http1.1", "--cacert", ca_};
  const std::vector<std::string> one = {"-H",
                                        "Authorization: Bearer " + token_,
                                        "-H",
                                        "Content-Type: text/xml",
                                        "-H",
                                        "X-WNS-Type: wns/toast",
                                        "--data-binary",
                                        kToast,
                                        url("/?token=" + kChannel)};
  args.insert(args.end(), one.begin(), one.end());
  args.insert(args.end(), {"--next", "-s", "-i", "--http1.1", "--cacert", ca_});
  args.insert(args.end(), one.begin(), one.end());
  auto replies = parseReplies(run(args));
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1].status, 200);
  // curl offering h2 gets HTTP/1.1; an h2-only client (nghttp) is refused in the handshake.
  auto h2 = parseReplies(
      run({"curl", "-s", "-i", "--http2", "--cacert", ca_, "-H", "Authorization: Bearer " + token_,
           "-H", "Content-Type: text/xml", "-H", "X-WNS-Type: wns/toast", "--data-binary", kToast,
           url("/?token=" + kChannel)}));
  ASSERT_EQ(h2.size(), 1u);
  EXPECT_EQ(h2[0].status, 200);
  const std::string nghttp = run({"nghttp", "-v", url("/?token=" + kChannel)});
  EXPECT_THAT(nghttp, Not(HasSubstr(":status")));
  // One connection for the pair, one for the h2 attempt by curl (nghttp's fails in TLS, before
  // it is counted) and one for the token.
  EXPECT_THAT(adminGet("/stats"), HasSubstr(R"("connections":3,)"));
}

TEST_F(SimWnsTest, InjectsFaultsOverHttp11) {
  startWithToken({"--fault", "wns:500=1"});
  EXPECT_EQ(notify().status, 500);
  sim_.reset();
  startWithToken({"--fault", "wns:503=1"});
  EXPECT_EQ(notify().status, 503);
  sim_.reset();
  startWithToken({"--fault", "wns:throttle=1"});
  Reply throttled = notify();
  EXPECT_EQ(throttled.status, 406);
  EXPECT_EQ(throttled.headers["x-wns-continue-after"], "60");
  sim_.reset();
  startWithToken({"--fault", "wns:goaway-every=1"});
  EXPECT_EQ(notify().headers["connection"], "close");
  sim_.reset();
  startWithToken({"--fault", "wns:reset=1"});
  const std::string cut =
      run({"curl", "-s", "-i", "--http1.1", "--cacert", ca_, "-H",
           "Authorization: Bearer " + token_, "-H", "Content-Type: text/xml", "-H",
           "X-WNS-Type: wns/toast", "--data-binary", kToast, url("/?token=" + kChannel)});
  EXPECT_TRUE(parseReplies(cut).empty()) << cut;
  EXPECT_THAT(adminGet("/stats"), HasSubstr(R"("ConnectionReset":1)"));
  sim_.reset();
  // Added latency, fixed plus jitter, on every answer.
  startWithToken({"--fault", "wns:latency-us=300000", "--fault", "wns:jitter-us=1000"});
  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(notify().status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - before, 300ms);
}

TEST_F(SimWnsTest, RejectsMalformedFaultSpecifications) {
  for (const std::string spec : {"wns500=1", "sms:500=1", "wns:500=2", "wns:teapot=1",
                                 "wns:500=abc", "wns:goaway-every=1.5", "all:500=0.6"}) {
    std::vector<std::string> args = {"--config", conf_, "--fault", spec};
    if (spec == "all:500=0.6") args.insert(args.end(), {"--fault", "all:503=0.6"});
    ChildProcess sim(PUSHHUB_SIM_BINARY, args);
    EXPECT_EQ(sim.waitForExit(kTimeout), 2) << spec;
    EXPECT_THAT(sim.output(), HasSubstr("--fault")) << spec;
  }
}

TEST_F(SimWnsTest, RecordsAcceptedNotifications) {
  const std::string record = (dir_->path() / "wns-record.jsonl").string();
  startWithToken({"--record", record});
  notify({{"X-WNS-Tag", "t1"}});
  notify({{"X-WNS-Type", "wns/banner"}});  // rejected: not recorded
  sim_.reset();
  const std::string lines = readFile(record);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 1);
  EXPECT_THAT(lines, HasSubstr(R"("service":"wns","handle":")" + kChannel + "\""));
  EXPECT_THAT(lines, HasSubstr(R"("x-wns-tag":"t1")"));
}

}  // namespace
}  // namespace pushhub::connectors::sim
