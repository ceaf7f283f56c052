// Test helper for storage crash tests: writes installations to the store in DATA_DIR forever (or
// until COUNT operations), printing "begin OP ID" before each operation and "ack OP ID" once the
// store has acknowledged it. The test kills it with SIGKILL at a random moment.
//   storage_crash_writer DATA_DIR [COUNT]
#include <cstdio>
#include <string>

#include "storage/installation_store.h"
#include "tests/storage/test_installations.h"

using namespace pushhub::storage;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: storage_crash_writer DATA_DIR [COUNT]\n");
    return 2;
  }
  const long limit = argc > 2 ? std::stol(argv[2]) : -1;
  StorageOptions options;
  options.data_dir = argv[1];
  auto database = Database::open(options);
  if (!database) {
    std::fprintf(stderr, "%s\n", database.error().c_str());
    return 1;
  }
  StoreOptions store_options;
  store_options.partitions = 16;
  auto store = InstallationStore::open(**database, store_options);
  if (!store) {
    std::fprintf(stderr, "%s\n", store->get() ? "" : store.error().c_str());
    return 1;
  }
  for (long n = 0; limit < 0 || n < limit; ++n) {
    // Every tenth operation deletes an installation written five steps earlier; the rest put a
    // new one with a few tags, and every seventh re-puts an earlier one with other tags.
    std::string op = "put";
    std::string id = "c" + std::to_string(n);
    std::vector<std::string> tags = {"all", "m" + std::to_string(n % 13)};
    if (n % 10 == 9) {
      op = "del";
      id = "c" + std::to_string(n - 5);
    } else if (n % 7 == 6) {
      id = "c" + std::to_string(n - 3);
      tags = {"all", "updated"};
    }
    std::printf("begin %s %s\n", op.c_str(), id.c_str());
    std::fflush(stdout);
    bool ok;
    if (op == "del") {
      ok = (*store)->remove("crashhub", id).has_value();
    } else {
      auto outcome = (*store)->upsert("crashhub", testing::apnsInstallation(id, tags));
      ok = outcome.has_value();
      if (ok && outcome->released)
        ok = (*store)->applyHandleRelease("crashhub", *outcome->released).has_value();
    }
    if (!ok) {
      std::fprintf(stderr, "operation %ld failed\n", n);
      return 1;
    }
    std::printf("ack %s %s\n", op.c_str(), id.c_str());
    std::fflush(stdout);
  }
  return 0;
}
