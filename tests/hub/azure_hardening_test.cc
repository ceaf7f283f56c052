// What a hostile or careless client sends to the Azure routes — nested bodies, invalid UTF-8,
// ids URLs cannot address, templates that can never render, payloads no push service takes — is
// refused with a clear 400, stores nothing, and leaves the server answering. Each case here was
// accepted (or crashed the process) before the hardening issue.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/hub/azure_fixture.h"

namespace pushhub::hub::engine_testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::pair<std::string, std::string>> kTemplateSend = {
    {"ServiceBusNotification-Format", "template"}};

TEST_P(AzureRoutes, DeeplyNestedBodiesAreRefusedNotACrash) {
  // 110,000 '[' with a Listen key (which ships in every app) overflowed a shard's stack.
  const std::string deep(110'000, '[');
  struct Case {
    std::string method, target;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string authorization;
  };
  const std::vector<Case> cases = {
      {"PUT", "/demo/installations/x", {}, token(kListen)},
      {"PATCH", "/demo/installations/x", {}, token(kListen)},
      {"POST", "/demo/messages", kTemplateSend, token(kFull)},
      {"POST",
       "/demo/schedulednotifications",
       {{"ServiceBusNotification-Format", "template"},
        {"ServiceBusNotification-ScheduleTimeUtc", "2099-01-01T00:00:00Z"}},
       token(kFull)},
  };
  for (const auto& c : cases) {
    auto reply = call(c.method, c.target, deep, c.headers, c.authorization);
    EXPECT_EQ(reply.status, 400u) << c.method << " " << c.target;
    EXPECT_THAT(reply.body, HasSubstr("nested deeper than 64 levels")) << c.target;
  }
  // A PATCH of an installation that exists.
  ASSERT_EQ(call("PUT", "/demo/installations/x1", apnsInstallationJson("x1", "")).status, 200u);
  auto patch = call("PATCH", "/demo/installations/x1", deep, {}, token(kListen));
  EXPECT_EQ(patch.status, 400u);
  EXPECT_THAT(patch.body, HasSubstr("nested deeper"));
  // The $batch devices part.
  const std::string batch =
      "--b\r\nContent-Disposition: inline; name=notification\r\n\r\n{}\r\n"
      "--b\r\nContent-Disposition: inline; name=devices\r\n\r\n" +
      deep + "\r\n--b--";
  auto batched = call("POST", "/demo/messages/$batch?direct", batch,
                      {{"ServiceBusNotification-Format", "apple"},
                       {"Content-Type", "multipart/mixed; boundary=b"}});
  EXPECT_EQ(batched.status, 400u);
  EXPECT_THAT(batched.body, HasSubstr("nested deeper"));
  EXPECT_EQ(call("GET", "/demo/installations/x1").status, 200u);
  EXPECT_TRUE(engine_->notifications().active()->empty());
}

TEST_P(AzureRoutes, InvalidTextAndUnaddressableIdsAreRefusedAndErrorsStayWellFormed) {
  const auto put = [&](const std::string& target, const std::string& body) {
    return call("PUT", target, body, {}, token(kListen));
  };
  auto raw = put("/demo/installations/a%FFb", R"({"installationId":"a)"
                                              "\xff"
                                              R"(b","platform":"apns","pushChannel":")" +
                                                  std::string(64, 'a') + R"("})");
  EXPECT_EQ(raw.status, 400u);
  EXPECT_THAT(raw.body, HasSubstr("Invalid encoding"));
  EXPECT_THAT(raw.body, Not(HasSubstr("\xff")));
  // Escaped in JSON, the same bytes are still refused (an id is UTF-8 without NUL).
  auto nul = put("/demo/installations/a%00b", R"({"installationId":"a\u0000b","platform":"apns",)"
                                              R"("pushChannel":")" +
                                                  std::string(64, 'a') + R"("})");
  EXPECT_EQ(nul.status, 400u);
  EXPECT_THAT(nul.body, Not(HasSubstr(std::string(1, '\0'))));
  for (const std::string id : {".", ".."}) {
    auto dots = put("/demo/installations/" + std::string(id == "." ? "%2E" : "%2E%2E"),
                    apnsInstallationJson("i", "").replace(19, 1, id));
    EXPECT_EQ(dots.status, 400u) << id << ": " << dots.body;
    EXPECT_THAT(dots.body, HasSubstr("&apos;.&apos; and &apos;..&apos; are not installation ids"));
  }
  auto body_nul =
      put("/demo/installations/t", R"({"installationId":"t","platform":"apns","pushChannel":")" +
                                       std::string(64, 'a') +
                                       R"(","templates":{"m":{"body":"{\"aps\":{}}\u0000"}}})");
  EXPECT_EQ(body_nul.status, 400u);
  EXPECT_THAT(body_nul.body, HasSubstr("templates/m/body: contains a NUL character"));
  EXPECT_EQ(store_->installationCount(), 0u);
}

TEST_P(AzureRoutes, TemplatesThatCanNeverRenderAreRefusedWhenRegistered) {
  const auto with = [&](const std::string& templates) {
    return R"({"installationId":"t","platform":"apns","pushChannel":")" + std::string(64, 'a') +
           R"(","templates":)" + templates + "}";
  };
  struct Case {
    std::string templates;
    const char* detail;
  };
  const std::vector<Case> cases = {
      {R"({"m":{"body":"{\"aps\":{\"alert\":\"$(message\"}}"}})", "templates/m/body: position"},
      {R"({"m":{"body":"{\"a\":\"{'a' + $(x) +}\"}"}})", "templates/m/body: position"},
      {R"({"m":{"body":"{\"a\":\"$(message, abc)\"}"}})", "templates/m/body: position"},
      {R"({"m":{"body":"{\"aps\":{\"alert\":\"$(greeting) $(name)\"}}"}})",
       "templates/m/body: position"},
      {R"({"m":{"body":"{\"aps\":{}}","headers":{"apns-priority":"$(prio"}}})",
       "templates/m/headers/apns-priority: position"},
  };
  for (const auto& c : cases) {
    auto reply = call("PUT", "/demo/installations/t", with(c.templates), {}, token(kListen));
    EXPECT_EQ(reply.status, 400u) << c.templates << ": " << reply.body;
    EXPECT_THAT(reply.body, HasSubstr(c.detail)) << c.templates;
  }
  EXPECT_EQ(store_->installationCount(), 0u);
  // A good one is stored; a PATCH that would add a broken template changes nothing.
  ASSERT_EQ(call("PUT", "/demo/installations/t",
                 with(R"({"m":{"body":"{\"aps\":{\"alert\":\"$(message)\"}}"}})"))
                .status,
            200u);
  auto patch = call(
      "PATCH", "/demo/installations/t",
      R"([{"op":"add","path":"/templates/x","value":"{\"body\":\"{\\\"a\\\":\\\"$(m\\\"}\"}"}])",
      {}, token(kListen));
  EXPECT_EQ(patch.status, 400u) << patch.body;
  EXPECT_THAT(patch.body, HasSubstr("templates/x/body: position"));
  auto stored = store_->get(kHub, "t");
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->templates.size(), 1u);
  // An Atom template registration the same way.
  const std::string atom =
      R"(<?xml version="1.0" encoding="utf-8"?><entry xmlns="http://www.w3.org/2005/Atom">)"
      R"(<content type="application/xml"><AppleTemplateRegistrationDescription )"
      R"(xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect"><DeviceToken>)" +
      std::string(64, 'c') +
      R"x(</DeviceToken><BodyTemplate><![CDATA[{"aps":{"alert":"$(msg"}}]]></BodyTemplate>)x"
      "</AppleTemplateRegistrationDescription></content></entry>";
  auto registration = call("POST", "/demo/registrations", atom);
  EXPECT_EQ(registration.status, 400u) << registration.body;
  EXPECT_THAT(registration.body, HasSubstr("position"));
  EXPECT_EQ(store_->installationCount(), 1u);
}

TEST_P(AzureRoutes, SendsNoPushServiceWouldTakeAreRefusedAtAccept) {
  const auto apple = [&](const std::string& body,
                         std::vector<std::pair<std::string, std::string>> extra = {}) {
    extra.emplace_back("ServiceBusNotification-Format", "apple");
    return call("POST", "/demo/messages", body, extra);
  };
  auto big = apple(R"({"aps":{"alert":")" + std::string(100'000, 'x') + R"("}})");
  EXPECT_EQ(big.status, 400u);
  EXPECT_THAT(big.body, HasSubstr("over APNs&apos; limit of 4096"));
  auto not_json = apple("hello");
  EXPECT_EQ(not_json.status, 400u);
  EXPECT_THAT(not_json.body, HasSubstr("not well-formed JSON"));
  auto long_tag = apple(R"({"aps":{}})", {{"ServiceBusNotification-Tags", std::string(200, 't')}});
  EXPECT_EQ(long_tag.status, 400u);
  EXPECT_THAT(long_tag.body, HasSubstr("a tag of 200 characters"));
  const std::string two_parts =
      "--b\r\nContent-Disposition: inline; name=notification\r\n\r\n{\"aps\":{}}\r\n"
      "--b\r\nContent-Disposition: inline; name=notification\r\n\r\n{\"aps\":{\"x\":1}}\r\n"
      "--b\r\nContent-Disposition: inline; name=devices\r\n\r\n[\"" +
      std::string(64, 'a') + "\"]\r\n--b--";
  auto batch = call("POST", "/demo/messages/$batch?direct", two_parts,
                    {{"ServiceBusNotification-Format", "apple"},
                     {"Content-Type", "multipart/mixed; boundary=b"}});
  EXPECT_EQ(batch.status, 400u);
  EXPECT_THAT(batch.body, HasSubstr("this one has two"));
  EXPECT_TRUE(engine_->notifications().active()->empty());
}

}  // namespace
}  // namespace pushhub::hub::engine_testing
