#pragma once

#include <roaring/roaring.hh>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "storage/database.h"
#include "storage/installation.h"
#include "storage/installation_json.h"
#include "storage/keys.h"
#include "storage/tag_expression.h"
#include "storage/tag_index.h"

namespace pushhub::storage {

struct StoreOptions {
  uint32_t partitions = 256;  // fixed for the life of a data directory
  ValidationLimits limits;
  unsigned rebuild_threads = 0;  // 0: one per core
  std::function<UnixMillis()> clock = nowMillis;
  // Rules beyond validateInstallation()'s that the layer owning the template language adds (every
  // template compiles: hub::checkTemplates); none when empty.
  std::function<std::expected<void, InvalidField>(const Installation&)> check_templates;
};

struct StoreError {
  // kUnavailable: for now (the disk is full); the same write may succeed later.
  enum class Code { kInvalid, kNotFound, kStorage, kPreconditionFailed, kUnavailable };
  Code code = Code::kStorage;
  std::string message;
  std::string field;  // for kInvalid: which field ("tags/3", "/1 (add /tags)")
};

// Another installation held the handle an upsert just claimed: it must stop receiving for it.
// Applied by applyHandleRelease() on the released installation's partition (its shard); until
// then it waits, durably, in the database, so a crash in between loses nothing.
struct HandleRelease {
  uint32_t partition = 0;
  std::string installation_id;
  Platform platform = Platform::kApns;
  std::string handle;
};

// A conditional write's test (registration ETags): it sees what is stored, under the partition's
// lock right before the write, and refuses with the error to answer, or lets it happen.
using WritePrecondition =
    std::function<std::optional<StoreError>(const std::optional<Installation>&)>;

struct WriteOutcome {
  Installation installation;  // as stored: version and lastUpdate set
  bool created = false;
  std::optional<HandleRelease> released;
};

enum class Audience {
  kAll,          // every installation
  kDeliverable,  // only those whose channel has not expired or been taken over
};

// Installations of one partition read in ordinal order, as a fan-out walks them: one iterator
// moving forward (a Seek only across gaps), far cheaper than a point lookup per installation. It
// sees the partition as it was when made (RocksDB pins that version). Not thread-safe: use it on
// the partition's shard, and drop it when done (it holds memtables and files alive).
class PartitionReader {
 public:
  ~PartitionReader();
  PartitionReader(const PartitionReader&) = delete;
  PartitionReader& operator=(const PartitionReader&) = delete;
  // The installation at `ordinal`, or nullopt when there is none. Ascending ordinals are cheap;
  // any order works.
  std::expected<std::optional<Installation>, StoreError> read(uint32_t ordinal);

 private:
  friend class InstallationStore;
  struct State;
  explicit PartitionReader(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Installations of every hub: records in RocksDB (storage/keys.h has the layout) and the
// in-memory tag index, kept in step on every write and rebuilt from RocksDB on open.
//
// Threading: every call may come from any thread. Each partition has a mutex: writes hold the
// mutexes of the partitions they touch (taken in ascending order, before any handle lock) from
// reading the previous version until the index reflects the durable write, so a write can run on
// whichever shard received it and a read after it sees it. Index reads (match, select,
// platformAt, queries) hold the partition's mutex while they read its bitmaps.
class InstallationStore {
 public:
  // Opens the store in `database`, rebuilding the index (partitions in parallel) and finishing
  // any handle release a crash interrupted. Fails if the data directory was created with another
  // partition count.
  static std::expected<std::unique_ptr<InstallationStore>, std::string> open(Database& database,
                                                                             StoreOptions options);
  ~InstallationStore();

  uint32_t partitionCount() const { return options_.partitions; }
  const ValidationLimits& limits() const { return options_.limits; }
  uint32_t partitionOf(std::string_view hub, std::string_view installation_id) const;

  // Create or overwrite (Azure PUT). Validates first; nothing is written when invalid.
  std::expected<WriteOutcome, StoreError> upsert(std::string_view hub, Installation installation,
                                                 const WritePrecondition& precondition = {});
  // Many upserts in few database writes (one WAL append per run of up to 32 partitions, in the
  // given order): what a shard does with the writes queued in one loop turn. Each result is what
  // upsert() would have answered had they run in order; an invalid installation fails alone, a
  // failed write fails its run.
  std::vector<std::expected<WriteOutcome, StoreError>> upsertBatch(
      std::string_view hub, std::vector<Installation> installations);
  // Azure PATCH, applied atomically: all operations or none. kNotFound if there is no such
  // installation.
  std::expected<WriteOutcome, StoreError> patch(std::string_view hub,
                                                std::string_view installation_id,
                                                const std::vector<PatchOperation>& operations);
  // False if there was no such installation.
  std::expected<bool, StoreError> remove(std::string_view hub, std::string_view installation_id,
                                         const WritePrecondition& precondition = {});
  // Marks the released installation's channel expired if it still names the handle and someone
  // else holds it now. Call on release.partition's shard.
  std::expected<void, StoreError> applyHandleRelease(std::string_view hub,
                                                     const HandleRelease& release);

  // The push service refused the handle as dead (APNs 410/BadDeviceToken, FCM UNREGISTERED, WNS
  // 404/410): if the installation at (partition, ordinal) still names it, its channel is marked
  // expired (expiredPushChannel), it leaves the deliverable set and the handle index forgets the
  // handle. Returns the installation's id when this changed it, nullopt when there was nothing to
  // do (deleted, re-registered with another handle, already expired). Call on the partition's
  // shard.
  std::expected<std::optional<std::string>, StoreError> expireChannel(std::string_view hub,
                                                                      uint32_t partition,
                                                                      uint32_t ordinal,
                                                                      Platform platform,
                                                                      std::string_view handle);

  std::expected<std::optional<Installation>, StoreError> get(
      std::string_view hub, std::string_view installation_id) const;
  std::expected<std::optional<Installation>, StoreError> getByOrdinal(std::string_view hub,
                                                                      uint32_t partition,
                                                                      uint32_t ordinal) const;

  std::unique_ptr<PartitionReader> reader(std::string_view hub, uint32_t partition) const;

  // Binds an expression to this store: plain tags through the dictionary, $InstallationId and
  // $UserId through the database. Do it once per notification or query.
  std::expected<CompiledExpression, StoreError> compile(std::string_view hub,
                                                        const TagExpression& expression) const;
  // Matching ordinals of one partition (empty for a hub without installations).
  Roaring match(std::string_view hub, uint32_t partition, const CompiledExpression& expression,
                Audience audience) const;
  // The partition's index, or nullptr for a hub without installations. Hold lockPartition()
  // while using it.
  const PartitionIndex* partitionIndex(std::string_view hub, uint32_t partition) const;
  std::unique_lock<std::mutex> lockPartition(uint32_t partition) const;
  // A fan-out's targets in one partition: matching `expression` (every installation when
  // nullptr), in `audience`, on `platform` when given.
  Roaring select(std::string_view hub, uint32_t partition, const CompiledExpression* expression,
                 Audience audience, std::optional<Platform> platform) const;
  // The platform the index has for an ordinal; nullopt when none.
  std::optional<Platform> platformAt(std::string_view hub, uint32_t partition,
                                     uint32_t ordinal) const;

  uint64_t count(std::string_view hub, const CompiledExpression& expression,
                 Audience audience) const;

  struct Page {
    std::vector<Installation> installations;
    std::string continuation;  // empty when there is nothing after this page
  };
  // Installations matching `expression` in a stable order (partition, then ordinal), `limit` at a
  // time; pass the returned continuation to get the next page.
  std::expected<Page, StoreError> query(std::string_view hub, const CompiledExpression& expression,
                                        std::string_view continuation, size_t limit) const;
  // One partition's part of a query, for callers that visit each partition on its shard:
  // installations matching `expression` (every one when nullptr) after ordinal `after` that
  // `keep` accepts (all when empty), at most
  // `limit`, appended to `out`. Answers the last ordinal taken when `limit` was reached.
  std::expected<std::optional<uint32_t>, StoreError> queryPartition(
      std::string_view hub, uint32_t partition, const CompiledExpression* expression,
      std::optional<uint32_t> after, size_t limit,
      const std::function<bool(const Installation&)>& keep, std::vector<Installation>& out) const;
  // A continuation token as (partition, last ordinal taken); "" is the start.
  std::expected<std::pair<uint32_t, std::optional<uint32_t>>, StoreError> parseContinuation(
      std::string_view continuation) const;
  static std::string continuationAt(uint32_t partition, uint32_t ordinal);
  // The ids of the registrations naming this handle (registrations may share one).
  std::expected<std::vector<std::string>, StoreError> registrationsWithHandle(
      std::string_view hub, Platform platform, std::string_view handle) const;

  // Deleting a hub's devices: every partition cleared on its shard (records, ids, pending handle
  // releases, the partition's index), then the hub-wide handle and user entries dropped.
  std::expected<uint64_t, StoreError> clearPartition(std::string_view hub, uint32_t partition);
  std::expected<void, StoreError> dropHubEntries(std::string_view hub);

  // Installations stored, all hubs; safe to read from any thread.
  uint64_t installationCount() const { return installation_count_.load(std::memory_order_relaxed); }
  size_t indexMemoryBytes() const;
  const TagDictionary& dictionary() const { return dictionary_; }
  // Records found unreadable while rebuilding the index (left on disk, not indexed, logged).
  uint64_t unreadableRecords() const { return unreadable_records_.load(); }

 private:
  // validateInstallation() and the options' check_templates.
  std::expected<void, InvalidField> validate(const Installation& installation) const;
  struct HubIndex {
    explicit HubIndex(uint32_t partitions) : partitions(partitions) {}
    std::vector<PartitionIndex> partitions;
  };
  struct Loaded {
    uint32_t ordinal;
    Installation installation;
  };

  InstallationStore(Database& database, StoreOptions options);

  class Staging;
  class HandleLocks;

  HubIndex* hubIndex(std::string_view hub) const;
  HubIndex& hubIndexForWrite(std::string_view hub);
  // A point lookup: nullopt when the key is absent. With `staging`, what it staged wins.
  std::expected<std::optional<std::string>, StoreError> read(
      ColumnFamily cf, const std::string& key, std::string_view what,
      const Staging* staging = nullptr) const;
  std::expected<std::optional<uint32_t>, StoreError> ordinalOf(
      std::string_view hub, uint32_t partition, std::string_view installation_id,
      const Staging* staging = nullptr) const;
  std::expected<std::optional<Installation>, StoreError> record(std::string_view hub,
                                                                uint32_t partition,
                                                                uint32_t ordinal,
                                                                const Staging* staging) const;
  std::expected<std::optional<Loaded>, StoreError> load(std::string_view hub, uint32_t partition,
                                                        std::string_view installation_id,
                                                        const Staging* staging = nullptr) const;
  std::expected<std::optional<HandleOwner>, StoreError> handleOwner(
      const std::string& key, const Staging* staging = nullptr) const;
  // The handle-index key `installation` holds: its registration entry, or the one-holder entry
  // when it is still the holder; nullopt when another installation took the handle.
  std::expected<std::optional<std::string>, StoreError> ownHandleKey(
      std::string_view hub, const Installation& installation, const Staging* staging) const;
  // Stages a create or overwrite (the caller holds the handle locks it needs).
  // One RocksDB write of upsertBatch: its partitions locked together.
  std::vector<std::expected<WriteOutcome, StoreError>> upsertRun(
      std::string_view hub, std::vector<Installation> installations,
      const WritePrecondition& precondition);
  std::expected<WriteOutcome, StoreError> stage(Staging& staging, std::string_view hub,
                                                uint32_t partition, std::optional<Loaded> previous,
                                                Installation next);
  // Writes what is staged and, once durable, applies it to the index.
  std::expected<void, StoreError> write(Staging& staging, std::string_view doing);

  std::expected<void, std::string> checkPartitionCount();
  std::expected<void, std::string> rebuild();
  std::expected<void, std::string> finishPendingReleases();

  Database& database_;
  const StoreOptions options_;
  TagDictionary dictionary_;
  std::unique_ptr<std::mutex[]> partition_mutexes_;  // one per partition, all hubs
  mutable std::shared_mutex hubs_mutex_;
  std::map<std::string, std::unique_ptr<HubIndex>, std::less<>> hubs_;
  std::mutex claims_mutex_;  // HandleLocks: handles being claimed or released right now
  std::condition_variable claims_released_;
  std::unordered_set<uint64_t> claimed_handles_;
  std::atomic<uint64_t> unreadable_records_{0};
  std::atomic<uint64_t> installation_count_{0};
};

}  // namespace pushhub::storage
