#pragma once

// The send engine: accepts notifications (validated, given an id, persisted — only then
// acknowledged), fans each one out on every shard over the partitions that shard owns, hands the
// rendered deliveries to the shard's connector clients with a bounded number in flight, counts
// outcomes live, prunes dead handles, checkpoints progress per partition, fires scheduled
// notifications when due, and resumes unfinished work after a restart.
//
// Threading: send(), details(), cancel() and the event callbacks' registration may be called
// from any thread. Fan-out work runs on the shards' loops only; a notification's shared state
// (its Run) is read lock-free from other threads.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/shard_set.h"
#include "common/time.h"
#include "hub/connector_set.h"
#include "hub/hub_definition.h"
#include "hub/notification.h"
#include "hub/notification_store.h"
#include "hub/outcomes.h"
#include "storage/installation_store.h"

namespace pushhub::hub {

struct EngineOptions {
  // Deliveries handed to push services and not yet answered, per shard: the backpressure.
  size_t in_flight_per_shard = 2048;
  // Of those, to one push service (a hub's APNs, FCM or WNS): a slow or unreachable service holds
  // this share at most, and a send's devices on it wait aside (deferred) while the others go on.
  size_t in_flight_per_service = 512;
  // A service at its share that has answered nothing for this long is slow or stuck, not busy:
  // the devices the walk meets for it are put aside (deferred) so that the others go on.
  std::chrono::milliseconds stalled_after{100};
  // A shard writes its partitions' progress after this many answers or this long, whichever
  // comes first. A crash re-sends at most in_flight_per_shard + checkpoint_every deliveries per
  // shard.
  size_t checkpoint_every = 128;
  std::chrono::milliseconds checkpoint_interval{200};
  std::chrono::milliseconds time_to_live{30 * 60 * 1000};
  std::chrono::milliseconds schedule_poll{100};
  ConnectorOptions connectors;
  std::function<UnixMillis()> clock = nowMillis;
};

struct SendError {
  enum class Code { kInvalid, kUnknownHub, kStorage, kStopped };
  Code code = Code::kInvalid;
  std::string message;
};

// A dead handle the push service reported, for backends to clean their own records.
struct DeadHandle {
  std::string hub;
  std::string notification_id;
  storage::Platform platform = storage::Platform::kApns;
  std::string handle;
  std::string installation_id;  // empty for direct sends
  connectors::PnsOutcome outcome = connectors::PnsOutcome::kExpiredChannel;
};

// What details() answers, live or from storage.
struct NotificationView {
  Notification notification;
  NotificationStatus status;  // counts filled from the live tally while it runs
};

// A device query (GET /{hub}/installations, registration listings): visited partition by
// partition, each on its shard.
struct InstallationQuery {
  std::string hub;
  std::optional<storage::TagExpression> expression;        // nullopt: every installation
  std::function<bool(const storage::Installation&)> keep;  // a further filter; empty: all
  std::string continuation;  // from the previous page; empty: the start
  size_t limit = 100;
};

// One device's answer in a test send (Notification::max_targets), for Azure's NotificationOutcome.
struct TestResult {
  storage::Platform platform = storage::Platform::kApns;
  std::string handle;
  std::string installation_id;  // empty for direct sends
  connectors::PnsOutcome outcome = connectors::PnsOutcome::kSuccess;
  std::string detail;  // the push service's reason, if any
};

struct EngineEvents {
  std::function<void(const DeadHandle&)> dead_handle;
  std::function<void(const NotificationView&)> finished;
};

class Engine {
 public:
  Engine(ShardSet& shards, storage::Database& database, storage::InstallationStore& installations,
         MetricsRegistry& metrics, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Hubs are known before start() (from configuration); the admin API adds them later.
  std::expected<void, std::string> addHub(HubDefinition definition);
  bool hasHub(std::string_view hub) const;
  // Adding a hub that exists replaces its credentials: new notifications use the new ones,
  // running ones finish with the old.
  std::optional<HubDefinition> hubDefinition(std::string_view hub) const;
  std::vector<std::string> hubNames() const;
  // Forgets the hub and deletes its devices (each partition on its shard). New sends are refused
  // at once; notifications already running finish. `done` gets the number of devices deleted.
  void removeHub(std::string hub, std::function<void(std::expected<uint64_t, std::string>&&)> done);
  void setEvents(EngineEvents events);

  // Resumes what a previous run left unfinished and starts the scheduler. The shards must run.
  std::expected<void, std::string> start();
  // Stops intake, writes every shard's progress, closes the connector pools. Unfinished
  // notifications stay active in storage and resume at the next start().
  void stop();

  // Accepts a notification: `n.hub`, content, target, optional idempotency key, schedule time
  // and expiry (0: enqueue time + time_to_live). Sets id and enqueue time. Durable on return.
  std::expected<NotificationStore::Accepted, SendError> send(Notification n);
  std::expected<std::optional<NotificationView>, std::string> details(std::string_view hub,
                                                                      std::string_view id) const;
  // A scheduled notification that has not fired: false when there is none.
  std::expected<bool, std::string> cancel(std::string_view hub, std::string_view id);

  // Installation writes are durable and indexed when `done` runs, so a read after it sees the
  // write (Azure is only eventually consistent here). Upserts run on the calling shard (the
  // store locks the partitions they touch), those of one loop turn as one RocksDB batch; patch,
  // remove and read on the owning shard, where `done` runs. A handle an upsert takes from
  // another installation is released on that one's shard.
  using WriteDone =
      std::function<void(std::expected<storage::WriteOutcome, storage::StoreError>&&)>;
  void upsertInstallation(std::string hub, storage::Installation installation, WriteDone done);
  void patchInstallation(std::string hub, std::string installation_id,
                         std::vector<storage::PatchOperation> operations, WriteDone done);
  void removeInstallation(std::string hub, std::string installation_id,
                          std::function<void(std::expected<bool, storage::StoreError>&&)> done);
  // Conditional writes (registration ETags): `check` sees what is stored, under the partition's
  // lock right before the write, and refuses with the error to answer.
  using Precondition = storage::WritePrecondition;
  void upsertInstallationIf(std::string hub, storage::Installation installation, Precondition check,
                            WriteDone done);
  void removeInstallationIf(std::string hub, std::string installation_id, Precondition check,
                            std::function<void(std::expected<bool, storage::StoreError>&&)> done);
  void readInstallation(
      std::string hub, std::string installation_id,
      std::function<
          void(std::expected<std::optional<storage::Installation>, storage::StoreError>&&)>
          done);
  // A page of matching installations; `done` runs on the last shard visited.
  using QueryDone =
      std::function<void(std::expected<storage::InstallationStore::Page, storage::StoreError>&&)>;
  void queryInstallations(InstallationQuery query, QueryDone done);
  // The shard that owns an installation.
  unsigned shardOf(std::string_view hub, std::string_view installation_id) const;

  // The per-device results of a finished test send (max_targets set); nullopt while it runs or
  // when it is unknown. The last 256 are kept, in memory only.
  std::optional<std::vector<TestResult>> testResults(std::string_view hub,
                                                     std::string_view id) const;

  // Notifications running now (accepted, not finished).
  size_t running() const;
  // Deliveries in flight on all shards.
  uint64_t inFlight() const;
  NotificationStore& notifications() { return notifications_; }

 private:
  struct Run;
  struct Job;
  struct Shard;

  void launch(std::shared_ptr<Run> run, std::map<uint32_t, Checkpoint> checkpoints);
  void startJob(Shard& shard, std::shared_ptr<Run> run, std::map<uint32_t, Checkpoint> checkpoints);
  void schedulePump(Shard& shard);
  void pump(Shard& shard);
  size_t dispatch(Shard& shard, Job& job, size_t budget);
  bool prepareSlot(Job& job, size_t slot_index);
  // Whether `platform`'s service of the job's hub is below its in-flight share on this shard.
  bool serviceHasRoom(const Job& job, storage::Platform platform) const;
  // A deferred target whose service has room now.
  bool takeDeferred(Job& job, size_t& slot_index, uint32_t& target);
  // Reads, renders and hands over one target; false when its service is at its share and still
  // answering (the target is put back first in line, and the job's walk pauses).
  bool deliver(Shard& shard, Job& job, size_t slot_index, uint32_t target);
  bool handOver(Shard& shard, Job& job);
  void onResult(Shard& shard, Job& job, size_t slot_index, uint32_t target,
                storage::Platform platform, const std::string& handle,
                connectors::DeliveryResult&& result);
  void count(Job& job, size_t slot_index, storage::Platform platform,
             connectors::PnsOutcome outcome, uint64_t n = 1);
  void abandonRest(Job& job);
  void maybeFinishJob(Shard& shard, Job& job);
  void checkpoint(Shard& shard);
  void armCheckpointTimer(Shard& shard);
  void finishRun(Run& run);
  void pollSchedule();
  ShardConnectors& connectorsFor(Shard& shard, const std::string& hub);
  void flushUpserts(Shard& shard);
  // Drops a shard's clients of a hub whose credentials changed or that was removed; they are
  // destroyed once no job uses them.
  void retireConnectors(Shard& shard, const std::string& hub);
  void sweepRetired(Shard& shard);
  void released(const std::string& hub, const std::optional<storage::HandleRelease>& release);

  ShardSet& shard_set_;
  storage::InstallationStore& installations_;
  MetricsRegistry& metrics_;
  const EngineOptions options_;
  NotificationStore notifications_;
  EngineEvents events_;

  mutable std::mutex hubs_mutex_;
  std::map<std::string, std::shared_ptr<const HubCredentials>, std::less<>> hubs_;

  mutable std::mutex runs_mutex_;
  std::map<std::string, std::shared_ptr<Run>, std::less<>> runs_;             // by hub \0 id
  std::map<std::string, std::vector<TestResult>, std::less<>> test_results_;  // by hub \0 id
  std::deque<std::string> test_results_order_;                                // oldest first

  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<bool> accepting_{false};
  std::atomic<bool> stopped_{false};
  bool started_ = false;
  std::unique_ptr<boost::asio::steady_timer> schedule_timer_;

  std::array<std::array<Counter*, connectors::kPnsOutcomeCount>, storage::kPlatformCount>
      deliveries_{};
  Histogram* latency_direct_ = nullptr;
  Histogram* latency_tags_ = nullptr;
  Histogram* latency_broadcast_ = nullptr;
  Counter* accepted_ = nullptr;
  Counter* repeated_ = nullptr;
  std::array<Counter*, 7> finished_by_state_{};
};

}  // namespace pushhub::hub
