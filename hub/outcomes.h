#pragma once

// Per-notification telemetry as Azure reports it (GET /{hub}/messages/{id}): a state and, per
// platform, how many deliveries ended with each outcome (Azure's names). Counted live from every
// shard while the fan-out runs, so callers see progress instead of waiting for the end.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "connectors/classify.h"
#include "storage/installation.h"

namespace pushhub::hub {

enum class NotificationState : uint8_t {
  kEnqueued,
  kProcessing,
  kCompleted,
  kNoTargetFound,
  kAbandoned,
  kCanceled,
  kScheduled,
};
std::string_view stateName(NotificationState state);

// Thread-safe counts (platform × outcome), lock-free to add to.
class OutcomeTally {
 public:
  void add(storage::Platform platform, connectors::PnsOutcome outcome, uint64_t n = 1) {
    cell(platform, outcome).fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t count(storage::Platform platform, connectors::PnsOutcome outcome) const {
    return counts_[static_cast<size_t>(platform)][static_cast<size_t>(outcome)].load(
        std::memory_order_relaxed);
  }
  uint64_t total() const;
  uint64_t total(storage::Platform platform) const;

 private:
  std::atomic<uint64_t>& cell(storage::Platform platform, connectors::PnsOutcome outcome) {
    return counts_[static_cast<size_t>(platform)][static_cast<size_t>(outcome)];
  }
  std::array<std::array<std::atomic<uint64_t>, connectors::kPnsOutcomeCount>,
             storage::kPlatformCount>
      counts_{};
};

struct NotificationDetails {
  std::string id;
  std::string location;  // the absolute URL of this resource
  NotificationState state = NotificationState::kEnqueued;
  UnixMillis enqueue_time = 0;
  UnixMillis start_time = 0;  // 0: not started
  UnixMillis end_time = 0;    // 0: not ended
  std::string body;
  std::vector<std::string> target_platforms;  // "apple", "gcm", "windows", "template", …
  uint64_t resends = 0;  // NotificationStatus::resends (the JSON form only: Azure has no field)
};

// Azure's NotificationDetails XML (application/xml), with {Apns,FcmV1,Gcm,Wns}OutcomeCounts for
// the platforms that have counts (FCM's under both names: the .NET SDK reads FcmV1, the JS SDK
// Gcm).
std::string notificationDetailsXml(const NotificationDetails& details, const OutcomeTally& tally);

// The counts as JSON, by platform name then outcome name, non-zero ones only:
// {"apns":{"Success":9,"ExpiredChannel":1},"fcmv1":{"Success":4}}.
std::string outcomeCountsJson(const OutcomeTally& tally);
// The same details as JSON (pushhub's own form, for Accept: application/json):
// {"notificationId":…,"location":…,"state":…,"enqueueTime":…,"startTime":…,"endTime":…,
//  "targetPlatforms":[…],"counts":{…}}.
std::string notificationDetailsJson(const NotificationDetails& details, const OutcomeTally& tally);

}  // namespace pushhub::hub
