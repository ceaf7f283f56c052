#pragma once

// The engine in process against the real pushhub-sim: RocksDB in a temporary directory, two
// shards, the development hub definition pointed at the simulator's ports, and helpers to make
// devices, send, wait for the end and read what the simulator recorded.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <fmt/format.h>

#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "common/shard_set.h"
#include "hub/engine.h"
#include "hub/hub_definition.h"
#include "hub/render.h"
#include "storage/database.h"
#include "storage/installation_store.h"
#include "tests/connectors/sim_fixture.h"

namespace pushhub::hub::engine_testing {

using connectors::PnsOutcome;
using connectors::sim::testing::readFile;
using connectors::sim::testing::SimTest;
using storage::Installation;
using storage::Platform;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr std::string_view kHub = "demo";
// Sanitizer builds run the same tests on a tenth of the devices.
#ifdef PUSHHUB_SANITIZED
constexpr size_t kScale = 10;
#else
constexpr size_t kScale = 1;
#endif

struct Recorded {
  std::string service;
  std::string handle;
  std::string body;
  std::map<std::string, std::string> headers;
};

class EngineTest : public SimTest {
 protected:
  void SetUp() override {
    record_ = (dir_->path() / fmt::format("record-{}.jsonl", ++runs_)).string();
    start({"--record", record_});
    data_ = std::make_unique<pushhub::testing::TempDir>();
  }
  void TearDown() override {
    close();
    SimTest::TearDown();
  }

  EngineOptions defaults() const {
    EngineOptions o;
    o.connectors.retry.backoff_initial = 10ms;
    o.connectors.retry.backoff_max = 100ms;
    return o;
  }

  void open(EngineOptions options) {
    storage::StorageOptions storage_options;
    storage_options.data_dir = data_->path() / "db";
    auto database = storage::Database::open(storage_options);
    ASSERT_TRUE(database.has_value()) << database.error();
    database_ = std::move(*database);
    storage::StoreOptions store_options;
    store_options.partitions = 32;
    store_options.check_templates = hub::checkTemplates;
    auto store = storage::InstallationStore::open(*database_, store_options);
    ASSERT_TRUE(store.has_value()) << store.error();
    store_ = std::move(*store);
    shards_ = std::make_unique<ShardSet>(2);
    shards_->start();
    metrics_ = std::make_unique<MetricsRegistry>();
    engine_ = std::make_unique<Engine>(*shards_, *database_, *store_, *metrics_, options);
    auto added = engine_->addHub(definition());
    ASSERT_TRUE(added.has_value()) << added.error();
    if (before_start_) {
      before_start_(*engine_);
    } else {
      engine_->setEvents(EngineEvents{[this](const DeadHandle& dead) {
                                        std::lock_guard lock(events_mutex_);
                                        dead_.push_back(dead);
                                      },
                                      [this](const NotificationView& view) {
                                        std::lock_guard lock(events_mutex_);
                                        finished_.push_back(view.notification.id);
                                      }});
    }
    auto started = engine_->start();
    ASSERT_TRUE(started.has_value()) << started.error();
  }
  void open() { open(defaults()); }

  void close() {
    if (engine_) engine_->stop();
    if (shards_) shards_->stop();
    engine_.reset();
    shards_.reset();
    store_.reset();
    database_.reset();
  }

  // The development credentials, pointed at this test's simulator ports.
  HubDefinition definition() {
    auto def = loadHubDefinition(kHub, credentialsDir() / "credentials.json");
    EXPECT_TRUE(def.has_value()) << def.error();
    def->apns->endpoint.port = static_cast<uint16_t>(apns_port_);
    def->fcm->endpoint.port = static_cast<uint16_t>(fcm_port_);
    def->fcm->token_endpoint = fmt::format("https://localhost:{}/token", fcm_port_);
    def->wns->token_endpoint = fmt::format("https://localhost:{}/accesstoken.srf", wns_port_);
    return *def;
  }

  std::string wnsChannel(std::string_view token) const {
    return fmt::format("https://localhost:{}/?token={}", wns_port_, token);
  }

  // Device i: 50% APNs, 35% FCM, 15% WNS; a template "main" that carries its id.
  Installation device(size_t i, std::vector<std::string> tags, std::string handle_prefix = "") {
    Installation in;
    in.id = fmt::format("dev-{}", i);
    in.tags = std::move(tags);
    storage::InstallationTemplate t;
    switch (i % 20) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
      case 5:
      case 6:
      case 7:
      case 8:
      case 9:
        in.platform = Platform::kApns;
        in.push_channel = fmt::format("{}{:0>{}x}", handle_prefix.empty() ? "a" : handle_prefix, i,
                                      64 - (handle_prefix.empty() ? 1 : handle_prefix.size()));
        t.body = fmt::format(R"j({{"aps":{{"alert":"$(msg)"}},"dev":"{}"}})j", in.id);
        break;
      case 10:
      case 11:
      case 12:
      case 13:
      case 14:
      case 15:
      case 16:
        in.platform = Platform::kFcmV1;
        in.push_channel =
            fmt::format("{}cXq1:APA91bH{:x<140}", handle_prefix, fmt::format("{}", i));
        t.body = fmt::format(R"j({{"message":{{"data":{{"msg":"$(msg)","dev":"{}"}}}}}})j", in.id);
        break;
      default:
        in.platform = Platform::kWns;
        in.push_channel = wnsChannel(fmt::format("{}AwYAAAB{}", handle_prefix, i));
        t.body = fmt::format(
            R"(<toast><visual><binding template="ToastText01"><text id="1">$(msg)</text>)"
            R"(<text id="2">{}</text></binding></visual></toast>)",
            in.id);
        t.headers["X-WNS-Type"] = "wns/toast";
        break;
    }
    in.templates["main"] = std::move(t);
    return in;
  }

  void store(std::vector<Installation> list) {
    for (size_t from = 0; from < list.size(); from += 1000) {
      std::vector<Installation> batch(
          list.begin() + static_cast<ptrdiff_t>(from),
          list.begin() + static_cast<ptrdiff_t>(std::min(list.size(), from + 1000)));
      auto results = store_->upsertBatch(kHub, std::move(batch));
      for (auto& r : results) ASSERT_TRUE(r.has_value()) << r.error().message;
    }
  }

  std::string send(Notification n) {
    n.hub = std::string(kHub);
    auto accepted = engine_->send(std::move(n));
    EXPECT_TRUE(accepted.has_value()) << accepted.error().message;
    return accepted ? accepted->notification.id : "";
  }

  static Notification templated(std::string expression, std::string msg) {
    Notification n;
    n.content.kind = NotificationContent::Kind::kTemplate;
    n.content.properties.set("msg", std::move(msg));
    n.target = expression.empty() ? TargetKind::kBroadcast : TargetKind::kExpression;
    n.expression = std::move(expression);
    return n;
  }

  NotificationView waitDone(const std::string& id, std::chrono::seconds timeout = 120s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto view = engine_->details(kHub, id);
      EXPECT_TRUE(view.has_value() && view->has_value());
      if (!view || !*view) return {};
      const auto state = (*view)->status.state;
      if (state != NotificationState::kEnqueued && state != NotificationState::kProcessing &&
          state != NotificationState::kScheduled) {
        return **view;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "notification " << id << " still " << stateName(state);
        return **view;
      }
      std::this_thread::sleep_for(10ms);
    }
  }

  static uint64_t countOf(const NotificationView& view, Platform platform, PnsOutcome outcome) {
    for (const auto& c : view.status.counts) {
      if (c.platform == platform && c.outcome == outcome) return c.n;
    }
    return 0;
  }
  static uint64_t total(const NotificationView& view) {
    uint64_t n = 0;
    for (const auto& c : view.status.counts) n += c.n;
    return n;
  }

  std::vector<Recorded> records() {
    std::vector<Recorded> out;
    const std::string text = readFile(record_);
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t end = text.find('\n', pos);
      const std::string line = text.substr(pos, end - pos);
      pos = end == std::string::npos ? text.size() : end + 1;
      rapidjson::Document doc;
      doc.Parse(line.c_str());
      if (doc.HasParseError() || !doc.IsObject()) {
        ADD_FAILURE() << "unreadable record line: " << line;
        continue;
      }
      Recorded r{
          doc["service"].GetString(), doc["handle"].GetString(), doc["body"].GetString(), {}};
      for (auto& h : doc["headers"].GetObject())
        r.headers[h.name.GetString()] = h.value.GetString();
      out.push_back(std::move(r));
    }
    return out;
  }

  // The handle as the simulator records it (WNS: the channel's token).
  static std::string recordedHandle(const Installation& in) {
    if (in.platform != Platform::kWns) return in.push_channel;
    return in.push_channel.substr(in.push_channel.find("token=") + 6);
  }

  static inline int runs_ = 0;
  std::string record_;
  std::unique_ptr<pushhub::testing::TempDir> data_;
  std::unique_ptr<storage::Database> database_;
  std::unique_ptr<storage::InstallationStore> store_;
  std::unique_ptr<ShardSet> shards_;
  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<Engine> engine_;
  std::function<void(Engine&)> before_start_;  // instead of the default event handlers
  std::mutex events_mutex_;
  std::vector<DeadHandle> dead_;
  std::vector<std::string> finished_;
};

}  // namespace pushhub::hub::engine_testing
