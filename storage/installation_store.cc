#include "storage/installation_store.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"
#include "storage/keys.h"

namespace pushhub::storage {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = moduleLogger("storage");
  return logger;
}

constexpr std::string_view kPartitionsKey = "pushhub.partitions";
// Pending handle releases live in the meta column family under this prefix:
//   "release\0" hub \0 partition:be16 installation-id -> platform:u8 handle
constexpr std::string_view kReleasePrefix = std::string_view("release\0", 8);

std::string releaseKey(std::string_view hub, uint32_t partition, std::string_view id) {
  std::string key(kReleasePrefix);
  key += partitionPrefix(hub, partition);
  key.append(id);
  return key;
}

StoreError storageError(const rocksdb::Status& status, std::string_view doing) {
  if (isOutOfSpace(status)) {
    return StoreError{StoreError::Code::kUnavailable,
                      "the server's disk is full: writes are refused until space is freed",
                      {}};
  }
  return StoreError{
      StoreError::Code::kStorage, fmt::format("{}: {}", doing, status.ToString()), {}};
}

StoreError invalidError(const InvalidField& invalid) {
  return StoreError{StoreError::Code::kInvalid, invalid.message(), invalid.field};
}

// The smallest key greater than every key starting with `prefix`.
std::string prefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<uint8_t>(prefix.back()) == 0xFF) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
  return prefix;
}

// Continuation tokens: "PPPP.OOOOOOOO", hex partition and the last ordinal returned.
std::string encodeContinuation(uint32_t partition, uint32_t ordinal) {
  return fmt::format("{:04x}.{:08x}", partition, ordinal);
}

std::optional<std::pair<uint32_t, uint32_t>> decodeContinuation(std::string_view token) {
  if (token.size() != 13 || token[4] != '.') return std::nullopt;
  uint32_t partition = 0, ordinal = 0;
  auto hex = [](std::string_view digits, uint32_t& out) {
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out, 16);
    return ec == std::errc() && end == digits.data() + digits.size();
  };
  if (!hex(token.substr(0, 4), partition) || !hex(token.substr(5), ordinal)) return std::nullopt;
  return std::pair{partition, ordinal};
}

}  // namespace

InstallationStore::InstallationStore(Database& database, StoreOptions options)
    : database_(database),
      options_(std::move(options)),
      partition_mutexes_(std::make_unique<std::mutex[]>(options_.partitions)) {}

std::expected<void, InvalidField> InstallationStore::validate(
    const Installation& installation) const {
  if (auto ok = validateInstallation(installation, options_.limits); !ok) return ok;
  if (options_.check_templates) return options_.check_templates(installation);
  return {};
}

std::unique_lock<std::mutex> InstallationStore::lockPartition(uint32_t partition) const {
  return std::unique_lock<std::mutex>(partition_mutexes_[partition]);
}

Roaring InstallationStore::select(std::string_view hub, uint32_t partition,
                                  const CompiledExpression* expression, Audience audience,
                                  std::optional<Platform> platform) const {
  auto lock = lockPartition(partition);
  const PartitionIndex* index = partitionIndex(hub, partition);
  if (index == nullptr) return Roaring();
  Roaring result = expression != nullptr ? expression->evaluate(*index, partition) : index->all();
  if (audience == Audience::kDeliverable) result &= index->active();
  if (platform) result &= index->platform(*platform);
  return result;
}

std::optional<Platform> InstallationStore::platformAt(std::string_view hub, uint32_t partition,
                                                      uint32_t ordinal) const {
  auto lock = lockPartition(partition);
  const PartitionIndex* index = partitionIndex(hub, partition);
  if (index == nullptr) return std::nullopt;
  for (size_t p = 0; p < kPlatformCount; ++p) {
    if (index->platform(static_cast<Platform>(p)).contains(ordinal))
      return static_cast<Platform>(p);
  }
  return std::nullopt;
}

InstallationStore::~InstallationStore() = default;

std::expected<std::unique_ptr<InstallationStore>, std::string> InstallationStore::open(
    Database& database, StoreOptions options) {
  if (options.partitions == 0 || options.partitions > 65536) {
    return std::unexpected(
        fmt::format("the partition count must be 1 to 65536, not {}", options.partitions));
  }
  std::unique_ptr<InstallationStore> store(new InstallationStore(database, std::move(options)));
  if (auto ok = store->checkPartitionCount(); !ok) return std::unexpected(ok.error());
  if (auto ok = store->rebuild(); !ok) return std::unexpected(ok.error());
  if (auto ok = store->finishPendingReleases(); !ok) return std::unexpected(ok.error());
  return store;
}

std::expected<void, std::string> InstallationStore::checkPartitionCount() {
  auto& db = database_.db();
  auto* meta = database_.handle(ColumnFamily::kMeta);
  std::string stored;
  auto status = db.Get(rocksdb::ReadOptions(), meta, kPartitionsKey, &stored);
  if (status.IsNotFound()) {
    status =
        db.Put(database_.writeOptions(), meta, kPartitionsKey, std::to_string(options_.partitions));
    if (!status.ok()) return std::unexpected(status.ToString());
    return {};
  }
  if (!status.ok()) return std::unexpected(status.ToString());
  if (stored != std::to_string(options_.partitions)) {
    return std::unexpected(fmt::format(
        "data directory {} was created with {} partitions, not {}; the partition count of a "
        "data directory cannot change",
        database_.dataDir().string(), stored, options_.partitions));
  }
  return {};
}

std::expected<void, std::string> InstallationStore::rebuild() {
  const auto started = std::chrono::steady_clock::now();
  auto& db = database_.db();
  auto* records = database_.handle(ColumnFamily::kInstallations);

  // Find the hubs by skipping from one hub's keys to the next.
  std::vector<std::string> hubs;
  {
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), records));
    for (it->SeekToFirst(); it->Valid();) {
      const std::string hub(hubOfKey(it->key().ToStringView()));
      hubs.push_back(hub);
      it->Seek(hub + '\x01');
    }
    if (!it->status().ok()) return std::unexpected(it->status().ToString());
  }
  for (const auto& hub : hubs) hubIndexForWrite(hub);

  // One task per (hub, partition), spread over the threads.
  const size_t task_count = hubs.size() * options_.partitions;
  std::atomic<size_t> next_task{0};
  std::atomic<uint64_t> installations{0};
  std::mutex error_mutex;
  std::string error;
  const auto work = [&] {
    for (size_t task = next_task++; task < task_count; task = next_task++) {
      const std::string& hub = hubs[task / options_.partitions];
      const auto partition = static_cast<uint32_t>(task % options_.partitions);
      PartitionIndex& index = hubIndex(hub)->partitions[partition];
      const std::string prefix = partitionPrefix(hub, partition);
      const std::string end = prefixEnd(prefix);
      rocksdb::Slice upper(end);
      rocksdb::ReadOptions read;
      read.iterate_upper_bound = &upper;
      read.fill_cache = false;
      read.readahead_size = 2 << 20;
      std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read, records));
      uint64_t count = 0;
      for (it->Seek(prefix); it->Valid(); it->Next()) {
        const auto key = it->key().ToStringView();
        if (key.size() != prefix.size() + 4) continue;
        const uint32_t ordinal = readBigEndian32(key.substr(prefix.size()));
        auto installation = decodeInstallation(it->value().ToStringView());
        if (!installation) {
          unreadable_records_.fetch_add(1);
          log()->error(
              "hub {} partition {} ordinal {}: unreadable installation record, not "
              "indexed: {}",
              hub, partition, ordinal, installation.error());
          continue;
        }
        index.add(ordinal, indexEntryOf(*installation, dictionary_));
        ++count;
      }
      if (!it->status().ok()) {
        std::lock_guard lock(error_mutex);
        error = fmt::format("rebuilding hub {} partition {}: {}", hub, partition,
                            it->status().ToString());
      }
      index.finishRebuild();
      installations.fetch_add(count);
    }
  };
  unsigned threads = options_.rebuild_threads != 0
                         ? options_.rebuild_threads
                         : std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<size_t>(threads, std::max<size_t>(task_count, 1)));
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (!error.empty()) return std::unexpected(error);
  installation_count_.store(installations.load());

  const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
  log()->info(
      "index rebuilt: {} installations in {} hubs, {} partitions each, {:.2f} s, {} threads",
      installations.load(), hubs.size(), options_.partitions, elapsed.count(), threads);
  return {};
}

std::expected<void, std::string> InstallationStore::finishPendingReleases() {
  auto& db = database_.db();
  auto* meta = database_.handle(ColumnFamily::kMeta);
  std::vector<std::pair<std::string, HandleRelease>> pending;
  {
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), meta));
    for (it->Seek(std::string(kReleasePrefix)); it->Valid(); it->Next()) {
      auto key = it->key().ToStringView();
      if (!key.starts_with(kReleasePrefix)) break;
      key.remove_prefix(kReleasePrefix.size());
      const std::string_view hub = hubOfKey(key);
      key.remove_prefix(hub.size() + 1);
      const auto value = it->value().ToStringView();
      if (key.size() < 2 || value.empty()) continue;
      HandleRelease release{readBigEndian16(key), std::string(key.substr(2)),
                            static_cast<Platform>(value[0]), std::string(value.substr(1))};
      pending.emplace_back(std::string(hub), std::move(release));
    }
  }
  for (const auto& [hub, release] : pending) {
    if (auto ok = applyHandleRelease(hub, release); !ok) return std::unexpected(ok.error().message);
  }
  if (!pending.empty()) log()->info("finished {} handle releases left by a crash", pending.size());
  return {};
}

uint32_t InstallationStore::partitionOf(std::string_view hub, std::string_view id) const {
  return storage::partitionOf(hub, id, options_.partitions);
}

InstallationStore::HubIndex* InstallationStore::hubIndex(std::string_view hub) const {
  std::shared_lock lock(hubs_mutex_);
  auto it = hubs_.find(hub);
  return it == hubs_.end() ? nullptr : it->second.get();
}

InstallationStore::HubIndex& InstallationStore::hubIndexForWrite(std::string_view hub) {
  if (HubIndex* existing = hubIndex(hub)) return *existing;
  std::unique_lock lock(hubs_mutex_);
  auto& slot = hubs_[std::string(hub)];
  if (!slot) slot = std::make_unique<HubIndex>(options_.partitions);
  return *slot;
}

// The changes of one database write: any number of logical changes, each complete in itself,
// committed together (one WAL append, one write-group entry) and applied to the in-memory index
// once durable. With read-back on, a later change reads what an earlier one staged (the second
// upsert of one installation in a batch sees the first).
class InstallationStore::Staging {
 public:
  struct IndexChange {
    PartitionIndex* index = nullptr;
    uint32_t ordinal = 0;
    std::optional<IndexEntry> removed;
    std::optional<IndexEntry> added;
    bool deactivate = false;
  };

  Staging(Database& database, bool read_back) : database_(database), read_back_(read_back) {}

  void put(ColumnFamily cf, const std::string& key, std::string value) {
    batch_.Put(database_.handle(cf), key, value);
    if (tracked(cf)) overlay_[overlayKey(cf, key)] = std::move(value);
  }
  void erase(ColumnFamily cf, const std::string& key) {
    batch_.Delete(database_.handle(cf), key);
    if (tracked(cf)) overlay_[overlayKey(cf, key)] = std::nullopt;
  }
  // What this staging holds for the key: nullptr if it never wrote it, else the value it wrote
  // (nullopt when it deleted the key).
  const std::optional<std::string>* find(ColumnFamily cf, const std::string& key) const {
    if (overlay_.empty()) return nullptr;
    auto it = overlay_.find(overlayKey(cf, key));
    return it == overlay_.end() ? nullptr : &it->second;
  }

  void allocated(PartitionIndex& index, uint32_t ordinal) {
    allocated_.emplace_back(&index, ordinal);
  }
  void change(IndexChange change) { changes_.push_back(std::move(change)); }
  bool empty() const { return batch_.Count() == 0; }

  rocksdb::WriteBatch& batch() { return batch_; }
  // The write failed: ordinals taken for new installations are free again.
  void giveBack() {
    for (auto [index, ordinal] : allocated_) index->releaseOrdinal(ordinal);
  }
  // The write is durable: bring the index in step. Returns the change in installation count.
  int64_t apply() {
    int64_t delta = 0;
    for (auto& c : changes_) {
      if (c.removed) c.index->remove(c.ordinal, *c.removed);
      if (c.added) c.index->add(c.ordinal, *c.added);
      if (c.deactivate) c.index->setActive(c.ordinal, false);
      if (c.removed && !c.added) {
        c.index->releaseOrdinal(c.ordinal);
        --delta;
      } else if (c.added && !c.removed) {
        ++delta;
      }
    }
    return delta;
  }

 private:
  bool tracked(ColumnFamily cf) const {
    return read_back_ && (cf == ColumnFamily::kInstallations ||
                          cf == ColumnFamily::kInstallationIds || cf == ColumnFamily::kHandles);
  }
  static std::string overlayKey(ColumnFamily cf, const std::string& key) {
    std::string out(1, static_cast<char>(cf));
    out += key;
    return out;
  }

  Database& database_;
  const bool read_back_;
  rocksdb::WriteBatch batch_;
  std::unordered_map<std::string, std::optional<std::string>> overlay_;
  std::vector<std::pair<PartitionIndex*, uint32_t>> allocated_;
  std::vector<IndexChange> changes_;
};

// The handles a write claims or releases, held from reading the handle index until the write is
// durable, so the handle index always names the latest claimant. All of a write's handles are
// taken at once or not at all (no lock order, no deadlock), and two writes wait for each other
// only when they share a handle (or a 64-bit hash of one): striped mutexes made two shards'
// batches of 64 queue behind each other nearly always.
class InstallationStore::HandleLocks {
 public:
  explicit HandleLocks(InstallationStore& store) : store_(store) {}
  HandleLocks(const HandleLocks&) = delete;
  HandleLocks& operator=(const HandleLocks&) = delete;
  ~HandleLocks() {
    if (!locked_) return;
    {
      std::lock_guard lock(store_.claims_mutex_);
      for (uint64_t h : needed_) store_.claimed_handles_.erase(h);
    }
    store_.claims_released_.notify_all();
  }

  void need(std::string_view hub, Platform platform, std::string_view handle) {
    uint64_t h = std::hash<std::string_view>{}(hub)*31 + static_cast<uint64_t>(platform);
    h ^= std::hash<std::string_view>{}(handle) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    needed_.push_back(h);
  }
  void lock() {
    std::sort(needed_.begin(), needed_.end());
    needed_.erase(std::unique(needed_.begin(), needed_.end()), needed_.end());
    std::unique_lock lock(store_.claims_mutex_);
    store_.claims_released_.wait(lock, [&] {
      return std::none_of(needed_.begin(), needed_.end(),
                          [&](uint64_t h) { return store_.claimed_handles_.contains(h); });
    });
    store_.claimed_handles_.insert(needed_.begin(), needed_.end());
    locked_ = true;
  }

 private:
  InstallationStore& store_;
  std::vector<uint64_t> needed_;
  bool locked_ = false;
};

std::expected<std::optional<std::string>, StoreError> InstallationStore::read(
    ColumnFamily cf, const std::string& key, std::string_view what, const Staging* staging) const {
  if (staging != nullptr) {
    if (const auto* staged = staging->find(cf, key)) return *staged;
  }
  std::string value;
  const auto status = database_.db().Get(rocksdb::ReadOptions(), database_.handle(cf), key, &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return std::unexpected(storageError(status, fmt::format("reading {}", what)));
  return value;
}

std::expected<std::optional<std::string>, StoreError> InstallationStore::ownHandleKey(
    std::string_view hub, const Installation& installation, const Staging* staging) const {
  if (installation.kind == DeviceKind::kRegistration) {
    return registrationHandleKey(hub, installation.platform, installation.push_channel,
                                 installation.id);
  }
  std::string key = handleKey(hub, installation.platform, installation.push_channel);
  auto owner = handleOwner(key, staging);
  if (!owner) return std::unexpected(owner.error());
  if (!*owner || (*owner)->installation_id != installation.id) return std::optional<std::string>();
  return std::optional<std::string>(std::move(key));
}

std::expected<std::optional<HandleOwner>, StoreError> InstallationStore::handleOwner(
    const std::string& key, const Staging* staging) const {
  auto value = read(ColumnFamily::kHandles, key, "the handle index", staging);
  if (!value) return std::unexpected(value.error());
  if (!*value) return std::optional<HandleOwner>();
  return decodeHandleOwner(**value);
}

std::expected<std::optional<uint32_t>, StoreError> InstallationStore::ordinalOf(
    std::string_view hub, uint32_t partition, std::string_view installation_id,
    const Staging* staging) const {
  auto value = read(ColumnFamily::kInstallationIds, idKey(hub, partition, installation_id),
                    "an installation id", staging);
  if (!value) return std::unexpected(value.error());
  if (!*value) return std::optional<uint32_t>();
  if ((*value)->size() != 4) {
    return std::unexpected(
        StoreError{StoreError::Code::kStorage,
                   fmt::format("installation {}: corrupt id entry", installation_id),
                   {}});
  }
  return readBigEndian32(**value);
}

std::expected<std::optional<Installation>, StoreError> InstallationStore::record(
    std::string_view hub, uint32_t partition, uint32_t ordinal, const Staging* staging) const {
  auto value = read(ColumnFamily::kInstallations, recordKey(hub, partition, ordinal),
                    "an installation", staging);
  if (!value) return std::unexpected(value.error());
  if (!*value) return std::optional<Installation>();
  auto installation = decodeInstallation(**value);
  if (!installation) {
    return std::unexpected(StoreError{StoreError::Code::kStorage, installation.error(), {}});
  }
  return std::move(*installation);
}

std::expected<std::optional<InstallationStore::Loaded>, StoreError> InstallationStore::load(
    std::string_view hub, uint32_t partition, std::string_view installation_id,
    const Staging* staging) const {
  auto ordinal = ordinalOf(hub, partition, installation_id, staging);
  if (!ordinal) return std::unexpected(ordinal.error());
  if (!*ordinal) return std::optional<Loaded>();
  auto installation = record(hub, partition, **ordinal, staging);
  if (!installation) return std::unexpected(installation.error());
  if (!*installation) {
    return std::unexpected(
        StoreError{StoreError::Code::kStorage,
                   fmt::format("installation {}: id entry without a record", installation_id),
                   {}});
  }
  return Loaded{**ordinal, std::move(**installation)};
}

std::expected<void, StoreError> InstallationStore::write(Staging& staging, std::string_view doing) {
  if (staging.empty()) return {};
  const auto status = database_.write(staging.batch());
  if (!status.ok()) {
    staging.giveBack();
    return std::unexpected(storageError(status, doing));
  }
  const int64_t delta = staging.apply();
  if (delta >= 0) {
    installation_count_.fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed);
  } else {
    installation_count_.fetch_sub(static_cast<uint64_t>(-delta), std::memory_order_relaxed);
  }
  return {};
}

std::expected<WriteOutcome, StoreError> InstallationStore::upsert(
    std::string_view hub, Installation installation, const WritePrecondition& precondition) {
  std::vector<Installation> one;
  one.push_back(std::move(installation));
  return std::move(upsertRun(hub, std::move(one), precondition).front());
}

std::vector<std::expected<WriteOutcome, StoreError>> InstallationStore::upsertBatch(
    std::string_view hub, std::vector<Installation> installations) {
  // Written in runs, in the given order, each touching at most kMaxPartitionsPerWrite
  // partitions: a write holds the locks of all its partitions at once, and holding hundreds
  // would stall the fan-out's readers (and exceeds what TSan's deadlock detector tracks).
  constexpr size_t kMaxPartitionsPerWrite = 32;
  std::vector<std::expected<WriteOutcome, StoreError>> results;
  results.reserve(installations.size());
  std::vector<Installation> run;
  std::vector<uint32_t> run_partitions;
  const auto flush = [&] {
    for (auto& r : upsertRun(hub, std::move(run), {})) results.push_back(std::move(r));
    run.clear();
    run_partitions.clear();
  };
  for (auto& installation : installations) {
    const uint32_t p = partitionOf(hub, installation.id);
    if (std::find(run_partitions.begin(), run_partitions.end(), p) == run_partitions.end()) {
      if (run_partitions.size() == kMaxPartitionsPerWrite) flush();
      run_partitions.push_back(p);
    }
    run.push_back(std::move(installation));
  }
  if (!run.empty()) flush();
  return results;
}

std::vector<std::expected<WriteOutcome, StoreError>> InstallationStore::upsertRun(
    std::string_view hub, std::vector<Installation> installations,
    const WritePrecondition& precondition) {
  const size_t n = installations.size();
  std::vector<std::expected<WriteOutcome, StoreError>> results(n);
  struct Pending {
    uint32_t partition = 0;
    bool valid = false;
    bool repeated = false;  // an earlier upsert in this batch has the same id
    std::optional<Loaded> previous;
  };
  std::vector<Pending> pending(n);
  // Upserts of one batch that touch the same installation or handle read what the earlier ones
  // staged; batches without such overlaps (the usual case) skip keeping that overlay.
  std::unordered_set<std::string_view> ids;
  std::unordered_set<std::string_view> handles;
  bool overlapping = false;
  // The partitions written, locked in ascending order before anything is read.
  std::vector<uint32_t> partitions;
  partitions.reserve(n);
  for (const auto& installation : installations) {
    partitions.push_back(partitionOf(hub, installation.id));
  }
  std::vector<uint32_t> order = partitions;
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  std::vector<std::unique_lock<std::mutex>> partition_locks;
  partition_locks.reserve(order.size());
  for (const uint32_t p : order) partition_locks.push_back(lockPartition(p));
  HandleLocks locks(*this);
  // Validate and read what is stored; note every handle a claim or a release will touch.
  for (size_t i = 0; i < n; ++i) {
    Installation& installation = installations[i];
    installation.normalize();
    if (auto ok = validate(installation); !ok) {
      results[i] = std::unexpected(invalidError(ok.error()));
      continue;
    }
    Pending& p = pending[i];
    p.partition = partitions[i];
    p.repeated = !ids.insert(installation.id).second;
    overlapping = overlapping || p.repeated;
    auto previous = load(hub, p.partition, installation.id);
    if (!previous) {
      results[i] = std::unexpected(previous.error());
      continue;
    }
    p.previous = std::move(*previous);
    if (precondition) {
      const std::optional<Installation> stored =
          p.previous ? std::optional<Installation>(p.previous->installation) : std::nullopt;
      if (auto refused = precondition(stored)) {
        results[i] = std::unexpected(std::move(*refused));
        continue;
      }
    }
    p.valid = true;
    locks.need(hub, installation.platform, installation.push_channel);
    overlapping = overlapping || !handles.insert(installation.push_channel).second;
    if (p.previous) {
      const Installation& old = p.previous->installation;
      locks.need(hub, old.platform, old.push_channel);
      if (old.push_channel != installation.push_channel) {
        overlapping = overlapping || !handles.insert(old.push_channel).second;
      }
    }
  }
  locks.lock();
  Staging staging(database_, overlapping);
  for (size_t i = 0; i < n; ++i) {
    Pending& p = pending[i];
    if (!p.valid) continue;
    if (p.repeated) {
      auto previous = load(hub, p.partition, installations[i].id, &staging);
      if (!previous) {
        results[i] = std::unexpected(previous.error());
        continue;
      }
      p.previous = std::move(*previous);
    }
    // A PUT is a fresh claim on its channel, whatever happened to the previous one.
    installations[i].expired_push_channel = false;
    installations[i].last_active_on = 0;
    results[i] =
        stage(staging, hub, p.partition, std::move(p.previous), std::move(installations[i]));
  }
  if (auto ok = write(staging, "writing installations"); !ok) {
    for (auto& result : results) {
      if (result) result = std::unexpected(ok.error());
    }
  }
  return results;
}

std::expected<WriteOutcome, StoreError> InstallationStore::patch(
    std::string_view hub, std::string_view installation_id,
    const std::vector<PatchOperation>& operations) {
  const uint32_t partition = partitionOf(hub, installation_id);
  auto partition_lock = lockPartition(partition);
  auto previous = load(hub, partition, installation_id);
  if (!previous) return std::unexpected(previous.error());
  if (!*previous) {
    return std::unexpected(StoreError{
        StoreError::Code::kNotFound, fmt::format("no installation {}", installation_id), {}});
  }
  Installation next = (*previous)->installation;
  if (auto ok = applyPatch(next, operations); !ok) return std::unexpected(invalidError(ok.error()));
  if (auto ok = validate(next); !ok) return std::unexpected(invalidError(ok.error()));
  HandleLocks locks(*this);
  locks.need(hub, next.platform, next.push_channel);
  locks.need(hub, (*previous)->installation.platform, (*previous)->installation.push_channel);
  locks.lock();
  Staging staging(database_, false);
  auto outcome = stage(staging, hub, partition, std::move(*previous), std::move(next));
  if (!outcome) return outcome;
  if (auto ok = write(staging, "writing an installation"); !ok) return std::unexpected(ok.error());
  return outcome;
}

std::expected<WriteOutcome, StoreError> InstallationStore::stage(Staging& staging,
                                                                 std::string_view hub,
                                                                 uint32_t partition,
                                                                 std::optional<Loaded> previous,
                                                                 Installation next) {
  PartitionIndex& index = hubIndexForWrite(hub).partitions[partition];
  const Installation* old = previous ? &previous->installation : nullptr;
  next.version = old != nullptr ? old->version + 1 : 1;
  next.last_update = options_.clock();

  // Every read first, so that a failure leaves nothing of this change staged.
  const bool shares_handle = next.kind == DeviceKind::kRegistration;
  const std::string new_handle_key =
      shares_handle ? registrationHandleKey(hub, next.platform, next.push_channel, next.id)
                    : handleKey(hub, next.platform, next.push_channel);
  std::optional<std::string> drop_old_handle;
  if (old != nullptr) {
    auto old_key = ownHandleKey(hub, *old, &staging);
    if (!old_key) return std::unexpected(old_key.error());
    if (*old_key && **old_key != new_handle_key) drop_old_handle = std::move(**old_key);
  }
  std::optional<HandleOwner> holder;
  if (!shares_handle) {
    auto owner = handleOwner(new_handle_key, &staging);
    if (!owner) return std::unexpected(owner.error());
    holder = std::move(*owner);
  }

  const uint32_t ordinal = previous ? previous->ordinal : index.allocateOrdinal();
  if (!previous) {
    staging.allocated(index, ordinal);
    std::string value;
    appendBigEndian32(value, ordinal);
    staging.put(ColumnFamily::kInstallationIds, idKey(hub, partition, next.id), std::move(value));
  }
  staging.put(ColumnFamily::kInstallations, recordKey(hub, partition, ordinal),
              encodeInstallation(next));
  if (drop_old_handle) staging.erase(ColumnFamily::kHandles, *drop_old_handle);
  std::optional<HandleRelease> released;
  if (holder && holder->installation_id != next.id) {
    released =
        HandleRelease{holder->partition, holder->installation_id, next.platform, next.push_channel};
    std::string value(1, static_cast<char>(next.platform));
    value += next.push_channel;
    staging.put(ColumnFamily::kMeta,
                releaseKey(hub, released->partition, released->installation_id), std::move(value));
  }
  staging.put(ColumnFamily::kHandles, new_handle_key,
              encodeHandleOwner({partition, ordinal, next.id}));

  const std::string_view old_user = old != nullptr ? std::string_view(old->user_id) : "";
  if (old_user != next.user_id) {
    if (!old_user.empty())
      staging.erase(ColumnFamily::kUsers, userKey(hub, old_user, partition, ordinal));
    if (!next.user_id.empty()) {
      staging.put(ColumnFamily::kUsers, userKey(hub, next.user_id, partition, ordinal), "");
    }
  }

  Staging::IndexChange change{&index, ordinal, std::nullopt, indexEntryOf(next, dictionary_)};
  if (old != nullptr) change.removed = indexEntryOf(*old, dictionary_);
  staging.change(std::move(change));
  return WriteOutcome{std::move(next), !previous.has_value(), std::move(released)};
}

std::expected<void, StoreError> InstallationStore::applyHandleRelease(
    std::string_view hub, const HandleRelease& release) {
  auto partition_lock = lockPartition(release.partition);
  HandleLocks locks(*this);
  locks.need(hub, release.platform, release.handle);
  locks.lock();
  Staging staging(database_, false);
  staging.erase(ColumnFamily::kMeta, releaseKey(hub, release.partition, release.installation_id));
  auto loaded = load(hub, release.partition, release.installation_id);
  if (!loaded) return std::unexpected(loaded.error());
  if (*loaded) {
    Installation& in = (*loaded)->installation;
    auto owner = handleOwner(handleKey(hub, release.platform, release.handle));
    if (!owner) return std::unexpected(owner.error());
    const bool still_names_it =
        in.platform == release.platform && in.push_channel == release.handle;
    const bool taken = *owner && (*owner)->installation_id != in.id;
    if (still_names_it && taken && !in.expired_push_channel) {
      in.expired_push_channel = true;
      in.last_active_on = options_.clock();
      in.last_update = in.last_active_on;
      ++in.version;
      staging.put(ColumnFamily::kInstallations,
                  recordKey(hub, release.partition, (*loaded)->ordinal), encodeInstallation(in));
      Staging::IndexChange change;
      change.index = &hubIndexForWrite(hub).partitions[release.partition];
      change.ordinal = (*loaded)->ordinal;
      change.deactivate = true;
      staging.change(std::move(change));
    }
  }
  return write(staging, "releasing a handle");
}

std::expected<std::optional<std::string>, StoreError> InstallationStore::expireChannel(
    std::string_view hub, uint32_t partition, uint32_t ordinal, Platform platform,
    std::string_view handle) {
  auto partition_lock = lockPartition(partition);
  HandleLocks locks(*this);
  locks.need(hub, platform, handle);
  locks.lock();
  auto stored = record(hub, partition, ordinal, nullptr);
  if (!stored) return std::unexpected(stored.error());
  if (!*stored) return std::nullopt;
  Installation& in = **stored;
  if (in.platform != platform || in.push_channel != handle || in.expired_push_channel) {
    return std::nullopt;
  }
  Staging staging(database_, false);
  in.expired_push_channel = true;
  in.last_active_on = options_.clock();
  in.last_update = in.last_active_on;
  ++in.version;
  staging.put(ColumnFamily::kInstallations, recordKey(hub, partition, ordinal),
              encodeInstallation(in));
  const std::string handle_key = handleKey(hub, platform, handle);
  auto owner = handleOwner(handle_key);
  if (!owner) return std::unexpected(owner.error());
  if (*owner && (*owner)->installation_id == in.id)
    staging.erase(ColumnFamily::kHandles, handle_key);
  Staging::IndexChange change;
  change.index = &hubIndexForWrite(hub).partitions[partition];
  change.ordinal = ordinal;
  change.deactivate = true;
  staging.change(std::move(change));
  if (auto ok = write(staging, "expiring a channel"); !ok) return std::unexpected(ok.error());
  return std::move(in.id);
}

std::expected<bool, StoreError> InstallationStore::remove(std::string_view hub,
                                                          std::string_view installation_id,
                                                          const WritePrecondition& precondition) {
  const uint32_t partition = partitionOf(hub, installation_id);
  auto partition_lock = lockPartition(partition);
  auto loaded = load(hub, partition, installation_id);
  if (!loaded) return std::unexpected(loaded.error());
  if (precondition) {
    const std::optional<Installation> stored =
        *loaded ? std::optional<Installation>((*loaded)->installation) : std::nullopt;
    if (auto refused = precondition(stored)) return std::unexpected(std::move(*refused));
  }
  if (!*loaded) return false;
  const Installation& old = (*loaded)->installation;
  const uint32_t ordinal = (*loaded)->ordinal;

  HandleLocks locks(*this);
  locks.need(hub, old.platform, old.push_channel);
  locks.lock();
  Staging staging(database_, false);
  staging.erase(ColumnFamily::kInstallationIds, idKey(hub, partition, old.id));
  staging.erase(ColumnFamily::kInstallations, recordKey(hub, partition, ordinal));
  auto handle_key = ownHandleKey(hub, old, nullptr);
  if (!handle_key) return std::unexpected(handle_key.error());
  if (*handle_key) staging.erase(ColumnFamily::kHandles, **handle_key);
  if (!old.user_id.empty()) {
    staging.erase(ColumnFamily::kUsers, userKey(hub, old.user_id, partition, ordinal));
  }
  Staging::IndexChange change;
  change.index = &hubIndexForWrite(hub).partitions[partition];
  change.ordinal = ordinal;
  change.removed = indexEntryOf(old, dictionary_);
  staging.change(std::move(change));
  if (auto ok = write(staging, "deleting an installation"); !ok) return std::unexpected(ok.error());
  return true;
}

std::expected<uint64_t, StoreError> InstallationStore::clearPartition(std::string_view hub,
                                                                      uint32_t partition) {
  auto partition_lock = lockPartition(partition);
  HubIndex* hub_index = hubIndex(hub);
  const uint64_t removed = hub_index != nullptr ? hub_index->partitions[partition].size() : 0;
  rocksdb::WriteBatch batch;
  const std::string begin = partitionPrefix(hub, partition);
  // Partition numbers are 16-bit; the last one ends where the hub's keys end.
  std::string end =
      partition + 1 < 0x10000 ? partitionPrefix(hub, partition + 1) : std::string(hub) + '\1';
  for (const ColumnFamily cf : {ColumnFamily::kInstallations, ColumnFamily::kInstallationIds}) {
    batch.DeleteRange(database_.handle(cf), begin, end);
  }
  const std::string releases = std::string(kReleasePrefix) + begin;
  std::string releases_end = std::string(kReleasePrefix) + end;
  batch.DeleteRange(database_.handle(ColumnFamily::kMeta), releases, releases_end);
  const auto status = database_.write(batch);
  if (!status.ok()) return std::unexpected(storageError(status, "deleting a hub's installations"));
  if (hub_index != nullptr) hub_index->partitions[partition] = PartitionIndex();
  installation_count_.fetch_sub(removed, std::memory_order_relaxed);
  return removed;
}

std::expected<void, StoreError> InstallationStore::dropHubEntries(std::string_view hub) {
  rocksdb::WriteBatch batch;
  std::string begin(hub);
  begin += '\0';
  std::string end(hub);
  end += '\1';
  for (const ColumnFamily cf : {ColumnFamily::kHandles, ColumnFamily::kUsers}) {
    batch.DeleteRange(database_.handle(cf), begin, end);
  }
  const auto status = database_.write(batch);
  if (!status.ok()) return std::unexpected(storageError(status, "deleting a hub's indexes"));
  return {};
}

std::expected<std::optional<Installation>, StoreError> InstallationStore::get(
    std::string_view hub, std::string_view installation_id) const {
  auto loaded = load(hub, partitionOf(hub, installation_id), installation_id);
  if (!loaded) return std::unexpected(loaded.error());
  if (!*loaded) return std::optional<Installation>();
  return std::move((*loaded)->installation);
}

struct PartitionReader::State {
  std::string prefix;
  std::string end;
  rocksdb::Slice upper;
  std::unique_ptr<rocksdb::Iterator> it;
  bool positioned = false;
  std::string key;  // scratch
};

PartitionReader::PartitionReader(std::unique_ptr<State> state) : state_(std::move(state)) {}
PartitionReader::~PartitionReader() = default;

std::expected<std::optional<Installation>, StoreError> PartitionReader::read(uint32_t ordinal) {
  // Across a gap of more than this many records a Seek is cheaper than stepping.
  constexpr uint32_t kMaxSteps = 16;
  State& s = *state_;
  rocksdb::Iterator& it = *s.it;
  const auto ordinalAt = [&]() -> std::optional<uint32_t> {
    if (!it.Valid()) return std::nullopt;
    const auto key = it.key().ToStringView();
    if (key.size() != s.prefix.size() + 4) return std::nullopt;
    return readBigEndian32(key.substr(s.prefix.size()));
  };
  std::optional<uint32_t> at = s.positioned ? ordinalAt() : std::nullopt;
  if (!at || *at > ordinal || ordinal - *at > kMaxSteps) {
    s.key.assign(s.prefix);
    appendBigEndian32(s.key, ordinal);
    it.Seek(s.key);
    s.positioned = true;
    at = ordinalAt();
  }
  while (at && *at < ordinal) {
    it.Next();
    at = ordinalAt();
  }
  if (!it.status().ok()) {
    return std::unexpected(StoreError{
        StoreError::Code::kStorage, "reading installations: " + it.status().ToString(), {}});
  }
  if (!at || *at != ordinal) return std::optional<Installation>();
  auto installation = decodeInstallation(it.value().ToStringView());
  if (!installation) {
    return std::unexpected(StoreError{StoreError::Code::kStorage, installation.error(), {}});
  }
  return std::optional<Installation>(std::move(*installation));
}

std::unique_ptr<PartitionReader> InstallationStore::reader(std::string_view hub,
                                                           uint32_t partition) const {
  auto state = std::make_unique<PartitionReader::State>();
  state->prefix = partitionPrefix(hub, partition);
  state->end = prefixEnd(state->prefix);
  state->upper = rocksdb::Slice(state->end);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &state->upper;
  state->it.reset(database_.db().NewIterator(read, database_.handle(ColumnFamily::kInstallations)));
  return std::unique_ptr<PartitionReader>(new PartitionReader(std::move(state)));
}

std::expected<std::optional<Installation>, StoreError> InstallationStore::getByOrdinal(
    std::string_view hub, uint32_t partition, uint32_t ordinal) const {
  return record(hub, partition, ordinal, nullptr);
}

std::expected<CompiledExpression, StoreError> InstallationStore::compile(
    std::string_view hub, const TagExpression& expression) const {
  std::optional<StoreError> error;
  const auto resolve = [&](const TagExpressionNode& leaf) {
    std::vector<std::pair<uint32_t, uint32_t>> found;
    if (leaf.kind == TagExpressionNode::Kind::kInstallationId) {
      const uint32_t partition = partitionOf(hub, leaf.value);
      auto ordinal = ordinalOf(hub, partition, leaf.value);
      if (!ordinal) {
        error = ordinal.error();
      } else if (*ordinal) {
        found.emplace_back(partition, **ordinal);
      }
      return found;
    }
    const std::string prefix = userPrefix(hub, leaf.value);
    std::unique_ptr<rocksdb::Iterator> it(
        database_.db().NewIterator(rocksdb::ReadOptions(), database_.handle(ColumnFamily::kUsers)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      const auto rest = it->key().ToStringView().substr(prefix.size());
      if (rest.size() == 6)
        found.emplace_back(readBigEndian16(rest), readBigEndian32(rest.substr(2)));
    }
    if (!it->status().ok()) error = storageError(it->status(), "resolving $UserId");
    return found;
  };
  auto compiled = CompiledExpression::compile(expression, dictionary_, resolve);
  if (error) return std::unexpected(*error);
  return compiled;
}

const PartitionIndex* InstallationStore::partitionIndex(std::string_view hub,
                                                        uint32_t partition) const {
  HubIndex* index = hubIndex(hub);
  return index == nullptr ? nullptr : &index->partitions.at(partition);
}

Roaring InstallationStore::match(std::string_view hub, uint32_t partition,
                                 const CompiledExpression& expression, Audience audience) const {
  return select(hub, partition, &expression, audience, std::nullopt);
}

uint64_t InstallationStore::count(std::string_view hub, const CompiledExpression& expression,
                                  Audience audience) const {
  uint64_t total = 0;
  for (uint32_t p = 0; p < options_.partitions; ++p) {
    total += match(hub, p, expression, audience).cardinality();
  }
  return total;
}

std::expected<std::optional<uint32_t>, StoreError> InstallationStore::queryPartition(
    std::string_view hub, uint32_t partition, const CompiledExpression* expression,
    std::optional<uint32_t> after, size_t limit,
    const std::function<bool(const Installation&)>& keep, std::vector<Installation>& out) const {
  if (limit == 0) return std::optional<uint32_t>();
  size_t taken = 0;
  const Roaring matches = select(hub, partition, expression, Audience::kAll, std::nullopt);
  for (const uint32_t ordinal : matches) {
    if (after && ordinal <= *after) continue;
    auto installation = getByOrdinal(hub, partition, ordinal);
    if (!installation) return std::unexpected(installation.error());
    if (!*installation || (keep && !keep(**installation))) continue;
    out.push_back(std::move(**installation));
    if (++taken == limit) return std::optional<uint32_t>(ordinal);
  }
  return std::optional<uint32_t>();
}

std::expected<std::pair<uint32_t, std::optional<uint32_t>>, StoreError>
InstallationStore::parseContinuation(std::string_view continuation) const {
  if (continuation.empty()) return std::pair<uint32_t, std::optional<uint32_t>>{0, std::nullopt};
  auto position = decodeContinuation(continuation);
  if (!position || position->first >= options_.partitions) {
    return std::unexpected(
        StoreError{StoreError::Code::kInvalid,
                   fmt::format("'{}' is not a continuation token this server issued", continuation),
                   "continuationToken"});
  }
  return std::pair<uint32_t, std::optional<uint32_t>>{position->first, position->second};
}

std::string InstallationStore::continuationAt(uint32_t partition, uint32_t ordinal) {
  return encodeContinuation(partition, ordinal);
}

std::expected<InstallationStore::Page, StoreError> InstallationStore::query(
    std::string_view hub, const CompiledExpression& expression, std::string_view continuation,
    size_t limit) const {
  auto start = parseContinuation(continuation);
  if (!start) return std::unexpected(start.error());
  Page page;
  std::optional<uint32_t> after = start->second;
  for (uint32_t p = start->first; p < options_.partitions && page.installations.size() < limit;
       ++p, after.reset()) {
    auto last = queryPartition(hub, p, &expression, after, limit - page.installations.size(), {},
                               page.installations);
    if (!last) return std::unexpected(last.error());
    if (*last) page.continuation = encodeContinuation(p, **last);
  }
  if (page.installations.size() < limit) page.continuation.clear();
  return page;
}

std::expected<std::vector<std::string>, StoreError> InstallationStore::registrationsWithHandle(
    std::string_view hub, Platform platform, std::string_view handle) const {
  const std::string prefix = registrationHandlePrefix(hub, platform, handle);
  std::unique_ptr<rocksdb::Iterator> it(
      database_.db().NewIterator(rocksdb::ReadOptions(), database_.handle(ColumnFamily::kHandles)));
  std::vector<std::string> ids;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    ids.emplace_back(it->key().ToStringView().substr(prefix.size()));
  }
  if (!it->status().ok()) return std::unexpected(storageError(it->status(), "listing a handle"));
  return ids;
}

size_t InstallationStore::indexMemoryBytes() const {
  // Partition locks are taken before hubs_mutex_ everywhere else: collect the hubs first (they
  // are never freed while the store lives), then visit their partitions.
  std::vector<const HubIndex*> indexes;
  {
    std::shared_lock lock(hubs_mutex_);
    for (const auto& [hub, index] : hubs_) indexes.push_back(index.get());
  }
  size_t total = 0;
  for (const HubIndex* index : indexes) {
    for (uint32_t p = 0; p < index->partitions.size(); ++p) {
      auto partition_lock = lockPartition(p);
      total += index->partitions[p].memoryBytes();
    }
  }
  return total;
}

}  // namespace pushhub::storage
