#pragma once

// `pushhub-bench stream`: a steady rate of direct sends (one device each, native, as a backend
// answering user actions does), optionally with a tag send every K requests, for a while; the
// latency pushhub adds from accepting a send to the push service's answer, under that load.

#include <string>

#include "bench/tool/populate.h"
#include "bench/tool/proc_stats.h"
#include "bench/tool/prometheus.h"

namespace pushhub::bench {

struct StreamOptions {
  PopulationOptions population;  // the devices sent to: device i of the same population
  double rate_per_s = 1000;
  double seconds = 30;
  unsigned connections = 32;
  uint64_t tag_every = 0;  // 0: direct sends only
  std::string tags = "t0";
  std::string sim_stats_url = "http://127.0.0.1:8089/stats";
  bool progress = true;
};

struct StreamResult {
  HttpLoadResult load;       // the POSTs: their latency is the time to the 201
  Buckets direct_latency_s;  // accept → push-service answer (pushhub's histogram, target direct)
  Buckets tag_latency_s;
  uint64_t deliveries = 0;  // accepted by the simulator meanwhile
  ProcessUsage pushhub;
};

// The POST of direct send i (device i % count of the population) — or a tag send.
std::string directSendRequest(const Target& target, const std::string& authorization,
                              const Device& device);
std::string tagSendRequest(const Target& target, const std::string& authorization,
                           const std::string& tags);

StreamResult stream(const Target& target, const StreamOptions& options);

}  // namespace pushhub::bench
