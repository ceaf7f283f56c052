// `make run`'s script: pushhub-sim starts beside pushhub with freshly written development
// credentials, both answer, and Ctrl-C (SIGINT to the process group) stops both cleanly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
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

TEST(RunDev, StartsTheSimulatorBesidePushhubAndStopsBothOnCtrlC) {
  TempDir dir;
  ChildProcess script(
      "/bin/bash",
      {PUSHHUB_RUN_DEV_SCRIPT, "--listen", "127.0.0.1:0", "--data-dir",
       (dir.path() / "data").string()},
      {{"BUILD_DIR", PUSHHUB_BUILD_DIR},
       {"SIM_DIR", (dir.path() / "sim").string()},
       {"SIM_ARGS",
        "--apns-listen 127.0.0.1:0 --fcm-listen 127.0.0.1:0 --wns-listen 127.0.0.1:0 "
        "--admin-listen 127.0.0.1:0"}});
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
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "sim" / "fcm-service-account.json"));
  EXPECT_EQ(HttpClient(admin_port).request("GET", "/stats").status, 200u);
  EXPECT_EQ(HttpClient(hub_port).request("GET", "/healthz").status, 200u);

  script.signalGroup(SIGINT);
  EXPECT_EQ(script.waitForExit(30s), 0) << script.output();
  EXPECT_THAT(script.output(), HasSubstr("stopped"));
  // The simulator went with it: its port no longer answers.
  EXPECT_ANY_THROW(HttpClient(admin_port).request("GET", "/stats"));
}

}  // namespace
}  // namespace pushhub
