// Starts the real `pushhub` binary and talks to it as a user would.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <regex>

#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace pushhub {
namespace {

using pushhub::testing::ChildProcess;
using pushhub::testing::HttpClient;
using pushhub::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr auto kStartTimeout = 30s;

// Starts `pushhub serve` on a free port with its data in `dir`; returns the port it reports.
uint16_t startServe(ChildProcess& process) {
  auto line = process.waitForLine("listening on http://", kStartTimeout);
  EXPECT_TRUE(line.has_value()) << process.output();
  if (!line) return 0;
  std::smatch match;
  EXPECT_TRUE(std::regex_search(*line, match, std::regex(R"(http://127\.0\.0\.1:(\d+))"))) << *line;
  return static_cast<uint16_t>(std::stoi(match[1]));
}

std::vector<std::string> serveArgs(const TempDir& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {
      "serve",    "--listen", "127.0.0.1:0", "--data-dir", (dir.path() / "data").string(),
      "--shards", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(Serve, ServesHealthAndMetricsThenExitsCleanlyOnSigterm) {
  TempDir dir;
  ChildProcess process(PUSHHUB_BINARY, serveArgs(dir));
  const uint16_t port = startServe(process);
  ASSERT_NE(port, 0);

  HttpClient client(port);
  auto health = client.request("GET", "/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.body, "ok\n");

  auto metrics = client.request("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_THAT(metrics.header("content-type"), HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(metrics.body, HasSubstr("# TYPE pushhub_build_info gauge"));
  EXPECT_THAT(metrics.body, HasSubstr("pushhub_build_info{version=\""));
  EXPECT_THAT(metrics.body, HasSubstr("# TYPE pushhub_uptime_seconds gauge"));
  EXPECT_THAT(metrics.body, HasSubstr("pushhub_shards 2"));
  EXPECT_THAT(metrics.body, HasSubstr("pushhub_http_responses_total{code=\"200\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("pushhub_installations 0"));

  process.sendSignal(SIGTERM);
  EXPECT_EQ(process.waitForExit(20s), 0) << process.output();
  process.drainOutput(2s);
  EXPECT_THAT(process.output(), HasSubstr("storage closed"));
  EXPECT_THAT(process.output(), HasSubstr("stopped"));
  EXPECT_THAT(process.output(), Not(HasSubstr("error")));

  // The storage was closed properly: a new process opens the same data directory.
  ChildProcess again(PUSHHUB_BINARY, serveArgs(dir));
  ASSERT_NE(startServe(again), 0) << again.output();
  again.sendSignal(SIGINT);
  EXPECT_EQ(again.waitForExit(20s), 0) << again.output();
}

TEST(Serve, RefusesADataDirectoryInUseByAnotherProcess) {
  TempDir dir;
  ChildProcess first(PUSHHUB_BINARY, serveArgs(dir));
  ASSERT_NE(startServe(first), 0);
  ChildProcess second(PUSHHUB_BINARY, serveArgs(dir));
  EXPECT_EQ(second.waitForExit(20s), 1);
  second.drainOutput(2s);
  EXPECT_THAT(second.output(), HasSubstr("is in use by another pushhub process"));
  first.sendSignal(SIGTERM);
  EXPECT_EQ(first.waitForExit(20s), 0);
}

TEST(Serve, RefusesToChangeThePartitionCountOfADataDirectory) {
  TempDir dir;
  {
    ChildProcess first(PUSHHUB_BINARY, serveArgs(dir), {{"PUSHHUB_STORAGE_PARTITIONS", "16"}});
    ASSERT_NE(startServe(first), 0);
    first.sendSignal(SIGTERM);
    ASSERT_EQ(first.waitForExit(20s), 0);
  }
  ChildProcess second(PUSHHUB_BINARY, serveArgs(dir), {{"PUSHHUB_STORAGE_PARTITIONS", "32"}});
  EXPECT_EQ(second.waitForExit(20s), 1);
  second.drainOutput(2s);
  EXPECT_THAT(second.output(), HasSubstr("was created with 16 partitions, not 32"));
}

TEST(Serve, RefusesAPortInUse) {
  TempDir dir;
  TempDir dir2;
  ChildProcess first(PUSHHUB_BINARY, serveArgs(dir));
  const uint16_t port = startServe(first);
  ASSERT_NE(port, 0);
  // The shards share their port through SO_REUSEPORT, which would also let a second process of
  // the same user join in and silently take half the connections: it must be refused instead.
  ChildProcess second(PUSHHUB_BINARY, {"serve", "--listen", "127.0.0.1:" + std::to_string(port),
                                       "--data-dir", (dir2.path() / "data").string()});
  const auto code = second.waitForExit(5s);
  first.sendSignal(SIGTERM);
  EXPECT_EQ(first.waitForExit(20s), 0);
  if (code.has_value()) {
    second.drainOutput(2s);
    EXPECT_EQ(*code, 1) << second.output();
    EXPECT_THAT(second.output(), HasSubstr("cannot listen on"));
  } else {
    second.sendSignal(SIGKILL);
    ADD_FAILURE() << "a second server started on a port already in use: " << second.output();
  }
}

TEST(Serve, StopsWithOneClearLineOnABadConfigFile) {
  TempDir dir;
  const auto file = dir.path() / "bad.toml";
  std::ofstream(file) << "[server]\nshards = \"four\"\n";
  ChildProcess process(PUSHHUB_BINARY, {"serve", "--config", file.string()});
  EXPECT_EQ(process.waitForExit(10s), 2);
  process.drainOutput(2s);
  EXPECT_EQ(process.output(), "pushhub: config error: " + file.string() +
                                  " line 2: server.shards: expected an integer, got a string\n");
}

TEST(Serve, StopsOnAnUnknownEnvironmentVariable) {
  ChildProcess process(PUSHHUB_BINARY, {"serve"}, {{"PUSHHUB_SERVER_PORT", "80"}});
  EXPECT_EQ(process.waitForExit(10s), 2);
  process.drainOutput(2s);
  EXPECT_THAT(process.output(),
              HasSubstr("config error: environment PUSHHUB_SERVER_PORT: unknown variable"));
}

TEST(Serve, BadAuthRulesAndPublicUrlAreUsageErrorsThatNeverShowTheKey) {
  ChildProcess rules(PUSHHUB_BINARY, {"serve"}, {{"PUSHHUB_AUTH_RULES", "Root=s3cret-key"}});
  EXPECT_EQ(rules.waitForExit(10s), 2);
  rules.drainOutput(2s);
  EXPECT_THAT(rules.output(), HasSubstr("pushhub: auth.rules: a rule is name=key:rights"));
  EXPECT_THAT(rules.output(), Not(HasSubstr("s3cret")));
  ChildProcess url(PUSHHUB_BINARY, {"serve"}, {{"PUSHHUB_AUTH_PUBLIC_URL", "push.example.com"}});
  EXPECT_EQ(url.waitForExit(10s), 2);
  url.drainOutput(2s);
  EXPECT_THAT(url.output(), HasSubstr("auth.public_url"));
}

TEST(Serve, RefusesAHalfOrUnreadableTlsConfiguration) {
  TempDir dir;
  const std::string data = (dir.path() / "data").string();
  ChildProcess half(PUSHHUB_BINARY, {"serve", "--listen", "127.0.0.1:0", "--data-dir", data},
                    {{"PUSHHUB_HTTP_TLS_CERT_FILE", "/nonexistent/server.crt"}});
  EXPECT_EQ(half.waitForExit(20s), 1);
  half.drainOutput(2s);
  EXPECT_THAT(half.output(), HasSubstr("set both for HTTPS, or neither for HTTP"));
  ChildProcess missing(PUSHHUB_BINARY, {"serve", "--listen", "127.0.0.1:0", "--data-dir", data},
                       {{"PUSHHUB_HTTP_TLS_CERT_FILE", "/nonexistent/server.crt"},
                        {"PUSHHUB_HTTP_TLS_KEY_FILE", "/nonexistent/server.key"}});
  EXPECT_EQ(missing.waitForExit(20s), 1);
  missing.drainOutput(2s);
  EXPECT_THAT(missing.output(), HasSubstr("/nonexistent/server.crt: not a PEM certificate chain"));
}

TEST(Serve, StopsOnABadFlag) {
  ChildProcess process(PUSHHUB_BINARY, {"serve", "--listen", "nowhere"});
  EXPECT_EQ(process.waitForExit(10s), 2);
  process.drainOutput(2s);
  EXPECT_EQ(process.output(),
            "pushhub: config error: --listen: server.listen: \"nowhere\" is not HOST:PORT "
            "(missing :PORT)\n");
}

TEST(Serve, WritesJsonLogLinesWhenAsked) {
  TempDir dir;
  ChildProcess process(PUSHHUB_BINARY, serveArgs(dir, {"--log-format", "json"}));
  auto line = process.waitForLine("listening on", kStartTimeout);
  ASSERT_TRUE(line.has_value()) << process.output();
  EXPECT_THAT(
      *line,
      ::testing::MatchesRegex(
          R"(\{"ts":"[0-9T:.-]+Z","level":"info","logger":"server","msg":"listening on http://127\.0\.0\.1:[0-9]+"\})"));
  process.sendSignal(SIGTERM);
  EXPECT_EQ(process.waitForExit(20s), 0);
}

TEST(Cli, PrintsVersionAndHelp) {
  ChildProcess version(PUSHHUB_BINARY, {"--version"});
  EXPECT_EQ(version.waitForExit(10s), 0);
  version.drainOutput(2s);
  EXPECT_THAT(version.output(), HasSubstr("pushhub 0."));
  EXPECT_THAT(version.output(), HasSubstr("commit"));

  ChildProcess help(PUSHHUB_BINARY, {"serve", "--help"});
  EXPECT_EQ(help.waitForExit(10s), 0);
  help.drainOutput(2s);
  for (const char* option : {"--config", "--listen", "--data-dir", "--shards", "--log-format"}) {
    EXPECT_THAT(help.output(), HasSubstr(option));
  }
}

TEST(Cli, ConfigCommandPrintsTheEffectiveConfiguration) {
  ChildProcess process(PUSHHUB_BINARY, {"config", "--shards", "3"},
                       {{"PUSHHUB_LOG_LEVEL", "debug"}});
  EXPECT_EQ(process.waitForExit(10s), 0);
  process.drainOutput(2s);
  EXPECT_THAT(process.output(), HasSubstr("\nshards = 3\n"));
  EXPECT_THAT(process.output(), HasSubstr("\nlevel = \"debug\"\n"));
}

TEST(Cli, ExampleConfigurationStartsAsIs) {
  ChildProcess process(PUSHHUB_BINARY, {"config", "--config", PUSHHUB_EXAMPLE_CONFIG});
  EXPECT_EQ(process.waitForExit(10s), 0) << process.output();
}

}  // namespace
}  // namespace pushhub
