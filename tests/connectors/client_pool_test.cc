// The HTTP/2 client pool against the real pushhub-sim (APNs listener): many requests on few
// connections, the stream limit, GOAWAY mid-burst and resets without losing or duplicating a
// request, a bounded queue, per-request timeouts, back-off against a dead endpoint, TLS
// resumption.
#include "connectors/http2/client_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include <map>

#include "connectors/jwt.h"
#include "connectors/tls.h"
#include "tests/connectors/sim_fixture.h"

namespace pushhub::connectors::http2 {
namespace {

using namespace pushhub::connectors::sim::testing;
using ::testing::HasSubstr;

const std::string kDevice(64, 'a');

class ClientPoolTest : public SimTest {
 protected:
  static void SetUpTestSuite() {
    SimTest::SetUpTestSuite();
    auto key = loadPrivateKeyPem(apns_p8_);
    ASSERT_TRUE(key.has_value());
    const auto iat = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    jwt_ = *signJwt(fmt::format(R"({{"alg":"ES256","kid":"{}"}})", apns_key_id_),
                    fmt::format(R"({{"iss":"{}","iat":{}}})", apns_team_id_, iat), key->get(),
                    JwtAlgorithm::kEs256);
  }

  void SetUp() override {
    TlsClientOptions tls;
    tls.alpn = {"h2"};
    tls.extra_ca_file = ca_;
    auto context = makeTlsClientContext(tls);
    ASSERT_TRUE(context.has_value()) << context.error();
    tls_ = *context;
  }

  ClientPool::Options poolOptions(int port) {
    ClientPool::Options options;
    options.connection.host = "localhost";
    options.connection.port = static_cast<uint16_t>(port);
    options.connection.session.authority = fmt::format("localhost:{}", port);
    options.max_connections = 2;
    return options;
  }

  ClientRequest request(const std::string& device = kDevice) const {
    ClientRequest r;
    r.path = "/3/device/" + device;
    r.headers = {{"authorization", "bearer " + jwt_},
                 {"apns-topic", "com.example.pushhub"},
                 {"apns-push-type", "alert"}};
    r.body = R"({"aps":{"alert":"hi"}})";
    return r;
  }

  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 20s) {
    return SimTest::runUntil(io_, done, timeout);
  }
  uint64_t simAccepted() { return accepted("apns"); }

  // Sends `count` requests through `pool`, resending what ended without an answer (refused,
  // reset, connection lost) at the front, as the connectors do; returns the statuses by tag.
  std::map<uint64_t, int> sendAll(ClientPool& pool, std::map<uint64_t, int>& statuses,
                                  uint64_t count) {
    uint64_t next = 0;
    const auto fill = [&] {
      while (next < count && pool.enqueue(request(), next)) ++next;
    };
    pool.setOnSpace(fill);
    fill();
    EXPECT_TRUE(runUntil([&] { return statuses.size() == count; }))
        << statuses.size() << " of " << count << "; queued " << pool.queued();
    return statuses;
  }

  static inline std::string jwt_;
  boost::asio::io_context io_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
};

TEST_F(ClientPoolTest, DeliversManyRequestsOnFewConnections) {
  start();
  std::map<uint64_t, int> statuses;
  std::map<std::string, int> ends;
  ClientPool* pool_ptr = nullptr;
  MetricsRegistry metrics;
  auto options = poolOptions(apns_port_);
  options.metrics = &metrics;
  options.labels = {{"service", "apns"}};
  ClientPool pool(io_, tls_, options, [&](uint64_t tag, StreamEnd end, ClientResponse&& response) {
    ++ends[std::string(streamEndName(end))];
    if (end == StreamEnd::kResponse) {
      statuses[tag] = response.status;
    } else {
      pool_ptr->enqueue(request(), tag, true);
    }
  });
  pool_ptr = &pool;
  sendAll(pool, statuses, 5000);
  EXPECT_EQ(
      std::count_if(statuses.begin(), statuses.end(), [](auto& s) { return s.second == 200; }),
      5000);
  EXPECT_LE(pool.connections(), 2u);
  EXPECT_GE(pool.stats().connects, 1u);
  EXPECT_EQ(pool.stats().connect_failures, 0u);
  EXPECT_EQ(simAccepted(), 5000u) << "nothing lost, nothing sent twice";
  const std::string text = metrics.renderPrometheus();
  EXPECT_THAT(text, HasSubstr(R"(pushhub_connector_requests_total{service="apns"} 5000)"));
  EXPECT_THAT(text, HasSubstr(R"(pushhub_connector_connects_total{service="apns"} )"));
  EXPECT_THAT(text, HasSubstr(R"(pushhub_connector_connections{service="apns"} )"));
  EXPECT_THAT(text, HasSubstr(R"(pushhub_connector_queued{service="apns"} 0)"));
}

TEST_F(ClientPoolTest, GoawayMidBurstAndResetsLoseAndDuplicateNothing) {
  // GOAWAY after every 300 requests on a connection: the streams it names finish, later ones
  // (if any crossed it) are refused and resent elsewhere; none is answered twice.
  start({"--fault", "apns:goaway-every=300"});
  std::map<uint64_t, int> statuses;
  std::map<uint64_t, int> answers;
  ClientPool* pool_ptr = nullptr;
  ClientPool pool(io_, tls_, poolOptions(apns_port_),
                  [&](uint64_t tag, StreamEnd end, ClientResponse&& response) {
                    if (end == StreamEnd::kResponse) {
                      statuses[tag] = response.status;
                      ++answers[tag];
                    } else {
                      pool_ptr->enqueue(request(), tag, true);
                    }
                  });
  pool_ptr = &pool;
  sendAll(pool, statuses, 3000);
  EXPECT_GE(pool.stats().goaways, 1u);
  EXPECT_EQ(simAccepted(), 3000u);
  EXPECT_TRUE(std::all_of(answers.begin(), answers.end(), [](auto& a) { return a.second == 1; }));
}

TEST_F(ClientPoolTest, ConnectionResetsAreResent) {
  start({"--fault", "apns:reset=0.002"});
  std::map<uint64_t, int> statuses;
  uint64_t lost = 0;
  ClientPool* pool_ptr = nullptr;
  ClientPool pool(io_, tls_, poolOptions(apns_port_),
                  [&](uint64_t tag, StreamEnd end, ClientResponse&& response) {
                    if (end == StreamEnd::kResponse) {
                      statuses[tag] = response.status;
                    } else {
                      ++lost;
                      pool_ptr->enqueue(request(), tag, true);
                    }
                  });
  pool_ptr = &pool;
  sendAll(pool, statuses, 3000);
  EXPECT_GT(lost, 0u);
  EXPECT_EQ(
      std::count_if(statuses.begin(), statuses.end(), [](auto& s) { return s.second == 200; }),
      3000);
  // A reset connection takes unanswered streams with it: the simulator may have accepted some
  // of them before the cut (at-least-once), never fewer than were answered.
  EXPECT_GE(simAccepted(), 3000u);
}

TEST_F(ClientPoolTest, AFullQueueSaysWaitAndThenHasSpace) {
  start();
  auto options = poolOptions(apns_port_);
  options.queue_capacity = 10;
  std::map<uint64_t, int> statuses;
  ClientPool pool(io_, tls_, options, [&](uint64_t tag, StreamEnd, ClientResponse&& response) {
    statuses[tag] = response.status;
  });
  uint64_t accepted = 0;
  while (pool.enqueue(request(), accepted)) ++accepted;
  EXPECT_EQ(accepted, 10u);
  bool space = false;
  pool.setOnSpace([&] { space = true; });
  EXPECT_TRUE(runUntil([&] { return space; }));
  EXPECT_TRUE(runUntil([&] { return statuses.size() == 10; }));
}

TEST_F(ClientPoolTest, FollowsTheStreamLimitDroppingToOneAndBack) {
  start({"--apns-drop-streams-after-rejection", "--apns-max-streams", "50"});
  std::map<uint64_t, int> statuses;
  ClientPool* pool_ptr = nullptr;
  auto options = poolOptions(apns_port_);
  options.max_connections = 1;
  ClientPool pool(io_, tls_, options, [&](uint64_t tag, StreamEnd end, ClientResponse&& response) {
    if (end == StreamEnd::kResponse) {
      statuses[tag] = response.status;
    } else {
      ClientRequest again = request(tag % 10 == 0 ? "dead" + kDevice.substr(4) : kDevice);
      pool_ptr->enqueue(std::move(again), tag, true);
    }
  });
  pool_ptr = &pool;
  // Every tenth request is to an unregistered device: the limit drops to 1 each time.
  for (uint64_t tag = 0; tag < 1000; ++tag) {
    ASSERT_TRUE(pool.enqueue(request(tag % 10 == 0 ? "dead" + kDevice.substr(4) : kDevice), tag));
  }
  ASSERT_TRUE(runUntil([&] { return statuses.size() == 1000; }));
  EXPECT_EQ(
      std::count_if(statuses.begin(), statuses.end(), [](auto& s) { return s.second == 410; }),
      100);
  EXPECT_EQ(simAccepted(), 900u);
  EXPECT_EQ(pool.stats().connects, 1u) << "no connection was given up for it";
}

TEST_F(ClientPoolTest, ASlowAnswerTimesOutAsReset) {
  start({"--fault", "apns:latency-us=1500000"});
  auto options = poolOptions(apns_port_);
  options.request_timeout = 300ms;
  std::map<uint64_t, StreamEnd> ends;
  ClientPool pool(io_, tls_, options,
                  [&](uint64_t tag, StreamEnd end, ClientResponse&&) { ends[tag] = end; });
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(pool.enqueue(request(), 1));
  ASSERT_TRUE(runUntil([&] { return ends.size() == 1; }));
  EXPECT_EQ(ends[1], StreamEnd::kReset);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1400ms);
}

TEST_F(ClientPoolTest, BacksOffAgainstAnEndpointThatRefusesConnections) {
  start();
  const int dead_port = admin_port_;  // plain HTTP: the TLS handshake fails there
  auto options = poolOptions(dead_port);
  options.backoff_initial = 50ms;
  options.backoff_max = 400ms;
  ClientPool pool(io_, tls_, options, [](uint64_t, StreamEnd, ClientResponse&&) {});
  ASSERT_TRUE(pool.enqueue(request(), 1));
  runUntil([] { return false; }, 1500ms);
  // 50, 100, 200, 400, 400 ms (halved at most by jitter): a handful of attempts, not a storm.
  EXPECT_GE(pool.stats().connect_failures, 3u);
  EXPECT_LE(pool.stats().connect_failures, 14u);
  EXPECT_EQ(pool.stats().connects, 0u);
}

TEST_F(ClientPoolTest, ReconnectsResumeTheTlsSession) {
  start({"--fault", "apns:goaway-every=5"});
  std::map<uint64_t, int> statuses;
  ClientPool* pool_ptr = nullptr;
  auto options = poolOptions(apns_port_);
  options.max_connections = 1;
  ClientPool pool(io_, tls_, options, [&](uint64_t tag, StreamEnd end, ClientResponse&& response) {
    if (end == StreamEnd::kResponse) {
      statuses[tag] = response.status;
    } else {
      pool_ptr->enqueue(request(), tag, true);
    }
  });
  pool_ptr = &pool;
  // One at a time: every fifth answer is followed by a GOAWAY, so each connection carries five.
  for (uint64_t tag = 0; tag < 40; ++tag) {
    ASSERT_TRUE(pool.enqueue(request(), tag));
    ASSERT_TRUE(runUntil([&] { return statuses.size() == tag + 1; }));
  }
  EXPECT_GE(pool.stats().connects, 6u);
  EXPECT_GE(pool.stats().resumed_tls, 1u);
}

}  // namespace
}  // namespace pushhub::connectors::http2

namespace pushhub::connectors::http2 {
namespace {

// A server that completes TLS and sends its SETTINGS, then reads and never answers anything:
// the client's idle PING goes unacknowledged.
TEST_F(ClientPoolTest, AnUnansweredPingClosesTheConnection) {
  TlsServerOptions server_tls;
  server_tls.certificate_file = (credentialsDir() / "server.crt").string();
  server_tls.private_key_file = (credentialsDir() / "server.key").string();
  server_tls.alpn = {"h2"};
  auto server_context = makeTlsServerContext(server_tls);
  ASSERT_TRUE(server_context.has_value()) << server_context.error();
  boost::asio::ip::tcp::acceptor acceptor(io_, {boost::asio::ip::make_address("127.0.0.1"), 0});
  auto stream = std::make_shared<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>>(
      io_, (*server_context)->context);
  auto buffer = std::make_shared<std::array<char, 4096>>();
  std::function<void()> drain = [&] {
    stream->async_read_some(boost::asio::buffer(*buffer),
                            [&](boost::system::error_code ec, size_t) {
                              if (!ec) drain();
                            });
  };
  acceptor.async_accept(stream->lowest_layer(), [&](boost::system::error_code ec) {
    if (ec) return;
    stream->async_handshake(
        boost::asio::ssl::stream_base::server, [&](boost::system::error_code error) {
          if (error) return;
          static const std::string settings("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
          boost::asio::async_write(*stream, boost::asio::buffer(settings),
                                   [&](auto, size_t) { drain(); });
        });
  });
  ClientConnection::Options options;
  options.host = "localhost";
  options.port = acceptor.local_endpoint().port();
  options.session.authority = fmt::format("localhost:{}", options.port);
  options.idle_ping = 200ms;
  options.ping_timeout = 300ms;
  ClientConnection::Events events;
  events.done = [](uint64_t, StreamEnd, ClientResponse&&) {};
  bool ready = false;
  events.changed = [&](ClientConnection& c) {
    if (c.state() == ClientConnection::State::kReady) ready = true;
  };
  const auto before = std::chrono::steady_clock::now();
  auto connection = ClientConnection::start(io_, tls_, options, events, nullptr);
  ASSERT_TRUE(
      runUntil([&] { return connection->state() == ClientConnection::State::kClosed; }, 5s));
  EXPECT_TRUE(ready);
  EXPECT_EQ(connection->reason(), "PING timeout");
  EXPECT_GE(std::chrono::steady_clock::now() - before, 450ms);
}

}  // namespace
}  // namespace pushhub::connectors::http2
