#include "bench/tool/stream.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <thread>

#include "bench/tool/http_call.h"
#include "bench/tool/proc_stats.h"
#include "bench/tool/progress.h"
#include "bench/tool/send.h"

namespace pushhub::bench {

namespace {

std::string post(const Target& target, const std::string& authorization, std::string_view query,
                 const std::string& extra_headers, const std::string& content_type,
                 const std::string& body) {
  return fmt::format(
      "POST /{}/messages?{}api-version=2020-06 HTTP/1.1\r\nHost: {}:{}\r\nAuthorization: {}\r\n"
      "{}Content-Type: {}\r\nContent-Length: {}\r\n\r\n{}",
      target.hub, query, target.host, target.port, authorization, extra_headers, content_type,
      body.size(), body);
}

std::vector<Sample> scrapeMetrics(const Target& target) {
  auto reply = httpCall({target.host, target.port, target.ca_file}, "GET", "/metrics");
  if (reply.status != 200)
    throw std::runtime_error("GET /metrics answered " + std::to_string(reply.status));
  return parsePrometheus(reply.body);
}

}  // namespace

std::string directSendRequest(const Target& target, const std::string& authorization,
                              const Device& d) {
  switch (d.platform) {
    case Platform::kApns:
      return post(target, authorization, "direct&",
                  fmt::format("ServiceBusNotification-Format: apple\r\n"
                              "ServiceBusNotification-DeviceHandle: {}\r\n",
                              d.handle),
                  "application/json", R"({"aps":{"alert":"pushhub-bench stream"}})");
    case Platform::kFcm:
      return post(target, authorization, "direct&",
                  fmt::format("ServiceBusNotification-Format: fcmv1\r\n"
                              "ServiceBusNotification-DeviceHandle: {}\r\n",
                              d.handle),
                  "application/json", R"({"message":{"data":{"message":"pushhub-bench stream"}}})");
    case Platform::kWns:
      return post(
          target, authorization, "direct&",
          fmt::format("ServiceBusNotification-Format: windows\r\n"
                      "ServiceBusNotification-DeviceHandle: {}\r\nX-WNS-Type: wns/toast\r\n",
                      d.handle),
          "application/xml",
          R"(<toast><visual><binding template="ToastText01"><text id="1">pushhub-bench stream</text></binding></visual></toast>)");
  }
  return {};
}

std::string tagSendRequest(const Target& target, const std::string& authorization,
                           const std::string& tags) {
  return post(target, authorization, "",
              fmt::format("ServiceBusNotification-Format: template\r\n"
                          "ServiceBusNotification-Tags: {}\r\n",
                          tags),
              "application/json", R"({"message":"pushhub-bench stream"})");
}

StreamResult stream(const Target& target, const StreamOptions& o) {
  if (o.rate_per_s <= 0 || o.seconds <= 0)
    throw std::invalid_argument("stream: rate and seconds must be positive");
  const Population population(o.population);
  const std::string authorization = target.authorization();
  const uint64_t total = static_cast<uint64_t>(std::llround(o.rate_per_s * o.seconds));
  const auto [sim, stats_path] = splitUrl(o.sim_stats_url, "");
  const auto simAcceptedNow = [&, sim = sim, stats_path = stats_path] {
    return simAccepted(httpCall(sim, "GET", stats_path).body);
  };

  HttpLoadOptions load;
  load.host = target.host;
  load.port = target.port;
  load.ca_file = target.ca_file;
  load.connections = o.connections;
  load.requests = total;
  load.rate_per_s = o.rate_per_s;
  const uint64_t devices = std::max<uint64_t>(1, o.population.count);
  load.make_request = [&](uint64_t i, std::string& out) {
    if (o.tag_every > 0 && i % o.tag_every == o.tag_every - 1) {
      out = tagSendRequest(target, authorization, o.tags);
    } else {
      out =
          directSendRequest(target, authorization, population.device(i % devices, target.wns_host));
    }
  };
  Progress progress("stream", total);
  if (o.progress) load.progress = [&](uint64_t answered) { progress.update(answered); };

  const auto before = scrapeMetrics(target);
  const uint64_t sim_before = simAcceptedNow();
  const ProcessWatch watch(target.pushhub_pid);
  StreamResult r;
  r.load = runHttpLoad(load);
  if (o.progress) progress.finish(r.load.answered);
  // Let the last deliveries land (at most a second) before reading the figures.
  uint64_t sim_after = simAcceptedNow();
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const uint64_t now = simAcceptedNow();
    if (now == sim_after && i >= 5) break;
    sim_after = now;
  }
  r.deliveries = sim_after - sim_before;
  const auto after = scrapeMetrics(target);
  r.direct_latency_s =
      difference(bucketsOf(after, "pushhub_delivery_latency_seconds", {{"target", "direct"}}),
                 bucketsOf(before, "pushhub_delivery_latency_seconds", {{"target", "direct"}}));
  r.tag_latency_s =
      difference(bucketsOf(after, "pushhub_delivery_latency_seconds", {{"target", "tags"}}),
                 bucketsOf(before, "pushhub_delivery_latency_seconds", {{"target", "tags"}}));
  r.pushhub = watch.finish();
  return r;
}

}  // namespace pushhub::bench
