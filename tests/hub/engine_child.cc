// A process running the engine for the crash test (engine_crash_test.cc), which kills it with
// SIGKILL in the middle of a fan-out and starts it again.
//
//   engine_child DATA_DIR HUB_FILE APNS_PORT FCM_PORT send N   populate N devices, broadcast a
//                                                              template, run until it is done
//   engine_child DATA_DIR HUB_FILE APNS_PORT FCM_PORT resume   resume what is unfinished
//
// Prints "sent ID" once the notification is accepted, "done STATE TOTAL" when nothing is left.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/shard_set.h"
#include "hub/engine.h"
#include "storage/database.h"
#include "storage/installation_store.h"

using namespace pushhub;

namespace {

int fail(const std::string& why) {
  std::fprintf(stderr, "engine_child: %s\n", why.c_str());
  return 1;
}

storage::Installation device(size_t i) {
  storage::Installation in;
  in.id = fmt::format("dev-{}", i);
  in.tags = {fmt::format("t{}", i % 7)};
  storage::InstallationTemplate t;
  if (i % 10 < 7) {
    in.platform = storage::Platform::kApns;
    in.push_channel = fmt::format("a{:0>63x}", i);
    t.body = R"j({"aps":{"alert":"$(msg)"}})j";
  } else {
    in.platform = storage::Platform::kFcmV1;
    in.push_channel = fmt::format("cXq1:APA91bH{:x<140}", i);
    t.body = R"j({"message":{"data":{"msg":"$(msg)"}}})j";
  }
  in.templates["main"] = std::move(t);
  return in;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) return fail("usage: DATA_DIR HUB_FILE APNS_PORT FCM_PORT send N | resume");
  const std::string mode = argv[5];
  storage::StorageOptions storage_options;
  storage_options.data_dir = argv[1];
  auto database = storage::Database::open(storage_options);
  if (!database) return fail(database.error());
  storage::StoreOptions store_options;
  store_options.partitions = 64;
  auto store = storage::InstallationStore::open(**database, store_options);
  if (!store) return fail(store.error());

  auto def = hub::loadHubDefinition("demo", argv[2]);
  if (!def) return fail(def.error());
  def->apns->endpoint.port = static_cast<uint16_t>(std::stoi(argv[3]));
  def->fcm->endpoint.port = static_cast<uint16_t>(std::stoi(argv[4]));
  def->fcm->token_endpoint = fmt::format("https://localhost:{}/token", argv[4]);
  def->wns.reset();

  if (mode == "send") {
    const size_t n = std::stoul(argv[6]);
    for (size_t from = 0; from < n; from += 5000) {
      std::vector<storage::Installation> batch;
      for (size_t i = from; i < std::min(n, from + 5000); ++i) batch.push_back(device(i));
      for (auto& r : (*store)->upsertBatch("demo", std::move(batch))) {
        if (!r) return fail(r.error().message);
      }
    }
  }

  ShardSet shards(2);
  shards.start();
  MetricsRegistry metrics;
  hub::Engine engine(shards, **database, **store, metrics, hub::EngineOptions{});
  if (auto ok = engine.addHub(std::move(*def)); !ok) return fail(ok.error());
  if (auto ok = engine.start(); !ok) return fail(ok.error());
  std::string id;
  if (mode == "send") {
    hub::Notification n;
    n.hub = "demo";
    n.content.kind = hub::NotificationContent::Kind::kTemplate;
    n.content.properties.set("msg", "crash");
    auto accepted = engine.send(std::move(n));
    if (!accepted) return fail(accepted.error().message);
    id = accepted->notification.id;
    std::printf("sent %s\n", id.c_str());
    std::fflush(stdout);
  } else {
    auto active = engine.notifications().active();
    if (!active || active->empty()) return fail("nothing to resume");
    id = active->front().second;
  }
  for (int i = 0; i < 120'000 && engine.running() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto view = engine.details("demo", id);
  engine.stop();
  shards.stop();
  if (!view || !*view) return fail("the notification is gone");
  uint64_t total = 0;
  for (const auto& c : (*view)->status.counts) total += c.n;
  std::printf("done %s %llu\n", std::string(hub::stateName((*view)->status.state)).c_str(),
              static_cast<unsigned long long>(total));
  return 0;
}
