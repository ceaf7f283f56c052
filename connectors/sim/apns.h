#pragma once

// The APNs provider API as pushhub-sim serves it: request validation in Apple's order (see
// ../../../shared/reference/pns-protocols.md §1 and sim/README.md), token authentication with
// per-connection state, and device fates. Pure logic: the connection code feeds it requests and
// executes what it answers.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "connectors/http2/server_session.h"
#include "connectors/jwt.h"
#include "connectors/sim/devices.h"
#include "connectors/sim/service.h"

namespace pushhub::connectors::sim {

struct ApnsKey {
  std::string key_id;               // 10 characters
  std::string team_id;              // 10 characters
  std::vector<std::string> topics;  // bundle ids this key may push to
  std::shared_ptr<EVP_PKEY> public_key;
};

struct ApnsOptions {
  std::vector<ApnsKey> keys;
  uint32_t initial_max_streams = 1;           // until the first accepted request (token auth)
  uint32_t raised_max_streams = 1000;         // after it
  bool drop_streams_after_rejection = false;  // back to 1 after a rejected request [O]
  size_t min_token_hex = 64;                  // device tokens: even-length hex of at least this
  bool reject_invalid_json = false;  // Apple documents no reason; opt-in (BadRequestPayload)
  bool sandbox = false;              // adds apns-unique-id to responses
  std::chrono::seconds token_lifetime{3600};
  std::chrono::seconds token_update_interval{1200};
};

// What one connection remembers between requests.
struct ApnsConnection {
  bool client_certificate = false;
  std::string certificate_topic;         // bundle id from the client certificate (certificate auth)
  std::string pinned_team;               // team of the first authenticated push
  std::string current_token;             // last token accepted on this connection
  const ApnsKey* current_key = nullptr;  // and what verifying it found
  int64_t current_iat = 0;
  std::chrono::system_clock::time_point token_since{};
};

class ApnsService {
 public:
  ApnsService(ApnsOptions options, const DeviceFates& fates);

  Outcome handle(const http2::Request& request, ApnsConnection& connection, SystemTime now) const;
  // A rejection as APNs answers it (apns-id, JSON reason, timestamp for 410s).
  Outcome rejection(const http2::Request& request, std::string_view reason, SystemTime now) const;
  Outcome fault(Fault fault, const http2::Request& request, SystemTime now) const;
  const ApnsOptions& options() const { return options_; }

 private:
  std::optional<std::string> authenticate(const http2::Request& request, ApnsConnection& connection,
                                          std::string_view topic,
                                          std::chrono::system_clock::time_point now) const;

  ApnsOptions options_;
  const DeviceFates& fates_;
};

// A fresh apns-id (random UUID, lowercase).
std::string randomUuid();
bool isCanonicalUuid(std::string_view text);

}  // namespace pushhub::connectors::sim
