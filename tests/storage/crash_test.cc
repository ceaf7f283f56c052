// A writer process is killed with SIGKILL in the middle of a stream of writes; every write it had
// acknowledged must be there after reopening, and the rebuilt index must agree with the records.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <signal.h>

#include <map>
#include <sstream>

#include "storage/installation_store.h"
#include "storage/keys.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace pushhub::storage {
namespace {

using namespace std::chrono_literals;

struct Op {
  std::string op, id;
};

TEST(StorageCrash, AcknowledgedWritesSurviveKill9AndTheIndexMatchesTheRecords) {
  pushhub::testing::TempDir dir;
  const std::string data = (dir.path() / "db").string();
  std::map<std::string, bool> present;  // acknowledged state per id
  std::optional<Op> in_flight;
  for (int round = 0; round < 3; ++round) {
    pushhub::testing::ChildProcess writer(STORAGE_CRASH_WRITER, {data});
    // Let it run for a while (a few thousand operations), then kill it mid-stream.
    ASSERT_TRUE(
        writer.waitForLine("ack put c" + std::to_string(1500 * (round + 1)), 60s).has_value())
        << writer.output();
    writer.sendSignal(SIGKILL);
    ASSERT_TRUE(writer.waitForExit(10s).has_value());
    writer.drainOutput(2s);

    std::istringstream lines(writer.output());
    std::string word, op, id;
    in_flight.reset();
    while (lines >> word >> op >> id) {
      if (word == "begin") {
        in_flight = Op{op, id};
      } else if (word == "ack") {
        present[id] = op == "put";
        in_flight.reset();
      }
    }
    // The writer restarts from c0 each round: later rounds overwrite the same ids.
  }

  StorageOptions options;
  options.data_dir = data;
  auto database = Database::open(options);
  ASSERT_TRUE(database.has_value()) << database.error();
  StoreOptions store_options;
  store_options.partitions = 16;
  auto store = InstallationStore::open(**database, store_options);
  ASSERT_TRUE(store.has_value()) << store.error();

  size_t checked = 0;
  for (const auto& [id, should_exist] : present) {
    if (in_flight && in_flight->id == id)
      continue;  // its last operation may or may not have landed
    auto in = (*store)->get("crashhub", id);
    ASSERT_TRUE(in.has_value());
    EXPECT_EQ(in->has_value(), should_exist) << id;
    ++checked;
  }
  EXPECT_GT(checked, 1000u);

  // The index rebuilt on open agrees with the records on disk, tag by tag.
  std::map<std::string, uint64_t> per_tag;
  uint64_t records = 0;
  auto& db = (*database)->db();
  std::unique_ptr<rocksdb::Iterator> it(
      db.NewIterator(rocksdb::ReadOptions(), (*database)->handle(ColumnFamily::kInstallations)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto in = decodeInstallation(it->value().ToStringView());
    ASSERT_TRUE(in.has_value()) << in.error();
    for (const auto& tag : in->tags) ++per_tag[tag];
    ++records;
    // Every record is reachable through its id.
    auto expression = TagExpression::parse("$InstallationId:{" + in->id + "}");
    auto compiled = (*store)->compile("crashhub", *expression);
    ASSERT_EQ((*store)->count("crashhub", *compiled, Audience::kAll), 1u) << in->id;
  }
  EXPECT_EQ((*store)->installationCount(), records);
  for (const auto& [tag, n] : per_tag) {
    auto compiled = (*store)->compile("crashhub", *TagExpression::parse(tag));
    EXPECT_EQ((*store)->count("crashhub", *compiled, Audience::kAll), n) << tag;
  }
  EXPECT_EQ((*store)->unreadableRecords(), 0u);
}

}  // namespace
}  // namespace pushhub::storage
