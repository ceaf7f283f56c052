#pragma once

// `pushhub-bench send`: one notification (template or native) to a tag expression or to
// everyone, posted over REST, followed to its end through pushhub's telemetry while the
// simulator's counters are polled; the figures of its fan-out.

#include <chrono>
#include <map>
#include <string>

#include "bench/tool/kafka_send.h"
#include "bench/tool/populate.h"
#include "bench/tool/proc_stats.h"
#include "bench/tool/prometheus.h"
#include "bench/tool/stats.h"

namespace pushhub::bench {

struct SendOptions {
  std::string label = "send";
  // Azure's ServiceBusNotification-Format: template, apple, gcm, fcmv1, windows, windowsphone.
  std::string format = "template";
  std::string tags;  // a tag expression; empty: everyone
  // The body: template properties (JSON) for a template, the native payload otherwise. Empty:
  // {"message":"pushhub-bench"} or a small native payload of the format.
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra, e.g. apns-push-type
  std::string sim_stats_url = "http://127.0.0.1:8089/stats";
  std::chrono::seconds timeout{900};
  bool progress = true;
  double baseline_per_s = 0;
  // "rest" (POST /{hub}/messages) or "kafka" (a send request on the sends topic; its end from the
  // outcomes topic).
  std::string via = "rest";
  std::string kafka_bootstrap;
  std::string sends_topic = "pushhub.sends";
  std::string outcomes_topic =
      "pushhub.outcomes";  // h2load's rate in this run, when known: the report gives the ratio
};

struct SendResult {
  std::string id;
  std::string state;
  double accept_ms = 0;     // POST until its 201
  uint64_t deliveries = 0;  // accepted by the simulator during the send
  uint64_t sim_requests = 0;
  double first_delivery_s = 0;  // since the 201, at the polling's resolution (10 ms)
  double last_delivery_s = 0;
  double completed_s = 0;       // telemetry said it ended
  double deliveries_per_s = 0;  // deliveries / last_delivery_s
  OutcomeCounts counts;         // from the telemetry (or the completed outcome)
  Buckets latency_s;            // accept → push-service answer, from pushhub's histogram
  TimeSeries per_second{0.1};   // deliveries since the 201, in 100 ms bins
  ProcessUsage pushhub;
  double installations = 0;  // pushhub_installations after
};

// The simulator's accepted requests over every service (its /stats).
uint64_t simAccepted(const std::string& stats_json, uint64_t* requests = nullptr);

SendResult sendOne(const Target& target, const SendOptions& options);

}  // namespace pushhub::bench
