#include "api/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <future>
#include <thread>

#include "tests/support/http_client.h"

namespace pushhub::api {
namespace {

using pushhub::testing::HttpClient;
using ::testing::HasSubstr;
using ::testing::Not;
namespace asio = boost::asio;

class HttpServerTest : public ::testing::Test {
 protected:
  void startServer(HttpLimits limits = {}) {
    router_.add(http::verb::get, "/hello", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      co_return textResponse("hello\n", "text/plain");
    });
    router_.add(http::verb::post, "/echo",
                [](const HttpRequest& r) -> asio::awaitable<HttpResponse> {
                  co_return textResponse(r.body(), "application/octet-stream");
                });
    router_.add(http::verb::get, "/slow",
                [this](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                  slow_started_.set_value();
                  asio::steady_timer timer(co_await asio::this_coro::executor,
                                           std::chrono::milliseconds(300));
                  co_await timer.async_wait(asio::use_awaitable);
                  co_return textResponse("finally\n", "text/plain");
                });
    router_.add(http::verb::get, "/throw", [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
      throw std::runtime_error("a handler's bug");
      co_return textResponse("unreachable", "text/plain");
    });
    router_.add(http::verb::get, "/healthz",
                [](const HttpRequest&) -> asio::awaitable<HttpResponse> {
                  co_return textResponse("ok\n", "text/plain");
                });
    router_.addPattern(
        http::verb::get, "/{hub}/messages/$batch",
        [](const HttpRequest&, const PathParams& p) -> asio::awaitable<HttpResponse> {
          co_return textResponse("batch of " + p.at("hub"), "text/plain");
        });
    router_.addPattern(
        http::verb::get, "/{hub}/messages/{id}",
        [](const HttpRequest&, const PathParams& p) -> asio::awaitable<HttpResponse> {
          co_return textResponse(p.at("hub") + "|" + p.at("id"), "text/plain");
        });
    router_.addPattern(http::verb::delete_, "/{hub}/messages/{id}",
                       [](const HttpRequest&, const PathParams&) -> asio::awaitable<HttpResponse> {
                         co_return textResponse("deleted", "text/plain");
                       });
    server_ = std::make_unique<HttpServer>(shards_, router_, limits, metrics_);
    auto listening = server_->listen(ListenAddress{"127.0.0.1", 0});
    ASSERT_TRUE(listening.has_value()) << listening.error();
    shards_.start();
    server_->start();
  }

  void TearDown() override {
    if (server_) server_->stop(std::chrono::milliseconds(500));
    shards_.stop();
  }

  uint16_t port() const { return server_->port(); }

  void waitUntilNoConnections() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (server_->openConnections() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(server_->openConnections(), 0u);
  }

  ShardSet shards_{2};
  Router router_;
  MetricsRegistry metrics_;
  std::unique_ptr<HttpServer> server_;
  std::promise<void> slow_started_;
};

TEST_F(HttpServerTest, ServesManyRequestsOnOneKeepAliveConnection) {
  startServer();
  HttpClient client(port());
  for (int i = 0; i < 20; ++i) {
    auto reply = client.request("GET", "/hello");
    EXPECT_EQ(reply.status, 200u);
    EXPECT_EQ(reply.body, "hello\n");
    EXPECT_TRUE(reply.keep_alive);
    EXPECT_THAT(reply.header("server"), HasSubstr("pushhub/"));
  }
  auto echo = client.request("POST", "/echo", "payload");
  EXPECT_EQ(echo.body, "payload");
  EXPECT_THAT(metrics_.renderPrometheus(),
              HasSubstr("pushhub_http_responses_total{code=\"200\"} 21"));
}

TEST_F(HttpServerTest, IgnoresTheQueryStringWhenRouting) {
  startServer();
  HttpClient client(port());
  EXPECT_EQ(client.request("GET", "/hello?api-version=2015-01").status, 200u);
}

TEST_F(HttpServerTest, AnswersUnknownPathWith404AndWrongMethodWith405) {
  startServer();
  HttpClient client(port());
  auto missing = client.request("GET", "/nope");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_THAT(missing.body, HasSubstr("no resource at /nope"));
  auto wrong = client.request("DELETE", "/hello");
  EXPECT_EQ(wrong.status, 405u);
  EXPECT_EQ(wrong.header("allow"), "GET");
  EXPECT_TRUE(wrong.keep_alive);  // errors in routing do not cost the connection
  EXPECT_EQ(client.request("GET", "/hello").status, 200u);
}

TEST_F(HttpServerTest, PatternRoutesBindDecodedSegmentsAfterExactPaths) {
  startServer();
  HttpClient client(port());
  EXPECT_EQ(client.request("GET", "/my%20hub/messages/42?api-version=2016-07").body, "my hub|42");
  EXPECT_EQ(client.request("GET", "/demo/messages/$batch").body, "batch of demo");
  EXPECT_EQ(client.request("DELETE", "/demo/messages/42").body, "deleted");
  auto wrong = client.request("PUT", "/demo/messages/42");
  EXPECT_EQ(wrong.status, 405u);
  EXPECT_EQ(wrong.header("allow"), "DELETE, GET");
  EXPECT_EQ(client.request("GET", "/demo/messages").status, 404u);
  EXPECT_EQ(client.request("GET", "/demo/messages/42/more").status, 404u);
  EXPECT_EQ(client.request("GET", "/demo/messages/%zz").status, 404u);
  EXPECT_EQ(client.request("GET", "/hello").body, "hello\n");
}

TEST_F(HttpServerTest, RefusesTooLargeBodyWith413AndCloses) {
  startServer(HttpLimits{.max_body_bytes = 1024});
  HttpClient client(port());
  auto reply = client.raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_EQ(reply.status, 413u);
  EXPECT_THAT(reply.body, HasSubstr("http.max_body_bytes"));
  EXPECT_FALSE(reply.keep_alive);
  EXPECT_TRUE(client.serverClosed());
  EXPECT_THAT(metrics_.renderPrometheus(), HasSubstr("pushhub_http_bad_requests_total 1"));
}

TEST_F(HttpServerTest, RefusesTooLargeHeaderWith431) {
  startServer(HttpLimits{.max_header_bytes = 1024});
  HttpClient client(port());
  auto reply =
      client.raw("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n");
  EXPECT_EQ(reply.status, 431u);
  EXPECT_TRUE(client.serverClosed());
}

TEST_F(HttpServerTest, RefusesMalformedRequestWith400) {
  startServer();
  HttpClient client(port());
  auto reply = client.raw("GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n");
  EXPECT_EQ(reply.status, 400u);
  EXPECT_THAT(reply.body, HasSubstr("malformed HTTP request"));
  EXPECT_TRUE(client.serverClosed());
}

TEST_F(HttpServerTest, ClosesConnectionIdleLongerThanTheTimeout) {
  startServer(HttpLimits{.idle_timeout = std::chrono::milliseconds(200)});
  HttpClient client(port());
  EXPECT_EQ(client.request("GET", "/hello").status, 200u);
  EXPECT_TRUE(client.serverClosed(3000));
  // Beast closes the socket before the server's coroutine resumes to count the timeout.
  waitUntilNoConnections();
  EXPECT_THAT(metrics_.renderPrometheus(), HasSubstr("pushhub_http_timeouts_total 1"));
}

TEST_F(HttpServerTest, ClosesConnectionThatSendsOnlyPartOfAHeadWithinTheHeaderTimeout) {
  // The head has its own, shorter deadline than the keep-alive idle time.
  startServer(HttpLimits{.idle_timeout = std::chrono::seconds(60),
                         .header_timeout = std::chrono::milliseconds(200)});
  HttpClient slow(port());
  slow.sendRaw("GET /hello HTTP/1.1\r\nHost:");
  HttpClient silent(port());  // connects and sends nothing
  HttpClient kept(port());
  EXPECT_EQ(kept.request("GET", "/hello").status, 200u);
  EXPECT_TRUE(slow.serverClosed(3000));
  EXPECT_TRUE(silent.serverClosed(3000));
  // A keep-alive connection between requests waits for idle_timeout, not header_timeout.
  EXPECT_FALSE(kept.serverClosed(600));
  EXPECT_EQ(kept.request("GET", "/hello").status, 200u);
  EXPECT_THAT(metrics_.renderPrometheus(), HasSubstr("pushhub_http_header_timeouts_total 2"));
}

TEST_F(HttpServerTest, HeaderLimitIsExact) {
  startServer(HttpLimits{.max_header_bytes = 1024});
  const auto head = [](size_t size) {
    std::string start = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    const std::string end = "\r\n\r\n";
    return start + std::string(size - start.size() - end.size(), 'a') + end;
  };
  ASSERT_EQ(head(1024).size(), 1024u);
  HttpClient fits(port());
  EXPECT_EQ(fits.raw(head(1024)).status, 200u);
  HttpClient over(port());
  EXPECT_EQ(over.raw(head(1025)).status, 431u);
  EXPECT_TRUE(over.serverClosed());
  // Arriving in pieces changes nothing.
  HttpClient trickle(port());
  const std::string big = head(1025);
  for (size_t i = 0; i < big.size(); i += 100) trickle.sendRaw(big.substr(i, 100));
  EXPECT_EQ(trickle.readReply().status, 431u);
}

TEST_F(HttpServerTest, AHeaderFieldOver64KiBIsRefusedWith431NotACrash) {
  // Beast stores a field value in at most 65,535 bytes and throws beyond: that exception ended
  // the process when http.max_header_bytes allowed such a field.
  startServer(HttpLimits{.max_header_bytes = 1 << 20});
  HttpClient client(port());
  auto reply = client.raw("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70'000, 'a') +
                          "\r\n\r\n");
  EXPECT_EQ(reply.status, 431u);
  EXPECT_THAT(reply.body, HasSubstr("65,535"));
  HttpClient after(port());
  EXPECT_EQ(after.request("GET", "/hello").status, 200u);
}

TEST_F(HttpServerTest, AHandlerThatThrowsCostsItsRequestOnly) {
  startServer();
  HttpClient client(port());
  auto reply = client.request("GET", "/throw");
  EXPECT_EQ(reply.status, 500u);
  EXPECT_THAT(reply.body, Not(HasSubstr("a handler's bug")));  // logged, not echoed
  EXPECT_EQ(client.request("GET", "/hello").status, 200u);
  EXPECT_THAT(metrics_.renderPrometheus(), HasSubstr("pushhub_http_handler_failures_total 1"));
}

TEST_F(HttpServerTest, AtTheLimitANewConnectionClosesTheOldestIdleOne) {
  // Two shards share a limit of 2: one connection each. Every client is idle after its request,
  // so each new one takes an idle one's slot instead of being refused.
  startServer(HttpLimits{.max_connections = 2});
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < 8; ++i) {
    auto client = std::make_unique<HttpClient>(port());
    EXPECT_EQ(client->request("GET", "/hello").status, 200u) << i;
    clients.push_back(std::move(client));
  }
  unsigned closed = 0;
  for (auto& client : clients) closed += client->serverClosed(200) ? 1 : 0;
  EXPECT_GE(closed, 6u);
  EXPECT_THAT(metrics_.renderPrometheus(),
              ::testing::ContainsRegex("pushhub_http_connections_evicted_total [678]\n"));
}

TEST_F(HttpServerTest, WhenNothingIsIdleRefusesWith503ButTheReserveAnswersHealth) {
  // One connection per shard, one more per shard in reserve. Twenty clients that send half a
  // head hold every normal slot (none is idle) and fill the reserve.
  startServer(HttpLimits{.max_connections = 2, .reserve_connections = 1});
  std::vector<std::unique_ptr<HttpClient>> busy;
  for (int i = 0; i < 20; ++i) {
    busy.push_back(std::make_unique<HttpClient>(port()));
    busy.back()->sendRaw("GET /hello HTTP/1.1\r\nHost:");
  }
  unsigned refused = 0;
  for (auto& client : busy) {
    if (client->serverClosed(100)) ++refused;
  }
  EXPECT_GE(refused, 16u);
  // A health check still gets through (taking a reserve slot from a client with half a head) …
  HttpClient health(port());
  auto reply = health.request("GET", "/healthz");
  EXPECT_EQ(reply.status, 200u);
  EXPECT_FALSE(reply.keep_alive);
  // … and anything else is refused.
  HttpClient other(port());
  auto refused_reply = other.request("GET", "/hello");
  EXPECT_EQ(refused_reply.status, 503u);
  EXPECT_THAT(refused_reply.body, HasSubstr("http.max_connections"));
  EXPECT_THAT(metrics_.renderPrometheus(), HasSubstr("pushhub_http_reserve_connections_total 1"));
}

TEST_F(HttpServerTest, RefusesConnectionsBeyondThePerClientLimit) {
  startServer(HttpLimits{.max_connections_per_client = 3});
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<HttpClient>(port()));
    EXPECT_EQ(clients.back()->request("GET", "/hello").status, 200u);
  }
  HttpClient fourth(port());
  auto reply = fourth.request("GET", "/hello");
  EXPECT_EQ(reply.status, 503u);
  EXPECT_THAT(reply.body, HasSubstr("http.max_connections_per_client"));
  // A closed connection gives its slot back.
  clients.pop_back();
  unsigned status = 0;
  for (int attempt = 0; attempt < 100 && status != 200u; ++attempt) {
    HttpClient again(port());
    status = again.request("GET", "/hello").status;
    if (status != 200u) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(status, 200u);
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsAndFinishesRequestsInProgress) {
  startServer();
  HttpClient idle(port());
  EXPECT_EQ(idle.request("GET", "/hello").status, 200u);

  HttpClient busy(port());
  busy.sendRaw("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  slow_started_.get_future().wait();

  auto stopped =
      std::async(std::launch::async, [&] { return server_->stop(std::chrono::seconds(5)); });
  auto reply = busy.readReply();
  EXPECT_EQ(reply.status, 200u);
  EXPECT_EQ(reply.body, "finally\n");
  EXPECT_FALSE(reply.keep_alive);  // the server is stopping
  EXPECT_EQ(stopped.get(), 0u);    // nothing had to be cut
  EXPECT_TRUE(idle.serverClosed());
  EXPECT_EQ(server_->openConnections(), 0u);
  // No longer accepting.
  EXPECT_THROW(HttpClient{port()}, boost::system::system_error);
}

TEST_F(HttpServerTest, StopCutsRequestsThatOutliveTheGracePeriod) {
  startServer();
  HttpClient busy(port());
  busy.sendRaw("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  slow_started_.get_future().wait();
  EXPECT_EQ(server_->stop(std::chrono::milliseconds(20)), 1u);
}

}  // namespace
}  // namespace pushhub::api
