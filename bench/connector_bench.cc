// pushhub_connector_bench: one shard's APNs client (ApnsClient: token provider, request builder,
// classification, retries over the HTTP/2 pool) — or, with --raw, the bare pool with a fixed
// token — pushing N notifications of a given size to pushhub-sim on one thread, as a shard would.
// Prints the rate and the CPU per notification. bench/connector_vs_h2load.sh runs it beside
// h2load against the same simulator with the same connections and streams.
#include <fmt/format.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <iostream>

#include <fstream>

#include "connectors/apns.h"
#include "connectors/http2/client_pool.h"
#include "connectors/tls.h"

namespace {

using namespace pushhub::connectors;
using namespace pushhub::connectors::http2;

double cpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pushhub_connector_bench: the APNs client pool against pushhub-sim"};
  std::string host = "localhost", ca, jwt, topic = "com.example.pushhub";
  uint16_t port = 2197;
  size_t connections = 1, payload = 256;
  uint64_t requests = 200000;
  app.add_option("--host", host)->capture_default_str();
  app.add_option("--port", port)->capture_default_str();
  app.add_option("--ca", ca, "Extra CA file (the simulator's)");
  std::string apns_key;
  bool raw = false;
  app.add_option("--jwt", jwt, "Provider token for --raw (pushhub-sim apns-token)");
  app.add_option("--apns-key", apns_key, "KEYID:TEAMID:P8FILE, for the APNs client");
  app.add_flag("--raw", raw, "The bare HTTP/2 pool with --jwt instead of the APNs client");
  app.add_option("--topic", topic)->capture_default_str();
  app.add_option("--connections", connections)->capture_default_str();
  app.add_option("-n,--requests", requests)->capture_default_str();
  app.add_option("--payload-bytes", payload)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  TlsClientOptions tls;
  tls.alpn = {"h2"};
  tls.extra_ca_file = ca;
  auto context = makeTlsClientContext(tls);
  if (!context) {
    std::cerr << context.error() << "\n";
    return 1;
  }
  std::string body = R"({"aps":{"alert":{"title":"pushhub","body":")";
  const std::string tail = R"("},"sound":"default"}})";
  body += std::string(payload > body.size() + tail.size() ? payload - body.size() - tail.size() : 0,
                      'x');
  body += tail;
  const std::string device(64, 'a');

  boost::asio::io_context io;
  const auto report = [&](uint64_t ok, uint64_t failed, uint64_t resent, double seconds, double cpu,
                          uint64_t connects) {
    std::cout << fmt::format(
                     "requests={} ok={} failed={} resent={} seconds={:.3f} rate={:.0f} "
                     "cpu_us_per_request={:.2f} connections={}",
                     requests, ok, failed, resent, seconds, static_cast<double>(ok) / seconds,
                     cpu * 1e6 / static_cast<double>(requests), connects)
              << std::endl;
  };
  if (!raw) {
    const size_t first = apns_key.find(':');
    const size_t second = first == std::string::npos ? first : apns_key.find(':', first + 1);
    if (second == std::string::npos) {
      std::cerr << "--apns-key KEYID:TEAMID:P8FILE is required (or --raw --jwt)\n";
      return 2;
    }
    std::string path = apns_key.substr(second + 1);
    path = path.substr(0, path.find(':'));
    std::ifstream in(path);
    ApnsTokenProvider::Options token_options;
    token_options.key_id = apns_key.substr(0, first);
    token_options.team_id = apns_key.substr(first + 1, second - first - 1);
    auto tokens = ApnsTokenProvider::create(token_options,
                                            std::string(std::istreambuf_iterator<char>(in), {}));
    if (!tokens) {
      std::cerr << tokens.error() << "\n";
      return 2;
    }
    ApnsClient::Options client_options;
    client_options.pool.connection.host = host;
    client_options.pool.connection.port = port;
    client_options.pool.connection.session.authority = fmt::format("{}:{}", host, port);
    client_options.pool.min_connections = connections;
    client_options.pool.max_connections = connections;
    client_options.pool.queue_capacity = 20000;
    ApnsClient client(io, *context, client_options, *tokens);
    uint64_t sent = 0, ok = 0, failed = 0, resent = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(30);
    const auto on_result = [&](DeliveryResult&& r) {
      if (r.outcome == PnsOutcome::kSuccess) {
        ++ok;
      } else {
        ++failed;
      }
      resent += r.attempts > 1 ? r.attempts - 1 : 0;
      if (ok + failed == requests) io.stop();
    };
    const auto fill = [&] {
      while (sent < requests) {
        ApnsNotification n;
        n.device_token = device;
        n.topic = topic;
        n.payload = body;
        if (!client.send(std::move(n), deadline, on_result)) return;
        ++sent;
      }
    };
    client.setOnSpace(fill);
    const double cpu_before = cpuSeconds();
    const auto start = std::chrono::steady_clock::now();
    fill();
    io.run();
    report(ok, failed, resent,
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
           cpuSeconds() - cpu_before, client.pool().stats().connects);
    return failed == 0 ? 0 : 1;
  }
  if (jwt.empty()) {
    std::cerr << "--raw needs --jwt\n";
    return 2;
  }
  ClientPool::Options options;
  options.connection.host = host;
  options.connection.port = port;
  options.connection.session.authority = fmt::format("{}:{}", host, port);
  options.connection.session.never_index = {":path", "authorization", "apns-id", "apns-expiration",
                                            "apns-collapse-id"};
  options.min_connections = connections;
  options.max_connections = connections;
  options.queue_capacity = 20000;
  uint64_t next = 0, ok = 0, failed = 0, resent = 0;
  ClientPool* pool_ptr = nullptr;
  const auto make = [&] {
    ClientRequest r;
    r.path = "/3/device/" + device;
    r.headers = {
        {"authorization", "bearer " + jwt}, {"apns-topic", topic}, {"apns-push-type", "alert"}};
    r.body = body;
    return r;
  };
  ClientPool pool(io, *context, options, [&](uint64_t tag, StreamEnd end, ClientResponse&& r) {
    if (end != StreamEnd::kResponse) {
      ++resent;
      pool_ptr->enqueue(make(), tag, true);
      return;
    }
    if (r.status == 200) {
      ++ok;
    } else {
      ++failed;
    }
    if (ok + failed == requests) io.stop();
  });
  pool_ptr = &pool;
  const auto fill = [&] {
    while (next < requests && pool.enqueue(make(), next)) ++next;
  };
  pool.setOnSpace(fill);
  const double cpu_before = cpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  fill();
  io.run();
  report(ok, failed, resent,
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
         cpuSeconds() - cpu_before, pool.stats().connects);
  return failed == 0 ? 0 : 1;
}
