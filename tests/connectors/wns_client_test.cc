// The WNS client against the real pushhub-sim: client-credentials tokens (classic and Entra),
// channels reached over HTTP/1.1 keep-alive connections, X-WNS headers, dead channels, drops,
// throttling with X-WNS-CONTINUE-AFTER, server errors and resets retried, a revoked token
// refreshed once.
#include "connectors/wns.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/tls.h"
#include "tests/connectors/sim_fixture.h"

namespace pushhub::connectors {
namespace {

using namespace pushhub::connectors::sim::testing;
using ::testing::HasSubstr;

const std::string kToast = R"(<toast><visual><binding template="ToastGeneric"><text>hi</text>)"
                           R"(</binding></visual></toast>)";

class WnsClientTest : public SimTest {
 protected:
  void SetUp() override {
    TlsClientOptions tls;
    tls.alpn = {"http/1.1"};
    tls.extra_ca_file = ca_;
    tls_ = *makeTlsClientContext(tls);
  }

  std::shared_ptr<AccessTokenSource> tokens(bool entra = false, std::string secret = "") {
    AccessTokenSource::Options options;
    options.token_url =
        entra ? fmt::format("https://localhost:{}/{}/oauth2/v2.0/token", wns_port_, wns_tenant_)
              : fmt::format("https://localhost:{}/accesstoken.srf", wns_port_);
    options.tls = tls_;
    const std::string scope = entra ? "https://wns.windows.com/.default" : "notify.windows.com";
    auto source = AccessTokenSource::create(
        options, [sid = wns_sid_, secret = secret.empty() ? wns_secret_ : secret, scope](auto) {
          return std::expected<std::string, std::string>(clientCredentialsForm(sid, secret, scope));
        });
    EXPECT_TRUE(source.has_value());
    return *source;
  }

  std::unique_ptr<WnsClient> client(std::shared_ptr<AccessTokenSource> source) {
    WnsClient::Options options;
    options.pool.connection.host = "localhost";
    options.pool.connection.port = static_cast<uint16_t>(wns_port_);
    options.pool.max_connections = 8;
    options.allowed_host_suffix = "localhost";
    options.retry.backoff_initial = std::chrono::milliseconds(10);
    options.retry.backoff_max = std::chrono::milliseconds(100);
    return std::make_unique<WnsClient>(io_, tls_, options, std::move(source));
  }

  WnsNotification toast(std::string channel = "AwYAAAB%2fQAhYEs5Pd%2bxyz") const {
    WnsNotification n;
    n.channel_uri = fmt::format("https://localhost:{}/?token={}", wns_port_, channel);
    n.payload = kToast;
    return n;
  }

  std::vector<DeliveryResult> deliver(WnsClient& c, std::vector<WnsNotification> list,
                                      std::chrono::milliseconds ttl = 20s) {
    return deliverAll<WnsClient, WnsNotification, DeliveryResult>(io_, c, list, ttl);
  }

  boost::asio::io_context io_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
};

TEST_F(WnsClientTest, DeliversOverKeepAliveConnectionsWithOneToken) {
  start();
  auto source = tokens();
  auto c = client(source);
  auto results = deliver(*c, std::vector<WnsNotification>(600, toast()));
  for (auto& r : results) {
    if (r.outcome != PnsOutcome::kSuccess || r.attempts != 1) {
      ADD_FAILURE() << outcomeName(r.outcome) << " after " << r.attempts << ": " << r.reason;
      break;
    }
  }
  EXPECT_EQ(accepted("wns"), 600u);
  EXPECT_EQ(source->fetches(), 1u);
  EXPECT_LE(c->pool().connections(), 8u);
  // Keep-alive: far fewer connections than requests (8 at most, one for the token).
  EXPECT_THAT(adminGet("/stats"),
              ::testing::MatchesRegex(R"(.*"wns":\{[^}]*"connections":[1-9],.*)"));
}

TEST_F(WnsClientTest, TheEntraEndpointWorksToo) {
  start();
  auto c = client(tokens(true));
  EXPECT_EQ(outcomeName(deliver(*c, {toast()})[0].outcome), "Success");
}

TEST_F(WnsClientTest, TypesHeadersAndTheirAnswers) {
  const std::string record = (dir_->path() / "wns-client.jsonl").string();
  start({"--record", record});
  auto c = client(tokens());
  WnsNotification raw = toast();
  raw.payload = "raw bytes";
  WnsNotification badge = toast();
  badge.payload = R"(<?xml version="1.0"?><badge value="3"/>)";
  WnsNotification tile = toast();
  tile.payload = "<tile><visual/></tile>";
  tile.tag = "t1";
  tile.ttl = 600;
  tile.cache_policy = "cache";
  tile.priority = 2;
  tile.request_for_status = true;
  auto r = deliver(*c, {raw, badge, tile});
  for (auto& result : r) EXPECT_EQ(outcomeName(result.outcome), "Success") << result.reason;
  sim_.reset();
  const std::string lines = readFile(record);
  EXPECT_THAT(lines,
              HasSubstr(R"("content-type":"application/octet-stream","x-wns-type":"wns/raw")"));
  EXPECT_THAT(lines, HasSubstr(R"("x-wns-type":"wns/badge")"));
  EXPECT_THAT(lines, HasSubstr(R"("x-wns-tag":"t1")"));
  EXPECT_THAT(lines, HasSubstr(R"("x-wns-ttl":"600")"));
  EXPECT_THAT(lines, HasSubstr(R"("x-wns-priority":"2")"));
}

TEST_F(WnsClientTest, DeadChannelsDropsAndLocalRejections) {
  start();
  auto c = client(tokens());
  WnsNotification big = toast();
  big.payload = std::string(5001, 'x');
  WnsNotification elsewhere = toast();
  elsewhere.channel_uri = "https://evil.example.com/?token=x";
  auto r = deliver(*c, {toast("dead-channel"), toast("bbbb-channel"), toast("f0f0-channel"),
                        toast("0ff-channel"), big, elsewhere});
  EXPECT_EQ(outcomeName(r[0].outcome), "ExpiredChannel");
  EXPECT_TRUE(r[0].dead_handle);
  EXPECT_EQ(outcomeName(r[1].outcome), "BadChannel");
  EXPECT_TRUE(r[1].dead_handle);
  EXPECT_EQ(outcomeName(r[2].outcome), "InvalidCredentials");
  EXPECT_FALSE(r[2].dead_handle);
  EXPECT_EQ(outcomeName(r[3].outcome), "Dropped");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r[i].attempts, 1u) << i;
  EXPECT_EQ(outcomeName(r[4].outcome), "InvalidNotificationSize");
  EXPECT_EQ(r[4].attempts, 0u);
  EXPECT_EQ(outcomeName(r[5].outcome), "BadChannel");
  EXPECT_EQ(r[5].attempts, 0u) << "never sent to a host that is not WNS";
}

TEST_F(WnsClientTest, ThrottlingWaitsItsContinueAfterAndIsAbandonedAtTheDeadline) {
  start({"--wns-app-quota-per-minute", "3"});
  auto c = client(tokens());
  auto results = deliver(*c, std::vector<WnsNotification>(5, toast()), 2s);
  const auto count = [&](PnsOutcome o) {
    return std::count_if(results.begin(), results.end(), [&](auto& r) { return r.outcome == o; });
  };
  EXPECT_EQ(count(PnsOutcome::kSuccess), 3);
  EXPECT_EQ(count(PnsOutcome::kAbandoned), 2);
}

TEST_F(WnsClientTest, ServerErrorsAndResetsAreRetried) {
  start({"--fault", "wns:503=0.2", "--fault", "wns:500=0.1", "--fault", "wns:reset=0.02"});
  auto c = client(tokens());
  auto results = deliver(*c, std::vector<WnsNotification>(300, toast()));
  EXPECT_TRUE(std::all_of(results.begin(), results.end(),
                          [](auto& r) { return r.outcome == PnsOutcome::kSuccess; }));
  EXPECT_GE(accepted("wns"), 300u);
}

TEST_F(WnsClientTest, ARevokedTokenIsRefreshedOnce) {
  start();
  const int port = wns_port_;
  auto source = tokens();
  auto c = client(source);
  EXPECT_EQ(outcomeName(deliver(*c, {toast()})[0].outcome), "Success");
  sim_.reset();
  start({"--wns-listen", fmt::format("127.0.0.1:{}", port)});
  auto r = deliver(*c, {toast()});
  EXPECT_EQ(outcomeName(r[0].outcome), "Success");
  EXPECT_EQ(source->fetches(), 2u);
  EXPECT_THAT(adminGet("/stats"), HasSubstr(R"("Unauthorized":1)"));
}

TEST_F(WnsClientTest, AWrongSecretIsReportedAsInvalidCredentials) {
  start();
  auto c = client(tokens(false, "wrong"));
  auto r = deliver(*c, {toast()});
  EXPECT_EQ(outcomeName(r[0].outcome), "InvalidCredentials");
  EXPECT_THAT(r[0].reason, HasSubstr("invalid_client"));
}

TEST_F(WnsClientTest, AnUnreachableTokenEndpointEndsTheWaitAsPnsUnreachable) {
  start();
  AccessTokenSource::Options options;
  options.token_url = "https://localhost:1/accesstoken.srf";  // connects are refused
  options.tls = tls_;
  auto source = AccessTokenSource::create(options, [this](auto) {
    return std::expected<std::string, std::string>(
        clientCredentialsForm(wns_sid_, wns_secret_, "notify.windows.com"));
  });
  ASSERT_TRUE(source.has_value());
  WnsClient::Options client_options;
  client_options.pool.connection.host = "localhost";
  client_options.pool.connection.port = static_cast<uint16_t>(wns_port_);
  client_options.allowed_host_suffix = "localhost";
  client_options.retry.backoff_initial = std::chrono::milliseconds(10);
  client_options.retry.backoff_max = std::chrono::milliseconds(100);
  client_options.retry.token_give_up_after = std::chrono::milliseconds(200);
  WnsClient c(io_, tls_, client_options, *source);
  // Not held until the time-to-live (an hour here): three failed token fetches over more than
  // token_give_up_after end it.
  auto r = deliver(c, {toast(), toast()}, std::chrono::hours(1));
  for (const auto& result : r) {
    EXPECT_EQ(outcomeName(result.outcome), "PnsUnreachable");
    EXPECT_THAT(result.reason, HasSubstr("no access token after"));
  }
}

TEST_F(WnsClientTest, ConnectsThatFailEndAsPnsUnreachableAndTripTheBreaker) {
  start();
  auto c = client(tokens());
  WnsNotification dead = toast();
  dead.channel_uri = "https://localhost:1/?token=AwYAAAB";  // connects are refused
  auto r = deliver(*c, {dead, dead, dead, dead, toast()}, std::chrono::hours(1));
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(outcomeName(r[i].outcome), "PnsUnreachable") << i;
  // Another host of the same pool is not held up.
  EXPECT_EQ(outcomeName(r[4].outcome), "Success");
}

TEST(WnsType, FromThePayloadsRoot) {
  EXPECT_EQ(wnsTypeOf("<toast><visual/></toast>"), "wns/toast");
  EXPECT_EQ(wnsTypeOf("  <?xml version=\"1.0\"?>\n<tile>"), "wns/tile");
  EXPECT_EQ(wnsTypeOf("<!-- c --><badge value=\"1\"/>"), "wns/badge");
  EXPECT_EQ(wnsTypeOf("<toaster/>"), "wns/raw");
  EXPECT_EQ(wnsTypeOf("{\"json\":1}"), "wns/raw");
  EXPECT_EQ(wnsTypeOf(""), "wns/raw");
}

}  // namespace
}  // namespace pushhub::connectors
