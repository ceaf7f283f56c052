// The HTTP/2 client session against the server session, both socket-less, bytes passed by hand:
// whole exchanges, the server's stream limit as it changes, GOAWAY, PING, a lost connection.
#include "connectors/http2/client_session.h"

#include <gtest/gtest.h>

#include <map>

#include "connectors/http2/server_session.h"

namespace pushhub::connectors::http2 {
namespace {

struct Ended {
  StreamEnd end;
  ClientResponse response;
};

class ClientSessionTest : public ::testing::Test {
 protected:
  void open(uint32_t server_streams) {
    ServerSession::Options server_options;
    server_options.max_concurrent_streams = server_streams;
    server_ = std::make_unique<ServerSession>(
        server_options, [this](Request&& r) { requests_.push_back(std::move(r)); },
        [this] { server_->goAway(7, "limit"); });
    ClientSession::Options options;
    options.authority = "localhost";
    client_ = std::make_unique<ClientSession>(
        options, [this](uint64_t tag, StreamEnd end, ClientResponse&& response) {
          ended_[tag] = Ended{end, std::move(response)};
        });
  }
  // Passes bytes both ways until neither side has anything to say.
  void pump() {
    for (int i = 0; i < 50; ++i) {
      std::string to_server, to_client;
      client_->collectOutput(to_server);
      if (!to_server.empty()) server_->receive(to_server);
      server_->collectOutput(to_client);
      if (!to_client.empty()) client_->receive(to_client);
      if (to_server.empty() && to_client.empty()) return;
    }
  }
  static ClientRequest post(std::string path, std::string body = "{}") {
    ClientRequest r;
    r.path = std::move(path);
    r.headers = {{"apns-topic", "com.example"}, {"authorization", "bearer x"}};
    r.body = std::move(body);
    return r;
  }

  std::unique_ptr<ServerSession> server_;
  std::unique_ptr<ClientSession> client_;
  std::vector<Request> requests_;
  std::map<uint64_t, Ended> ended_;
};

TEST_F(ClientSessionTest, SendsARequestAndDeliversTheResponse) {
  open(100);
  EXPECT_FALSE(client_->canSubmit()) << "the server's SETTINGS have not arrived";
  pump();
  ASSERT_TRUE(client_->ready());
  EXPECT_EQ(client_->remoteMaxStreams(), 100u);
  ASSERT_TRUE(client_->submit(post("/3/device/abc", R"({"aps":{}})"), 42));
  pump();
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(*requests_[0].find(":path"), "/3/device/abc");
  EXPECT_EQ(*requests_[0].find(":authority"), "localhost");
  EXPECT_EQ(*requests_[0].find("apns-topic"), "com.example");
  EXPECT_EQ(requests_[0].body, R"({"aps":{}})");
  server_->respond(requests_[0].stream_id,
                   Response{410, {{"apns-id", "x"}}, R"({"reason":"Unregistered"})"});
  pump();
  ASSERT_TRUE(ended_.contains(42));
  EXPECT_EQ(ended_[42].end, StreamEnd::kResponse);
  EXPECT_EQ(ended_[42].response.status, 410);
  EXPECT_EQ(*ended_[42].response.find("apns-id"), "x");
  EXPECT_EQ(ended_[42].response.body, R"({"reason":"Unregistered"})");
  EXPECT_EQ(client_->openStreams(), 0u);
}

TEST_F(ClientSessionTest, FollowsTheServersStreamLimitAsItChanges) {
  open(1);
  pump();
  ASSERT_TRUE(client_->submit(post("/a"), 1));
  EXPECT_FALSE(client_->canSubmit());
  EXPECT_FALSE(client_->submit(post("/b"), 2));
  pump();
  server_->setMaxConcurrentStreams(3);
  server_->respond(requests_[0].stream_id, Response{200, {}, ""});
  pump();
  EXPECT_EQ(client_->remoteMaxStreams(), 3u);
  for (uint64_t tag = 2; tag <= 4; ++tag) EXPECT_TRUE(client_->submit(post("/x"), tag));
  EXPECT_FALSE(client_->canSubmit());
  pump();
  EXPECT_EQ(requests_.size(), 4u);
  // Back down to 1 with 3 open: nothing new until two have finished.
  server_->setMaxConcurrentStreams(1);
  pump();
  server_->respond(requests_[1].stream_id, Response{200, {}, ""});
  pump();
  EXPECT_FALSE(client_->canSubmit());
  server_->respond(requests_[2].stream_id, Response{200, {}, ""});
  server_->respond(requests_[3].stream_id, Response{200, {}, ""});
  pump();
  EXPECT_TRUE(client_->canSubmit());
  EXPECT_EQ(ended_.size(), 4u);
  EXPECT_EQ(server_->openStreams(), 0u);
}

TEST_F(ClientSessionTest, StreamsAboveAGoawaysLastIdAreRefused) {
  open(100);
  pump();
  ASSERT_TRUE(client_->submit(post("/a"), 1));
  ASSERT_TRUE(client_->submit(post("/b"), 2));
  // The server has seen stream 1 only when it goes away.
  std::string to_server;
  client_->collectOutput(to_server);
  server_->receive(to_server);
  ASSERT_EQ(requests_.size(), 2u);
  server_->respond(requests_[0].stream_id, Response{200, {}, ""});
  std::string to_client;
  server_->collectOutput(to_client);
  // A GOAWAY naming stream 1 as the last one processed, by hand: the server session would name 3.
  const std::string goaway(
      "\x00\x00\x08\x07\x00\x00\x00\x00\x00"
      "\x00\x00\x00\x01"
      "\x00\x00\x00\x00",
      17);
  client_->receive(to_client + goaway);
  EXPECT_TRUE(client_->goingAway());
  EXPECT_FALSE(client_->canSubmit());
  ASSERT_EQ(ended_.size(), 2u);
  EXPECT_EQ(ended_[1].end, StreamEnd::kResponse);
  EXPECT_EQ(ended_[2].end, StreamEnd::kRefused);
}

TEST_F(ClientSessionTest, PingIsAcknowledged) {
  open(100);
  pump();
  client_->ping();
  EXPECT_TRUE(client_->pingOutstanding());
  pump();
  EXPECT_FALSE(client_->pingOutstanding());
}

TEST_F(ClientSessionTest, ALostConnectionEndsEveryOpenStream) {
  open(100);
  pump();
  ASSERT_TRUE(client_->submit(post("/a"), 1));
  ASSERT_TRUE(client_->submit(post("/b"), 2));
  pump();
  client_->failAll();
  ASSERT_EQ(ended_.size(), 2u);
  EXPECT_EQ(ended_[1].end, StreamEnd::kConnectionLost);
  EXPECT_EQ(ended_[2].end, StreamEnd::kConnectionLost);
  EXPECT_TRUE(client_->finished());
  EXPECT_FALSE(client_->canSubmit());
}

TEST_F(ClientSessionTest, AResetStreamEndsAsReset) {
  open(100);
  pump();
  ASSERT_TRUE(client_->submit(post("/a"), 1));
  std::string to_server;
  client_->collectOutput(to_server);
  server_->receive(to_server);
  // RST_STREAM(INTERNAL_ERROR) on stream 1, by hand.
  const std::string rst(
      "\x00\x00\x04\x03\x00\x00\x00\x00\x01"
      "\x00\x00\x00\x02",
      13);
  std::string to_client;
  server_->collectOutput(to_client);
  client_->receive(to_client + rst);
  ASSERT_TRUE(ended_.contains(1));
  EXPECT_EQ(ended_[1].end, StreamEnd::kReset);
}

}  // namespace
}  // namespace pushhub::connectors::http2
