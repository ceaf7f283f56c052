// The engine end to end, in process, against the real pushhub-sim: installations in RocksDB,
// notifications accepted, fanned out on two shards, delivered over TLS/HTTP/2 (APNs, FCM) and
// HTTP/1.1 (WNS), each delivery checked against the simulator's record of what it received.
#include <csignal>
#include <future>

#include "tests/hub/engine_fixture.h"

namespace pushhub::hub {
namespace {

using namespace engine_testing;

TEST_F(EngineTest, TemplateToAnExpressionReachesExactlyTheMatchingSetRenderedForEachDevice) {
  open();
  const size_t n = 100'000 / kScale;
  std::mt19937 rng(7);
  std::vector<Installation> devices;
  for (size_t i = 0; i < n; ++i) {
    std::set<std::string> tags;
    for (int k = 0; k < 3; ++k) tags.insert(fmt::format("tag{}", rng() % 20));
    devices.push_back(device(i, {tags.begin(), tags.end()}));
  }
  store(devices);
  const std::string expression = "(tag1 || tag2) && !tag3";
  const auto matches = [](const Installation& in) {
    const auto has = [&](const char* t) {
      return std::find(in.tags.begin(), in.tags.end(), t) != in.tags.end();
    };
    return (has("tag1") || has("tag2")) && !has("tag3");
  };
  std::map<std::string, const Installation*> expected;
  for (const auto& in : devices) {
    if (matches(in)) expected[recordedHandle(in)] = &in;
  }
  ASSERT_GT(expected.size(), n / 5);

  const std::string id = send(templated(expression, R"(Hi "you" & <me>)"));
  const NotificationView view = waitDone(id);
  EXPECT_EQ(view.status.state, NotificationState::kCompleted);
  EXPECT_EQ(total(view), expected.size());
  uint64_t expected_by_platform[3] = {};
  for (const auto& [handle, in] : expected) {
    ++expected_by_platform[in->platform == Platform::kApns    ? 0
                           : in->platform == Platform::kFcmV1 ? 1
                                                              : 2];
  }
  EXPECT_EQ(countOf(view, Platform::kApns, PnsOutcome::kSuccess), expected_by_platform[0]);
  EXPECT_EQ(countOf(view, Platform::kFcmV1, PnsOutcome::kSuccess), expected_by_platform[1]);
  EXPECT_EQ(countOf(view, Platform::kWns, PnsOutcome::kSuccess), expected_by_platform[2]);
  for (const auto& c : view.status.counts) {
    if (c.outcome != PnsOutcome::kSuccess) {
      ADD_FAILURE() << storage::platformName(c.platform) << " "
                    << connectors::outcomeName(c.outcome) << ": " << c.n;
    }
  }

  // Exactly the matching set, each once, each payload rendered for its device.
  std::set<std::string> seen;
  size_t wrong = 0;
  for (const auto& r : records()) {
    auto it = expected.find(r.handle);
    if (it == expected.end()) {
      ADD_FAILURE() << "delivered to a device the expression does not match: " << r.handle;
      continue;
    }
    EXPECT_TRUE(seen.insert(r.handle).second) << "delivered twice: " << r.handle;
    const Installation& in = *it->second;
    bool ok = false;
    switch (in.platform) {
      case Platform::kApns:
        ok = r.service == "apns" &&
             r.body ==
                 fmt::format(R"({{"aps":{{"alert":"Hi \"you\" & <me>"}},"dev":"{}"}})", in.id) &&
             r.headers.contains("apns-topic") &&
             r.headers.at("apns-topic") == "com.example.pushhub";
        break;
      case Platform::kFcmV1:
        ok = r.service == "fcm" &&
             r.body.find(R"("msg":"Hi \"you\" & <me>")") != std::string::npos &&
             r.body.find(fmt::format(R"("dev":"{}")", in.id)) != std::string::npos &&
             r.body.find(fmt::format(R"("token":"{}")", in.push_channel)) != std::string::npos;
        break;
      default:
        ok = r.service == "wns" &&
             r.body.find(R"(<text id="1">Hi &quot;you&quot; &amp; &lt;me&gt;</text>)") !=
                 std::string::npos &&
             r.body.find(fmt::format(R"(<text id="2">{}</text>)", in.id)) != std::string::npos &&
             r.headers.contains("x-wns-type") && r.headers.at("x-wns-type") == "wns/toast";
        break;
    }
    if (!ok && ++wrong <= 3) ADD_FAILURE() << "wrong delivery for " << in.id << ": " << r.body;
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(seen.size(), expected.size());
  EXPECT_EQ(engine_->running(), 0u);
  EXPECT_EQ(engine_->inFlight(), 0u);
}

TEST_F(EngineTest, NativeNotificationsReachOnlyTheirPlatformAndBroadcastReachesEveryone) {
  open();
  std::vector<Installation> devices;
  for (size_t i = 0; i < 2000; ++i) devices.push_back(device(i, {i % 2 == 0 ? "even" : "odd"}));
  store(devices);

  Notification apple;
  apple.content.kind = NotificationContent::Kind::kNative;
  apple.content.platform = Platform::kApns;
  apple.content.body = R"({"aps":{"alert":"native"}})";
  apple.content.headers = {{"apns-priority", "5"}, {"apns-collapse-id", "c-1"}};
  apple.target = TargetKind::kExpression;
  apple.expression = "even";
  NotificationView view = waitDone(send(apple));
  EXPECT_EQ(view.status.state, NotificationState::kCompleted);
  EXPECT_EQ(countOf(view, Platform::kApns, PnsOutcome::kSuccess), 500u);  // even and APNs
  EXPECT_EQ(total(view), 500u);

  Notification fcm;
  fcm.content.kind = NotificationContent::Kind::kNative;
  fcm.content.platform = Platform::kFcmV1;
  fcm.content.body = R"({"message":{"data":{"k":"v"}}})";
  view = waitDone(send(fcm));  // broadcast
  EXPECT_EQ(countOf(view, Platform::kFcmV1, PnsOutcome::kSuccess), 700u);
  EXPECT_EQ(total(view), 700u);

  view = waitDone(send(templated("", "to all")));
  EXPECT_EQ(total(view), 2000u);
  EXPECT_EQ(countOf(view, Platform::kApns, PnsOutcome::kSuccess), 1000u);
  EXPECT_EQ(countOf(view, Platform::kFcmV1, PnsOutcome::kSuccess), 700u);
  EXPECT_EQ(countOf(view, Platform::kWns, PnsOutcome::kSuccess), 300u);

  size_t apns_native = 0, fcm_native = 0;
  for (const auto& r : records()) {
    if (r.service == "apns" && r.body == R"({"aps":{"alert":"native"}})") {
      ++apns_native;
      EXPECT_EQ(r.headers.count("apns-priority") ? r.headers.at("apns-priority") : "", "5");
      EXPECT_EQ(r.headers.count("apns-collapse-id") ? r.headers.at("apns-collapse-id") : "", "c-1");
      const size_t i = std::stoul(r.handle.substr(1), nullptr, 16);
      EXPECT_EQ(i % 2, 0u) << r.handle;
    }
    if (r.service == "fcm" && r.body.find(R"("data":{"k":"v"})") != std::string::npos) ++fcm_native;
  }
  EXPECT_EQ(apns_native, 500u);
  EXPECT_EQ(fcm_native, 700u);
  const std::string text = metrics_->renderPrometheus();
  EXPECT_THAT(text,
              HasSubstr(R"(pushhub_deliveries_total{platform="apns",outcome="Success"} 1500)"));
  EXPECT_THAT(text, HasSubstr(R"(pushhub_delivery_latency_seconds_count{target="tags"} 500)"));
  EXPECT_THAT(text,
              HasSubstr(R"(pushhub_delivery_latency_seconds_count{target="broadcast"} 2700)"));
  EXPECT_THAT(text, HasSubstr(R"(pushhub_notifications_finished_total{state="Completed"} 3)"));
  EXPECT_THAT(text, HasSubstr(R"(pushhub_engine_in_flight{shard="0"} 0)"));
}

TEST_F(EngineTest, DirectAndBatchDirectSendsNeedNoInstallationAndSkipRepeatedHandles) {
  open();
  Notification direct;
  direct.content.kind = NotificationContent::Kind::kNative;
  direct.content.platform = Platform::kApns;
  direct.content.body = R"({"aps":{"alert":"direct"}})";
  direct.target = TargetKind::kHandles;
  direct.handles = {std::string(64, 'c')};
  NotificationView view = waitDone(send(direct));
  EXPECT_EQ(view.status.state, NotificationState::kCompleted);
  EXPECT_EQ(countOf(view, Platform::kApns, PnsOutcome::kSuccess), 1u);

  Notification batch;
  batch.content.kind = NotificationContent::Kind::kNative;
  batch.content.platform = Platform::kWns;
  batch.content.body = "<badge value=\"3\"/>";
  batch.target = TargetKind::kHandles;
  for (int i = 0; i < 1000; ++i)
    batch.handles.push_back(wnsChannel(fmt::format("batch{}", i % 900)));
  view = waitDone(send(batch));
  EXPECT_EQ(countOf(view, Platform::kWns, PnsOutcome::kSuccess), 900u);
  EXPECT_EQ(countOf(view, Platform::kWns, PnsOutcome::kSkipped), 100u);
  std::set<std::string> handles;
  for (const auto& r : records()) {
    if (r.service == "wns") {
      EXPECT_TRUE(handles.insert(r.handle).second) << r.handle;
      EXPECT_EQ(r.body, "<badge value=\"3\"/>");
    }
  }
  EXPECT_EQ(handles.size(), 900u);

  // Too many handles, a template, or no handle at all: refused before anything is stored.
  batch.hub = std::string(kHub);
  batch.handles.resize(1001, wnsChannel("x"));
  auto refused = engine_->send(batch);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, SendError::Code::kInvalid);
  EXPECT_THAT(refused.error().message, HasSubstr("at most 1000"));
  Notification templated_direct = templated("", "x");
  templated_direct.hub = std::string(kHub);
  templated_direct.target = TargetKind::kHandles;
  templated_direct.handles = {"a"};
  refused = engine_->send(templated_direct);
  ASSERT_FALSE(refused.has_value());
  EXPECT_THAT(refused.error().message, HasSubstr("native format"));
}

TEST_F(EngineTest, RefusesUnknownHubsBadExpressionsAndUnusablePayloads) {
  open();
  Notification n = templated("a && (b", "x");
  n.hub = std::string(kHub);
  auto refused = engine_->send(n);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, SendError::Code::kInvalid);
  EXPECT_THAT(refused.error().message, HasSubstr("tags: position"));
  n = templated("a", "x");
  n.hub = "nohub";
  refused = engine_->send(n);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, SendError::Code::kUnknownHub);
  Notification fcm;
  fcm.hub = std::string(kHub);
  fcm.content.kind = NotificationContent::Kind::kNative;
  fcm.content.platform = Platform::kFcmV1;
  fcm.content.body = R"({"data":{}})";
  refused = engine_->send(fcm);
  ASSERT_FALSE(refused.has_value());
  EXPECT_THAT(refused.error().message, HasSubstr("\"message\" object"));
  EXPECT_TRUE(engine_->notifications().active()->empty());
}

TEST_F(EngineTest, NoMatchingDeviceEndsAsNoTargetFound) {
  open();
  store({device(0, {"a"})});
  const NotificationView view = waitDone(send(templated("nobody", "x")));
  EXPECT_EQ(view.status.state, NotificationState::kNoTargetFound);
  EXPECT_EQ(total(view), 0u);
  EXPECT_GT(view.status.end_time, 0);
}

TEST_F(EngineTest, TheSameIdempotencyKeyTwiceIsOneNotification) {
  open();
  store({device(0, {"a"}), device(1, {"a"})});
  Notification n = templated("a", "once");
  n.idempotency_key = "order-42";
  const std::string first = send(n);
  n.hub = std::string(kHub);
  auto again = engine_->send(n);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->repeated);
  EXPECT_EQ(again->notification.id, first);
  waitDone(first);
  EXPECT_EQ(records().size(), 2u);
  // Another key is another notification.
  n.idempotency_key = "order-43";
  auto other = engine_->send(n);
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(other->repeated);
  EXPECT_NE(other->notification.id, first);
}

TEST_F(EngineTest, DeadHandlesExpireTheChannelLeaveTheIndexAndArePublished) {
  open();
  // "dead…" handles are unregistered in the simulator: APNs 410, FCM UNREGISTERED, WNS 410.
  std::vector<Installation> devices;
  for (size_t i = 0; i < 40; ++i) devices.push_back(device(i, {"t"}, i % 4 == 0 ? "dead" : ""));
  store(devices);
  NotificationView view = waitDone(send(templated("t", "x")));
  EXPECT_EQ(view.status.state, NotificationState::kCompleted);
  EXPECT_EQ(total(view), 40u);
  EXPECT_EQ(countOf(view, Platform::kApns, PnsOutcome::kExpiredChannel) +
                countOf(view, Platform::kFcmV1, PnsOutcome::kExpiredChannel) +
                countOf(view, Platform::kWns, PnsOutcome::kExpiredChannel),
            10u);
  {
    std::lock_guard lock(events_mutex_);
    ASSERT_EQ(dead_.size(), 10u);
    std::set<std::string> ids;
    for (const auto& d : dead_) {
      ids.insert(d.installation_id);
      EXPECT_EQ(d.notification_id, view.notification.id);
      EXPECT_THAT(d.handle, HasSubstr("dead"));
    }
    EXPECT_EQ(ids.size(), 10u);
  }
  for (size_t i = 0; i < 40; i += 4) {
    auto stored = store_->get(kHub, fmt::format("dev-{}", i));
    ASSERT_TRUE(stored.has_value() && stored->has_value());
    EXPECT_TRUE((*stored)->expired_push_channel) << i;
  }
  // The next notification does not try them again.
  view = waitDone(send(templated("t", "y")));
  EXPECT_EQ(total(view), 30u);
  EXPECT_EQ(countOf(view, Platform::kApns, PnsOutcome::kSuccess) +
                countOf(view, Platform::kFcmV1, PnsOutcome::kSuccess) +
                countOf(view, Platform::kWns, PnsOutcome::kSuccess),
            30u);
}

TEST_F(EngineTest, AScheduledNotificationFiresOnTimeEvenAfterARestartAndACancelledOneNever) {
  open();
  store({device(0, {"s"}), device(1, {"s"})});
  const UnixMillis now = nowMillis();
  Notification later = templated("s", "later");
  later.scheduled_for = now + 1500;
  const std::string fires = send(later);
  Notification cancelled = templated("s", "cancelled");
  cancelled.scheduled_for = now + 1000;
  const std::string never = send(cancelled);
  auto view = engine_->details(kHub, fires);
  ASSERT_TRUE(view.has_value() && view->has_value());
  EXPECT_EQ((*view)->status.state, NotificationState::kScheduled);
  auto done = engine_->cancel(kHub, never);
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(*done);
  EXPECT_FALSE(*engine_->cancel(kHub, never));  // once
  // A restart while it waits.
  close();
  open();
  const NotificationView fired = waitDone(fires, 20s);
  EXPECT_EQ(fired.status.state, NotificationState::kCompleted);
  EXPECT_EQ(total(fired), 2u);
  EXPECT_GE(fired.status.start_time, now + 1500);
  EXPECT_LT(fired.status.start_time, now + 1500 + 1000);
  view = engine_->details(kHub, never);
  ASSERT_TRUE(view.has_value() && view->has_value());
  EXPECT_EQ((*view)->status.state, NotificationState::kCanceled);
  std::this_thread::sleep_for(200ms);
  for (const auto& r : records()) EXPECT_THAT(r.body, ::testing::Not(HasSubstr("cancelled")));
  EXPECT_FALSE(*engine_->cancel(kHub, fires));  // it has fired
}

TEST_F(EngineTest, WhatCannotBeDeliveredWithinTheTimeToLiveIsAbandoned) {
  close();
  start({"--fault", "apns:503=1.0"});  // APNs is down for good
  open();
  store({device(0, {"t"}), device(10, {"t"})});  // one APNs, one FCM device
  Notification n = templated("t", "x");
  n.expires_at = nowMillis() + 700;
  const NotificationView view = waitDone(send(n), 20s);
  EXPECT_EQ(countOf(view, Platform::kApns, PnsOutcome::kAbandoned), 1u);
  EXPECT_EQ(countOf(view, Platform::kFcmV1, PnsOutcome::kSuccess), 1u);
  EXPECT_EQ(view.status.state, NotificationState::kCompleted);
}

TEST_F(EngineTest, InstallationWritesRunOnTheOwningShardInBatchesAndAreReadableAtOnce) {
  open();
  // Under TSan every concurrent RocksDB write is a (suppressed, but symbolised) report: fewer.
  constexpr size_t kPerThread = 500 / kScale;
  std::atomic<size_t> done{0}, failed{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (size_t i = 0; i < kPerThread; ++i) {
        const size_t n = static_cast<size_t>(t) * kPerThread + i;
        engine_->upsertInstallation(std::string(kHub), device(n, {"w"}), [&, n](auto&& result) {
          if (!result) ++failed;
          // Read-your-writes: the record is there when told.
          auto stored = store_->get(kHub, fmt::format("dev-{}", n));
          if (!stored || !*stored) ++failed;
          ++done;
        });
      }
    });
  }
  for (auto& w : writers) w.join();
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (done < 4 * kPerThread && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(done.load(), 4 * kPerThread);
  EXPECT_EQ(failed.load(), 0u);
  EXPECT_EQ(store_->installationCount(), 4 * kPerThread);

  // Another installation takes dev-0's handle: dev-0 is released on its own shard.
  Installation thief = device(0, {"w"});
  thief.id = "thief";
  std::promise<bool> taken;
  engine_->upsertInstallation(std::string(kHub), thief,
                              [&](auto&& result) { taken.set_value(result.has_value()); });
  ASSERT_TRUE(taken.get_future().get());
  bool expired = false;
  for (int i = 0; i < 200 && !expired; ++i) {
    auto stored = store_->get(kHub, "dev-0");
    expired = stored && *stored && (*stored)->expired_push_channel;
    if (!expired) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(expired);

  std::promise<bool> patched;
  engine_->patchInstallation(
      std::string(kHub), "dev-1",
      *storage::parsePatchJson(R"([{"op":"add","path":"/tags","value":"x"}])"),
      [&](auto&& result) { patched.set_value(result.has_value()); });
  EXPECT_TRUE(patched.get_future().get());
  std::promise<bool> removed;
  engine_->removeInstallation(std::string(kHub), "dev-2",
                              [&](auto&& result) { removed.set_value(result && *result); });
  EXPECT_TRUE(removed.get_future().get());
  EXPECT_FALSE(*store_->get(kHub, "dev-2"));
  EXPECT_THAT((*store_->get(kHub, "dev-1"))->tags, ::testing::Contains("x"));
}

TEST_F(EngineTest, UpsertsOfOneInstallationFromBothShardsAtOnceMakeOneInstallation) {
  open();
  // Each shard upserts the same ids in the same loop turns: they write on the shard that called
  // (no hop), so the partition locks alone keep one ordinal and one record per id.
  constexpr size_t kIds = 400 / kScale;
  std::atomic<size_t> done{0}, failed{0};
  for (unsigned s = 0; s < shards_->size(); ++s) {
    boost::asio::post(shards_->context(s), [&, s] {
      for (size_t i = 0; i < kIds; ++i) {
        Installation in = device(i, {fmt::format("from{}", s)});
        engine_->upsertInstallation(std::string(kHub), std::move(in), [&](auto&& result) {
          if (!result) ++failed;
          ++done;
        });
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (done < 2 * kIds && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(done.load(), 2 * kIds);
  EXPECT_EQ(failed.load(), 0u);
  EXPECT_EQ(store_->installationCount(), kIds);
  // Every id is indexed once, under one of the two tags.
  auto from0 = storage::TagExpression::parse("from0 || from1");
  auto compiled = store_->compile(kHub, *from0);
  ASSERT_TRUE(compiled.has_value());
  EXPECT_EQ(store_->count(kHub, *compiled, storage::Audience::kAll), kIds);
  // A restart rebuilds the same index from what is on disk.
  close();
  open();
  EXPECT_EQ(store_->installationCount(), kIds);
}

// kill -9 in the middle of a fan-out; the restarted process resumes from its checkpoints. Every
// device is reached at least once, and the re-sent ones stay within the documented bound:
// per shard, the deliveries in flight plus one checkpoint interval.
TEST_F(EngineTest, AfterKillNineTheFanOutResumesEveryDeviceIsReachedAndDuplicatesAreBounded) {
  const size_t n = 200'000 / kScale;
  const std::string data = (data_->path() / "crash").string();
  const std::string hub_file = (credentialsDir() / "credentials.json").string();
  const std::vector<std::string> common = {data, hub_file, std::to_string(apns_port_),
                                           std::to_string(fcm_port_)};
  auto args = common;
  args.insert(args.end(), {"send", std::to_string(n)});
  {
    pushhub::testing::ChildProcess child(ENGINE_CHILD_BINARY, args);
    ASSERT_TRUE(child.waitForLine("sent ", 60s).has_value()) << child.output();
    // Kill it once a good part has been delivered.
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (accepted("apns") + accepted("fcm") < n * 2 / 5) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << child.output();
      std::this_thread::sleep_for(5ms);
    }
    child.signalGroup(SIGKILL);
    EXPECT_EQ(child.waitForExit(10s), 128 + SIGKILL);
  }
  const uint64_t before_restart = accepted("apns") + accepted("fcm");
  ASSERT_LT(before_restart, n) << "the fan-out finished before the kill";
  args = common;
  args.push_back("resume");
  pushhub::testing::ChildProcess resumed(ENGINE_CHILD_BINARY, args);
  auto line = resumed.waitForLine("done ", 120s);
  ASSERT_TRUE(line.has_value()) << resumed.output();
  EXPECT_THAT(*line, HasSubstr(fmt::format("done Completed {}", n)));
  EXPECT_EQ(resumed.waitForExit(10s), 0);

  std::map<std::string, int> per_handle;
  for (const auto& r : records()) ++per_handle[r.handle];
  EXPECT_EQ(per_handle.size(), n) << "every device at least once";
  size_t duplicates = 0;
  for (const auto& [handle, times] : per_handle) duplicates += static_cast<size_t>(times - 1);
  const EngineOptions defaults;
  const size_t bound = 2 * (defaults.in_flight_per_shard + defaults.checkpoint_every);
  EXPECT_LE(duplicates, bound);
  std::printf(
      "[ crash    ] %zu devices, %llu delivered before kill -9, %zu re-sent after it "
      "(bound %zu, %.3f%%)\n",
      n, static_cast<unsigned long long>(before_restart), duplicates, bound,
      100.0 * static_cast<double>(duplicates) / static_cast<double>(n));
}

}  // namespace
}  // namespace pushhub::hub
