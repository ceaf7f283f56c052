#pragma once

// Notifications in RocksDB. Layout (part of the on-disk format):
//
//   notifications CF  'n' hub \0 id                      -> Notification (msgpack)
//                     's' hub \0 id                      -> NotificationStatus
//                     'k' hub \0 idempotency-key         -> id
//                     'a' hub \0 id                      -> (empty) accepted, not finished
//                     'c' hub \0 id \0 slot:be32         -> Checkpoint of one partition
//   schedule CF       due:be64 hub \0 id                 -> (empty) scheduled, not yet due
//
// Every change is one atomic WriteBatch: a notification is accepted (record, status, key,
// active or scheduled marker) or not at all; it finishes (status, markers and checkpoints gone)
// or not at all. Thread-safe.

#include <cstdint>
#include <expected>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hub/notification.h"
#include "storage/database.h"

namespace pushhub::hub {

// Direct sends keep their progress under this slot (partitions are below 65536).
inline constexpr uint32_t kDirectSlot = 0x10000;

class NotificationStore {
 public:
  explicit NotificationStore(storage::Database& database) : database_(database) {}

  struct Accepted {
    Notification notification;  // as stored (for a repeated key: the first one)
    bool repeated = false;      // the idempotency key was seen: nothing new was stored
  };
  // Stores a validated notification with its id set (and its idempotency key, if any): Enqueued
  // and active, or Scheduled when scheduled_for is set. Durable when this returns.
  std::expected<Accepted, std::string> accept(Notification notification);

  std::expected<std::optional<Notification>, std::string> notification(std::string_view hub,
                                                                       std::string_view id) const;
  std::expected<std::optional<NotificationStatus>, std::string> status(std::string_view hub,
                                                                       std::string_view id) const;
  std::expected<void, std::string> setStatus(std::string_view hub, std::string_view id,
                                             const NotificationStatus& status);

  // Accepted and not finished (what a restart resumes), as (hub, id).
  std::expected<std::vector<std::pair<std::string, std::string>>, std::string> active() const;

  struct SlotCheckpoint {
    std::string hub;
    std::string id;
    uint32_t slot = 0;
    Checkpoint checkpoint;
  };
  std::expected<void, std::string> saveCheckpoints(const std::vector<SlotCheckpoint>& checkpoints);
  // Slot -> checkpoint, for one notification.
  std::expected<std::map<uint32_t, Checkpoint>, std::string> checkpoints(std::string_view hub,
                                                                         std::string_view id) const;

  // The notification ended: its final status replaces the running one; its active marker and
  // checkpoints go.
  std::expected<void, std::string> finish(std::string_view hub, std::string_view id,
                                          const NotificationStatus& status);

  // Scheduled notifications due at `now` or before, earliest first (at most `limit`).
  std::expected<std::vector<std::pair<std::string, std::string>>, std::string> due(
      UnixMillis now, size_t limit) const;
  // The earliest due time, if anything is scheduled.
  std::expected<std::optional<UnixMillis>, std::string> nextDue() const;
  // A due notification moves from the schedule to the active set (state Enqueued). False when it
  // was no longer scheduled (cancelled meanwhile).
  std::expected<bool, std::string> activate(std::string_view hub, std::string_view id);
  // Cancels a scheduled notification that has not fired (state Canceled). False when there is
  // no such scheduled notification.
  std::expected<bool, std::string> cancel(std::string_view hub, std::string_view id);

 private:
  std::expected<std::optional<std::string>, std::string> get(storage::ColumnFamily cf,
                                                             const std::string& key) const;
  // The record of `kind` ('n', 's') for (hub, id), decoded.
  template <class T, class Decode>
  std::expected<std::optional<T>, std::string> record(char kind, std::string_view hub,
                                                      std::string_view id, Decode decode) const;
  // The schedule entry of a notification still waiting to fire, if any.
  std::expected<std::optional<std::string>, std::string> scheduledKey(std::string_view hub,
                                                                      std::string_view id) const;

  storage::Database& database_;
  // Accepting with an idempotency key reads, then writes: one at a time. Scheduling changes
  // (activate, cancel) take it too, so that a cancel and a firing never both succeed.
  std::mutex mutex_;
};

// A new notification id: 32 lowercase hex digits, random.
std::string newNotificationId();

}  // namespace pushhub::hub
