#pragma once

// A notification as the engine keeps it: what to send (hub/render.h's NotificationContent), to
// whom (a tag expression, everyone, or a list of device handles), when, and until when. This is
// what "accepted" means: the record is in RocksDB before the caller hears 201, and a restart
// finds it there.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "hub/outcomes.h"
#include "hub/render.h"

namespace pushhub::hub {

enum class TargetKind : uint8_t {
  kBroadcast = 0,   // every installation of the hub
  kExpression = 1,  // installations matching a tag expression
  kHandles = 2,     // direct send: device handles, no installation needed (1 to 1000)
};

inline constexpr size_t kMaxDirectHandles = 1000;

struct Notification {
  std::string hub;
  std::string id;
  std::string idempotency_key;  // empty: none given
  NotificationContent content;
  TargetKind target = TargetKind::kBroadcast;
  std::string expression;            // kExpression
  std::vector<std::string> handles;  // kHandles (platform: content.platform)
  UnixMillis enqueue_time = 0;
  UnixMillis scheduled_for = 0;  // 0: send now
  UnixMillis expires_at = 0;     // time-to-live: what is not delivered by then is abandoned
  // As requested (0: the engine's default); Engine::send() turns it into expires_at. Not stored.
  int64_t ttl_ms = 0;
  // At most this many devices are sent to (0: every target): Azure's test sends reach 10, and
  // their per-device results are kept (Engine::testResults).
  uint32_t max_targets = 0;

  // Azure's name of the format, as NotificationDetails' TargetPlatforms shows it.
  std::string formatName() const;
};

// A format as Azure's ServiceBusNotification-Format header and pushhub's Kafka requests name
// it: "template", "apple", "fcmv1" (and "gcm", its alias), "windows". Native formats set
// content.kind and content.platform.
std::expected<void, std::string> parseFormat(std::string_view format, NotificationContent& content);

// The rules an accepted notification meets, the first broken one named: a hub, a body for
// native formats, a parseable tag expression, 1–1000 handles for a direct send (native only),
// a usable native payload.
// Tags in the expression follow the stored tags' rules (at most `max_tag_length`).
std::expected<void, std::string> validateNotification(const Notification& notification,
                                                      size_t max_tag_length = 120);

// A native payload is usable by its push service: well-formed for its format (an APNs JSON
// object, an FCM message, WNS XML unless the X-WNS-Type is wns/raw) and within the service's
// size limit. Checked when a send is accepted, so that the send is refused rather than every
// delivery failing.
std::expected<void, std::string> checkNativeBody(const NotificationContent& content);

// Format 2 added max_targets; format 1 records (without it) are still read.
inline constexpr uint32_t kNotificationRecordFormat = 2;
std::string encodeNotification(const Notification& notification);
std::expected<Notification, std::string> decodeNotification(std::string_view bytes);

// What changes while a notification runs, stored beside it: its state, times and, once it has
// ended, its final outcome counts.
struct NotificationStatus {
  NotificationState state = NotificationState::kEnqueued;
  UnixMillis start_time = 0;
  UnixMillis end_time = 0;
  // (platform, outcome, count) for every non-zero count.
  struct Count {
    storage::Platform platform;
    connectors::PnsOutcome outcome;
    uint64_t n;
  };
  std::vector<Count> counts;
  // Deliveries sent again because the connection they were in flight on was lost (each may have
  // reached the device twice). Format 2; format 1 records read as 0.
  uint64_t resends = 0;
};
std::string encodeStatus(const NotificationStatus& status);
std::expected<NotificationStatus, std::string> decodeStatus(std::string_view bytes);

// Progress of one notification in one partition (or, for direct sends, its handle list): every
// target before `next` has been handed to a push service, and of those only `pending` (ordinals
// or list positions) still wait for an answer. `counts`: outcomes of the answers received.
// A restart re-sends `pending` and goes on from `next`.
struct Checkpoint {
  uint32_t next = 0;
  bool finished = false;
  std::vector<uint32_t> pending;
  std::vector<NotificationStatus::Count> counts;
};
std::string encodeCheckpoint(const Checkpoint& checkpoint);
std::expected<Checkpoint, std::string> decodeCheckpoint(std::string_view bytes);

}  // namespace pushhub::hub
