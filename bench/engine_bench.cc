// pushhub_engine_bench: the engine's fan-out rate — N installations in a fresh RocksDB, one
// notification to all of them, fanned out by S shards through their connector pools to
// pushhub-sim — timed from acceptance to the last answer, with the process's CPU time per
// delivery. bench/engine_vs_h2load.sh runs it beside h2load on the same simulator endpoint.
//
//   pushhub_engine_bench --creds DIR --apns-port P --data DIR -n 200000 [--template]
//
// Prints one line: deliveries=… seconds=… rate=… cpu_us_per_delivery=… success=….
#include <fmt/format.h>
#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/log.h"
#include "common/metrics.h"
#include "common/shard_set.h"
#include "hub/engine.h"
#include "storage/database.h"
#include "storage/installation_store.h"

using namespace pushhub;

namespace {

double cpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

int fail(const std::string& why) {
  fmt::print(stderr, "pushhub_engine_bench: {}\n", why);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The engine's fan-out rate against pushhub-sim"};
  std::string creds, data, payload_file;
  int apns_port = 0;
  size_t n = 200'000;
  unsigned shards = 2;
  size_t connections = 2;
  size_t in_flight = 512;
  bool use_template = false;
  app.add_option("--creds", creds, "pushhub-sim keygen's directory")->required();
  app.add_option("--apns-port", apns_port, "The simulator's APNs port")->required();
  app.add_option("--data", data, "A fresh data directory")->required();
  app.add_option("--payload", payload_file, "The APNs payload (JSON) every device gets");
  app.add_option("-n", n, "Installations (all APNs)");
  app.add_option("--shards", shards, "Shards (event loops)");
  app.add_option("--connections", connections, "APNs connections per shard");
  app.add_option("--in-flight", in_flight, "Deliveries in flight per shard");
  app.add_flag("--template", use_template,
               "A template notification (each device renders its own template) instead of a "
               "native one");
  CLI11_PARSE(app, argc, argv);
  configureLogging(LogFormat::kText, spdlog::level::warn);

  const std::string payload =
      payload_file.empty() ? std::string(R"({"aps":{"alert":"bench"}})") : readFile(payload_file);
  storage::StorageOptions storage_options;
  storage_options.data_dir = data;
  auto database = storage::Database::open(storage_options);
  if (!database) return fail(database.error());
  auto store = storage::InstallationStore::open(**database, {});
  if (!store) return fail(store.error());
  for (size_t from = 0; from < n; from += 10'000) {
    std::vector<storage::Installation> batch;
    for (size_t i = from; i < std::min(n, from + 10'000); ++i) {
      storage::Installation in;
      in.id = fmt::format("bench-{}", i);
      in.platform = storage::Platform::kApns;
      in.push_channel = fmt::format("a{:0>63x}", i);
      in.tags = {"all"};
      if (use_template) {
        // Renders to bench/lib.sh's 256-byte payload with the property below.
        in.templates["main"].body =
            R"j({"aps":{"alert":{"title":"pushhub","body":"$(msg)"},"sound":"default"}})j";
      }
      batch.push_back(std::move(in));
    }
    for (auto& r : (*store)->upsertBatch("bench", std::move(batch))) {
      if (!r) return fail(r.error().message);
    }
  }

  auto def = hub::loadHubDefinition("bench", std::filesystem::path(creds) / "credentials.json");
  if (!def) return fail(def.error());
  def->apns->endpoint.port = static_cast<uint16_t>(apns_port);
  def->fcm.reset();
  def->wns.reset();

  ShardSet shard_set(shards);
  shard_set.start();
  MetricsRegistry metrics;
  hub::EngineOptions options;
  options.in_flight_per_shard = in_flight;
  options.connectors.apns_connections = connections;
  hub::Engine engine(shard_set, **database, **store, metrics, options);
  if (auto ok = engine.addHub(std::move(*def)); !ok) return fail(ok.error());
  if (auto ok = engine.start(); !ok) return fail(ok.error());

  // Connections up first (one direct send per shard's pools would not reach every shard; a
  // small broadcast does), so that the timed run measures sending, not TLS handshakes.
  hub::Notification warm;
  warm.hub = "bench";
  warm.content.kind = hub::NotificationContent::Kind::kNative;
  warm.content.platform = storage::Platform::kApns;
  warm.content.body = payload;
  warm.target = hub::TargetKind::kExpression;
  warm.expression = "$InstallationId:bench-0 || $InstallationId:bench-1 || $InstallationId:bench-2";
  auto warmed = engine.send(warm);
  if (!warmed) return fail(warmed.error().message);
  while (engine.running() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  hub::Notification all;
  all.hub = "bench";
  if (use_template) {
    all.content.kind = hub::NotificationContent::Kind::kTemplate;
    all.content.properties.set("msg", std::string(191, 'x'));
  } else {
    all.content.kind = hub::NotificationContent::Kind::kNative;
    all.content.platform = storage::Platform::kApns;
    all.content.body = payload;
  }
  const double cpu_before = cpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  auto accepted = engine.send(all);
  if (!accepted) return fail(accepted.error().message);
  while (engine.running() > 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpuSeconds() - cpu_before;
  auto view = engine.details("bench", accepted->notification.id);
  engine.stop();
  shard_set.stop();
  if (!view || !*view) return fail("the notification is gone");
  uint64_t total = 0, success = 0;
  for (const auto& c : (*view)->status.counts) {
    total += c.n;
    if (c.outcome == connectors::PnsOutcome::kSuccess) success += c.n;
  }
  fmt::print("deliveries={} seconds={:.3f} rate={:.0f} cpu_us_per_delivery={:.2f} success={}\n",
             total, seconds, static_cast<double>(total) / seconds,
             cpu * 1e6 / static_cast<double>(std::max<uint64_t>(total, 1)), success);
  return success == n ? 0 : 1;
}
