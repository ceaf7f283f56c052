// Send requests (Kafka's JSON and msgpack forms), hub definitions and the notification records
// the engine stores: what they accept, and the error naming the field for what they refuse.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include <filesystem>
#include <fstream>

#include "hub/hub_definition.h"
#include "hub/notification.h"
#include "hub/send_request.h"
#include "tests/support/temp_dir.h"

namespace pushhub::hub {
namespace {

using ::testing::HasSubstr;

TEST(SendRequest, ReadsEveryKeyOfATemplateRequest) {
  auto n = parseSendRequestJson(
      R"({"hub":"demo","format":"template","tags":"a && !b","properties":{"Msg":"hi"},)"
      R"("headers":{"APNS-Priority":"5"},"schedule":"2026-12-24T18:00:00Z","ttl_seconds":60,)"
      R"("idempotency_key":"k1"})");
  ASSERT_TRUE(n.has_value()) << n.error();
  EXPECT_EQ(n->hub, "demo");
  EXPECT_EQ(n->content.kind, NotificationContent::Kind::kTemplate);
  EXPECT_EQ(n->target, TargetKind::kExpression);
  EXPECT_EQ(n->expression, "a && !b");
  EXPECT_EQ(n->content.properties.get("msg"), "hi");
  ASSERT_EQ(n->content.headers.size(), 1u);
  EXPECT_EQ(n->content.headers[0].first, "apns-priority");
  EXPECT_EQ(n->scheduled_for, 1'798'135'200'000);
  EXPECT_EQ(n->ttl_ms, 60'000);
  EXPECT_EQ(n->idempotency_key, "k1");
}

TEST(SendRequest, NativeBodiesMayBeObjectsAndHandlesMakeADirectSend) {
  auto n = parseSendRequestJson(
      R"({"hub":"demo","format":"gcm","handles":["t1","t2"],"body":{"message":{"data":{"k":"v"}}}})");
  ASSERT_TRUE(n.has_value()) << n.error();
  EXPECT_EQ(n->content.kind, NotificationContent::Kind::kNative);
  EXPECT_EQ(n->content.platform, storage::Platform::kFcmV1);
  EXPECT_EQ(n->target, TargetKind::kHandles);
  EXPECT_EQ(n->handles, (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ(n->content.body, R"({"message":{"data":{"k":"v"}}})");
  auto broadcast = parseSendRequestJson(R"({"hub":"demo","format":"apple","body":"{}"})");
  ASSERT_TRUE(broadcast.has_value());
  EXPECT_EQ(broadcast->target, TargetKind::kBroadcast);
}

TEST(SendRequest, MsgpackIsTheSameObject) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(4);
  pk.pack("hub");
  pk.pack("demo");
  pk.pack("format");
  pk.pack("template");
  pk.pack("properties");
  pk.pack_map(1);
  pk.pack("msg");
  pk.pack("hello");
  pk.pack("schedule");
  pk.pack(int64_t{1'798'135'200'000});
  auto n = parseSendRequest("application/msgpack", std::string_view(buffer.data(), buffer.size()));
  ASSERT_TRUE(n.has_value()) << n.error();
  EXPECT_EQ(n->content.properties.get("msg"), "hello");
  EXPECT_EQ(n->scheduled_for, 1'798'135'200'000);
}

TEST(SendRequest, RefusalsNameTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "not JSON"},
      {"[1]", "a send request is an object"},
      {R"({"format":"apple","body":"{}"})", "hub: missing"},
      {R"({"hub":"demo","body":"{}"})", "format: missing"},
      {R"({"hub":"demo","format":"baidu"})", "format: format \"baidu\" is not supported"},
      {R"({"hub":"demo","format":"template","properties":{"a":1}})", "properties.a: not a string"},
      {R"({"hub":"demo","format":"apple","handles":"x"})", "handles: not an array"},
      {R"({"hub":"demo","format":"apple","handles":["x",2]})", "handles/1: not a string"},
      {R"({"hub":"demo","format":"apple","body":3})", "body: not a string or an object"},
      {R"({"hub":"demo","format":"apple","tags":"a","handles":["x"]})", "tags: not with handles"},
      {R"({"hub":"demo","format":"apple","schedule":"soon"})", "schedule: not an ISO 8601 time"},
      {R"({"hub":"demo","format":"apple","ttl_seconds":0})", "ttl_seconds: not a positive integer"},
      {R"({"hub":"demo","format":"apple","tgas":"a"})", "tgas: not a send request key"},
  };
  for (const auto& [json, expected] : cases) {
    auto n = parseSendRequestJson(json);
    ASSERT_FALSE(n.has_value()) << json;
    EXPECT_THAT(n.error(), HasSubstr(expected)) << json;
  }
  EXPECT_THAT(parseSendRequest("application/msgpack", "\xc1").error(), HasSubstr("not msgpack"));
  // Nesting and claimed sizes are bounded: no stack overflow, no giant reservation.
  EXPECT_THAT(parseSendRequestJson(std::string(110'000, '[')).error(), HasSubstr("nested deeper"));
  EXPECT_THAT(parseSendRequest("application/msgpack", std::string(100'000, '\x91')).error(),
              HasSubstr("not msgpack"));
  EXPECT_THAT(parseSendRequest("application/msgpack", "\xdd\xff\xff\xff\xff").error(),
              HasSubstr("not msgpack"));
  EXPECT_THAT(parseSendRequest("text/plain", "{}").error(),
              HasSubstr("content-type \"text/plain\""));
}

TEST(Notification, ValidationNamesTheRuleBroken) {
  Notification n;
  n.hub = "demo";
  n.content.kind = NotificationContent::Kind::kNative;
  n.content.platform = storage::Platform::kApns;
  EXPECT_THAT(validateNotification(n).error(), HasSubstr("body: missing"));
  n.content.body = "{}";
  n.target = TargetKind::kExpression;
  n.expression = "a &&";
  EXPECT_THAT(validateNotification(n).error(), HasSubstr("tags: position"));
  n.target = TargetKind::kHandles;
  EXPECT_THAT(validateNotification(n).error(), HasSubstr("handles: a direct send needs a handle"));
  n.handles = {"a", ""};
  EXPECT_THAT(validateNotification(n).error(), HasSubstr("handles/1: empty"));
  n.handles = {"a"};
  EXPECT_TRUE(validateNotification(n).has_value());
}

TEST(Notification, NativeBodiesAreCheckedAtAccept) {
  Notification n;
  n.hub = "demo";
  n.content.kind = NotificationContent::Kind::kNative;
  n.content.platform = storage::Platform::kApns;
  n.content.body = std::string(5000, 'x');
  EXPECT_THAT(validateNotification(n).error(), HasSubstr("over APNs' limit of 4096"));
  n.content.headers = {{"apns-push-type", "voip"}};
  n.content.body = R"({"aps":{"alert":")" + std::string(4500, 'x') + R"("}})";
  EXPECT_TRUE(validateNotification(n).has_value());  // voip allows 5120
  n.content.headers.clear();
  n.content.body = "not json";
  EXPECT_THAT(validateNotification(n).error(), HasSubstr("not well-formed JSON"));
  n.content.body = "[1]";
  EXPECT_THAT(validateNotification(n).error(), HasSubstr("an APNs payload is a JSON object"));
  n.content.platform = storage::Platform::kFcmV1;
  n.content.body = R"({"message":{"data":{"a":")" + std::string(5000, 'x') + R"("}}})";
  EXPECT_THAT(validateNotification(n).error(), HasSubstr("over FCM's limit"));
  n.content.platform = storage::Platform::kWns;
  n.content.headers = {{"x-wns-type", "wns/toast"}};
  n.content.body = "<toast><visual>";
  EXPECT_THAT(validateNotification(n).error(), HasSubstr("not well-formed XML"));
  n.content.headers = {{"x-wns-type", "wns/raw"}};
  EXPECT_TRUE(validateNotification(n).has_value());  // raw bodies are opaque
}

TEST(Notification, TagsInExpressionsFollowTheStoredTagRules) {
  Notification n;
  n.hub = "demo";
  n.target = TargetKind::kExpression;
  n.expression = "a || " + std::string(15'000, 'b');
  EXPECT_THAT(validateNotification(n).error(), HasSubstr("a tag of 15000 characters"));
  n.expression = "a || " + std::string(120, 'b');
  EXPECT_TRUE(validateNotification(n).has_value());
  EXPECT_FALSE(validateNotification(n, 100).has_value());
}

TEST(Notification, RecordsRoundTripAndBadRecordsAreRefusedWithAReason) {
  Notification n;
  n.hub = "demo";
  n.id = "0123abcd";
  n.idempotency_key = "k";
  n.content.kind = NotificationContent::Kind::kTemplate;
  n.content.properties.set("msg", "hi");
  n.content.headers = {{"apns-priority", "5"}};
  n.target = TargetKind::kExpression;
  n.expression = "a";
  n.enqueue_time = 1;
  n.scheduled_for = 2;
  n.expires_at = 3;
  auto back = decodeNotification(encodeNotification(n));
  ASSERT_TRUE(back.has_value()) << back.error();
  EXPECT_EQ(back->id, n.id);
  EXPECT_EQ(back->content.properties.get("msg"), "hi");
  EXPECT_EQ(back->content.headers, n.content.headers);
  EXPECT_EQ(back->expression, "a");
  EXPECT_EQ(back->expires_at, 3);
  // Format 1 (before max_targets: 14 fields) is still read.
  const std::string current = encodeNotification(n);
  ASSERT_EQ(current.substr(0, 2), "\x9f\x02");
  ASSERT_EQ(current.back(), '\0');  // max_targets 0
  auto old = decodeNotification("\x9e\x01" + current.substr(2, current.size() - 3));
  ASSERT_TRUE(old.has_value()) << old.error();
  EXPECT_EQ(old->expires_at, 3);
  EXPECT_EQ(old->max_targets, 0u);
  n.max_targets = 10;
  EXPECT_EQ(decodeNotification(encodeNotification(n))->max_targets, 10u);
  EXPECT_THAT(decodeNotification("\x93\x03\x01\x01").error(), HasSubstr("format 3 is not known"));
  EXPECT_THAT(decodeNotification("garbage").error(), HasSubstr("not"));

  Checkpoint c;
  c.next = 17;
  c.pending = {3, 9};
  c.counts = {{storage::Platform::kWns, connectors::PnsOutcome::kDropped, 4}};
  auto cb = decodeCheckpoint(encodeCheckpoint(c));
  ASSERT_TRUE(cb.has_value()) << cb.error();
  EXPECT_EQ(cb->next, 17u);
  EXPECT_EQ(cb->pending, c.pending);
  ASSERT_EQ(cb->counts.size(), 1u);
  EXPECT_EQ(cb->counts[0].n, 4u);
  NotificationStatus s;
  s.state = NotificationState::kAbandoned;
  s.counts = c.counts;
  auto sb = decodeStatus(encodeStatus(s));
  ASSERT_TRUE(sb.has_value()) << sb.error();
  EXPECT_EQ(sb->state, NotificationState::kAbandoned);
}

TEST(HubDefinition, ReadsFilesRelativeToTheDefinitionAndNamesBadFields) {
  pushhub::testing::TempDir dir;
  std::ofstream(dir.path() / "key.p8") << "-----BEGIN PRIVATE KEY-----\n";
  auto def = parseHubDefinition(
      "demo",
      R"({"apns":{"key_id":"K","team_id":"T","bundle_id":"b","private_key_file":"key.p8",)"
      R"("endpoint":"https://localhost:2197"},"wns":{"package_sid":"s","secret":"x","tenant_id":"t"}})",
      dir.path());
  ASSERT_TRUE(def.has_value()) << def.error();
  EXPECT_EQ(def->apns->private_key_pem, "-----BEGIN PRIVATE KEY-----\n");
  EXPECT_EQ(def->apns->endpoint.port, 2197);
  EXPECT_EQ(def->wns->token_endpoint, "https://login.microsoftonline.com/t/oauth2/v2.0/token");
  EXPECT_TRUE(def->wns->usesEntra());
  EXPECT_FALSE(def->fcm.has_value());

  const std::pair<const char*, const char*> cases[] = {
      {"{", "not JSON"},
      {"{}", "needs at least one of apns, fcm, wns"},
      {R"({"apns":{"team_id":"T","bundle_id":"b","private_key":"x"}})", "apns.key_id: missing"},
      {R"({"apns":{"key_id":"K","team_id":"T","bundle_id":"b"}})",
       "apns: give either private_key or private_key_file"},
      {R"({"apns":{"key_id":"K","team_id":"T","bundle_id":"b","private_key_file":"nope.p8"}})",
       "nope.p8: cannot be read"},
      {R"({"fcm":{"service_account":"{}","endpoint":"http://x"}})", "fcm.endpoint"},
      {R"({"wns":{"package_sid":"s"}})", "wns.secret: missing"},
  };
  for (const auto& [json, expected] : cases) {
    auto bad = parseHubDefinition("demo", json, dir.path());
    ASSERT_FALSE(bad.has_value()) << json;
    EXPECT_THAT(bad.error(), HasSubstr(expected)) << json;
  }
  EXPECT_THAT(parseHubDefinition("bad name", "{}", dir.path()).error(), HasSubstr("hub name"));
  EXPECT_THAT(loadHubDefinitions("demo").error(), HasSubstr("expected name=file"));
  EXPECT_THAT(loadHubDefinitions("a=/nonexistent.json").error(), HasSubstr("cannot be read"));
  EXPECT_TRUE(loadHubDefinitions("").has_value());
}

}  // namespace
}  // namespace pushhub::hub
