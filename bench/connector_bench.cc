// pushhub_connector_bench: one shard's HTTP/2 client pool pushing N APNs notifications of a given
// size to a push-service endpoint (pushhub-sim), on one thread, as a shard would. Prints the rate
// and the CPU per notification. bench/connector_vs_h2load.sh runs it beside h2load against the
// same simulator with the same connections and streams.
#include <fmt/format.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <iostream>

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
  app.add_option("--jwt", jwt, "Provider token (pushhub-sim apns-token)")->required();
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
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = cpuSeconds() - cpu_before;
  std::cout << fmt::format(
                   "requests={} ok={} failed={} resent={} seconds={:.3f} rate={:.0f} "
                   "cpu_us_per_request={:.2f} connections={}",
                   requests, ok, failed, resent, seconds, static_cast<double>(ok) / seconds,
                   cpu * 1e6 / static_cast<double>(requests), pool.stats().connects)
            << std::endl;
  return failed == 0 ? 0 : 1;
}
