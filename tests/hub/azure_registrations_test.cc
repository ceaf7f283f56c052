// Registrations (Atom XML) and the device query over real HTTP: create/update with ETags, the
// listings with $filter, tags and continuation, registrations sharing a device handle each
// receiving their notifications from pushhub-sim, and GET /{hub}/installations.
#include <regex>

#include "tests/hub/azure_fixture.h"

namespace pushhub::hub {
namespace {

using namespace engine_testing;
using ::testing::UnorderedElementsAre;

const std::string kToken = std::string(64, 'e');  // a live device ("bbbb…" is a bad one)

// As the JS SDK serialises a registration (serializeToAtomXmlRequest): an Atom entry, the
// description in the servicebus namespace.
std::string entry(const std::string& description) {
  return R"(<?xml version="1.0" encoding="utf-8"?><entry xmlns="http://www.w3.org/2005/Atom">)"
         R"(<updated>2026-11-25T10:00:00.000Z</updated><content type="application/xml">)" +
         description + "</content></entry>";
}

std::string appleNative(const std::string& token, const std::string& tags) {
  return entry(
      R"(<AppleRegistrationDescription xmlns:i="http://www.w3.org/2001/XMLSchema-instance" )"
      R"(xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect">)"
      "<Tags>" +
      tags + "</Tags><DeviceToken>" + token + "</DeviceToken></AppleRegistrationDescription>");
}

std::string appleTemplate(const std::string& token, const std::string& tags,
                          const std::string& name) {
  return entry(
      R"(<AppleTemplateRegistrationDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect">)"
      "<Tags>" +
      tags + "</Tags><DeviceToken>" + token +
      R"x(</DeviceToken><BodyTemplate><![CDATA[{"aps":{"alert":"$(msg)"}}]]></BodyTemplate>)x"
      "<Expiry>$(exp)</Expiry><TemplateName>" +
      name +
      "</TemplateName><Priority>5</Priority><ApnsHeaders><ApnsHeader><Header>apns-push-type</"
      "Header><Value>alert</Value></ApnsHeader></ApnsHeaders>"
      "</AppleTemplateRegistrationDescription>");
}

std::string idOf(const std::string& xml) {
  std::smatch m;
  if (!std::regex_search(xml, m, std::regex("<RegistrationId>([^<]+)</RegistrationId>"))) return {};
  return m[1];
}

TEST_P(AzureRoutes, RegistrationsAreCreatedReadUpdatedWithETagsAndDeleted) {
  auto created =
      call("POST", "/demo/registrations/?api-version=2015-01", appleNative(kToken, "a,b"),
           {{"Content-Type", "application/atom+xml;type=entry;charset=utf-8"}}, token(kListen));
  ASSERT_EQ(created.status, 200u) << created.body;
  EXPECT_EQ(created.header("content-type"), "application/atom+xml;type=entry;charset=utf-8");
  const std::string id = idOf(created.body);
  ASSERT_TRUE(std::regex_match(id, std::regex(R"(\d+-\d+-\d+)"))) << created.body;
  EXPECT_THAT(created.body, HasSubstr("<AppleRegistrationDescription "));
  EXPECT_THAT(created.body, HasSubstr("<ETag>1</ETag>"));
  EXPECT_THAT(created.body, HasSubstr("<Tags>a,b</Tags>"));
  EXPECT_THAT(created.body, HasSubstr("<DeviceToken>" + kToken + "</DeviceToken>"));
  EXPECT_EQ(created.header("etag"), "\"1\"");

  auto got = call("GET", "/demo/registrations/" + id, {}, {}, token(kListen));
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(idOf(got.body), id);

  // Update with the ETag read: accepted, ETag 2. The stale one is refused: 412, unchanged.
  auto updated = call("PUT", "/demo/registrations/" + id, appleNative(kToken, "c"),
                      {{"If-Match", "\"1\""}}, token(kListen));
  EXPECT_EQ(updated.status, 200u) << updated.body;
  EXPECT_THAT(updated.body, HasSubstr("<ETag>2</ETag>"));
  auto stale = call("PUT", "/demo/registrations/" + id, appleNative(kToken, "d"),
                    {{"If-Match", "\"1\""}}, token(kListen));
  EXPECT_EQ(stale.status, 412u) << stale.body;
  EXPECT_THAT(stale.body, HasSubstr("has ETag 2, not 1"));
  EXPECT_THAT(call("GET", "/demo/registrations/" + id).body, HasSubstr("<Tags>c</Tags>"));
  // If-Match on a registration that does not exist: 404, nothing created.
  EXPECT_EQ(call("PUT", "/demo/registrations/1-2-3", appleNative(kToken, "x"), {{"If-Match", "*"}})
                .status,
            404u);
  // PUT without If-Match creates under the caller's id (createOrUpdate).
  EXPECT_EQ(call("PUT", "/demo/registrations/1-2-3", appleNative(kToken, "x")).status, 200u);

  EXPECT_EQ(call("DELETE", "/demo/registrations/" + id, {}, {{"If-Match", "\"7\""}}).status, 412u);
  EXPECT_EQ(
      call("DELETE", "/demo/registrations/" + id, {}, {{"If-Match", "*"}}, token(kListen)).status,
      200u);
  EXPECT_EQ(call("GET", "/demo/registrations/" + id).status, 404u);
  EXPECT_EQ(call("DELETE", "/demo/registrations/" + id, {}, {{"If-Match", "*"}}).status, 404u);
  // An installation is not a registration, and the other way round.
  ASSERT_EQ(call("PUT", "/demo/installations/i5", apnsInstallationJson("i5", "")).status, 200u);
  EXPECT_EQ(call("GET", "/demo/registrations/i5").status, 404u);
  EXPECT_EQ(call("PUT", "/demo/registrations/i5", appleNative(kToken, "x")).status, 400u);
}

TEST_P(AzureRoutes, RegistrationRefusalsNameTheProblemAndStoreNothing) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<entry", "not well-formed XML"},
      {entry(""), "holds no description"},
      {entry("<MpnsRegistrationDescription><ChannelUri>https://x</ChannelUri>"
             "</MpnsRegistrationDescription>"),
       "Mpns registrations are not supported"},
      {entry("<AppleRegistrationDescription><Tags>a</Tags></AppleRegistrationDescription>"),
       "&lt;DeviceToken&gt; is required"},
      {entry("<AppleRegistrationDescription><DeviceToken>" + kToken +
             "</DeviceToken><Colour>red</Colour></AppleRegistrationDescription>"),
       "&lt;Colour&gt; is not a field of AppleRegistrationDescription"},
      {appleNative("xyz", "a"), "hex digits"},
      {appleNative(kToken, "bad tag!"), "is not a tag"},
      {entry("<AppleTemplateRegistrationDescription><DeviceToken>" + kToken +
             "</DeviceToken></AppleTemplateRegistrationDescription>"),
       "&lt;BodyTemplate&gt; is required"},
      {entry("<WindowsTemplateRegistrationDescription><ChannelUri>https://wns.example/c"
             "</ChannelUri><BodyTemplate>&lt;toast/&gt;</BodyTemplate>"
             "</WindowsTemplateRegistrationDescription>"),
       "X-WNS-Type"},
  };
  for (const auto& [body, detail] : cases) {
    auto reply = call("POST", "/demo/registrations", body);
    EXPECT_EQ(reply.status, 400u) << body << ": " << reply.body;
    EXPECT_THAT(reply.body, HasSubstr(detail)) << body;
  }
  EXPECT_EQ(store_->installationCount(), 0u);
  // Listings need Manage; a Listen key may only act on one registration by id.
  auto list = call("GET", "/demo/registrations", {}, {}, token(kListen));
  EXPECT_EQ(list.status, 403u);
  EXPECT_THAT(list.body, HasSubstr("this needs Manage"));
  EXPECT_EQ(call("GET", "/demo/registrations?$filter=Colour%20eq%20'x'").status, 400u);
  EXPECT_EQ(call("GET", "/demo/registrations?$top=0").status, 400u);
}

TEST_P(AzureRoutes, RegistrationsSharingAHandleEachReceiveTheirNotifications) {
  // The classic app pattern: one native and one template registration for the same token.
  auto native = call("POST", "/demo/registrations", appleNative(kToken, "news"));
  auto templ = call("POST", "/demo/registrations", appleTemplate(kToken, "news", "alerts"));
  ASSERT_EQ(native.status, 200u) << native.body;
  ASSERT_EQ(templ.status, 200u) << templ.body;
  EXPECT_THAT(templ.body, HasSubstr("<AppleTemplateRegistrationDescription "));
  EXPECT_THAT(templ.body, HasSubstr(R"x(<BodyTemplate><![CDATA[{"aps":{"alert":"$(msg)"}}]]>)x"));
  EXPECT_THAT(templ.body, HasSubstr("<Expiry>$(exp)</Expiry>"));
  EXPECT_THAT(templ.body, HasSubstr("<Priority>5</Priority>"));
  EXPECT_THAT(templ.body, HasSubstr("<TemplateName>alerts</TemplateName>"));
  EXPECT_THAT(templ.body, HasSubstr("<Header>apns-push-type</Header><Value>alert</Value>"));

  // A template send reaches the template registration only; a native send the native one only.
  auto sent = call(
      "POST", "/demo/messages", R"({"msg":"hello","exp":"2030-01-01T00:00:00Z"})",
      {{"ServiceBusNotification-Format", "template"}, {"ServiceBusNotification-Tags", "news"}});
  ASSERT_EQ(sent.status, 201u) << sent.body;
  std::smatch m;
  const std::string location = sent.header("location");
  ASSERT_TRUE(std::regex_search(location, m, std::regex(R"(/messages/(\w+)\?)")));
  waitDone(m[1]);
  auto native_sent =
      call("POST", "/demo/messages", R"({"aps":{"alert":"native"}})",
           {{"ServiceBusNotification-Format", "apple"}, {"ServiceBusNotification-Tags", "news"}});
  ASSERT_EQ(native_sent.status, 201u);
  const std::string native_location = native_sent.header("location");
  ASSERT_TRUE(std::regex_search(native_location, m, std::regex(R"(/messages/(\w+)\?)")));
  waitDone(m[1]);
  std::vector<std::string> bodies;
  for (const auto& r : records()) {
    EXPECT_EQ(r.handle, kToken);
    bodies.push_back(r.body);
  }
  EXPECT_THAT(bodies, UnorderedElementsAre(R"({"aps":{"alert":"hello"}})",
                                           R"({"aps":{"alert":"native"}})"));
  for (const auto& r : records()) {
    if (r.body.find("hello") != std::string::npos) {
      EXPECT_EQ(r.headers.count("apns-priority") ? r.headers.at("apns-priority") : "", "5");
    }
  }

  // Both are found by their channel, by tag, and page by page with the continuation header.
  auto by_channel = call("GET", "/demo/registrations?$filter=DeviceToken%20eq%20'" + kToken + "'");
  EXPECT_EQ(by_channel.status, 200u) << by_channel.body;
  EXPECT_EQ(by_channel.header("content-type"), "application/atom+xml;type=feed;charset=utf-8");
  EXPECT_THAT(by_channel.body, HasSubstr("<feed xmlns=\"http://www.w3.org/2005/Atom\">"));
  EXPECT_THAT(by_channel.body, HasSubstr(idOf(native.body)));
  EXPECT_THAT(by_channel.body, HasSubstr(idOf(templ.body)));
  auto none =
      call("GET", "/demo/registrations?$filter=DeviceToken%20eq%20'" + std::string(64, 'c') + "'");
  EXPECT_THAT(none.body, Not(HasSubstr("<entry")));
  auto by_tag = call("GET", "/demo/tags/news/registrations");
  EXPECT_EQ(by_tag.status, 200u);
  EXPECT_THAT(by_tag.body, HasSubstr(idOf(native.body)));
  EXPECT_THAT(by_tag.body, HasSubstr(idOf(templ.body)));
  EXPECT_THAT(call("GET", "/demo/tags/sport/registrations").body, Not(HasSubstr("<entry")));
  std::set<std::string> seen;
  std::string continuation;
  for (int page = 0; page < 5; ++page) {
    auto reply =
        call("GET", "/demo/registrations?$top=1" +
                        (continuation.empty() ? "" : "&continuationtoken=" + continuation));
    ASSERT_EQ(reply.status, 200u) << reply.body;
    if (const std::string id = idOf(reply.body); !id.empty()) seen.insert(id);
    continuation = reply.header("x-ms-continuationtoken");
    if (continuation.empty()) break;
  }
  EXPECT_EQ(seen, (std::set<std::string>{idOf(native.body), idOf(templ.body)}));
}

TEST_P(AzureRoutes, InstallationsCanBeQueriedByTagExpressionAndUserPageByPage) {
  for (int i = 0; i < 25; ++i) {
    const std::string id = fmt::format("q{:02}", i);
    std::string json = apnsInstallationJson(id, i % 2 == 0 ? R"("even")" : R"("odd")");
    json.insert(1, fmt::format(R"("userId":"user{}",)", i % 3));
    ASSERT_EQ(call("PUT", "/demo/installations/" + id, json).status, 200u);
  }
  ASSERT_EQ(call("POST", "/demo/registrations", appleNative(kToken, "even")).status, 200u);
  std::set<std::string> even;
  std::string continuation;
  for (int page = 0; page < 10; ++page) {
    auto reply = call("GET", "/demo/installations?tag=even&top=4" +
                                 (continuation.empty() ? "" : "&continuation=" + continuation));
    ASSERT_EQ(reply.status, 200u) << reply.body;
    EXPECT_EQ(reply.header("content-type"), "application/json; charset=utf-8");
    std::regex id_re(R"x("installationId":"(q\d+)")x");
    for (std::sregex_iterator it(reply.body.begin(), reply.body.end(), id_re), end; it != end;
         ++it) {
      EXPECT_TRUE(even.insert((*it)[1]).second) << "twice: " << (*it)[1];
    }
    continuation = reply.header("x-ms-continuationtoken");
    if (continuation.empty()) {
      EXPECT_THAT(reply.body, HasSubstr(R"("continuationToken":null)"));
      break;
    }
  }
  EXPECT_EQ(even.size(), 13u);  // q00, q02, … q24; the registration is not an installation
  auto user = call("GET", "/demo/installations?tag=even%20%7C%7C%20odd&userId=user1");
  ASSERT_EQ(user.status, 200u);
  const std::regex id_re(R"("installationId":"q\d+")");
  EXPECT_EQ(std::distance(std::sregex_iterator(user.body.begin(), user.body.end(), id_re),
                          std::sregex_iterator()),
            8);  // q01, q04, … q22
  auto all = call("GET", "/demo/installations?top=1000");
  EXPECT_EQ(std::regex_search(all.body, std::regex(R"("installationId":"q24")")), true);
  EXPECT_EQ(call("GET", "/demo/installations", {}, {}, token(kListen)).status, 403u);
  auto bad = call("GET", "/demo/installations?tag=a%20%26%26");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_THAT(bad.body, HasSubstr("tag:"));
  EXPECT_EQ(call("GET", "/demo/installations?continuation=garbage").status, 400u);
}

}  // namespace
}  // namespace pushhub::hub
