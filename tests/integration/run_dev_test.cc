// `make run`'s script: pushhub-sim starts beside pushhub with freshly written development
// credentials, both answer, and Ctrl-C (SIGINT to the process group) stops both cleanly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <filesystem>
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
using namespace std::chrono_literals;

// deploy/run-dev.sh with every simulator port free and its files in `dir`.
std::unique_ptr<ChildProcess> runDev(const TempDir& dir,
                                     std::vector<std::pair<std::string, std::string>> env = {}) {
  env.insert(env.end(), {{"BUILD_DIR", PUSHHUB_BUILD_DIR},
                         {"SIM_DIR", (dir.path() / "sim").string()},
                         {"SIM_ARGS",
                          "--apns-listen 127.0.0.1:0 --fcm-listen 127.0.0.1:0 "
                          "--wns-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0"}});
  return std::make_unique<ChildProcess>(
      "/bin/bash",
      std::vector<std::string>{PUSHHUB_RUN_DEV_SCRIPT, "--listen", "127.0.0.1:0", "--data-dir",
                               (dir.path() / "data").string()},
      std::map<std::string, std::string>(env.begin(), env.end()));
}

TEST(RunDev, StartsTheSimulatorBesidePushhubAndStopsBothOnCtrlC) {
  TempDir dir;
  auto process = runDev(dir);
  ChildProcess& script = *process;
  auto sim_line = script.waitForLine("pushhub-sim is up", 60s);
  ASSERT_TRUE(sim_line.has_value()) << script.output();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*sim_line, m, std::regex(R"(http://127\.0\.0\.1:(\d+)/stats)")));
  const auto admin_port = static_cast<uint16_t>(std::stoi(m[1]));
  auto hub_line = script.waitForLine("listening on http://", 30s);
  ASSERT_TRUE(hub_line.has_value()) << script.output();
  ASSERT_TRUE(std::regex_search(*hub_line, m, std::regex(R"(127\.0\.0\.1:(\d+))")));
  const auto hub_port = static_cast<uint16_t>(std::stoi(m[1]));

  EXPECT_TRUE(std::filesystem::exists(dir.path() / "sim" / "credentials.json"));
  EXPECT_THAT(script.output(), HasSubstr("hub demo ready"));
  // The demo hub points at the simulator's real ports.
  const std::string hub_file = [&] {
    std::ifstream in(dir.path() / "sim" / "hub-demo.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  std::smatch apns;
  ASSERT_TRUE(std::regex_search(*sim_line, apns, std::regex(R"(APNs https://localhost:(\d+))")));
  EXPECT_THAT(hub_file, HasSubstr(fmt::format("\"endpoint\": \"https://localhost:{}\"",
                                              std::string(apns[1]))));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "sim" / "fcm-service-account.json"));
  EXPECT_EQ(HttpClient(admin_port).request("GET", "/stats").status, 200u);
  EXPECT_EQ(HttpClient(hub_port).request("GET", "/healthz").status, 200u);

  // The REST quickstart: a token from the dev key, an installation, a template send to its tag,
  // the simulator receives it.
  const std::string key = [&] {
    std::ifstream in(dir.path() / "sim" / "sas.key");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  ASSERT_FALSE(key.empty());
  ChildProcess minted(PUSHHUB_BINARY,
                      {"sas-token", "--resource", "http://127.0.0.1/", "--key", key});
  minted.drainOutput(10s);
  ASSERT_EQ(minted.waitForExit(10s), 0) << minted.output();
  std::string token = minted.output();
  token.erase(token.find_last_not_of("\n") + 1);
  HttpClient api(hub_port);
  const auto put = api.request(
      "PUT", "/demo/installations/phone-1",
      R"({"installationId":"phone-1","platform":"apns","pushChannel":")" + std::string(64, 'a') +
          R"(","tags":["news"],"templates":{"t":{"body":"{\"aps\":{\"alert\":\"$(m)\"}}"}}})",
      {{"Authorization", token}, {"Content-Type", "application/json"}});
  EXPECT_EQ(put.status, 200u) << put.body;
  const auto sent = api.request("POST", "/demo/messages", R"({"m":"hello"})",
                                {{"Authorization", token},
                                 {"ServiceBusNotification-Format", "template"},
                                 {"ServiceBusNotification-Tags", "news"}});
  EXPECT_EQ(sent.status, 201u) << sent.body;
  std::string stats;
  for (int i = 0; i < 200 && stats.find(R"("accepted":1)") == std::string::npos; ++i) {
    std::this_thread::sleep_for(25ms);
    stats = HttpClient(admin_port).request("GET", "/stats").body;
  }
  EXPECT_THAT(stats, HasSubstr(R"("apns":{"requests":1,"accepted":1)"));

  script.signalGroup(SIGINT);
  EXPECT_EQ(script.waitForExit(30s), 0) << script.output();
  EXPECT_THAT(script.output(), HasSubstr("stopped"));
  // The simulator went with it: its port no longer answers.
  EXPECT_ANY_THROW(HttpClient(admin_port).request("GET", "/stats"));
}

// KAFKA=1 make run: a local broker too; a send request produced to pushhub.sends reaches the
// simulator through pushhub, and its summary comes back on pushhub.outcomes.
TEST(RunDev, WithKafkaASendRequestProducedToTheSendsTopicIsDelivered) {
#ifdef PUSHHUB_TSAN
  GTEST_SKIP() << "librdkafka's C11 threads crash under GCC 12's TSan (see tests/CMakeLists.txt)";
#endif
  TempDir dir;
  auto process = runDev(dir, {{"KAFKA", "1"}});
  ChildProcess& script = *process;
  auto sim_line = script.waitForLine("pushhub-sim is up", 60s);
  ASSERT_TRUE(sim_line.has_value()) << script.output();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*sim_line, m, std::regex(R"(http://127\.0\.0\.1:(\d+)/stats)")));
  const auto admin_port = static_cast<uint16_t>(std::stoi(m[1]));
  auto kafka_line = script.waitForLine("Kafka (pushhub-kafka-dev) at ", 30s);
  ASSERT_TRUE(kafka_line.has_value()) << script.output();
  ASSERT_TRUE(std::regex_search(*kafka_line, m, std::regex(R"(at ([^ ]+):)")));
  const std::string bootstrap = m[1];
  ASSERT_TRUE(script.waitForLine("listening on http://", 30s).has_value()) << script.output();

  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), error, sizeof error);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  ASSERT_NE(producer, nullptr) << error;
  const std::string request = fmt::format(
      R"({{"hub":"demo","format":"apple","handles":["{}"],"body":{{"aps":{{"alert":"hi"}}}}}})",
      std::string(64, 'b').replace(0, 4, "abcd"));
  ASSERT_EQ(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("pushhub.sends"),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE(const_cast<char*>(request.data()), request.size()),
                              RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(producer);

  std::string stats;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    stats = HttpClient(admin_port).request("GET", "/stats").body;
    if (stats.find(R"("accepted":1)") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_THAT(stats, HasSubstr(R"("apns":{"requests":1,"accepted":1)")) << script.output();

  script.signalGroup(SIGINT);
  EXPECT_EQ(script.waitForExit(30s), 0) << script.output();
}

}  // namespace
}  // namespace pushhub
