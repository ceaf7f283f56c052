#pragma once

// pushhub-sim's network side: a TLS listener per service on every event loop (SO_REUSEPORT), the
// HTTP/2 connections that carry APNs, fault injection, and the plain-HTTP admin port with
// /stats. The services' rules live in apns.* (fcm.* and wns.* join them).

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>

#include "common/listen.h"
#include "connectors/sim/apns.h"
#include "connectors/sim/devices.h"
#include "connectors/sim/stats.h"

namespace pushhub::connectors::sim {

// Failures real services produce, injected at random (fixed seed per loop) before validation.
struct FaultOptions {
  double internal_error_rate = 0;  // 500 InternalServerError
  double unavailable_rate = 0;     // 503 ServiceUnavailable
  double throttle_rate = 0;        // 429 TooManyRequests
  double reset_rate = 0;           // the TCP connection is cut instead of answering
  uint64_t goaway_every = 0;  // GOAWAY {"reason":"Shutdown"} after every N requests on a connection
  std::chrono::microseconds latency{0};         // added to every answer
  std::chrono::microseconds latency_jitter{0};  // plus uniform [0, jitter)
};

struct SimOptions {
  ListenAddress apns_listen{"127.0.0.1", 0};
  ListenAddress admin_listen{"127.0.0.1", 0};
  std::string tls_certificate;
  std::string tls_private_key;
  std::string client_ca;  // APNs certificate auth: CA of the client certificates
  unsigned loops = 0;     // 0: one per core
  ApnsOptions apns;
  FaultOptions apns_faults;
  std::string record_file;  // every accepted notification as a JSON line
};

class SimServer {
 public:
  static std::expected<std::unique_ptr<SimServer>, std::string> create(SimOptions options,
                                                                       DeviceFates fates);
  ~SimServer();
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  uint16_t apnsPort() const;
  uint16_t adminPort() const;
  void start();
  void stop();
  Stats& stats();

  struct Impl;  // defined in server.cc; public so the connection classes there can name it

 private:
  explicit SimServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pushhub::connectors::sim
