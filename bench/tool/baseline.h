#pragma once

// `pushhub-bench baseline`: h2load (Debian's nghttp2-client) POSTs APNs pushes straight to the
// simulator — same endpoint, TLS, payload size, connections and streams as pushhub's fan-out —
// the rate a pure HTTP/2 load generator reaches on this machine. Reports put pushhub's fan-out
// rate as a ratio of it.

#include <string>

namespace pushhub::bench {

struct BaselineOptions {
  std::string apns_url = "https://127.0.0.1:2197";
  std::string sim_binary;  // pushhub-sim, to sign the provider token
  std::string sim_config = "dev/sim.conf";
  std::string topic = "com.example.pushhub";
  uint64_t requests = 400'000;
  unsigned connections = 4;
  unsigned streams = 256;
  unsigned threads = 2;
  size_t payload_bytes = 256;
};

struct BaselineResult {
  double requests_per_s = 0;
  uint64_t requests = 0;
  uint64_t ok = 0;  // 2xx
  double seconds = 0;
  std::string command;  // what ran, without the token
};

// An APNs payload of exactly `bytes` bytes (at least 40): {"aps":{"alert":"xxx…"}}.
std::string apnsPayload(size_t bytes);

// Parses h2load's report; false when the lines are missing.
bool parseH2loadOutput(const std::string& output, BaselineResult& result);

BaselineResult runBaseline(const BaselineOptions& options);

}  // namespace pushhub::bench
