#include "bench/tool/kafka_send.h"

#include <gtest/gtest.h>

#include "hub/send_request.h"

namespace pushhub::bench {
namespace {

// What the bench produces is what pushhub's Kafka intake accepts.
TEST(KafkaSend, TheRequestIsWhatTheIntakeReads) {
  auto templated = hub::parseSendRequestJson(
      kafkaSendRequest("demo", "template", "t1 || t2", R"({"message":"hi \"you\""})", "k-1"));
  ASSERT_TRUE(templated.has_value()) << templated.error();
  EXPECT_EQ(templated->hub, "demo");
  EXPECT_EQ(templated->expression, "t1 || t2");
  EXPECT_EQ(templated->idempotency_key, "k-1");
  EXPECT_EQ(templated->content.properties.get("message"), "hi \"you\"");
  auto native = hub::parseSendRequestJson(
      kafkaSendRequest("demo", "apple", "", R"({"aps":{"alert":"x"}})", "k-2"));
  ASSERT_TRUE(native.has_value()) << native.error();
  EXPECT_EQ(native->target, hub::TargetKind::kBroadcast);
  EXPECT_EQ(native->content.body, R"({"aps":{"alert":"x"}})");
}

TEST(KafkaSend, OnlyTheCompletedOutcomeOfOurKeyIsTaken) {
  const std::string completed =
      R"({"type":"completed","hub":"demo","id":"n1","idempotency_key":"k-1","state":"Completed",)"
      R"("counts":{"apns":{"Success":7,"ExpiredChannel":1},"fcmv1":{"Success":2}}})";
  auto c = parseCompleted(completed, "k-1");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->id, "n1");
  EXPECT_EQ(c->state, "Completed");
  EXPECT_EQ(c->counts.at("apns").at("ExpiredChannel"), 1u);
  EXPECT_EQ(c->counts.at("fcmv1").at("Success"), 2u);
  EXPECT_FALSE(parseCompleted(completed, "k-2").has_value()) << "another send's";
  EXPECT_FALSE(parseCompleted(R"({"type":"dead_handle","idempotency_key":"k-1"})", "k-1"));
  EXPECT_FALSE(parseCompleted("not json", "k-1"));
}

}  // namespace
}  // namespace pushhub::bench
