// One push service that fails must not stop the others (the hardening issue, finding 2): a WNS
// host that cannot be reached, one that answers after 5 s, and one that accepts TCP but never
// finishes TLS, each during a broadcast to 70% APNs, 25% FCM and 5% WNS devices. Before, 512
// WNS deliveries in flight per shard held the whole shard until their time-to-live.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "tests/hub/engine_fixture.h"

namespace pushhub::hub::engine_testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

class IsolationTest : public EngineTest {
 protected:
  static constexpr size_t kDevices = 2000 / kScale;

  // 70% APNs, 25% FCM, 5% WNS whose channels are `wns_channel(token)`.
  void populate(const std::function<std::string(const std::string&)>& wns_channel) {
    std::vector<Installation> list;
    for (size_t i = 0; i < kDevices; ++i) {
      const size_t slot = i % 20;
      Installation in = device(slot < 14 ? 0 : slot < 19 ? 10 : 19, {"all"});
      in.id = fmt::format("dev-{}", i);
      if (in.platform == Platform::kApns) in.push_channel = fmt::format("a{:0>63x}", i);
      if (in.platform == Platform::kFcmV1) in.push_channel = fmt::format("cXq1:APA91bH{:x<140}", i);
      if (in.platform == Platform::kWns) in.push_channel = wns_channel(fmt::format("AwYAAAB{}", i));
      list.push_back(std::move(in));
    }
    store(std::move(list));
  }
  static constexpr uint64_t apnsDevices() { return kDevices * 14 / 20; }
  static constexpr uint64_t fcmDevices() { return kDevices * 5 / 20; }
  static constexpr uint64_t wnsDevices() { return kDevices / 20; }

  // Fewer deliveries in flight per shard than the shard has WNS devices: with one budget for all
  // services (before), WNS alone filled it.
  EngineOptions isolated() const {
    EngineOptions options = defaults();
    options.in_flight_per_shard = 32;
    options.in_flight_per_service = 8;
    return options;
  }

  // Waits until the simulator has accepted every APNs and FCM device of the broadcast.
  bool apnsAndFcmDelivered(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (accepted("apns") >= apnsDevices() && accepted("fcm") >= fcmDevices()) return true;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "apns " << accepted("apns") << "/" << apnsDevices() << ", fcm "
                  << accepted("fcm") << "/" << fcmDevices();
    return false;
  }

  std::string directApns(const std::string& handle) {
    Notification n;
    n.content.kind = NotificationContent::Kind::kNative;
    n.content.platform = Platform::kApns;
    n.content.body = R"({"aps":{"alert":"direct"}})";
    n.target = TargetKind::kHandles;
    n.handles = {handle};
    return send(std::move(n));
  }
};

TEST_F(IsolationTest, AnUnreachableWnsHostEndsItsDeliveriesAndHoldsUpNoOtherService) {
  open(isolated());
  // Port 1 on this machine: connects are refused at once.
  populate([](const std::string& token) { return "https://localhost:1/?token=" + token; });
  const std::string broadcast = send(templated("", "hello"));
  const std::string direct = directApns(std::string(64, 'd'));
  const NotificationView view = waitDone(broadcast, 60s);
  EXPECT_EQ(view.status.state, NotificationState::kCompleted);
  EXPECT_EQ(countOf(view, Platform::kApns, PnsOutcome::kSuccess), apnsDevices());
  EXPECT_EQ(countOf(view, Platform::kFcmV1, PnsOutcome::kSuccess), fcmDevices());
  // Ended after a bounded number of attempts, not held until the time-to-live.
  EXPECT_EQ(countOf(view, Platform::kWns, PnsOutcome::kPnsUnreachable), wnsDevices());
  EXPECT_EQ(countOf(view, Platform::kWns, PnsOutcome::kAbandoned), 0u);
  const NotificationView direct_view = waitDone(direct, 30s);
  EXPECT_EQ(countOf(direct_view, Platform::kApns, PnsOutcome::kSuccess), 1u);
  const std::string metrics = metrics_->renderPrometheus();
  EXPECT_THAT(metrics,
              ::testing::ContainsRegex(
                  R"(pushhub_connector_unreachable_total\{[^}]*service="wns"[^}]*\} [1-9])"));
  // A later send to WNS devices ends at once, the breaker being open.
  const NotificationView again = waitDone(send(templated("", "again")), 30s);
  EXPECT_EQ(countOf(again, Platform::kWns, PnsOutcome::kPnsUnreachable), wnsDevices());
  EXPECT_EQ(countOf(again, Platform::kApns, PnsOutcome::kSuccess), apnsDevices());
}

TEST_F(IsolationTest, AWnsThatAnswersAfterFiveSecondsHoldsOnlyItsOwnShare) {
  close();
  start({"--fault", "wns:latency-us=5000000"});
  open(isolated());
  populate([this](const std::string& token) { return wnsChannel(token); });
  const std::string broadcast = send(templated("", "hello"));
  ASSERT_TRUE(apnsAndFcmDelivered(30s));
  // APNs and FCM are done before WNS has answered anything (its first answers take 5 s): they
  // did not wait for it.
  auto running = engine_->details(kHub, broadcast);
  ASSERT_TRUE(running && *running);
  EXPECT_EQ((*running)->status.state, NotificationState::kProcessing);
  EXPECT_EQ(countOf(**running, Platform::kWns, PnsOutcome::kSuccess), 0u);
  // WNS goes on at its own pace: its first answers arrive after 5 s.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (accepted("wns") == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GT(accepted("wns"), 0u);
}

TEST_F(IsolationTest, AWnsHostThatNeverFinishesTlsHoldsOnlyItsOwnShare) {
  // Accepts TCP connections and never answers the TLS handshake.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t stall_port = acceptor.local_endpoint().port();
  std::vector<boost::asio::ip::tcp::socket> held;
  std::function<void()> accept = [&] {
    acceptor.async_accept([&](boost::system::error_code ec, boost::asio::ip::tcp::socket s) {
      if (ec) return;
      held.push_back(std::move(s));
      accept();
    });
  };
  accept();
  std::thread stall([&] { io.run(); });
  open(isolated());
  populate([&](const std::string& token) {
    return fmt::format("https://localhost:{}/?token={}", stall_port, token);
  });
  const std::string broadcast = send(templated("", "hello"));
  EXPECT_TRUE(apnsAndFcmDelivered(30s));
  auto running = engine_->details(kHub, broadcast);
  ASSERT_TRUE(running && *running);
  EXPECT_EQ((*running)->status.state, NotificationState::kProcessing);  // WNS still connecting
  // Connects that never finish TLS time out and trip the breaker: WNS devices end
  // PnsUnreachable, not at the time-to-live.
  const NotificationView view = waitDone(broadcast, 90s);
  EXPECT_EQ(countOf(view, Platform::kWns, PnsOutcome::kPnsUnreachable), wnsDevices());
  close();
  io.stop();
  stall.join();
}

}  // namespace
}  // namespace pushhub::hub::engine_testing
