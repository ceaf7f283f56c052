#pragma once

// What the simulator tests share: running Debian's curl / nghttp, parsing `curl -i` output, and
// a fixture that writes development credentials once per suite and starts the real pushhub-sim
// binary on free ports.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "connectors/sim/keygen.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace pushhub::connectors::sim::testing {

using pushhub::testing::ChildProcess;
using namespace std::chrono_literals;

inline constexpr auto kTimeout = 10s;

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
};

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs a command, returns its output (stdout and stderr together).
inline std::string run(const std::vector<std::string>& args) {
  // Debian's curl and nghttp (deploy/install-deps.sh installs them).
  const std::string binary =
      args.front().find('/') == std::string::npos ? "/usr/bin/" + args.front() : args.front();
  ChildProcess process(binary, std::vector<std::string>(args.begin() + 1, args.end()));
  process.drainOutput(kTimeout);
  process.waitForExit(kTimeout);
  return process.output();
}

// Splits `curl -i` output into replies (one per response, as --next makes several).
inline std::vector<Reply> parseReplies(const std::string& output) {
  std::vector<Reply> replies;
  size_t pos = 0;
  while ((pos = output.find("HTTP/", pos)) != std::string::npos) {
    Reply reply;
    const size_t line_end = output.find("\r\n", pos);
    if (line_end == std::string::npos) break;
    const std::string status_line = output.substr(pos, line_end - pos);
    reply.status = std::stoi(status_line.substr(status_line.find(' ') + 1, 3));
    size_t cursor = line_end + 2;
    for (;;) {
      const size_t end = output.find("\r\n", cursor);
      if (end == std::string::npos || end == cursor) {
        cursor = end == std::string::npos ? output.size() : end + 2;
        break;
      }
      const std::string line = output.substr(cursor, end - cursor);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        reply.headers[name] = line.substr(colon + 2);
      }
      cursor = end + 2;
    }
    const size_t next = output.find("HTTP/", cursor);
    reply.body = output.substr(cursor, (next == std::string::npos ? output.size() : next) - cursor);
    replies.push_back(std::move(reply));
    pos = cursor;
  }
  return replies;
}

// Credentials once per suite (keygen is slow: an RSA key), a simulator per test.
class SimTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new pushhub::testing::TempDir();
    auto generated = generateDevelopmentCredentials(dir_->path() / "creds");
    ASSERT_TRUE(generated.has_value()) << generated.error();
    conf_ = generated->sim_config.string();
    ca_ = (dir_->path() / "creds" / "ca.crt").string();
    // The APNs key keygen wrote: "KEYID:TEAMID:P8FILE:BUNDLE" in sim.conf.
    const std::string conf = readFile(conf_);
    std::smatch m;
    ASSERT_TRUE(
        std::regex_search(conf, m, std::regex(R"re("(\w{10}):(\w{10}):([^:]+):([^"]+)")re")));
    apns_key_id_ = m[1];
    apns_team_id_ = m[2];
    apns_p8_ = readFile(std::string(m[3]));
    // The WNS app and Entra tenant, from credentials.json.
    const std::string credentials = readFile(credentialsDir() / "credentials.json");
    ASSERT_TRUE(std::regex_search(
        credentials, m,
        std::regex(
            R"re("package_sid": "([^"]+)", "secret": "([^"]+)", "tenant_id": "([^"]+)")re")));
    wns_sid_ = m[1];
    wns_secret_ = m[2];
    wns_tenant_ = m[3];
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  // A simulator that died under a test (a crash, a sanitizer's report) fails it with what the
  // simulator wrote: otherwise the test only sees refused connections or counters at zero.
  void TearDown() override { expectSimRunning(); }
  void expectSimRunning() {
    if (!sim_ || sim_died_) return;
    if (auto code = sim_->waitForExit(std::chrono::milliseconds(0))) {
      sim_died_ = true;
      ADD_FAILURE() << "pushhub-sim exited during the test with code " << *code << ":\n"
                    << sim_->output();
    }
  }

  // The simulator with the suite's credentials, every port free, two loops, handle fates by
  // prefix ("dead…" unregistered, "bbbb…" bad, "f0f0…" foreign, "0ff…" offline).
  // A default flag given again in `extra` is replaced by it.
  void start(std::vector<std::string> extra = {}) {
    const std::vector<std::pair<std::string, std::string>> defaults = {
        {"--apns-listen", "127.0.0.1:0"},
        {"--fcm-listen", "127.0.0.1:0"},
        {"--wns-listen", "127.0.0.1:0"},
        {"--admin-listen", "127.0.0.1:0"},
        {"--loops", "2"},
        {"--unregistered-prefix", "dead"},
        {"--bad-prefix", "bbbb"},
        {"--foreign-prefix", "f0f0"},
        {"--offline-prefix", "0ff"}};
    // A test process that crashes does not leave its simulator behind.
    extra.push_back("--exit-with-parent");
    std::vector<std::string> args = {"--config", conf_};
    for (const auto& [flag, value] : defaults) {
      if (std::find(extra.begin(), extra.end(), flag) == extra.end()) {
        args.insert(args.end(), {flag, value});
      }
    }
    args.insert(args.end(), extra.begin(), extra.end());
    sim_ = std::make_unique<ChildProcess>(PUSHHUB_SIM_BINARY, args);
    sim_died_ = false;
    auto line = sim_->waitForLine("pushhub-sim ready", kTimeout);
    ASSERT_TRUE(line.has_value()) << sim_->output();
    std::smatch m;
    ASSERT_TRUE(
        std::regex_search(*line, m, std::regex(R"(apns=(\d+) fcm=(\d+) wns=(\d+) admin=(\d+))")));
    apns_port_ = std::stoi(m[1]);
    fcm_port_ = std::stoi(m[2]);
    wns_port_ = std::stoi(m[3]);
    admin_port_ = std::stoi(m[4]);
  }

  std::string adminGet(std::string path) {
    return run({"curl", "-s", fmt::format("http://127.0.0.1:{}{}", admin_port_, path)});
  }

  static std::filesystem::path credentialsDir() { return dir_->path() / "creds"; }

  // Accepted notifications of one service, from /stats.
  uint64_t accepted(const std::string& service) {
    const std::string stats = adminGet("/stats");
    if (stats.empty()) expectSimRunning();
    std::smatch m;
    if (std::regex_search(stats, m,
                          std::regex("\"" + service + R"(":\{"requests":\d+,"accepted":(\d+))"))) {
      return std::stoull(m[1]);
    }
    return 0;
  }

  // Requests one service received (answered or not), from /stats.
  uint64_t requests(const std::string& service) {
    const std::string stats = adminGet("/stats");
    if (stats.empty()) expectSimRunning();
    std::smatch m;
    if (std::regex_search(stats, m, std::regex("\"" + service + R"(":\{"requests":(\d+))"))) {
      return std::stoull(m[1]);
    }
    return 0;
  }

  // Sends each notification through a push client (waiting for room when its queue is full),
  // runs `io` until every result is in, and checks there is exactly one per notification.
  template <class Client, class Notification, class Result>
  static std::vector<Result> deliverAll(boost::asio::io_context& io, Client& client,
                                        const std::vector<Notification>& list,
                                        std::chrono::milliseconds ttl) {
    std::vector<Result> results(list.size());
    std::vector<int> calls(list.size(), 0);
    size_t next = 0, done = 0;
    const auto deadline = std::chrono::steady_clock::now() + ttl;
    const auto fill = [&] {
      while (next < list.size()) {
        const size_t i = next;
        if (!client.send(list[i], deadline, [&, i](Result&& r) {
              results[i] = std::move(r);
              ++calls[i];
              ++done;
            })) {
          return;
        }
        ++next;
      }
    };
    client.setOnSpace(fill);
    fill();
    EXPECT_TRUE(runUntil(
        io, [&] { return done == list.size(); }, ttl + 10s))
        << done << " of " << list.size() << " results";
    EXPECT_TRUE(std::all_of(calls.begin(), calls.end(), [](int n) { return n == 1; }))
        << "one result per notification";
    return results;
  }

  // Runs `io` until `done` or the timeout.
  static bool runUntil(boost::asio::io_context& io, const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.run_for(10ms);
      if (io.stopped()) io.restart();
    }
    return done();
  }

  static inline pushhub::testing::TempDir* dir_ = nullptr;
  static inline std::string conf_, ca_;
  static inline std::string apns_key_id_, apns_team_id_, apns_p8_;
  static inline std::string wns_sid_, wns_secret_, wns_tenant_;
  std::unique_ptr<ChildProcess> sim_;
  bool sim_died_ = false;
  int apns_port_ = 0;
  int fcm_port_ = 0;
  int wns_port_ = 0;
  int admin_port_ = 0;
};

}  // namespace pushhub::connectors::sim::testing
