// The APNs client against the real pushhub-sim: deliveries, dead handles reported, permanent
// errors not retried, transient ones retried until the deadline, the provider token refreshed
// once when refused, and a chaos run that loses and duplicates no result.
#include "connectors/apns.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>

#include "connectors/tls.h"
#include "tests/connectors/sim_fixture.h"

namespace pushhub::connectors {
namespace {

using namespace pushhub::connectors::sim::testing;
using sim::writeCertificateAuthority;
using sim::writeSignedCertificate;
using ::testing::HasSubstr;

const std::string kDevice(64, 'a');

class ApnsClientTest : public SimTest {
 protected:
  void SetUp() override {
    TlsClientOptions tls;
    tls.alpn = {"h2"};
    tls.extra_ca_file = ca_;
    tls_ = *makeTlsClientContext(tls);
  }

  std::shared_ptr<ApnsTokenProvider> provider(ApnsTokenProvider::Options options = {}) {
    options.key_id = apns_key_id_;
    options.team_id = apns_team_id_;
    auto p = ApnsTokenProvider::create(options, apns_p8_);
    EXPECT_TRUE(p.has_value()) << p.error();
    return *p;
  }

  std::unique_ptr<ApnsClient> client(std::shared_ptr<ApnsTokenProvider> tokens) {
    ApnsClient::Options options;
    options.pool.connection.host = "localhost";
    options.pool.connection.port = static_cast<uint16_t>(apns_port_);
    options.pool.connection.session.authority = fmt::format("localhost:{}", apns_port_);
    options.pool.max_connections = 2;
    options.retry.backoff_initial = std::chrono::milliseconds(10);
    options.retry.backoff_max = std::chrono::milliseconds(100);
    return std::make_unique<ApnsClient>(io_, tls_, options, std::move(tokens));
  }

  static ApnsNotification notification(std::string device = kDevice) {
    ApnsNotification n;
    n.device_token = std::move(device);
    n.topic = "com.example.pushhub";
    n.payload = R"({"aps":{"alert":"hi"}})";
    return n;
  }

  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 20s) {
    return SimTest::runUntil(io_, done, timeout);
  }

  std::vector<DeliveryResult> deliver(ApnsClient& c, std::vector<ApnsNotification> list,
                                      std::chrono::milliseconds ttl = 20s) {
    return deliverAll<ApnsClient, ApnsNotification, DeliveryResult>(io_, c, list, ttl);
  }

  uint64_t simAccepted() { return accepted("apns"); }

  boost::asio::io_context io_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
};

TEST_F(ApnsClientTest, DeliversWithOneSharedProviderToken) {
  start();
  auto tokens = provider();
  auto c = client(tokens);
  auto results = deliver(*c, std::vector<ApnsNotification>(2000, notification()));
  EXPECT_TRUE(std::all_of(results.begin(), results.end(), [](auto& r) {
    return r.outcome == PnsOutcome::kSuccess && r.attempts == 1;
  }));
  EXPECT_EQ(simAccepted(), 2000u);
  EXPECT_EQ(tokens->issuedCount(), 1u);
}

TEST_F(ApnsClientTest, DeadHandlesAreReportedAndPermanentErrorsNotRetried) {
  start();
  auto c = client(provider());
  std::vector<ApnsNotification> list = {notification("dead" + kDevice.substr(4)),
                                        notification("bbbb" + kDevice.substr(4)),
                                        notification("f0f0" + kDevice.substr(4))};
  ApnsNotification bad_priority = notification();
  bad_priority.priority = 7;
  list.push_back(bad_priority);
  ApnsNotification voip = notification();
  voip.push_type = "voip";  // the client adds the .voip suffix to the topic
  voip.payload = std::string(5000, ' ') + "{}";
  list.push_back(voip);
  ApnsNotification too_big = notification();
  too_big.payload = std::string(4097, ' ');
  list.push_back(too_big);
  auto r = deliver(*c, list);
  EXPECT_EQ(outcomeName(r[0].outcome), "ExpiredChannel");
  EXPECT_TRUE(r[0].dead_handle);
  EXPECT_EQ(r[0].reason, "Unregistered");
  EXPECT_EQ(outcomeName(r[1].outcome), "WrongToken");
  EXPECT_TRUE(r[1].dead_handle);
  EXPECT_EQ(outcomeName(r[2].outcome), "WrongToken");
  EXPECT_EQ(r[2].reason, "DeviceTokenNotForTopic");
  EXPECT_EQ(outcomeName(r[3].outcome), "InvalidNotificationFormat");
  EXPECT_FALSE(r[3].dead_handle);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r[i].attempts, 1u) << i;
  EXPECT_EQ(outcomeName(r[4].outcome), "Success");
  EXPECT_EQ(outcomeName(r[5].outcome), "InvalidNotificationSize");
  EXPECT_EQ(r[5].attempts, 0u) << "too large: no request at all";
  EXPECT_EQ(simAccepted(), 1u);
}

TEST_F(ApnsClientTest, TransientErrorsAreRetriedUntilDelivered) {
  start({"--fault", "apns:503=0.3", "--fault", "apns:throttle=0.1", "--fault", "apns:500=0.1"});
  auto c = client(provider());
  auto results = deliver(*c, std::vector<ApnsNotification>(500, notification()));
  EXPECT_TRUE(std::all_of(results.begin(), results.end(),
                          [](auto& r) { return r.outcome == PnsOutcome::kSuccess; }));
  EXPECT_TRUE(std::any_of(results.begin(), results.end(), [](auto& r) { return r.attempts > 1; }));
  EXPECT_EQ(simAccepted(), 500u) << "a 5xx or 429 answer delivered nothing: no duplicates";
}

TEST_F(ApnsClientTest, WhatCannotBeDeliveredByItsDeadlineIsAbandoned) {
  start({"--fault", "apns:503=1"});
  auto c = client(provider());
  auto results = deliver(*c, {notification()}, 400ms);
  EXPECT_EQ(outcomeName(results[0].outcome), "AbandonedNotificationMessages");
  EXPECT_THAT(results[0].reason, HasSubstr("ServiceUnavailable"));
  EXPECT_GT(results[0].attempts, 1u);
}

TEST_F(ApnsClientTest, AnExpiredProviderTokenIsRenewedOnceAndTheNotificationResent) {
  start();
  std::atomic<int64_t> offset{-3660};  // the first token is 61 minutes old
  ApnsTokenProvider::Options options;
  options.refresh_after = std::chrono::hours(2);  // so that the client does not renew it first
  options.clock = [&] { return std::chrono::system_clock::now() + std::chrono::seconds(offset); };
  auto tokens = provider(options);
  tokens->current();
  offset = 0;
  auto c = client(tokens);
  auto results = deliver(*c, {notification()});
  EXPECT_EQ(outcomeName(results[0].outcome), "Success");
  EXPECT_EQ(results[0].attempts, 2u);
  EXPECT_EQ(tokens->issuedCount(), 2u);
  EXPECT_THAT(adminGet("/stats"), HasSubstr(R"("ExpiredProviderToken":1)"));
}

TEST_F(ApnsClientTest, ARefusedKeyIsRetriedOnceThenReportedAsInvalidCredentials) {
  start();
  // A key the simulator does not know under this key id.
  auto other = generateEcP256Key();
  ASSERT_TRUE(other.has_value());
  ApnsTokenProvider::Options options;
  options.key_id = apns_key_id_;
  options.team_id = apns_team_id_;
  options.min_interval = std::chrono::seconds(0);
  auto tokens = *ApnsTokenProvider::create(options, privateKeyPem(other->get()));
  auto c = client(tokens);
  auto results = deliver(*c, {notification()});
  EXPECT_EQ(outcomeName(results[0].outcome), "InvalidCredentials");
  EXPECT_EQ(results[0].reason, "InvalidProviderToken");
  EXPECT_EQ(results[0].attempts, 2u) << "one refresh, one retry, no more";
}

TEST_F(ApnsClientTest, CertificateAuthNeedsNoProviderToken) {
  const auto d = dir_->path();
  ASSERT_TRUE(writeCertificateAuthority(d / "push-ca.crt", d / "push-ca.key").has_value());
  sim::CertificateRequest request{
      "Apple Push Services: com.example.pushhub", "com.example.pushhub", {}, {}, true};
  ASSERT_TRUE(writeSignedCertificate(d / "push-ca.crt", d / "push-ca.key", request, d / "push.crt",
                                     d / "push.key")
                  .has_value());
  start({"--client-ca", (d / "push-ca.crt").string()});
  TlsClientOptions tls;
  tls.alpn = {"h2"};
  tls.extra_ca_file = ca_;
  tls.certificate_file = (d / "push.crt").string();
  tls.private_key_file = (d / "push.key").string();
  tls_ = *makeTlsClientContext(tls);
  auto c = client(nullptr);
  auto results = deliver(*c, std::vector<ApnsNotification>(50, notification()));
  EXPECT_TRUE(std::all_of(results.begin(), results.end(),
                          [](auto& r) { return r.outcome == PnsOutcome::kSuccess; }));
  EXPECT_EQ(simAccepted(), 50u);
}

TEST_F(ApnsClientTest, AnUnreachableEndpointTripsTheBreakerAndEndsAsPnsUnreachable) {
  start();
  ApnsClient::Options options;
  options.pool.connection.host = "localhost";
  options.pool.connection.port = 1;  // connects are refused
  options.pool.connection.session.authority = "localhost:1";
  options.pool.backoff_initial = std::chrono::milliseconds(10);
  options.pool.backoff_max = std::chrono::milliseconds(50);
  auto c = std::make_unique<ApnsClient>(io_, tls_, options, provider());
  // Held until the breaker opens (3 failed connects), not until the time-to-live (an hour).
  auto results =
      deliver(*c, std::vector<ApnsNotification>(20, notification()), std::chrono::hours(1));
  for (const auto& r : results) {
    EXPECT_EQ(outcomeName(r.outcome), "PnsUnreachable");
    EXPECT_THAT(r.reason, ::testing::HasSubstr("cannot be reached"));
  }
}

TEST_F(ApnsClientTest, ResendsAfterALostConnectionAreCountedAndBoundedByTheStreamCap) {
  start({"--fault", "apns:reset=0.01", "--apns-initial-streams", "1000", "--apns-max-streams",
         "1000"});
  ApnsClient::Options options;
  options.pool.connection.host = "localhost";
  options.pool.connection.port = static_cast<uint16_t>(apns_port_);
  options.pool.connection.session.authority = fmt::format("localhost:{}", apns_port_);
  options.pool.connection.session.max_concurrent_streams = 20;
  options.pool.max_connections = 2;
  options.retry.backoff_initial = std::chrono::milliseconds(10);
  options.retry.backoff_max = std::chrono::milliseconds(100);
  auto c = std::make_unique<ApnsClient>(io_, tls_, options, provider());
  auto results = deliver(*c, std::vector<ApnsNotification>(2000, notification()));
  uint64_t resends = 0;
  for (const auto& r : results) {
    EXPECT_EQ(outcomeName(r.outcome), "Success");
    resends += r.resends;
  }
  // Every request the simulator saw beyond one per device is a counted re-send (a re-sent
  // request may not have reached it before the connection went).
  EXPECT_GT(resends, 0u);
  EXPECT_GE(requests("apns"), 2000u);
  EXPECT_LE(requests("apns"), 2000u + resends);
}

TEST_F(ApnsClientTest, ChaosLosesAndDuplicatesNoResult) {
  start({"--fault", "apns:503=0.05", "--fault", "apns:reset=0.002", "--fault",
         "apns:goaway-every=200", "--apns-drop-streams-after-rejection"});
  auto c = client(provider());
  auto results = deliver(*c, std::vector<ApnsNotification>(3000, notification()));
  EXPECT_TRUE(std::all_of(results.begin(), results.end(),
                          [](auto& r) { return r.outcome == PnsOutcome::kSuccess; }));
  // A reset connection takes the answers of every stream in flight with it, and those are sent
  // again: towards APNs delivery is at-least-once (DESIGN.md). Never fewer than one each.
  EXPECT_GE(simAccepted(), 3000u);
}

TEST(ApnsTopic, TheTopicCarriesThePushTypesSuffix) {
  EXPECT_EQ(apnsTopicFor("com.app", "alert"), "com.app");
  EXPECT_EQ(apnsTopicFor("com.app", "voip"), "com.app.voip");
  EXPECT_EQ(apnsTopicFor("com.app.voip", "voip"), "com.app.voip");
  EXPECT_EQ(apnsTopicFor("com.app", "liveactivity"), "com.app.push-type.liveactivity");
  EXPECT_EQ(apnsTopicFor("com.app", "complication"), "com.app.complication");
  EXPECT_EQ(apnsPayloadLimit("voip"), 5120u);
  EXPECT_EQ(apnsPayloadLimit("alert"), 4096u);
}

TEST(ApnsTokenProviderTest, RenewsAfterFiftyMinutesAndNeverWithinTwenty) {
  auto key = generateEcP256Key();
  ASSERT_TRUE(key.has_value());
  auto now = std::chrono::system_clock::now();
  ApnsTokenProvider::Options options;
  options.key_id = "KEY1234567";
  options.team_id = "TEAM123456";
  options.clock = [&] { return now; };
  auto tokens = *ApnsTokenProvider::create(options, privateKeyPem(key->get()));
  auto first = tokens->current();
  EXPECT_THAT(first->authorization, ::testing::StartsWith("bearer ey"));
  now += std::chrono::minutes(10);
  EXPECT_EQ(tokens->current(), first);
  EXPECT_EQ(tokens->refuse(first), first) << "younger than 20 minutes";
  now += std::chrono::minutes(15);
  auto second = tokens->refuse(first);
  EXPECT_NE(second, first);
  EXPECT_EQ(tokens->refuse(first), second) << "already renewed";
  now += std::chrono::minutes(49);
  EXPECT_EQ(tokens->current(), second);
  now += std::chrono::minutes(2);
  EXPECT_NE(tokens->current(), second);
  EXPECT_EQ(tokens->issuedCount(), 3u);
  EXPECT_FALSE(ApnsTokenProvider::create(options, "not a key").has_value());
}

}  // namespace
}  // namespace pushhub::connectors
