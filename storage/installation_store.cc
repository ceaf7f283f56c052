#include "storage/installation_store.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>

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
    : database_(database), options_(std::move(options)) {}

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

std::mutex& InstallationStore::handleLock(std::string_view hub, Platform platform,
                                          std::string_view handle) {
  size_t h = std::hash<std::string_view>{}(hub)*31 + static_cast<size_t>(platform);
  h ^= std::hash<std::string_view>{}(handle) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return handle_locks_[h % handle_locks_.size()];
}

std::expected<std::optional<std::string>, StoreError> InstallationStore::read(
    ColumnFamily cf, const std::string& key, std::string_view what) const {
  std::string value;
  const auto status = database_.db().Get(rocksdb::ReadOptions(), database_.handle(cf), key, &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return std::unexpected(storageError(status, fmt::format("reading {}", what)));
  return value;
}

std::expected<std::optional<HandleOwner>, StoreError> InstallationStore::handleOwner(
    const std::string& key) const {
  auto value = read(ColumnFamily::kHandles, key, "the handle index");
  if (!value) return std::unexpected(value.error());
  if (!*value) return std::optional<HandleOwner>();
  return decodeHandleOwner(**value);
}

std::expected<std::optional<uint32_t>, StoreError> InstallationStore::ordinalOf(
    std::string_view hub, uint32_t partition, std::string_view installation_id) const {
  auto value = read(ColumnFamily::kInstallationIds, idKey(hub, partition, installation_id),
                    "an installation id");
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

std::expected<std::optional<InstallationStore::Loaded>, StoreError> InstallationStore::load(
    std::string_view hub, uint32_t partition, std::string_view installation_id) const {
  auto ordinal = ordinalOf(hub, partition, installation_id);
  if (!ordinal) return std::unexpected(ordinal.error());
  if (!*ordinal) return std::optional<Loaded>();
  auto installation = getByOrdinal(hub, partition, **ordinal);
  if (!installation) return std::unexpected(installation.error());
  if (!*installation) {
    return std::unexpected(
        StoreError{StoreError::Code::kStorage,
                   fmt::format("installation {}: id entry without a record", installation_id),
                   {}});
  }
  return Loaded{**ordinal, std::move(**installation)};
}

std::expected<WriteOutcome, StoreError> InstallationStore::upsert(std::string_view hub,
                                                                  Installation installation) {
  installation.normalize();
  if (auto ok = validateInstallation(installation, options_.limits); !ok) {
    return std::unexpected(invalidError(ok.error()));
  }
  const uint32_t partition = partitionOf(hub, installation.id);
  auto previous = load(hub, partition, installation.id);
  if (!previous) return std::unexpected(previous.error());
  // A PUT is a fresh claim on its channel, whatever happened to the previous one.
  installation.expired_push_channel = false;
  installation.last_active_on = 0;
  return commit(hub, partition, std::move(*previous), std::move(installation));
}

std::expected<WriteOutcome, StoreError> InstallationStore::patch(
    std::string_view hub, std::string_view installation_id,
    const std::vector<PatchOperation>& operations) {
  const uint32_t partition = partitionOf(hub, installation_id);
  auto previous = load(hub, partition, installation_id);
  if (!previous) return std::unexpected(previous.error());
  if (!*previous) {
    return std::unexpected(StoreError{
        StoreError::Code::kNotFound, fmt::format("no installation {}", installation_id), {}});
  }
  Installation next = (*previous)->installation;
  if (auto ok = applyPatch(next, operations); !ok) return std::unexpected(invalidError(ok.error()));
  if (auto ok = validateInstallation(next, options_.limits); !ok) {
    return std::unexpected(invalidError(ok.error()));
  }
  return commit(hub, partition, std::move(*previous), std::move(next));
}

std::expected<WriteOutcome, StoreError> InstallationStore::commit(std::string_view hub,
                                                                  uint32_t partition,
                                                                  std::optional<Loaded> previous,
                                                                  Installation next) {
  auto& db = database_.db();
  PartitionIndex& index = hubIndexForWrite(hub).partitions[partition];
  const Installation* old = previous ? &previous->installation : nullptr;
  next.version = old != nullptr ? old->version + 1 : 1;
  next.last_update = options_.clock();

  const std::string new_handle_key = handleKey(hub, next.platform, next.push_channel);
  const bool handle_changed =
      old != nullptr && (old->platform != next.platform || old->push_channel != next.push_channel);
  std::mutex& new_lock = handleLock(hub, next.platform, next.push_channel);
  std::mutex& old_lock =
      handle_changed ? handleLock(hub, old->platform, old->push_channel) : new_lock;
  // Claims of one handle are serialised, so the handle index always names the latest claimant.
  std::unique_lock<std::mutex> first(new_lock, std::defer_lock);
  std::unique_lock<std::mutex> second(old_lock, std::defer_lock);
  if (&new_lock == &old_lock) {
    first.lock();
  } else {
    std::lock(first, second);
  }

  const uint32_t ordinal = previous ? previous->ordinal : index.allocateOrdinal();
  const auto give_back = [&] {
    if (!previous) index.releaseOrdinal(ordinal);
  };
  rocksdb::WriteBatch batch;
  auto* ids = database_.handle(ColumnFamily::kInstallationIds);
  auto* records = database_.handle(ColumnFamily::kInstallations);
  auto* handles = database_.handle(ColumnFamily::kHandles);
  auto* users = database_.handle(ColumnFamily::kUsers);
  auto* meta = database_.handle(ColumnFamily::kMeta);

  if (!previous) {
    std::string value;
    appendBigEndian32(value, ordinal);
    batch.Put(ids, idKey(hub, partition, next.id), value);
  }
  batch.Put(records, recordKey(hub, partition, ordinal), encodeInstallation(next));

  if (handle_changed) {
    const std::string old_key = handleKey(hub, old->platform, old->push_channel);
    auto owner = handleOwner(old_key);
    if (!owner) {
      give_back();
      return std::unexpected(owner.error());
    }
    if (*owner && (*owner)->installation_id == next.id) batch.Delete(handles, old_key);
  }
  auto holder = handleOwner(new_handle_key);
  if (!holder) {
    give_back();
    return std::unexpected(holder.error());
  }
  std::optional<HandleRelease> released;
  if (*holder && (*holder)->installation_id != next.id) {
    released = HandleRelease{(*holder)->partition, (*holder)->installation_id, next.platform,
                             next.push_channel};
    std::string value(1, static_cast<char>(next.platform));
    value += next.push_channel;
    batch.Put(meta, releaseKey(hub, released->partition, released->installation_id), value);
  }
  batch.Put(handles, new_handle_key, encodeHandleOwner({partition, ordinal, next.id}));

  const std::string_view old_user = old != nullptr ? std::string_view(old->user_id) : "";
  if (old_user != next.user_id) {
    if (!old_user.empty()) batch.Delete(users, userKey(hub, old_user, partition, ordinal));
    if (!next.user_id.empty()) batch.Put(users, userKey(hub, next.user_id, partition, ordinal), "");
  }

  const auto status = db.Write(database_.writeOptions(), &batch);
  if (!status.ok()) {
    give_back();
    return std::unexpected(storageError(status, "writing an installation"));
  }
  if (old != nullptr) {
    index.remove(ordinal, indexEntryOf(*old, dictionary_));
  } else {
    installation_count_.fetch_add(1, std::memory_order_relaxed);
  }
  index.add(ordinal, indexEntryOf(next, dictionary_));
  return WriteOutcome{std::move(next), !previous.has_value(), std::move(released)};
}

std::expected<void, StoreError> InstallationStore::applyHandleRelease(
    std::string_view hub, const HandleRelease& release) {
  auto& db = database_.db();
  std::unique_lock lock(handleLock(hub, release.platform, release.handle));
  rocksdb::WriteBatch batch;
  batch.Delete(database_.handle(ColumnFamily::kMeta),
               releaseKey(hub, release.partition, release.installation_id));
  auto loaded = load(hub, release.partition, release.installation_id);
  if (!loaded) return std::unexpected(loaded.error());
  std::optional<uint32_t> deactivate;
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
      batch.Put(database_.handle(ColumnFamily::kInstallations),
                recordKey(hub, release.partition, (*loaded)->ordinal), encodeInstallation(in));
      deactivate = (*loaded)->ordinal;
    }
  }
  const auto status = db.Write(database_.writeOptions(), &batch);
  if (!status.ok()) return std::unexpected(storageError(status, "releasing a handle"));
  if (deactivate) hubIndexForWrite(hub).partitions[release.partition].setActive(*deactivate, false);
  return {};
}

std::expected<bool, StoreError> InstallationStore::remove(std::string_view hub,
                                                          std::string_view installation_id) {
  const uint32_t partition = partitionOf(hub, installation_id);
  auto loaded = load(hub, partition, installation_id);
  if (!loaded) return std::unexpected(loaded.error());
  if (!*loaded) return false;
  const Installation& old = (*loaded)->installation;
  const uint32_t ordinal = (*loaded)->ordinal;

  std::unique_lock lock(handleLock(hub, old.platform, old.push_channel));
  rocksdb::WriteBatch batch;
  batch.Delete(database_.handle(ColumnFamily::kInstallationIds), idKey(hub, partition, old.id));
  batch.Delete(database_.handle(ColumnFamily::kInstallations), recordKey(hub, partition, ordinal));
  const std::string handle_key = handleKey(hub, old.platform, old.push_channel);
  auto owner = handleOwner(handle_key);
  if (!owner) return std::unexpected(owner.error());
  if (*owner && (*owner)->installation_id == old.id) {
    batch.Delete(database_.handle(ColumnFamily::kHandles), handle_key);
  }
  if (!old.user_id.empty()) {
    batch.Delete(database_.handle(ColumnFamily::kUsers),
                 userKey(hub, old.user_id, partition, ordinal));
  }
  const auto status = database_.db().Write(database_.writeOptions(), &batch);
  if (!status.ok()) return std::unexpected(storageError(status, "deleting an installation"));
  PartitionIndex& index = hubIndexForWrite(hub).partitions[partition];
  index.remove(ordinal, indexEntryOf(old, dictionary_));
  index.releaseOrdinal(ordinal);
  installation_count_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

std::expected<std::optional<Installation>, StoreError> InstallationStore::get(
    std::string_view hub, std::string_view installation_id) const {
  auto loaded = load(hub, partitionOf(hub, installation_id), installation_id);
  if (!loaded) return std::unexpected(loaded.error());
  if (!*loaded) return std::optional<Installation>();
  return std::move((*loaded)->installation);
}

std::expected<std::optional<Installation>, StoreError> InstallationStore::getByOrdinal(
    std::string_view hub, uint32_t partition, uint32_t ordinal) const {
  auto value =
      read(ColumnFamily::kInstallations, recordKey(hub, partition, ordinal), "an installation");
  if (!value) return std::unexpected(value.error());
  if (!*value) return std::optional<Installation>();
  auto installation = decodeInstallation(**value);
  if (!installation) {
    return std::unexpected(StoreError{StoreError::Code::kStorage, installation.error(), {}});
  }
  return std::move(*installation);
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
  const PartitionIndex* index = partitionIndex(hub, partition);
  if (index == nullptr) return Roaring();
  Roaring result = expression.evaluate(*index, partition);
  if (audience == Audience::kDeliverable) result &= index->active();
  return result;
}

uint64_t InstallationStore::count(std::string_view hub, const CompiledExpression& expression,
                                  Audience audience) const {
  uint64_t total = 0;
  for (uint32_t p = 0; p < options_.partitions; ++p) {
    total += match(hub, p, expression, audience).cardinality();
  }
  return total;
}

std::expected<InstallationStore::Page, StoreError> InstallationStore::query(
    std::string_view hub, const CompiledExpression& expression, std::string_view continuation,
    size_t limit) const {
  uint32_t first_partition = 0;
  std::optional<uint32_t> after;
  if (!continuation.empty()) {
    auto position = decodeContinuation(continuation);
    if (!position || position->first >= options_.partitions) {
      return std::unexpected(StoreError{
          StoreError::Code::kInvalid,
          fmt::format("'{}' is not a continuation token this server issued", continuation),
          "continuationToken"});
    }
    first_partition = position->first;
    after = position->second;
  }
  Page page;
  if (limit == 0) return page;
  for (uint32_t p = first_partition; p < options_.partitions; ++p) {
    const Roaring matches = match(hub, p, expression, Audience::kAll);
    for (const uint32_t ordinal : matches) {
      if (p == first_partition && after && ordinal <= *after) continue;
      auto installation = getByOrdinal(hub, p, ordinal);
      if (!installation) return std::unexpected(installation.error());
      if (!*installation) continue;
      page.installations.push_back(std::move(**installation));
      if (page.installations.size() == limit) {
        page.continuation = encodeContinuation(p, ordinal);
        return page;
      }
    }
  }
  return page;
}

size_t InstallationStore::indexMemoryBytes() const {
  std::shared_lock lock(hubs_mutex_);
  size_t total = 0;
  for (const auto& [hub, index] : hubs_) {
    for (const auto& partition : index->partitions) total += partition.memoryBytes();
  }
  return total;
}

}  // namespace pushhub::storage
