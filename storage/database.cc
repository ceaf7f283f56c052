#include "storage/database.h"

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/table.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <system_error>
#include <vector>

#include "common/log.h"

namespace pushhub::storage {
namespace {

constexpr std::string_view kFormatVersionKey = "pushhub.format_version";

std::string describe(const std::filesystem::path& dir, const rocksdb::Status& status) {
  const std::string state = status.ToString();
  if (status.IsIOError() && state.find("lock") != std::string::npos) {
    return fmt::format("data directory {} is in use by another pushhub process ({})", dir.string(),
                       state);
  }
  if (status.IsCorruption()) {
    return fmt::format("data directory {} is corrupt: {}", dir.string(), state);
  }
  return fmt::format("cannot open the database in {}: {}", dir.string(), state);
}

// The (hub, partition) prefix of an installation record key (keys.h: hub \0 partition:be16
// ordinal:be32). A partition's ordinals are handed out in increasing order, so a new record's
// key lands right after the last one written in its partition: with this as the memtable's
// insert hint, the skiplist insert starts there instead of searching from the top (~3 µs of CPU
// per REST create). Only whole record keys are in the domain: Debian 12's RocksDB (7.8) keeps
// one hint table per memtable for its point and range-deletion skiplists alike (later releases
// give hints to the point table only), and a hint left by a partition's DeleteRange (whose
// begin key is the bare prefix) sent the next point insert into the other skiplist (seen:
// RocksDB's internal-key assertion after deleting a hub).
class PartitionPrefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "pushhub.PartitionPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - 4);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    const void* zero = std::memchr(key.data(), 0, key.size());
    return zero != nullptr &&
           static_cast<size_t>(static_cast<const char*>(zero) - key.data()) + 1 + 2 + 4 ==
               key.size();
  }
};

// Options chosen for a write-heavy record store read mostly by point lookups and per-partition
// scans (see storage/README.md for the reasoning).
rocksdb::ColumnFamilyOptions columnFamilyOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                                 ColumnFamily family) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks live in the block cache (memory stays bounded by one number) but are
  // partitioned into small blocks: a whole-file filter of a large SST is megabytes, and in a
  // sharded LRU cache such blocks evict each other, so every point lookup re-read and
  // re-checksummed them from the file (seen: creates slowing to ~1.5k/s after 6.5M
  // installations). The top-level index and L0's blocks stay pinned.
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_top_level_index_and_filter = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;

  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.compression = rocksdb::kLZ4Compression;
  cf.bottommost_compression = rocksdb::kZSTD;
  cf.level_compaction_dynamic_level_bytes = true;
  // Most point lookups on the write path miss (a new installation's id, a new handle): a bloom
  // filter over the memtable answers them without walking its skiplist.
  cf.memtable_prefix_bloom_size_ratio = 0.05;
  cf.memtable_whole_key_filtering = true;
  if (family == ColumnFamily::kInstallations) {
    cf.memtable_insert_with_hint_prefix_extractor = std::make_shared<PartitionPrefix>();
  }
  return cf;
}

}  // namespace

std::string_view columnFamilyName(ColumnFamily cf) {
  switch (cf) {
    case ColumnFamily::kMeta: return rocksdb::kDefaultColumnFamilyName;
    case ColumnFamily::kHubs: return "hubs";
    case ColumnFamily::kInstallations: return "installations";
    case ColumnFamily::kInstallationIds: return "installation_ids";
    case ColumnFamily::kHandles: return "handles";
    case ColumnFamily::kUsers: return "users";
    case ColumnFamily::kNotifications: return "notifications";
    case ColumnFamily::kSchedule: return "schedule";
  }
  return "unknown";
}

std::expected<std::unique_ptr<Database>, std::string> Database::open(
    const StorageOptions& options) {
  const auto& dir = options.data_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return std::unexpected(
        fmt::format("cannot create data directory {}: {}", dir.string(), ec.message()));
  }

  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.keep_log_file_num = 5;
  // With an SstFileManager RocksDB recovers by itself from a full disk once space is freed (it
  // polls); Database::write also asks it to resume.
  db_options.sst_file_manager.reset(rocksdb::NewSstFileManager(rocksdb::Env::Default()));
  // The write group's leader inserts every member's batch into the memtables: RocksDB ignores
  // the insert hint above for concurrent inserts, and with a handful of shard threads the hint
  // is worth more than inserting in parallel (measured: bench/RESULTS.md, REST upserts).
  db_options.allow_concurrent_memtable_write = false;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (size_t i = 0; i < kColumnFamilyCount; ++i) {
    descriptors.emplace_back(std::string(columnFamilyName(static_cast<ColumnFamily>(i))),
                             columnFamilyOptions(cache, static_cast<ColumnFamily>(i)));
  }

  std::unique_ptr<Database> database(new Database());
  database->data_dir_ = dir;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto status = rocksdb::DB::Open(db_options, dir.string(), descriptors, &handles, &raw);
  if (!status.ok()) return std::unexpected(describe(dir, status));
  database->db_.reset(raw);
  for (size_t i = 0; i < handles.size(); ++i) database->handles_[i] = handles[i];

  database->write_options_ = std::make_unique<rocksdb::WriteOptions>();
  database->write_options_->sync = options.sync_writes;

  // The format version: written when the database is new, checked when it is not.
  std::string stored;
  auto* meta = database->handle(ColumnFamily::kMeta);
  status = raw->Get(rocksdb::ReadOptions(), meta, kFormatVersionKey, &stored);
  if (status.IsNotFound()) {
    status = raw->Put(*database->write_options_, meta, kFormatVersionKey,
                      std::to_string(kFormatVersion));
    if (!status.ok()) return std::unexpected(describe(dir, status));
    database->format_version_ = kFormatVersion;
  } else if (!status.ok()) {
    return std::unexpected(describe(dir, status));
  } else {
    uint32_t version = 0;
    const auto [end, parse_ec] =
        std::from_chars(stored.data(), stored.data() + stored.size(), version);
    if (parse_ec != std::errc() || end != stored.data() + stored.size()) {
      return std::unexpected(fmt::format("data directory {} has an unreadable format version '{}'",
                                         dir.string(), stored));
    }
    if (version > kFormatVersion) {
      return std::unexpected(fmt::format(
          "data directory {} was written by a newer pushhub (format {}, this build reads up to {})",
          dir.string(), version, kFormatVersion));
    }
    database->format_version_ = version;
  }
  moduleLogger("storage")->info("opened {} (format {})", dir.string(), database->format_version_);
  return database;
}

bool isOutOfSpace(const rocksdb::Status& status) {
  return status.IsNoSpace() || status.subcode() == rocksdb::Status::kNoSpace;
}

rocksdb::Status Database::write(rocksdb::WriteBatch& batch) {
  auto status = db_->Write(*write_options_, &batch);
  if (status.ok()) {
    if (out_of_space_.load(std::memory_order_relaxed) &&
        out_of_space_.exchange(false, std::memory_order_acq_rel)) {
      moduleLogger("storage")->warn("{}: writes resumed after the disk was full",
                                    data_dir_.string());
    }
    return status;
  }
  if (!isOutOfSpace(status) && !out_of_space_.load(std::memory_order_acquire)) return status;
  if (!out_of_space_.exchange(true, std::memory_order_acq_rel)) {
    moduleLogger("storage")->error(
        "{}: the disk is full; writes are refused until space is freed: {}", data_dir_.string(),
        status.ToString());
  }
  // RocksDB refuses every write after one failed for lack of space, until it is resumed (it may
  // be recovering by itself: Resume() then answers Busy). Asked at most every 500 ms.
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_resume_ns_.load(std::memory_order_relaxed);
  if (now - last >= 500'000'000 &&
      last_resume_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed) &&
      db_->Resume().ok()) {
    status = db_->Write(*write_options_, &batch);
    if (status.ok()) {
      out_of_space_.store(false, std::memory_order_release);
      moduleLogger("storage")->warn("{}: writes resumed after the disk was full",
                                    data_dir_.string());
      return status;
    }
  }
  return rocksdb::Status::NoSpace("the disk of the data directory is full");
}

Database::~Database() {
  if (!db_) return;
  // An orderly close flushes the memtables, so the next start reads SST files instead of
  // replaying the write-ahead log (seconds per million installations). A crash still recovers
  // from the WAL.
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  for (auto* h : handles_) {
    if (h != nullptr) families.push_back(h);
  }
  rocksdb::FlushOptions flush;
  flush.wait = true;
  if (const auto status = db_->Flush(flush, families); !status.ok()) {
    moduleLogger("storage")->warn("flushing {} on close: {}", data_dir_.string(),
                                  status.ToString());
  }
  (void)db_->FlushWAL(/*sync=*/write_options_ && write_options_->sync);
  for (auto* h : handles_) {
    if (h != nullptr) (void)db_->DestroyColumnFamilyHandle(h);
  }
  (void)db_->Close();
  db_.reset();
}

}  // namespace pushhub::storage
