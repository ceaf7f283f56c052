#include "storage/database.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace pushhub::storage {
namespace {

using pushhub::testing::TempDir;
using ::testing::HasSubstr;

StorageOptions optionsIn(const TempDir& dir) {
  StorageOptions options;
  options.data_dir = dir.path() / "db";
  options.block_cache_bytes = 8 << 20;
  return options;
}

TEST(Database, CreatesTheDirectoryAndEveryColumnFamily) {
  TempDir dir;
  auto db = Database::open(optionsIn(dir));
  ASSERT_TRUE(db.has_value()) << db.error();
  EXPECT_EQ((*db)->formatVersion(), kFormatVersion);
  for (size_t i = 0; i < kColumnFamilyCount; ++i) {
    auto* handle = (*db)->handle(static_cast<ColumnFamily>(i));
    ASSERT_NE(handle, nullptr);
    EXPECT_EQ(handle->GetName(), columnFamilyName(static_cast<ColumnFamily>(i)));
  }
}

TEST(Database, KeepsWritesAcrossReopen) {
  TempDir dir;
  {
    auto db = Database::open(optionsIn(dir));
    ASSERT_TRUE(db.has_value()) << db.error();
    auto& d = **db;
    ASSERT_TRUE(
        d.db().Put(d.writeOptions(), d.handle(ColumnFamily::kInstallations), "k", "v").ok());
  }
  auto db = Database::open(optionsIn(dir));
  ASSERT_TRUE(db.has_value()) << db.error();
  std::string value;
  auto& d = **db;
  ASSERT_TRUE(
      d.db().Get(rocksdb::ReadOptions(), d.handle(ColumnFamily::kInstallations), "k", &value).ok());
  EXPECT_EQ(value, "v");
}

TEST(Database, RefusesADirectoryAlreadyInUse) {
  TempDir dir;
  auto first = Database::open(optionsIn(dir));
  ASSERT_TRUE(first.has_value()) << first.error();
  auto second = Database::open(optionsIn(dir));
  ASSERT_FALSE(second.has_value());
  EXPECT_THAT(second.error(), HasSubstr("is in use by another pushhub process"));
}

TEST(Database, RefusesADatabaseFromANewerFormat) {
  TempDir dir;
  {
    auto db = Database::open(optionsIn(dir));
    ASSERT_TRUE(db.has_value());
    auto& d = **db;
    ASSERT_TRUE(d.db()
                    .Put(d.writeOptions(), d.handle(ColumnFamily::kMeta), "pushhub.format_version",
                         std::to_string(kFormatVersion + 1))
                    .ok());
  }
  auto db = Database::open(optionsIn(dir));
  ASSERT_FALSE(db.has_value());
  EXPECT_THAT(db.error(), HasSubstr("was written by a newer pushhub"));
}

TEST(Database, RefusesAnUnreadableFormatVersion) {
  TempDir dir;
  {
    auto db = Database::open(optionsIn(dir));
    ASSERT_TRUE(db.has_value());
    auto& d = **db;
    ASSERT_TRUE(
        d.db()
            .Put(d.writeOptions(), d.handle(ColumnFamily::kMeta), "pushhub.format_version", "x1")
            .ok());
  }
  auto db = Database::open(optionsIn(dir));
  ASSERT_FALSE(db.has_value());
  EXPECT_THAT(db.error(), HasSubstr("unreadable format version 'x1'"));
}

TEST(Database, ReportsADataDirectoryThatCannotBeCreated) {
  TempDir dir;
  StorageOptions options = optionsIn(dir);
  // A regular file where the directory should be.
  { std::ofstream(dir.path() / "file") << "x"; }
  options.data_dir = dir.path() / "file" / "db";
  auto db = Database::open(options);
  ASSERT_FALSE(db.has_value());
  EXPECT_THAT(db.error(), HasSubstr("cannot create data directory"));
}

}  // namespace
}  // namespace pushhub::storage
