#include "bench/tool/baseline.h"

#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <stdexcept>

namespace pushhub::bench {

namespace {

// Runs a shell command and returns what it printed (stdout and stderr).
std::string run(const std::string& command, int& status) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  std::array<char, 4096> chunk{};
  size_t n = 0;
  while ((n = fread(chunk.data(), 1, chunk.size(), pipe)) > 0) out.append(chunk.data(), n);
  status = pclose(pipe);
  return out;
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string apnsPayload(size_t bytes) {
  const std::string head = R"({"aps":{"alert":")";
  const std::string tail = R"("}})";
  const size_t fill = bytes > head.size() + tail.size() ? bytes - head.size() - tail.size() : 1;
  return head + std::string(fill, 'x') + tail;
}

bool parseH2loadOutput(const std::string& output, BaselineResult& r) {
  std::smatch m;
  // "finished in 1.60s, 250000.00 req/s, 27.66MB/s"
  if (!std::regex_search(output, m, std::regex(R"(finished in ([0-9.]+)(m?s), ([0-9.]+) req/s)"))) {
    return false;
  }
  r.seconds = std::stod(m[1]) / (m[2] == "ms" ? 1000.0 : 1.0);
  r.requests_per_s = std::stod(m[3]);
  // "requests: 400000 total, 400000 started, 400000 done, 400000 succeeded, 0 failed, …"
  if (!std::regex_search(output, m, std::regex(R"(requests: (\d+) total)"))) return false;
  r.requests = std::stoull(m[1]);
  // "status codes: 400000 2xx, 0 3xx, 0 4xx, 0 5xx"
  if (!std::regex_search(output, m, std::regex(R"(status codes: (\d+) 2xx)"))) return false;
  r.ok = std::stoull(m[1]);
  return true;
}

BaselineResult runBaseline(const BaselineOptions& o) {
  int status = 0;
  const std::string token_out = run(
      fmt::format("{} --config {} apns-token", quoted(o.sim_binary), quoted(o.sim_config)), status);
  if (status != 0) throw std::runtime_error("pushhub-sim apns-token failed: " + token_out);
  const std::string jwt = token_out.substr(0, token_out.find('\n'));
  const auto payload_file =
      std::filesystem::temp_directory_path() / fmt::format("pushhub-bench-payload-{}", getpid());
  std::ofstream(payload_file) << apnsPayload(o.payload_bytes);
  std::string url = o.apns_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  const std::string device = url + "/3/device/" + std::string(64, 'a');
  const std::string args = fmt::format(
      "-n {} -c {} -m {} -t {} -d {} -H 'apns-topic: {}' -H 'apns-push-type: alert' {}", o.requests,
      o.connections, o.streams, o.threads, quoted(payload_file.string()), o.topic, quoted(device));
  BaselineResult r;
  r.command = "h2load " + args + " -H 'authorization: bearer …'";
  const std::string output =
      run(fmt::format("h2load {} -H {}", args, quoted("authorization: bearer " + jwt)), status);
  std::filesystem::remove(payload_file);
  if (!parseH2loadOutput(output, r)) {
    throw std::runtime_error("h2load did not report (is nghttp2-client installed?):\n" + output);
  }
  if (r.ok != r.requests) {
    throw std::runtime_error(
        fmt::format("h2load: {} of {} requests answered 2xx:\n{}", r.ok, r.requests, output));
  }
  return r;
}

}  // namespace pushhub::bench
