#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <rocksdb/status.h>

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
struct WriteOptions;
}  // namespace rocksdb

namespace pushhub::storage {

struct StorageOptions {
  std::filesystem::path data_dir = "data";
  // fsync the WAL on every write (survives power loss); otherwise a write survives a process
  // crash (kill -9) but not a machine crash.
  bool sync_writes = false;
  size_t block_cache_bytes = 256u << 20;
};

// One column family per record kind. The numbering is internal; the names are on disk.
enum class ColumnFamily : uint8_t {
  kMeta,             // RocksDB's "default": format version, partition count, other facts
  kHubs,             // hub configuration
  kInstallations,    // installations by (hub, partition, ordinal) — see storage/keys.h
  kInstallationIds,  // (hub, partition, installation id) -> ordinal
  kHandles,          // handle index: (hub, platform, handle) -> holder
  kUsers,            // (hub, user id, partition, ordinal), for $UserId and queries by user
  kNotifications,    // accepted notifications and their progress
  kSchedule,         // scheduled notifications by due time
};
inline constexpr size_t kColumnFamilyCount = 8;
std::string_view columnFamilyName(ColumnFamily cf);

// The on-disk format this build writes. A data directory written by a newer format is refused
// rather than misread.
inline constexpr uint32_t kFormatVersion = 1;

// The RocksDB database in the data directory, with every column family open. Thread-safe, as
// RocksDB is; owned by the process and closed (WAL flushed, lock released) on destruction.
class Database {
 public:
  // Creates the directory and the database if missing. Fails with one line naming the directory
  // and the problem: in use by another process, unreadable, written by a newer pushhub, corrupt.
  static std::expected<std::unique_ptr<Database>, std::string> open(const StorageOptions& options);

  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  rocksdb::DB& db() { return *db_; }
  // Writes `batch` atomically. Once a write failed for lack of disk space, RocksDB refuses every
  // write until it is resumed: the next writes try DB::Resume() (at most every 500 ms) and
  // succeed again once space has been freed, without a restart.
  rocksdb::Status write(rocksdb::WriteBatch& batch);
  rocksdb::ColumnFamilyHandle* handle(ColumnFamily cf) { return handles_[static_cast<size_t>(cf)]; }
  const rocksdb::WriteOptions& writeOptions() const { return *write_options_; }
  const std::filesystem::path& dataDir() const { return data_dir_; }
  uint32_t formatVersion() const { return format_version_; }

 private:
  Database() = default;

  std::filesystem::path data_dir_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* handles_[kColumnFamilyCount] = {};
  std::unique_ptr<rocksdb::WriteOptions> write_options_;
  uint32_t format_version_ = 0;
  std::atomic<bool> out_of_space_{false};
  std::atomic<int64_t> last_resume_ns_{0};
};

// Whether `status` says the disk is full (the write may succeed once space is freed).
bool isOutOfSpace(const rocksdb::Status& status);

}  // namespace pushhub::storage
