#include "storage/installation_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <rocksdb/db.h>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "storage/keys.h"
#include "tests/storage/test_installations.h"
#include "tests/support/temp_dir.h"

namespace pushhub::storage {
namespace {

using testing::apnsInstallation;
using ::testing::HasSubstr;

constexpr std::string_view kHub = "myhub";

class InstallationStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open(uint32_t partitions = 16) {
    store_.reset();
    database_.reset();
    StorageOptions options;
    options.data_dir = dir_.path() / "db";
    options.block_cache_bytes = 8 << 20;
    auto database = Database::open(options);
    ASSERT_TRUE(database.has_value()) << database.error();
    database_ = std::move(*database);
    StoreOptions store_options;
    store_options.partitions = partitions;
    store_options.clock = [this] { return now_; };
    auto store = InstallationStore::open(*database_, store_options);
    ASSERT_TRUE(store.has_value()) << store.error();
    store_ = std::move(*store);
  }

  WriteOutcome put(Installation in) {
    auto outcome = store_->upsert(kHub, std::move(in));
    EXPECT_TRUE(outcome.has_value()) << outcome.error().message;
    return outcome ? *outcome : WriteOutcome{};
  }

  std::optional<Installation> get(std::string_view id) {
    auto in = store_->get(kHub, id);
    EXPECT_TRUE(in.has_value());
    return in ? *in : std::nullopt;
  }

  uint64_t count(std::string_view expression, Audience audience = Audience::kAll) {
    auto parsed = TagExpression::parse(expression);
    EXPECT_TRUE(parsed.has_value()) << expression;
    auto compiled = store_->compile(kHub, *parsed);
    EXPECT_TRUE(compiled.has_value());
    return store_->count(kHub, *compiled, audience);
  }

  std::expected<WriteOutcome, StoreError> patch(std::string_view id, std::string_view json) {
    auto ops = parsePatchJson(json);
    EXPECT_TRUE(ops.has_value());
    return store_->patch(kHub, id, *ops);
  }

  pushhub::testing::TempDir dir_;
  std::unique_ptr<Database> database_;
  std::unique_ptr<InstallationStore> store_;
  UnixMillis now_ = 1'700'000'000'000;
};

TEST_F(InstallationStoreTest, ReadsItsOwnWritesAtOnce) {
  auto outcome = put(apnsInstallation("i1", {"sports"}));
  EXPECT_TRUE(outcome.created);
  EXPECT_EQ(outcome.installation.version, 1u);
  EXPECT_EQ(outcome.installation.last_update, now_);
  auto in = get("i1");
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->tags, std::vector<std::string>{"sports"});
  EXPECT_EQ(count("sports"), 1u);

  now_ += 1000;
  outcome = put(apnsInstallation("i1", {"news"}));
  EXPECT_FALSE(outcome.created);
  EXPECT_EQ(outcome.installation.version, 2u);
  EXPECT_EQ(count("sports"), 0u);
  EXPECT_EQ(count("news"), 1u);
  EXPECT_EQ(get("i1")->last_update, now_);
  EXPECT_FALSE(get("nope").has_value());
}

TEST_F(InstallationStoreTest, APartitionReaderFindsEachOrdinalInOrderAcrossGapsAndOutOfOrder) {
  store_.reset();
  database_.reset();
  std::filesystem::remove_all(dir_.path() / "db");
  open(1);  // one partition: ordinals 0..199 in creation order
  for (int i = 0; i < 200; ++i) put(apnsInstallation(fmt::format("i{}", i)));
  for (int i = 0; i < 200; i += 3) ASSERT_TRUE(*store_->remove(kHub, fmt::format("i{}", i)));
  auto reader = store_->reader(kHub, 0);
  // Ascending with short and long gaps, then backwards, then beyond the end.
  for (uint32_t ordinal : {1u, 2u, 3u, 4u, 5u, 50u, 51u, 190u, 10u, 0u, 199u, 500u}) {
    auto read = reader->read(ordinal);
    ASSERT_TRUE(read.has_value()) << read.error().message;
    auto expected = store_->getByOrdinal(kHub, 0, ordinal);
    ASSERT_TRUE(expected.has_value());
    EXPECT_EQ(read->has_value(), expected->has_value()) << ordinal;
    if (read->has_value() && expected->has_value()) {
      EXPECT_EQ((*read)->id, (*expected)->id);
    }
  }
  EXPECT_FALSE(reader->read(3)->has_value());  // removed
  EXPECT_EQ((*reader->read(4))->id, "i4");
  // Another hub's partition is empty.
  EXPECT_FALSE(store_->reader("otherhub", 0)->read(4)->has_value());
}

TEST_F(InstallationStoreTest, StoresNothingInvalid) {
  auto outcome = store_->upsert(kHub, apnsInstallation("i1", {"bad tag"}));
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code, StoreError::Code::kInvalid);
  EXPECT_EQ(outcome.error().field, "tags/0");
  EXPECT_FALSE(get("i1").has_value());
  EXPECT_EQ(store_->installationCount(), 0u);
}

TEST_F(InstallationStoreTest, PatchIsAllOrNothing) {
  put(apnsInstallation("i1", {"a"}));
  auto bad = patch("i1", R"([{"op":"add","path":"/tags","value":"b"},
                             {"op":"add","path":"/tags","value":"not valid"}])");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, StoreError::Code::kInvalid);
  EXPECT_EQ(get("i1")->tags, std::vector<std::string>{"a"});
  EXPECT_EQ(count("b"), 0u);

  auto good =
      patch("i1", R"([{"op":"add","path":"/tags","value":"b"},{"op":"remove","path":"/tags/a"}])");
  ASSERT_TRUE(good.has_value()) << good.error().message;
  EXPECT_EQ(good->installation.version, 2u);
  EXPECT_EQ(get("i1")->tags, std::vector<std::string>{"b"});
  EXPECT_EQ(count("a"), 0u);
  EXPECT_EQ(count("b"), 1u);

  auto missing = patch("nope", R"([{"op":"add","path":"/tags","value":"b"}])");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, StoreError::Code::kNotFound);
}

TEST_F(InstallationStoreTest, RemoveTakesTheInstallationOutOfEverything) {
  Installation in = apnsInstallation("i1", {"a"});
  in.user_id = "bob";
  put(in);
  auto removed = store_->remove(kHub, "i1");
  ASSERT_TRUE(removed.has_value());
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(get("i1").has_value());
  EXPECT_EQ(count("a"), 0u);
  EXPECT_EQ(count("$UserId:{bob}"), 0u);
  EXPECT_EQ(count("$InstallationId:{i1}"), 0u);
  EXPECT_FALSE(*store_->remove(kHub, "i1"));
  // The handle is free again: claiming it releases no one.
  auto outcome = put(apnsInstallation("i2", {}, std::hash<std::string>{}("i1")));
  EXPECT_FALSE(outcome.released.has_value());
}

TEST_F(InstallationStoreTest, ASecondClaimOnAHandleExpiresTheFirstHolder) {
  put(apnsInstallation("old", {"sports"}, 777));
  auto outcome = put(apnsInstallation("new", {"sports"}, 777));
  ASSERT_TRUE(outcome.released.has_value());
  EXPECT_EQ(outcome.released->installation_id, "old");
  // Until the release is applied the old holder is still deliverable...
  EXPECT_EQ(count("sports", Audience::kDeliverable), 2u);
  ASSERT_TRUE(store_->applyHandleRelease(kHub, *outcome.released).has_value());
  // ...and then no longer: one device, one delivery.
  EXPECT_EQ(count("sports", Audience::kDeliverable), 1u);
  EXPECT_EQ(count("sports", Audience::kAll), 2u);
  auto old = get("old");
  EXPECT_TRUE(old->expired_push_channel);
  EXPECT_EQ(old->last_active_on, now_);
  EXPECT_FALSE(get("new")->expired_push_channel);

  // The old installation claims its handle again: now the new one is released.
  auto back = put(apnsInstallation("old", {"sports"}, 777));
  ASSERT_TRUE(back.released.has_value());
  EXPECT_EQ(back.released->installation_id, "new");
  ASSERT_TRUE(store_->applyHandleRelease(kHub, *back.released).has_value());
  EXPECT_FALSE(get("old")->expired_push_channel);
  EXPECT_TRUE(get("new")->expired_push_channel);
  EXPECT_EQ(count("sports", Audience::kDeliverable), 1u);
}

TEST_F(InstallationStoreTest, AStaleReleaseChangesNothing) {
  put(apnsInstallation("a", {}, 1));
  auto outcome = put(apnsInstallation("b", {}, 1));
  ASSERT_TRUE(outcome.released.has_value());
  // Before the release is applied, "a" moves to another handle: it must stay live.
  put(apnsInstallation("a", {}, 2));
  ASSERT_TRUE(store_->applyHandleRelease(kHub, *outcome.released).has_value());
  EXPECT_FALSE(get("a")->expired_push_channel);
}

TEST_F(InstallationStoreTest, ChangingItsOwnHandleFreesTheOldOne) {
  put(apnsInstallation("a", {}, 1));
  put(apnsInstallation("a", {}, 2));
  auto outcome = put(apnsInstallation("b", {}, 1));
  EXPECT_FALSE(outcome.released.has_value());
}

TEST_F(InstallationStoreTest, ResolvesUserIdAndInstallationIdBuiltIns) {
  for (int i = 0; i < 5; ++i) {
    Installation in = apnsInstallation("i" + std::to_string(i), {"t"});
    in.user_id = i < 3 ? "bob" : "carol";
    put(in);
  }
  EXPECT_EQ(count("$UserId:{bob}"), 3u);
  EXPECT_EQ(count("$UserId:{carol} || $InstallationId:{i0}"), 3u);
  EXPECT_EQ(count("t && !$UserId:{bob}"), 2u);
  ASSERT_TRUE(patch("i0", R"([{"op":"replace","path":"/userId","value":"carol"}])").has_value());
  EXPECT_EQ(count("$UserId:{bob}"), 2u);
  EXPECT_EQ(count("$UserId:{carol}"), 3u);
}

TEST_F(InstallationStoreTest, PagesThroughMatchesWithAStableContinuation) {
  for (int i = 0; i < 250; ++i)
    put(apnsInstallation("i" + std::to_string(i), {i % 2 ? "odd" : "even"}));
  auto expression = TagExpression::parse("even");
  auto compiled = *store_->compile(kHub, *expression);
  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = store_->query(kHub, compiled, token, 40);
    ASSERT_TRUE(page.has_value()) << page.error().message;
    for (const auto& in : page->installations) {
      EXPECT_TRUE(seen.insert(in.id).second) << "returned twice: " << in.id;
      EXPECT_EQ(in.tags, std::vector<std::string>{"even"});
    }
    token = page->continuation;
    ++pages;
  } while (!token.empty() && pages < 100);
  EXPECT_EQ(seen.size(), 125u);
  EXPECT_EQ(pages, 4);  // 40 + 40 + 40 + 5

  auto bad = store_->query(kHub, compiled, "garbage", 10);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, StoreError::Code::kInvalid);
  EXPECT_THAT(bad.error().message, HasSubstr("not a continuation token"));
}

TEST_F(InstallationStoreTest, ReopeningRebuildsTheSameIndex) {
  for (int i = 0; i < 300; ++i) {
    Installation in = apnsInstallation("i" + std::to_string(i), {"t" + std::to_string(i % 7)});
    in.templates["tmpl" + std::to_string(i % 3)] = {"{}", {}, "", {}};
    if (i % 5 == 0) in.user_id = "u" + std::to_string(i % 4);
    put(in);
  }
  for (int i = 0; i < 300; i += 11) ASSERT_TRUE(*store_->remove(kHub, "i" + std::to_string(i)));
  std::vector<std::string> expressions = {"t0", "t3 || tmpl1", "!t2 && tmpl0", "$UserId:{u1}",
                                          "t6 && !tmpl2"};
  std::vector<uint64_t> before;
  for (const auto& e : expressions) before.push_back(count(e));
  const uint64_t installations = store_->installationCount();

  open();
  EXPECT_EQ(store_->installationCount(), installations);
  for (size_t i = 0; i < expressions.size(); ++i)
    EXPECT_EQ(count(expressions[i]), before[i]) << expressions[i];
  // Freed ordinals are reused after the rebuild, lowest first, so the index stays dense.
  const uint32_t partition = store_->partitionOf(kHub, "newcomer");
  const Roaring& used = store_->partitionIndex(kHub, partition)->all();
  uint32_t lowest_free = 0;
  while (used.contains(lowest_free)) ++lowest_free;
  put(apnsInstallation("newcomer", {"fresh"}));
  auto compiled = *store_->compile(kHub, *TagExpression::parse("fresh"));
  const Roaring hit = store_->match(kHub, partition, compiled, Audience::kAll);
  ASSERT_EQ(hit.cardinality(), 1u);
  EXPECT_EQ(hit.minimum(), lowest_free);
}

TEST_F(InstallationStoreTest, RefusesADifferentPartitionCount) {
  store_.reset();
  StoreOptions options;
  options.partitions = 32;
  auto store = InstallationStore::open(*database_, options);
  ASSERT_FALSE(store.has_value());
  EXPECT_THAT(store.error(), HasSubstr("was created with 16 partitions, not 32"));
}

TEST_F(InstallationStoreTest, RefusesAnImpossiblePartitionCount) {
  store_.reset();
  for (const uint32_t partitions : {0u, 65537u}) {
    StoreOptions options;
    options.partitions = partitions;
    auto store = InstallationStore::open(*database_, options);
    ASSERT_FALSE(store.has_value());
    EXPECT_THAT(store.error(), HasSubstr("the partition count must be 1 to 65536"));
  }
}

TEST_F(InstallationStoreTest, FinishesAReleaseACrashInterrupted) {
  put(apnsInstallation("old", {}, 5));
  auto outcome = put(apnsInstallation("new", {}, 5));
  ASSERT_TRUE(outcome.released.has_value());
  // Crash before the release is applied: it was stored with the claim, so reopening finishes it.
  open();
  EXPECT_TRUE(get("old")->expired_push_channel);
  EXPECT_EQ(count("$InstallationId:{old}", Audience::kDeliverable), 0u);
}

TEST_F(InstallationStoreTest, SkipsAndCountsAnUnreadableRecordOnRebuild) {
  put(apnsInstallation("good", {"x"}));
  const uint32_t partition = store_->partitionOf(kHub, "zzz");
  ASSERT_TRUE(database_->db()
                  .Put(database_->writeOptions(), database_->handle(ColumnFamily::kInstallations),
                       recordKey(kHub, partition, 999), "\xc1 not msgpack")
                  .ok());
  open();
  EXPECT_EQ(store_->unreadableRecords(), 1u);
  EXPECT_EQ(count("x"), 1u);
}

TEST_F(InstallationStoreTest, WritersOnDifferentPartitionsRunInParallel) {
  // Each thread owns the partitions p with p % 2 == thread, as shards will.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (uint32_t t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string id = "d" + std::to_string(i);
        if (store_->partitionOf(kHub, id) % 2 != t) continue;
        if (!store_->upsert(kHub, apnsInstallation(id, {"all", "t" + std::to_string(i % 10)})))
          ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(count("all"), 2000u);
  EXPECT_EQ(count("t3"), 200u);
}

// Conditional writes (registration ETags) see what is stored, under the partition lock; a refusal
// writes nothing and answers the precondition's error.
TEST_F(InstallationStoreTest, APreconditionSeesTheStoredVersionAndARefusalWritesNothing) {
  const auto refuseUnless = [](uint64_t version) -> WritePrecondition {
    return [version](const std::optional<Installation>& stored) -> std::optional<StoreError> {
      if (stored && stored->version == version) return std::nullopt;
      return StoreError{StoreError::Code::kPreconditionFailed, "changed", {}};
    };
  };
  ASSERT_TRUE(store_->upsert(kHub, apnsInstallation("p1", {"a"}, 1)).has_value());
  auto refused = store_->upsert(kHub, apnsInstallation("p1", {"b"}, 1), refuseUnless(7));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, StoreError::Code::kPreconditionFailed);
  EXPECT_EQ((*store_->get(kHub, "p1"))->tags, std::vector<std::string>{"a"});
  EXPECT_EQ((*store_->get(kHub, "p1"))->version, 1u);
  auto accepted = store_->upsert(kHub, apnsInstallation("p1", {"b"}, 1), refuseUnless(1));
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(accepted->installation.version, 2u);
  // Nothing stored: the precondition sees nullopt, and a refused create stores nothing.
  EXPECT_FALSE(store_->upsert(kHub, apnsInstallation("p2", {"a"}, 2), refuseUnless(1)));
  EXPECT_FALSE(*store_->get(kHub, "p2"));
  EXPECT_FALSE(store_->remove(kHub, "p1", refuseUnless(1)).has_value());
  EXPECT_TRUE(*store_->get(kHub, "p1"));
  EXPECT_TRUE(*store_->remove(kHub, "p1", refuseUnless(2)));
  EXPECT_FALSE(*store_->get(kHub, "p1"));
  EXPECT_EQ(store_->installationCount(), 0u);
}

// A batch answers and stores exactly what the same upserts would one at a time, including
// repeated ids and handle claims inside one batch, and an invalid installation fails alone.
TEST_F(InstallationStoreTest, ABatchEqualsTheSameUpsertsInOrder) {
  // 256 partitions and batches of up to 100 over 150 ids: most batches span more than the 32
  // partitions one write locks, so they are written in several runs, in order.
  store_.reset();
  database_.reset();
  std::filesystem::remove_all(dir_.path() / "db");
  open(256);
  constexpr std::string_view kBatched = "batched";
  constexpr std::string_view kSingle = "single";
  std::mt19937 rng(7);
  const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  std::set<std::string> ids;
  for (int round = 0; round < 60; ++round) {
    std::vector<Installation> batch;
    const int size = 1 + pick(round % 2 == 0 ? 12 : 100);
    for (int i = 0; i < size; ++i) {
      Installation in = apnsInstallation("d" + std::to_string(pick(round % 2 == 0 ? 25 : 150)),
                                         {"t" + std::to_string(pick(5))}, 1 + pick(15));
      if (pick(3) == 0) in.user_id = "u" + std::to_string(pick(4));
      if (pick(20) == 0) in.push_channel.clear();  // invalid
      ids.insert(in.id);
      batch.push_back(std::move(in));
    }
    std::vector<HandleRelease> single_releases;
    std::vector<std::expected<WriteOutcome, StoreError>> singles;
    for (const auto& in : batch) {
      singles.push_back(store_->upsert(kSingle, in));
      if (singles.back() && singles.back()->released) {
        single_releases.push_back(*singles.back()->released);
      }
    }
    auto batched = store_->upsertBatch(kBatched, batch);
    ASSERT_EQ(batched.size(), singles.size());
    for (size_t i = 0; i < batched.size(); ++i) {
      ASSERT_EQ(batched[i].has_value(), singles[i].has_value()) << "round " << round << " #" << i;
      if (!batched[i]) {
        EXPECT_EQ(batched[i].error().field, singles[i].error().field);
        continue;
      }
      EXPECT_EQ(batched[i]->created, singles[i]->created);
      EXPECT_EQ(batched[i]->installation.version, singles[i]->installation.version);
      ASSERT_EQ(batched[i]->released.has_value(), singles[i]->released.has_value());
      if (batched[i]->released) {
        EXPECT_EQ(batched[i]->released->installation_id, singles[i]->released->installation_id);
        ASSERT_TRUE(store_->applyHandleRelease(kBatched, *batched[i]->released).has_value());
      }
    }
    for (const auto& release : single_releases) {
      ASSERT_TRUE(store_->applyHandleRelease(kSingle, release).has_value());
    }
    now_ += 1000;
  }
  const auto same_everywhere = [&] {
    for (const auto& id : ids) {
      auto a = store_->get(kBatched, id);
      auto b = store_->get(kSingle, id);
      ASSERT_TRUE(a && b);
      ASSERT_EQ(a->has_value(), b->has_value()) << id;
      if (!*a) continue;
      EXPECT_EQ((*a)->push_channel, (*b)->push_channel) << id;
      EXPECT_EQ((*a)->tags, (*b)->tags) << id;
      EXPECT_EQ((*a)->user_id, (*b)->user_id) << id;
      EXPECT_EQ((*a)->version, (*b)->version) << id;
      EXPECT_EQ((*a)->expired_push_channel, (*b)->expired_push_channel) << id;
    }
    for (std::string expression : {"t0", "t1 || t2", "!t3", "$UserId:{u1}", "$UserId:{u2} && t4"}) {
      auto parsed = TagExpression::parse(expression);
      for (auto audience : {Audience::kAll, Audience::kDeliverable}) {
        EXPECT_EQ(store_->count(kBatched, *store_->compile(kBatched, *parsed), audience),
                  store_->count(kSingle, *store_->compile(kSingle, *parsed), audience))
            << expression;
      }
    }
  };
  same_everywhere();
  open(256);  // and the index rebuilt from what the batches wrote agrees too
  same_everywhere();
}

// Two shards batch-claiming the same handles from their own partitions: once the releases are
// applied, every handle has exactly one deliverable installation.
TEST_F(InstallationStoreTest, ConcurrentBatchClaimsLeaveOneHolderPerHandle) {
  std::mutex releases_mutex;
  std::vector<HandleRelease> releases;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Installation> batch;
      for (int i = 0; i < 12000; ++i) {
        const std::string id = "d" + std::to_string(i % 400);
        if (store_->partitionOf(kHub, id) % 2 != t) continue;
        batch.push_back(apnsInstallation(id, {"all"}, 1 + (i * 7 + t) % 30));
        if (batch.size() < 16) continue;
        for (auto& outcome : store_->upsertBatch(kHub, std::move(batch))) {
          if (!outcome) {
            ++failures;
          } else if (outcome->released) {
            std::lock_guard lock(releases_mutex);
            releases.push_back(*outcome->released);
          }
        }
        batch.clear();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (const auto& release : releases) {
    ASSERT_TRUE(store_->applyHandleRelease(kHub, release).has_value());
  }
  std::map<std::string, int> live_per_handle;
  for (int i = 0; i < 400; ++i) {
    auto in = get("d" + std::to_string(i));
    if (in && !in->expired_push_channel) ++live_per_handle[in->push_channel];
  }
  EXPECT_EQ(live_per_handle.size(), 30u);
  for (const auto& [handle, live] : live_per_handle) EXPECT_EQ(live, 1) << handle;
  EXPECT_EQ(count("all", Audience::kDeliverable), 30u);
}

TEST_F(InstallationStoreTest, KeepsHubsApart) {
  put(apnsInstallation("i1", {"a"}));
  ASSERT_TRUE(store_->upsert("otherhub", apnsInstallation("i1", {"b"})).has_value());
  EXPECT_EQ(count("a"), 1u);
  EXPECT_EQ(count("b"), 0u);
  EXPECT_EQ(get("i1")->tags, std::vector<std::string>{"a"});
  EXPECT_EQ((*store_->get("otherhub", "i1"))->tags, std::vector<std::string>{"b"});
}

}  // namespace
}  // namespace pushhub::storage
