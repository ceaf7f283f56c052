// Notification + installation → connector notifications: native payloads to their platform
// with pass-through headers, templates rendered per installation (APNs expiry, WNS headers, FCM
// v1 and legacy bodies), template selection, compile-once caching, failures reported.
#include "hub/render.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pushhub::hub {
namespace {

using storage::Installation;
using storage::InstallationTemplate;
using storage::Platform;

Installation device(Platform platform, std::string channel,
                    std::map<std::string, InstallationTemplate> templates = {}) {
  Installation i;
  i.id = "inst-" + channel;
  i.platform = platform;
  i.push_channel = std::move(channel);
  i.templates = std::move(templates);
  return i;
}

Renderer renderer(NotificationContent content) {
  auto r = Renderer::create(std::move(content), RenderOptions{"com.example.app"});
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error());
  return std::move(*r);
}

NotificationContent native(Platform platform, std::string body,
                           std::vector<std::pair<std::string, std::string>> headers = {}) {
  NotificationContent c;
  c.kind = NotificationContent::Kind::kNative;
  c.platform = platform;
  c.body = std::move(body);
  c.headers = std::move(headers);
  return c;
}

NotificationContent templated(std::initializer_list<std::pair<std::string, std::string>> props) {
  NotificationContent c;
  c.kind = NotificationContent::Kind::kTemplate;
  for (auto& [k, v] : props) c.properties.set(k, v);
  return c;
}

TEST(RenderTest, NativeNotificationsGoToTheirPlatformWithPassThroughHeaders) {
  auto r = renderer(native(Platform::kApns, R"j({"aps":{"alert":"hi"}})j",
                           {{"apns-push-type", "background"},
                            {"apns-priority", "5"},
                            {"apns-expiration", "1767225600"},
                            {"apns-collapse-id", "c1"}}));
  std::vector<Delivery> out;
  std::vector<RenderFailure> failures;
  r.render(device(Platform::kApns, "abcd"), nullptr, out, failures);
  r.render(device(Platform::kFcmV1, "fcm-token"), nullptr, out, failures);
  ASSERT_EQ(out.size(), 1u);
  const auto& apns = std::get<connectors::ApnsNotification>(out[0]);
  EXPECT_EQ(apns.device_token, "abcd");
  EXPECT_EQ(apns.topic, "com.example.app");
  EXPECT_EQ(apns.push_type, "background");
  EXPECT_EQ(apns.priority, 5);
  EXPECT_EQ(apns.expiration, 1767225600);
  EXPECT_EQ(apns.collapse_id, "c1");
  EXPECT_EQ(apns.payload, R"j({"aps":{"alert":"hi"}})j");
  EXPECT_TRUE(failures.empty());
}

TEST(RenderTest, NativeFcmV1TakesTheMessageObjectAndWnsItsHeaders) {
  auto fcm = renderer(native(Platform::kFcmV1, R"j({"message":{"data":{"k":"v"}}})j"));
  std::vector<Delivery> out;
  std::vector<RenderFailure> failures;
  fcm.render(device(Platform::kFcmV1, "tok"), nullptr, out, failures);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<connectors::FcmNotification>(out[0]).message_json, R"j({"data":{"k":"v"}})j");
  EXPECT_FALSE(Renderer::create(native(Platform::kFcmV1, R"j({"data":{}})j"), {}).has_value());

  auto wns =
      renderer(native(Platform::kWns, "<toast/>",
                      {{"x-wns-type", "wns/toast"}, {"x-wns-tag", "t"}, {"x-wns-ttl", "60"}}));
  out.clear();
  wns.render(device(Platform::kWns, "https://x.notify.windows.com/?token=a"), nullptr, out,
             failures);
  ASSERT_EQ(out.size(), 1u);
  const auto& w = std::get<connectors::WnsNotification>(out[0]);
  EXPECT_EQ(w.type, "wns/toast");
  EXPECT_EQ(w.tag, "t");
  EXPECT_EQ(w.ttl, 60);
}

TEST(RenderTest, TemplatesAreRenderedPerInstallationAndSelected) {
  auto r =
      renderer(templated({{"message", "Hello"}, {"Count", "3"}, {"when", "2027-01-01T00:00:00Z"}}));
  std::map<std::string, InstallationTemplate> templates;
  templates["genericMessage"] = {
      R"j({"aps":{"alert":"$(message)","badge":"#(count)"}})j", {}, "$(when)", {"news"}};
  templates["silent"] = {R"j({"aps":{"content-available":1}})j", {}, "", {"sync"}};
  std::vector<Delivery> out;
  std::vector<RenderFailure> failures;
  r.render(device(Platform::kApns, "abcd", templates), nullptr, out, failures);
  ASSERT_EQ(out.size(), 2u) << "one notification per template";
  const auto& first = std::get<connectors::ApnsNotification>(out[0]);
  EXPECT_EQ(first.payload, R"j({"aps":{"alert":"Hello","badge":3}})j");
  EXPECT_EQ(first.expiration, 1798761600);
  // Only templates the target selects.
  Renderer::TemplateFilter only_news = [](std::string_view, const InstallationTemplate& t) {
    return std::find(t.tags.begin(), t.tags.end(), "news") != t.tags.end();
  };
  out.clear();
  r.render(device(Platform::kApns, "abcd", templates), &only_news, out, failures);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(std::get<connectors::ApnsNotification>(out[0]).payload,
              ::testing::HasSubstr("Hello"));
}

TEST(RenderTest, FcmAndWnsTemplates) {
  auto r = renderer(templated({{"m", "hi <you>"}}));
  std::vector<Delivery> out;
  std::vector<RenderFailure> failures;
  r.render(device(Platform::kFcmV1, "t1",
                  {{"v1", {R"j({"message":{"data":{"m":"$(m)"}}})j", {}, "", {}}},
                   {"legacy", {R"j({"data":{"m":"$(m)"}})j", {}, "", {}}}}),
           nullptr, out, failures);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(std::get<connectors::FcmNotification>(out[0]).message_json,
            R"j({"data":{"m":"hi <you>"}})j");
  EXPECT_EQ(std::get<connectors::FcmNotification>(out[1]).message_json,
            R"j({"data":{"m":"hi <you>"}})j");
  out.clear();
  r.render(device(Platform::kWns, "https://x.notify.windows.com/?token=a",
                  {{"toast",
                    {"<toast><text>$(m)</text></toast>", {{"X-WNS-Type", "wns/toast"}}, "", {}}},
                   {"raw", {"$(m)", {{"X-WNS-Type", "wns/raw"}}, "", {}}}}),
           nullptr, out, failures);
  ASSERT_EQ(out.size(), 2u);
  // std::map orders "raw" before "toast".
  EXPECT_EQ(std::get<connectors::WnsNotification>(out[0]).payload, "hi <you>");
  EXPECT_EQ(std::get<connectors::WnsNotification>(out[0]).type, "wns/raw");
  EXPECT_EQ(std::get<connectors::WnsNotification>(out[1]).payload,
            "<toast><text>hi &lt;you&gt;</text></toast>");
  EXPECT_EQ(std::get<connectors::WnsNotification>(out[1]).type, "wns/toast");
}

TEST(RenderTest, EachTemplateBodyIsCompiledOncePerNotification) {
  auto r = renderer(templated({{"m", "x"}}));
  std::vector<Delivery> out;
  std::vector<RenderFailure> failures;
  for (int i = 0; i < 1000; ++i) {
    r.render(device(Platform::kApns, std::to_string(i),
                    {{"t", {R"j({"aps":{"alert":"$(m)"}})j", {}, "", {}}}}),
             nullptr, out, failures);
  }
  EXPECT_EQ(out.size(), 1000u);
  EXPECT_EQ(r.compiledTemplates(), 1u);
}

TEST(RenderTest, BrokenTemplatesAndExpiredChannelsSendNothing) {
  auto r = renderer(templated({{"m", "x"}}));
  std::vector<Delivery> out;
  std::vector<RenderFailure> failures;
  r.render(device(Platform::kApns, "a", {{"bad", {R"j({"aps":{"alert":"$(m"}})j", {}, "", {}}}}),
           nullptr, out, failures);
  EXPECT_TRUE(out.empty());
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].template_name, "bad");
  EXPECT_THAT(failures[0].reason, ::testing::HasSubstr("malformed expression"));
  Installation expired = device(Platform::kApns, "b", {{"t", {R"j({"a":"$(m)"})j", {}, "", {}}}});
  expired.expired_push_channel = true;
  r.render(expired, nullptr, out, failures);
  EXPECT_TRUE(out.empty());
}

TEST(RenderTest, JsonMembersAndExpiries) {
  EXPECT_EQ(
      jsonTopLevelMember(R"j( { "a" : [1,{"message":2}], "message" : {"x":"}\""} } )j", "message"),
      R"j({"x":"}\""})j");
  EXPECT_EQ(jsonTopLevelMember(R"j({"a":1})j", "message"), std::nullopt);
  EXPECT_EQ(jsonTopLevelMember("[1]", "message"), std::nullopt);
  EXPECT_EQ(jsonTopLevelMember(R"j({"message":)j", "message"), std::nullopt);
  EXPECT_EQ(parseApnsExpiry("1767225600"), 1767225600);
  EXPECT_EQ(parseApnsExpiry("2026-01-01T00:00:00Z"), 1767225600);
  EXPECT_EQ(parseApnsExpiry("soon"), std::nullopt);
  EXPECT_EQ(parseApnsExpiry(""), std::nullopt);
}

}  // namespace
}  // namespace pushhub::hub
