#include "bench/tool/send.h"

#include <rapidjson/document.h>

#include <fmt/format.h>

#include <stdexcept>
#include <thread>

#include "bench/tool/http_call.h"
#include "bench/tool/kafka_send.h"
#include "bench/tool/proc_stats.h"
#include "bench/tool/progress.h"

namespace pushhub::bench {

using Clock = std::chrono::steady_clock;

namespace {

std::string defaultBody(const std::string& format) {
  if (format == "template") return R"({"message":"pushhub-bench"})";
  if (format == "apple") return R"({"aps":{"alert":"pushhub-bench"}})";
  if (format == "gcm" || format == "fcmv1") {
    return R"({"message":{"data":{"message":"pushhub-bench"}}})";
  }
  if (format == "windows") {
    return R"(<toast><visual><binding template="ToastText01"><text id="1">pushhub-bench</text></binding></visual></toast>)";
  }
  return "{}";
}

const char* latencyTarget(const SendOptions& o) { return o.tags.empty() ? "broadcast" : "tags"; }

std::vector<Sample> scrape(const HttpEndpoint& pushhub) {
  auto reply = httpCall(pushhub, "GET", "/metrics");
  if (reply.status != 200) {
    throw std::runtime_error(fmt::format("GET /metrics answered {}", reply.status));
  }
  return parsePrometheus(reply.body);
}

}  // namespace

uint64_t simAccepted(const std::string& stats_json, uint64_t* requests) {
  rapidjson::Document doc;
  doc.Parse(stats_json.c_str());
  if (doc.HasParseError() || !doc.IsObject()) {
    throw std::runtime_error("the simulator's /stats is not a JSON object");
  }
  uint64_t accepted = 0, all = 0;
  for (const char* service : {"apns", "fcm", "wns"}) {
    auto it = doc.FindMember(service);
    if (it == doc.MemberEnd() || !it->value.IsObject()) continue;
    if (auto a = it->value.FindMember("accepted");
        a != it->value.MemberEnd() && a->value.IsUint64()) {
      accepted += a->value.GetUint64();
    }
    if (auto r = it->value.FindMember("requests");
        r != it->value.MemberEnd() && r->value.IsUint64()) {
      all += r->value.GetUint64();
    }
  }
  if (requests != nullptr) *requests = all;
  return accepted;
}

SendResult sendOne(const Target& target, const SendOptions& o) {
  const HttpEndpoint pushhub{target.host, target.port, target.ca_file};
  const auto [sim, stats_path] = splitUrl(o.sim_stats_url, "");
  const auto simNow = [&, sim = sim, stats_path = stats_path](uint64_t* requests) {
    auto reply = httpCall(sim, "GET", stats_path);
    if (reply.status != 200) {
      throw std::runtime_error(fmt::format("{} answered {}", o.sim_stats_url, reply.status));
    }
    return simAccepted(reply.body, requests);
  };

  SendResult r;
  const auto metrics_before = scrape(pushhub);
  uint64_t sim_requests_before = 0;
  const uint64_t sim_before = simNow(&sim_requests_before);
  const ProcessWatch watch(target.pushhub_pid);

  const std::string body = o.body.empty() ? defaultBody(o.format) : o.body;
  std::unique_ptr<KafkaSender> kafka;
  std::string telemetry_path;
  std::string idempotency_key;
  const auto posted = Clock::now();
  if (o.via == "kafka") {
    kafka = std::make_unique<KafkaSender>(o.kafka_bootstrap, o.sends_topic, o.outcomes_topic);
    idempotency_key = fmt::format("pushhub-bench-{}-{}", o.label,
                                  std::chrono::system_clock::now().time_since_epoch().count());
    kafka->produce(idempotency_key,
                   kafkaSendRequest(target.hub, o.format, o.tags, body, idempotency_key));
  } else {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Authorization", target.authorization()},
        {"ServiceBusNotification-Format", o.format},
        {"Content-Type", o.format == "windows" ? "application/xml" : "application/json"}};
    if (!o.tags.empty()) headers.emplace_back("ServiceBusNotification-Tags", o.tags);
    for (const auto& h : o.headers) headers.push_back(h);
    auto reply =
        httpCall(pushhub, "POST", fmt::format("/{}/messages?api-version=2020-06", target.hub),
                 headers, body);
    if (reply.status != 201) {
      throw std::runtime_error(fmt::format("{}: POST /{}/messages answered {}: {}", o.label,
                                           target.hub, reply.status, reply.body.substr(0, 300)));
    }
    // The same pushhub; the Location's host may be a name from the Host header.
    telemetry_path = splitUrl(reply.header("location"), target.ca_file).second;
    const size_t slash = telemetry_path.rfind('/');
    r.id = telemetry_path.substr(slash + 1, telemetry_path.find('?') - slash - 1);
  }
  const auto accepted = Clock::now();
  r.accept_ms = std::chrono::duration<double, std::milli>(accepted - posted).count();

  // Whether the notification ended: its telemetry (REST), or its completed outcome (Kafka).
  const auto ended_now = [&]() -> bool {
    if (kafka) {
      auto completed = kafka->poll(idempotency_key, std::chrono::milliseconds(0));
      if (!completed) return false;
      r.id = completed->id;
      r.state = completed->state;
      r.counts = completed->counts;
      return true;
    }
    auto t = httpCall(pushhub, "GET", telemetry_path,
                      {{"Authorization", target.authorization()}, {"Accept", "application/json"}});
    if (t.status != 200) {
      throw std::runtime_error(fmt::format("{}: telemetry answered {}", o.label, t.status));
    }
    rapidjson::Document telemetry;
    telemetry.Parse(t.body.c_str());
    if (telemetry.HasParseError() || !telemetry.IsObject() || !telemetry.HasMember("state") ||
        !telemetry["state"].IsString()) {
      throw std::runtime_error(o.label + ": telemetry is not the JSON expected: " + t.body);
    }
    r.state = telemetry["state"].GetString();
    if (auto counts = telemetry.FindMember("counts"); counts != telemetry.MemberEnd()) {
      r.counts = readOutcomeCounts(counts->value);
    }
    return r.state != "Enqueued" && r.state != "Processing" && r.state != "Scheduled";
  };

  // Poll the simulator every 10 ms and the notification's state every 100 ms (Kafka: every
  // turn), until it ended and the simulator's count stopped moving.
  Progress progress(o.label, 0);
  uint64_t last_seen = sim_before;
  auto last_change = accepted;
  bool ended = false;
  const auto deadline = accepted + o.timeout;
  auto next_check = accepted;
  for (;;) {
    const auto now = Clock::now();
    uint64_t requests = 0;
    const uint64_t seen = simNow(&requests);
    const double since = std::chrono::duration<double>(now - accepted).count();
    if (seen != last_seen) {
      if (last_seen == sim_before) r.first_delivery_s = since;
      r.per_second.add(since, seen - last_seen);
      last_seen = seen;
      last_change = now;
      r.last_delivery_s = since;
    }
    r.sim_requests = requests - sim_requests_before;
    if (!ended && (kafka || now >= next_check)) {
      next_check = now + std::chrono::milliseconds(100);
      if (ended_now()) {
        ended = true;
        r.completed_s = since;
      }
      if (o.progress) progress.update(seen - sim_before);
    }
    // Ended, and nothing new reached the simulator for 50 ms (answers still in flight land).
    if (ended && now - last_change >= std::chrono::milliseconds(50)) break;
    if (now >= deadline) {
      throw std::runtime_error(fmt::format("{}: not finished after {} s (state {})", o.label,
                                           o.timeout.count(),
                                           r.state.empty() ? "unknown" : r.state));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (o.progress) progress.finish(last_seen - sim_before);
  r.deliveries = last_seen - sim_before;
  r.deliveries_per_s = r.last_delivery_s > 0 ? r.deliveries / r.last_delivery_s : 0;
  const auto metrics_after = scrape(pushhub);
  const std::map<std::string, std::string> which{{"target", latencyTarget(o)}};
  r.latency_s = difference(bucketsOf(metrics_after, "pushhub_delivery_latency_seconds", which),
                           bucketsOf(metrics_before, "pushhub_delivery_latency_seconds", which));
  r.installations = sumOf(metrics_after, "pushhub_installations");
  r.pushhub = watch.finish();
  return r;
}

}  // namespace pushhub::bench
