// The FCM client against the real pushhub-sim: the service-account flow (one token fetch shared
// by everything), deliveries, dead handles, local size and format checks, 401 → one refresh and
// one retry, quota 429s with Retry-After, 5xx retried, a refused assertion reported.
#include "connectors/fcm.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "connectors/rate_limiter.h"
#include "connectors/tls.h"
#include "tests/connectors/sim_fixture.h"

namespace pushhub::connectors {
namespace {

using namespace pushhub::connectors::sim::testing;
using ::testing::HasSubstr;

const std::string kDevice = "cXq1:APA91bH" + std::string(140, 'x');

class FcmClientTest : public SimTest {
 protected:
  void SetUp() override {
    TlsClientOptions tls;
    tls.alpn = {"h2"};
    tls.extra_ca_file = ca_;
    tls_ = *makeTlsClientContext(tls);
    TlsClientOptions tls1;
    tls1.alpn = {"http/1.1"};
    tls1.extra_ca_file = ca_;
    tls1_ = *makeTlsClientContext(tls1);
    auto account = parseServiceAccount(readFile(credentialsDir() / "fcm-service-account.json"));
    ASSERT_TRUE(account.has_value()) << account.error();
    account_ = *account;
  }

  std::shared_ptr<AccessTokenSource> tokens(ServiceAccount account) {
    account.token_uri = fmt::format("https://localhost:{}/token", fcm_port_);
    AccessTokenSource::Options options;
    options.token_url = account.token_uri;
    options.tls = tls1_;
    auto source = AccessTokenSource::create(
        options, [account](auto now) { return serviceAccountForm(account, now, kFcmScope); });
    EXPECT_TRUE(source.has_value()) << source.error();
    return *source;
  }

  std::unique_ptr<FcmClient> client(std::shared_ptr<AccessTokenSource> source,
                                    std::shared_ptr<RateLimiter> limiter = nullptr) {
    FcmClient::Options options;
    options.pool.rate_limiter = std::move(limiter);
    options.pool.connection.host = "localhost";
    options.pool.connection.port = static_cast<uint16_t>(fcm_port_);
    options.pool.connection.session.authority = fmt::format("localhost:{}", fcm_port_);
    options.pool.max_connections = 2;
    options.project_id = account_.project_id;
    options.retry.backoff_initial = std::chrono::milliseconds(10);
    options.retry.backoff_max = std::chrono::milliseconds(100);
    return std::make_unique<FcmClient>(io_, tls_, options, std::move(source));
  }

  static FcmNotification message(std::string token = kDevice,
                                 std::string json = R"({"data":{"k":"v"}})") {
    return FcmNotification{std::move(token), std::move(json), false};
  }

  std::vector<DeliveryResult> deliver(FcmClient& c, std::vector<FcmNotification> list,
                                      std::chrono::milliseconds ttl = 20s) {
    return deliverAll<FcmClient, FcmNotification, DeliveryResult>(io_, c, list, ttl);
  }

  boost::asio::io_context io_;
  std::shared_ptr<boost::asio::ssl::context> tls_, tls1_;
  ServiceAccount account_;
};

TEST_F(FcmClientTest, DeliversWithOneSharedAccessToken) {
  start();
  auto source = tokens(account_);
  auto c = client(source);
  auto results = deliver(*c, std::vector<FcmNotification>(1000, message()));
  EXPECT_TRUE(std::all_of(results.begin(), results.end(), [](auto& r) {
    return r.outcome == PnsOutcome::kSuccess && r.attempts == 1;
  }));
  EXPECT_EQ(accepted("fcm"), 1000u);
  EXPECT_EQ(source->fetches(), 1u);
  EXPECT_THAT(adminGet("/stats"), HasSubstr(R"("TokenIssued":1)"));
  // validate_only is answered but not delivered.
  FcmNotification dry = message();
  dry.validate_only = true;
  EXPECT_EQ(outcomeName(deliver(*c, {dry})[0].outcome), "Success");
  EXPECT_EQ(accepted("fcm"), 1000u);
}

TEST_F(FcmClientTest, DeadHandlesAndPermanentErrors) {
  start();
  auto c = client(tokens(account_));
  auto r = deliver(
      *c, {message("dead" + kDevice), message("f0f0" + kDevice), message("bbbb" + kDevice),
           message(kDevice, R"({"priority":"high"})"),
           message(kDevice, fmt::format(R"({{"data":{{"k":"{}"}}}})", std::string(4200, 'v'))),
           message(kDevice, "[1,2]"), message(kDevice, "{}")});
  EXPECT_EQ(outcomeName(r[0].outcome), "ExpiredChannel");
  EXPECT_TRUE(r[0].dead_handle);
  EXPECT_EQ(r[0].reason, "UNREGISTERED");
  EXPECT_EQ(outcomeName(r[1].outcome), "WrongToken");
  EXPECT_EQ(r[1].reason, "SENDER_ID_MISMATCH");
  EXPECT_EQ(outcomeName(r[2].outcome), "WrongToken");
  EXPECT_TRUE(r[2].dead_handle);
  EXPECT_EQ(outcomeName(r[3].outcome), "InvalidNotificationFormat");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r[i].attempts, 1u) << i;
  EXPECT_EQ(outcomeName(r[4].outcome), "InvalidNotificationSize");
  EXPECT_EQ(r[4].attempts, 0u);
  EXPECT_EQ(outcomeName(r[5].outcome), "InvalidNotificationFormat");
  EXPECT_EQ(r[5].attempts, 0u);
  EXPECT_EQ(outcomeName(r[6].outcome), "Success") << "an empty message has a target only";
}

TEST_F(FcmClientTest, ARevokedAccessTokenIsRefreshedOnceAndTheMessageResent) {
  start();
  const int port = fcm_port_;
  auto source = tokens(account_);
  auto c = client(source);
  EXPECT_EQ(outcomeName(deliver(*c, {message()})[0].outcome), "Success");
  // A new simulator on the same port knows nothing of the token issued by the first.
  sim_.reset();
  start({"--fcm-listen", fmt::format("127.0.0.1:{}", port)});
  ASSERT_EQ(fcm_port_, port);
  auto r = deliver(*c, {message()});
  EXPECT_EQ(outcomeName(r[0].outcome), "Success");
  // The first attempt may go to the connection the old simulator left dead; then the 401, then
  // the resend with a fresh token.
  EXPECT_GE(r[0].attempts, 2u);
  EXPECT_LE(r[0].attempts, 3u);
  EXPECT_EQ(source->fetches(), 2u);
  EXPECT_THAT(adminGet("/stats"), HasSubstr(R"("UNAUTHENTICATED":1)"));
}

TEST_F(FcmClientTest, ShortLivedTokensAreRenewedBeforeTheyExpire) {
  start({"--fcm-token-lifetime", "3"});  // expires_in 2: used for its first half
  auto source = tokens(account_);
  auto c = client(source);
  EXPECT_EQ(outcomeName(deliver(*c, {message()})[0].outcome), "Success");
  std::this_thread::sleep_for(1200ms);
  auto r = deliver(*c, {message()});
  EXPECT_EQ(outcomeName(r[0].outcome), "Success");
  EXPECT_EQ(r[0].attempts, 1u) << "renewed ahead, not after a 401";
  EXPECT_EQ(source->fetches(), 2u);
  EXPECT_THAT(adminGet("/stats"), Not(HasSubstr("UNAUTHENTICATED")));
}

TEST_F(FcmClientTest, QuotaAnswersWaitTheirRetryAfterAndAreAbandonedAtTheDeadline) {
  start({"--fcm-quota-per-minute", "5"});
  auto c = client(tokens(account_));
  auto results = deliver(*c, std::vector<FcmNotification>(8, message()), 2s);
  const auto count = [&](PnsOutcome o) {
    return std::count_if(results.begin(), results.end(), [&](auto& r) { return r.outcome == o; });
  };
  EXPECT_EQ(count(PnsOutcome::kSuccess), 5);
  EXPECT_EQ(count(PnsOutcome::kAbandoned), 3);
  for (auto& r : results) {
    if (r.outcome == PnsOutcome::kAbandoned) {
      EXPECT_THAT(r.reason, HasSubstr("QUOTA_EXCEEDED"));
    }
  }
}

TEST_F(FcmClientTest, TheCredentialsRateLimitSpacesRequestsOut) {
  start();
  // 1,200 a minute: 20 a second, in bursts of 20.
  auto c = client(tokens(account_), std::make_shared<RateLimiter>(1200));
  const auto before = std::chrono::steady_clock::now();
  auto results = deliver(*c, std::vector<FcmNotification>(60, message()));
  const auto took = std::chrono::steady_clock::now() - before;
  EXPECT_TRUE(std::all_of(results.begin(), results.end(),
                          [](auto& r) { return r.outcome == PnsOutcome::kSuccess; }));
  EXPECT_GE(took, 1900ms) << "20 at once, then 40 more at 20 a second";
  EXPECT_LT(took, 4s);
}

TEST(RateLimiterTest, RefillsAtItsRateUpToTheBurst) {
  using Clock = RateLimiter::Clock;
  RateLimiter limiter(600, 5);  // 10 a second, bursts of 5
  const auto t0 = Clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.take(t0), Clock::duration::zero());
  const auto wait = limiter.take(t0);
  EXPECT_GT(wait, 90ms);
  EXPECT_LE(wait, 100ms);
  EXPECT_EQ(limiter.take(t0 + 100ms), Clock::duration::zero());
  // A long pause refills the burst, not more.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.take(t0 + 10s), Clock::duration::zero());
  EXPECT_GT(limiter.take(t0 + 10s), Clock::duration::zero());
  RateLimiter none(0);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(none.take(t0), Clock::duration::zero());
}

TEST_F(FcmClientTest, ServerErrorsAreRetried) {
  start({"--fault", "fcm:503=0.3", "--fault", "fcm:500=0.1", "--fcm-retry-after", "0"});
  auto c = client(tokens(account_));
  auto results = deliver(*c, std::vector<FcmNotification>(300, message()));
  EXPECT_TRUE(std::all_of(results.begin(), results.end(),
                          [](auto& r) { return r.outcome == PnsOutcome::kSuccess; }));
  EXPECT_EQ(accepted("fcm"), 300u);
}

TEST_F(FcmClientTest, AnUnreachableTokenEndpointIsAskedAgainUntilItAnswers) {
  start();
  const int port = fcm_port_;
  sim_.reset();  // nothing listens on the port now
  auto source = tokens(account_);
  auto c = client(source);
  std::vector<DeliveryResult> results(3);
  size_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(c->send(message(), deadline, [&, i](DeliveryResult&& r) {
      results[i] = std::move(r);
      ++done;
    }));
  }
  runUntil(
      io_, [] { return false; }, 300ms);
  EXPECT_EQ(done, 0u) << "waiting, not failed";
  EXPECT_GE(source->fetches(), 1u);
  start({"--fcm-listen", fmt::format("127.0.0.1:{}", port)});
  ASSERT_TRUE(runUntil(io_, [&] { return done == results.size(); }));
  for (auto& r : results) EXPECT_EQ(outcomeName(r.outcome), "Success") << r.reason;
  EXPECT_EQ(accepted("fcm"), 3u);
}

TEST_F(FcmClientTest, ARefusedAssertionIsReportedAsInvalidCredentials) {
  start();
  ServiceAccount wrong = account_;
  auto other = generateRsaKey(2048);
  ASSERT_TRUE(other.has_value());
  wrong.private_key = std::shared_ptr<EVP_PKEY>(other->release(), EvpKeyDeleter{});
  auto c = client(tokens(wrong));
  auto r = deliver(*c, {message(), message()});
  for (auto& result : r) {
    EXPECT_EQ(outcomeName(result.outcome), "InvalidCredentials");
    EXPECT_THAT(result.reason, HasSubstr("invalid_grant"));
    EXPECT_EQ(result.attempts, 0u);
  }
  EXPECT_EQ(accepted("fcm"), 0u);
}

}  // namespace
}  // namespace pushhub::connectors
