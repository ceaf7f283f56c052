// Storage benchmarks: upserts through the store, tag-expression evaluation over the in-memory
// index, and index rebuild from RocksDB. Names and shapes are fixed by the storage issue so that
// results stay comparable; see bench/RESULTS.md for the figures and the commands.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "storage/installation_store.h"
#include "storage/keys.h"

#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>

namespace {

using namespace pushhub::storage;

constexpr uint32_t kPartitions = 256;
constexpr uint32_t kDistinctTags = 10'000;
constexpr uint32_t kTagsPerInstallation = 5;

size_t residentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Zipf(s = 1) over kDistinctTags tags: tag k (0-based) has weight 1 / (k + 1).
class ZipfTags {
 public:
  ZipfTags() {
    double total = 0;
    cdf_.reserve(kDistinctTags);
    for (uint32_t k = 0; k < kDistinctTags; ++k) cdf_.push_back(total += 1.0 / (k + 1));
    for (auto& c : cdf_) c /= total;
  }
  uint32_t operator()(std::mt19937_64& rng) const {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return static_cast<uint32_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

std::string tagName(uint32_t k) { return "tag" + std::to_string(k); }

std::string apnsToken(uint64_t n) {
  return fmt::format("{:016x}{:016x}{:016x}{:016x}", n, n * 0x9e3779b97f4a7c15ull, ~n,
                     n ^ 0xabcdef);
}

Installation benchInstallation(uint64_t n, std::mt19937_64& rng, const ZipfTags& zipf) {
  Installation in;
  in.id = fmt::format("device-{:012}", n);
  in.platform = n % 10 < 7 ? Platform::kApns : Platform::kFcmV1;
  in.push_channel = in.platform == Platform::kApns ? apnsToken(n) : "fcm:" + apnsToken(n);
  if (n % 4 == 0) in.user_id = fmt::format("user{}", n / 4);
  while (in.tags.size() < kTagsPerInstallation) {
    in.tags.push_back(tagName(zipf(rng)));
    in.normalize();
  }
  in.templates["generic"] = {R"j({"aps":{"alert":"$(message)","badge":"#(badge)"}})j", {}, "", {}};
  if (in.platform == Platform::kFcmV1) {
    in.templates["generic"].body = R"j({"message":{"notification":{"body":"$(message)"}}})j";
  }
  return in;
}

// --- BM_InstallationUpsert ----------------------------------------------------------------------

struct UpsertFixture {
  std::filesystem::path dir;
  std::unique_ptr<Database> database;
  std::unique_ptr<InstallationStore> store;
  ZipfTags zipf;
  std::atomic<uint64_t> next{0};

  UpsertFixture() {
    dir = std::filesystem::temp_directory_path() / fmt::format("pushhub-bench-upsert-{}", getpid());
    std::filesystem::remove_all(dir);
    StorageOptions options;
    options.data_dir = dir;
    database = std::move(*Database::open(options));
    StoreOptions store_options;
    store_options.partitions = kPartitions;
    store = std::move(*InstallationStore::open(*database, store_options));
  }
  ~UpsertFixture() {
    store.reset();
    database.reset();
    std::filesystem::remove_all(dir);
  }
};

std::mutex g_upsert_mutex;
std::shared_ptr<UpsertFixture> g_upsert;

constexpr int64_t kUpsertsPerThread = 150'000;

// Storage-level upserts with one thread per core, each thread writing only the partitions it
// owns, as the shards will. Installations have 5 Zipf tags and one template and are prepared
// before the timed loop. range(0) = 0: every upsert creates a new installation; 1: every upsert
// overwrites an existing one with other tags (index entries removed and added again).
void BM_InstallationUpsert(benchmark::State& state) {
  std::shared_ptr<UpsertFixture> fixture;
  {
    std::lock_guard lock(g_upsert_mutex);
    if (!g_upsert) g_upsert = std::make_shared<UpsertFixture>();
    fixture = g_upsert;
  }
  const bool overwrite = state.range(0) == 1;
  const auto threads = static_cast<uint32_t>(state.threads());
  const auto me = static_cast<uint32_t>(state.thread_index());
  std::mt19937_64 rng(1234 + me);
  std::vector<Installation> prepared;
  prepared.reserve(kUpsertsPerThread);
  while (prepared.size() < static_cast<size_t>(kUpsertsPerThread)) {
    const uint64_t n = fixture->next++;
    Installation in = benchInstallation(n, rng, fixture->zipf);
    if (fixture->store->partitionOf("benchhub", in.id) % threads == me)
      prepared.push_back(std::move(in));
  }
  if (overwrite) {
    // Store them first, then time overwrites with fresh tags.
    for (const auto& in : prepared) {
      if (!fixture->store->upsert("benchhub", in)) std::abort();
    }
    for (auto& in : prepared) {
      in.tags.clear();
      while (in.tags.size() < kTagsPerInstallation) {
        in.tags.push_back(tagName(fixture->zipf(rng)));
        in.normalize();
      }
    }
  }
  // range(1) = batch size: 1 is one upsert() per write; more is upsertBatch(), as a shard commits
  // the writes queued in one loop turn. An iteration is one batch.
  const auto batch_size = static_cast<size_t>(state.range(1));
  size_t i = 0;
  for (auto _ : state) {
    if (batch_size == 1) {
      auto outcome = fixture->store->upsert("benchhub", std::move(prepared[i++]));
      if (!outcome) state.SkipWithError(outcome.error().message.c_str());
      continue;
    }
    std::vector<Installation> batch(
        std::make_move_iterator(prepared.begin() + static_cast<ptrdiff_t>(i)),
        std::make_move_iterator(prepared.begin() + static_cast<ptrdiff_t>(i + batch_size)));
    i += batch_size;
    for (auto& outcome : fixture->store->upsertBatch("benchhub", std::move(batch))) {
      if (!outcome) state.SkipWithError(outcome.error().message.c_str());
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch_size));
  state.SetLabel(overwrite ? "overwrite" : "create");
  prepared.clear();
  fixture.reset();
  std::lock_guard lock(g_upsert_mutex);
  if (g_upsert.use_count() == 1) g_upsert.reset();  // the last thread closes the store
}
// Iterations are batches, so each batch size is its own registration (Google Benchmark sets
// iterations per registration, not per argument set).
[[maybe_unused]] const bool g_upsert_registered = [] {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int64_t batch : {1, 16, 64, 256}) {
    auto* b = benchmark::RegisterBenchmark("BM_InstallationUpsert", BM_InstallationUpsert)
                  ->Args({0, batch})
                  ->Args({1, batch})
                  ->Threads(1);
    if (cores > 1) b->Threads(cores);
    b->Iterations(kUpsertsPerThread / batch)->UseRealTime();
  }
  return true;
}();

// --- BM_TagExpressionEval ------------------------------------------------------------------------

struct EvalIndex {
  TagDictionary dictionary;
  std::vector<PartitionIndex> partitions{kPartitions};
  size_t bytes_measured = 0;  // RSS growth while building
  size_t bytes_estimated = 0;
};

std::map<int64_t, std::unique_ptr<EvalIndex>> g_eval_indexes;

// The index for `installations` devices, built in memory (no RocksDB) once per size.
EvalIndex& evalIndex(int64_t installations) {
  auto& slot = g_eval_indexes[installations];
  if (slot) return *slot;
  g_eval_indexes.clear();  // one size in memory at a time
  const size_t rss_before = residentBytes();
  auto index = std::make_unique<EvalIndex>();
  ZipfTags zipf;
  std::mt19937_64 rng(42);
  std::vector<uint32_t> tag_ids(kDistinctTags);
  for (uint32_t k = 0; k < kDistinctTags; ++k) tag_ids[k] = index->dictionary.intern(tagName(k));
  for (int64_t n = 0; n < installations; ++n) {
    IndexEntry entry;
    entry.platform = n % 10 < 7 ? Platform::kApns : Platform::kFcmV1;
    while (entry.tag_ids.size() < kTagsPerInstallation) {
      const uint32_t id = tag_ids[zipf(rng)];
      if (std::find(entry.tag_ids.begin(), entry.tag_ids.end(), id) == entry.tag_ids.end()) {
        entry.tag_ids.push_back(id);
      }
    }
    const auto partition =
        static_cast<uint32_t>((static_cast<uint64_t>(n) * 0x9e3779b97f4a7c15ull) >> 56);
    PartitionIndex& p = index->partitions[partition];
    p.add(p.allocateOrdinal(), entry);
  }
  for (auto& p : index->partitions) {
    p.finishRebuild();
    index->bytes_estimated += p.memoryBytes();
  }
  index->bytes_measured = residentBytes() - rss_before;
  slot = std::move(index);
  return *slot;
}

// An expression naming `tags` tags, ORs of small groups ANDed together with a few negations:
// "(t1 || t2 || t3) && (t4 || t5) && !t6", tag ranks drawn by Zipf with a fixed seed.
std::string benchExpression(int tags) {
  ZipfTags zipf;
  std::mt19937_64 rng(7 + tags);
  if (tags == 1) return tagName(zipf(rng));
  std::string out;
  int written = 0, group = 0;
  while (written < tags) {
    const int left = tags - written;
    if (group > 0) out += " && ";
    if (group % 3 == 2 && left >= 1) {  // every third term is a negation
      out += "!" + tagName(zipf(rng));
      ++written;
    } else {
      const int size = std::min(left, 2 + group % 4);
      out += "(";
      for (int i = 0; i < size; ++i) out += (i ? " || " : "") + tagName(zipf(rng));
      out += ")";
      written += size;
    }
    ++group;
  }
  return out;
}

void BM_TagExpressionEval(benchmark::State& state) {
  EvalIndex& index = evalIndex(state.range(0));
  const std::string text = benchExpression(static_cast<int>(state.range(1)));
  auto expression = TagExpression::parse(text);
  if (!expression) {
    state.SkipWithError(expression.error().message.c_str());
    return;
  }
  uint64_t matched = 0;
  for (auto _ : state) {
    // Compile once per notification, evaluate every partition: what a send does.
    const auto compiled = CompiledExpression::compile(
        *expression, index.dictionary,
        [](const TagExpressionNode&) { return std::vector<std::pair<uint32_t, uint32_t>>{}; });
    matched = 0;
    for (uint32_t p = 0; p < kPartitions; ++p) {
      matched += compiled.evaluate(index.partitions[p], p).cardinality();
    }
    benchmark::DoNotOptimize(matched);
  }
  state.counters["matched"] = static_cast<double>(matched);
  state.counters["index_bytes_per_installation_rss"] =
      static_cast<double>(index.bytes_measured) / static_cast<double>(state.range(0));
  state.counters["index_bytes_per_installation_est"] =
      static_cast<double>(index.bytes_estimated) / static_cast<double>(state.range(0));
  state.SetLabel(text.size() > 60 ? text.substr(0, 57) + "..." : text);
}
BENCHMARK(BM_TagExpressionEval)
    ->ArgsProduct({{1'000'000, 10'000'000}, {1, 6, 20, 100}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

// --- BM_IndexRebuild -----------------------------------------------------------------------------

// A data directory with `installations` devices, kept between runs (under $PUSHHUB_BENCH_DIR or
// /tmp). The records are written as sorted SST files and ingested (RocksDB's bulk-load path)
// rather than through the store: what is measured is the rebuild, which reads only the records,
// and writing 10M through the store takes far longer than the benchmark (see bench/RESULTS.md).
std::filesystem::path rebuildData(int64_t installations) {
  const char* base = std::getenv("PUSHHUB_BENCH_DIR");
  const auto dir = std::filesystem::path(base != nullptr ? base : "/tmp") /
                   fmt::format("pushhub-bench-rebuild-{}", installations);
  if (std::filesystem::exists(dir / "complete")) return dir;
  std::filesystem::remove_all(dir);
  StorageOptions options;
  options.data_dir = dir;
  auto database = std::move(*Database::open(options));
  // Claim the partition count the benchmark opens with.
  {
    StoreOptions store_options;
    store_options.partitions = kPartitions;
    (void)*InstallationStore::open(*database, store_options);
  }
  // Spread devices over partitions the way the store does, then write each column family's
  // keys in order.
  std::vector<std::vector<uint64_t>> by_partition(kPartitions);
  for (int64_t n = 0; n < installations; ++n) {
    by_partition[partitionOf("benchhub", fmt::format("device-{:012}", n), kPartitions)].push_back(
        static_cast<uint64_t>(n));
  }
  ZipfTags zipf;
  std::mt19937_64 rng(99);
  rocksdb::SstFileWriter records_writer{rocksdb::EnvOptions(), rocksdb::Options()};
  const auto records_file = (dir / "bulk-records.sst").string();
  if (!records_writer.Open(records_file).ok()) std::abort();
  std::vector<std::pair<std::string, std::string>> ids;  // sorted per partition below
  for (uint32_t p = 0; p < kPartitions; ++p) {
    std::vector<std::pair<std::string, std::string>> partition_ids;
    for (uint32_t ordinal = 0; ordinal < by_partition[p].size(); ++ordinal) {
      Installation in = benchInstallation(by_partition[p][ordinal], rng, zipf);
      in.version = 1;
      if (!records_writer.Put(recordKey("benchhub", p, ordinal), encodeInstallation(in)).ok())
        std::abort();
      std::string value;
      appendBigEndian32(value, ordinal);
      partition_ids.emplace_back(idKey("benchhub", p, in.id), std::move(value));
    }
    std::sort(partition_ids.begin(), partition_ids.end());
    for (auto& entry : partition_ids) ids.push_back(std::move(entry));
  }
  if (!records_writer.Finish().ok()) std::abort();
  rocksdb::SstFileWriter ids_writer{rocksdb::EnvOptions(), rocksdb::Options()};
  const auto ids_file = (dir / "bulk-ids.sst").string();
  if (!ids_writer.Open(ids_file).ok()) std::abort();
  for (const auto& [key, value] : ids) {
    if (!ids_writer.Put(key, value).ok()) std::abort();
  }
  if (!ids_writer.Finish().ok()) std::abort();
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  if (!database->db()
           .IngestExternalFile(database->handle(ColumnFamily::kInstallations), {records_file},
                               ingest)
           .ok() ||
      !database->db()
           .IngestExternalFile(database->handle(ColumnFamily::kInstallationIds), {ids_file}, ingest)
           .ok()) {
    std::abort();
  }
  database.reset();
  std::ofstream(dir / "complete") << installations << "\n";
  return dir;
}

void BM_IndexRebuild(benchmark::State& state) {
  const auto dir = rebuildData(state.range(0));
  uint64_t installations = 0;
  size_t index_bytes = 0;
  for (auto _ : state) {
    StorageOptions options;
    options.data_dir = dir;
    auto database = Database::open(options);
    if (!database) {
      state.SkipWithError(database.error().c_str());
      return;
    }
    StoreOptions store_options;
    store_options.partitions = kPartitions;
    auto store = InstallationStore::open(**database, store_options);
    if (!store) {
      state.SkipWithError(store.error().c_str());
      return;
    }
    installations = (*store)->installationCount();
    index_bytes = (*store)->indexMemoryBytes();
  }
  state.counters["installations"] = static_cast<double>(installations);
  state.counters["index_bytes_per_installation_est"] =
      static_cast<double>(index_bytes) / static_cast<double>(std::max<uint64_t>(installations, 1));
}
BENCHMARK(BM_IndexRebuild)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();

}  // namespace
