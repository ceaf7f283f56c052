#include "storage/installation_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pushhub::storage {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kToken =
    "a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4e5f60718";

Installation parsed(std::string_view json) {
  auto in = parseInstallationJson(json);
  EXPECT_TRUE(in.has_value()) << in.error().message();
  return in ? *in : Installation{};
}

std::string parseError(std::string_view json) {
  auto in = parseInstallationJson(json);
  EXPECT_FALSE(in.has_value());
  return in ? std::string() : in.error().message();
}

Installation base() {
  return parsed(R"({"installationId":"i1","platform":"apns","pushChannel":")" +
                std::string(kToken) +
                R"(","tags":["b","a"],"userId":"u1",
      "templates":{"t1":{"body":"{\"aps\":{\"alert\":\"$(m)\"}}","tags":["x"]}}})");
}

std::string patchError(Installation& in, std::string_view json) {
  auto ops = parsePatchJson(json);
  if (!ops) return ops.error().message();
  auto result = applyPatch(in, *ops);
  EXPECT_FALSE(result.has_value()) << json;
  return result ? std::string() : result.error().message();
}

void patch(Installation& in, std::string_view json) {
  auto ops = parsePatchJson(json);
  ASSERT_TRUE(ops.has_value()) << ops.error().message();
  auto result = applyPatch(in, *ops);
  ASSERT_TRUE(result.has_value()) << result.error().message();
}

TEST(InstallationJson, ParsesTheAzureForm) {
  Installation in = parsed(R"({
    "installationId": "12345", "platform": "GCM", "pushChannel": "fcm-token",
    "userID": "bob@contoso.com", "tags": ["sports", "news", "sports"],
    "expirationTime": "2030-01-02T03:04:05Z",
    "templates": {
      "generic": {"body": "{\"message\":{}}", "tags": ["t"], "headers": {"h": "v"}},
      "asString": "{\"body\": \"{}\", \"tags\": [\"s\"]}"
    },
    "secondaryTiles": {}, "lastActiveOn": "ignored", "expiredPushChannel": true
  })");
  EXPECT_EQ(in.id, "12345");
  EXPECT_EQ(in.platform, Platform::kFcmV1);
  EXPECT_EQ(in.user_id, "bob@contoso.com");
  EXPECT_EQ(in.tags, (std::vector<std::string>{"news", "sports"}));
  EXPECT_EQ(in.templates.at("generic").headers.at("h"), "v");
  EXPECT_EQ(in.templates.at("asString").tags, std::vector<std::string>{"s"});
  EXPECT_EQ(formatIso8601(in.expiration_time), "2030-01-02T03:04:05Z");
  EXPECT_FALSE(in.expired_push_channel);  // read-only
}

TEST(InstallationJson, ParsesBrowserPushChannelObject) {
  Installation in = parsed(R"({"installationId":"b","platform":"browser",
    "pushChannel":{"endpoint":"https://push.example/x","p256dh":"P","auth":"A"}})");
  EXPECT_EQ(in.push_channel, "https://push.example/x");
  EXPECT_EQ(in.browser_p256dh, "P");
  EXPECT_EQ(in.browser_auth, "A");
  EXPECT_EQ(
      parseError(
          R"({"installationId":"b","platform":"browser","pushChannel":{"endpoint":"https://x"}})"),
      "pushChannel/p256dh: is required");
}

TEST(InstallationJson, NamesTheFieldThatIsWrong) {
  EXPECT_THAT(parseError("{"), HasSubstr("not valid JSON at offset 1"));
  EXPECT_EQ(parseError("[]"), "an installation is a JSON object");
  EXPECT_EQ(parseError(R"({"platform":"apns","pushChannel":"x"})"), "installationId: is required");
  EXPECT_EQ(parseError(R"({"installationId":"i","pushChannel":"x"})"), "platform: is required");
  EXPECT_EQ(parseError(R"({"installationId":"i","platform":"apns"})"), "pushChannel: is required");
  EXPECT_EQ(parseError(R"({"installationId":7,"platform":"apns","pushChannel":"x"})"),
            "installationId: must be a string, not a number");
  EXPECT_THAT(parseError(R"({"installationId":"i","platform":"mpns","pushChannel":"x"})"),
              HasSubstr("platform: 'mpns' is not one of apns"));
  EXPECT_EQ(parseError(R"({"installationId":"i","platform":"apns","pushChannel":"x","tags":"a"})"),
            "tags: must be an array of strings, not a string");
  EXPECT_EQ(
      parseError(R"({"installationId":"i","platform":"apns","pushChannel":"x","tags":["a",1]})"),
      "tags/1: must be a string, not a number");
  EXPECT_EQ(
      parseError(
          R"({"installationId":"i","platform":"apns","pushChannel":"x","templates":{"t":{"body":5}}})"),
      "templates/t/body: must be a string, not a number");
  EXPECT_EQ(
      parseError(
          R"({"installationId":"i","platform":"apns","pushChannel":"x","expirationTime":"soon"})"),
      "expirationTime: 'soon' is not a W3C date-time");
}

TEST(InstallationJson, WritesEveryFieldAndReadsBackTheSame) {
  Installation in = base();
  in.expired_push_channel = true;
  in.last_active_on = 1'700'000'000'000;
  in.last_update = 1'700'000'000'500;
  const std::string json = installationToJson(in);
  EXPECT_THAT(json, HasSubstr(R"("installationId":"i1")"));
  EXPECT_THAT(json, HasSubstr(R"("expiredPushChannel":true)"));
  EXPECT_THAT(json, HasSubstr(R"("lastActiveOn":"2023-11-14T22:13:20Z")"));
  EXPECT_THAT(json, HasSubstr(R"("lastUpdate":"2023-11-14T22:13:20.500Z")"));
  EXPECT_THAT(json, HasSubstr(R"("expirationTime":"9999-12-31T23:59:59Z")"));
  Installation back = parsed(json);
  EXPECT_EQ(back.id, in.id);
  EXPECT_EQ(back.tags, in.tags);
  EXPECT_EQ(back.templates, in.templates);
  EXPECT_EQ(back.user_id, in.user_id);
  EXPECT_EQ(back.push_channel, in.push_channel);
}

TEST(Patch, AddsTagsOneOrManyAndRemovesByValue) {
  Installation in = base();
  patch(in, R"([{"op":"add","path":"/tags","value":"c"}])");
  EXPECT_EQ(in.tags, (std::vector<std::string>{"a", "b", "c"}));
  patch(in, R"([{"op":"add","path":"/tags","value":["d","a"]}])");
  EXPECT_EQ(in.tags, (std::vector<std::string>{"a", "b", "c", "d"}));
  patch(in, R"([{"op":"remove","path":"/tags/b"}])");
  EXPECT_EQ(in.tags, (std::vector<std::string>{"a", "c", "d"}));
  patch(in, R"([{"op":"remove","path":"/tags/not-there"}])");  // removing what is absent: no-op
  EXPECT_EQ(in.tags.size(), 3u);
  patch(in, R"([{"op":"replace","path":"/tags","value":["z"]}])");
  EXPECT_EQ(in.tags, std::vector<std::string>{"z"});
  patch(in, R"([{"op":"remove","path":"/tags"}])");
  EXPECT_TRUE(in.tags.empty());
}

TEST(Patch, SetsAndRemovesUserIdAndPushChannel) {
  Installation in = base();
  in.expired_push_channel = true;
  patch(in, R"([{"op":"replace","path":"/userId","value":"carol"},
                {"op":"add","path":"/pushChannel","value":"ffff0000ffff0000"}])");
  EXPECT_EQ(in.user_id, "carol");
  EXPECT_EQ(in.push_channel, "ffff0000ffff0000");
  EXPECT_FALSE(in.expired_push_channel);  // a new channel is a live one
  patch(in, R"([{"op":"remove","path":"/userId"}])");
  EXPECT_TRUE(in.user_id.empty());
  EXPECT_THAT(patchError(in, R"([{"op":"remove","path":"/pushChannel"}])"),
              HasSubstr("/0 (remove /pushChannel): pushChannel is required"));
}

TEST(Patch, AddsReplacesAndRemovesTemplatesAndTheirParts) {
  Installation in = base();
  patch(in,
        R"([{"op":"add","path":"/templates/t2","value":"{\"body\":\"{}\",\"tags\":[\"q\"]}"}])");
  ASSERT_TRUE(in.templates.contains("t2"));
  EXPECT_EQ(in.templates["t2"].tags, std::vector<std::string>{"q"});
  patch(in, R"j([{"op":"add","path":"/templates/t2/body","value":"{\"a\":1}"},
                {"op":"add","path":"/templates/t2/headers","value":{"X-H":"1"}},
                {"op":"add","path":"/templates/t2/headers","value":{"X-Other":"2"}},
                {"op":"add","path":"/templates/t2/expiry","value":"$(e)"},
                {"op":"add","path":"/templates/t2/tags","value":"r"},
                {"op":"remove","path":"/templates/t2/tags/q"}])j");
  const auto& t2 = in.templates["t2"];
  EXPECT_EQ(t2.body, "{\"a\":1}");
  EXPECT_EQ(t2.headers, (std::map<std::string, std::string>{{"X-Other", "2"}}));  // add replaces
  EXPECT_EQ(t2.expiry, "$(e)");
  EXPECT_EQ(t2.tags, std::vector<std::string>{"r"});
  patch(in, R"([{"op":"remove","path":"/templates/t2"}])");
  EXPECT_FALSE(in.templates.contains("t2"));
}

TEST(Patch, RefusesWhatItCannotDoNamingTheOperation) {
  Installation in = base();
  EXPECT_EQ(patchError(in, R"([{"op":"move","path":"/tags"}])"),
            "/0/op: 'move' is not add, remove or replace");
  EXPECT_EQ(patchError(in, R"([{"path":"/tags"}])"), "/0/op: is required");
  EXPECT_EQ(patchError(in, R"({"op":"add"})"), "a patch is a JSON array of operations");
  EXPECT_THAT(
      patchError(in, R"([{"op":"add","path":"/tags","value":"ok"},{"op":"add","path":"/tags"}])"),
      HasSubstr("/1 (add /tags): needs a value"));
  EXPECT_THAT(patchError(in, R"([{"op":"add","path":"/platform","value":"wns"}])"),
              HasSubstr("/0 (add /platform): pushhub patches /pushChannel"));
  EXPECT_THAT(patchError(in, R"([{"op":"add","path":"/templates/nope/body","value":"{}"}])"),
              HasSubstr("no template named 'nope'"));
  EXPECT_THAT(patchError(in, R"([{"op":"remove","path":"/templates/nope"}])"),
              HasSubstr("no template named 'nope'"));
  EXPECT_THAT(patchError(in, R"([{"op":"remove","path":"/templates/t1/body"}])"),
              HasSubstr("body is required"));
  EXPECT_THAT(patchError(in, R"([{"op":"add","path":"/templates/t1/color","value":"red"}])"),
              HasSubstr("not 'color'"));
  EXPECT_THAT(patchError(in, R"([{"op":"add","path":"/tags","value":5}])"),
              HasSubstr("must be an array of strings"));
  EXPECT_THAT(patchError(in, R"([{"op":"add","path":"/userId","value":["x"]}])"),
              HasSubstr("must be a string"));
  EXPECT_THAT(patchError(in, R"([{"op":"replace","path":"/tags/a","value":"b"}])"),
              HasSubstr("replace takes the whole"));
  EXPECT_THAT(patchError(in, R"([{"op":"add","path":"tags","value":"b"}])"),
              HasSubstr("must start with '/'"));
}

}  // namespace
}  // namespace pushhub::storage
