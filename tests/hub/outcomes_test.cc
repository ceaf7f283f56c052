// Per-notification telemetry: counts added from several threads at once, and the
// NotificationDetails XML the Azure SDKs parse.
#include "hub/outcomes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace pushhub::hub {
namespace {

using connectors::PnsOutcome;
using storage::Platform;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(OutcomesTest, ShardsCountAtTheSameTime) {
  OutcomeTally tally;
  std::vector<std::thread> shards;
  for (int s = 0; s < 4; ++s) {
    shards.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        tally.add(Platform::kApns,
                  i % 10 == 0 ? PnsOutcome::kExpiredChannel : PnsOutcome::kSuccess);
      }
    });
  }
  for (auto& t : shards) t.join();
  EXPECT_EQ(tally.count(Platform::kApns, PnsOutcome::kSuccess), 36000u);
  EXPECT_EQ(tally.count(Platform::kApns, PnsOutcome::kExpiredChannel), 4000u);
  EXPECT_EQ(tally.total(), 40000u);
  EXPECT_EQ(tally.total(Platform::kWns), 0u);
}

TEST(OutcomesTest, NotificationDetailsXmlAsAzureWritesIt) {
  OutcomeTally tally;
  tally.add(Platform::kWns, PnsOutcome::kSuccess, 3);
  tally.add(Platform::kWns, PnsOutcome::kWrongToken);
  tally.add(Platform::kFcmV1, PnsOutcome::kSuccess, 2);
  NotificationDetails details;
  details.id = "n1";
  details.location = "https://hub.example.com/myhub/messages/n1";
  details.state = NotificationState::kCompleted;
  details.enqueue_time = 1764063583000;  // 2025-11-25T09:39:43Z
  details.start_time = 1764063583500;
  details.end_time = 1764063584000;
  details.body = R"({"message":"<hi & bye>"})";
  details.target_platforms = {"windows", "gcm"};
  const std::string xml = notificationDetailsXml(details, tally);
  EXPECT_THAT(
      xml,
      HasSubstr(
          R"(<NotificationDetails xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect")"));
  EXPECT_THAT(xml, HasSubstr("<NotificationId>n1</NotificationId>"));
  EXPECT_THAT(xml, HasSubstr("<State>Completed</State>"));
  EXPECT_THAT(xml, HasSubstr("<EnqueueTime>2025-11-25T09:39:43Z</EnqueueTime>"));
  EXPECT_THAT(xml, HasSubstr("<StartTime>2025-11-25T09:39:43.500Z</StartTime>"));
  EXPECT_THAT(xml, HasSubstr("<NotificationBody>{&quot;message&quot;:&quot;&lt;hi &amp; "
                             "bye&gt;&quot;}</NotificationBody>"));
  EXPECT_THAT(xml, HasSubstr("<TargetPlatforms>windows,gcm</TargetPlatforms>"));
  EXPECT_THAT(
      xml,
      HasSubstr("<WnsOutcomeCounts><Outcome><Name>Success</Name><Count>3</Count></Outcome>"
                "<Outcome><Name>WrongToken</Name><Count>1</Count></Outcome></WnsOutcomeCounts>"));
  EXPECT_THAT(xml, HasSubstr("<FcmV1OutcomeCounts><Outcome><Name>Success</Name><Count>2</Count>"));
  EXPECT_THAT(xml, HasSubstr("<GcmOutcomeCounts><Outcome><Name>Success</Name><Count>2</Count>"));
  EXPECT_THAT(xml, Not(HasSubstr("ApnsOutcomeCounts")));
  EXPECT_EQ(stateName(NotificationState::kNoTargetFound), "NoTargetFound");
  EXPECT_EQ(connectors::outcomeName(PnsOutcome::kSkipped), "Skipped");
}

TEST(OutcomesTest, ANotificationNotStartedHasNoStartOrEnd) {
  NotificationDetails details;
  details.id = "n2";
  details.state = NotificationState::kScheduled;
  details.enqueue_time = 0;
  const std::string xml = notificationDetailsXml(details, OutcomeTally{});
  EXPECT_THAT(xml, HasSubstr("<State>Scheduled</State>"));
  EXPECT_THAT(xml, Not(HasSubstr("StartTime")));
  EXPECT_THAT(xml, Not(HasSubstr("OutcomeCounts")));
}

}  // namespace
}  // namespace pushhub::hub
