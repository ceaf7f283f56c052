#pragma once

// pushhub-sim's network side: a TLS listener per service on every event loop (SO_REUSEPORT), the
// connections that carry them (APNs over HTTP/2, FCM over HTTP/2 or HTTP/1.1 as ALPN decides,
// WNS over HTTP/1.1), fault injection, and the plain-HTTP admin port with /stats. The services'
// rules live in apns.*, fcm.* and wns.*.

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>

#include "common/listen.h"
#include "connectors/sim/apns.h"
#include "connectors/sim/devices.h"
#include "connectors/sim/fcm.h"
#include "connectors/sim/stats.h"
#include "connectors/sim/wns.h"

namespace pushhub::connectors::sim {

// Failures real services produce, injected at random (fixed seed per loop) before validation;
// what each kind looks like per service is in service.h (Fault).
struct FaultOptions {
  double internal_error_rate = 0;  // 500
  double unavailable_rate = 0;     // 503
  double throttle_rate = 0;        // APNs/FCM 429, WNS 406
  double reset_rate = 0;           // the TCP connection is cut instead of answering
  // Connections accepted over TCP whose TLS handshake is never answered (held until the client
  // gives up): a service that is up at the TCP level and stuck above it.
  double tls_stall_rate = 0;
  // HTTP/2: GOAWAY after every N requests on a connection (APNs {"reason":"Shutdown"});
  // HTTP/1.1: that answer carries Connection: close.
  uint64_t goaway_every = 0;
  std::chrono::microseconds latency{0};         // added to every answer
  std::chrono::microseconds latency_jitter{0};  // plus uniform [0, jitter)
};

struct SimOptions {
  ListenAddress apns_listen{"127.0.0.1", 0};
  ListenAddress fcm_listen{"127.0.0.1", 0};  // FCM and its OAuth token endpoint (/token)
  ListenAddress wns_listen{"127.0.0.1", 0};  // WNS channels and both token endpoints
  ListenAddress admin_listen{"127.0.0.1", 0};
  std::string tls_certificate;
  std::string tls_private_key;
  std::string client_ca;  // APNs certificate auth: CA of the client certificates
  unsigned loops = 0;     // 0: one per core
  ApnsOptions apns;
  FcmOptions fcm;
  WnsOptions wns;
  FaultOptions apns_faults;
  FaultOptions fcm_faults;
  FaultOptions wns_faults;
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
  uint16_t fcmPort() const;
  uint16_t wnsPort() const;
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
