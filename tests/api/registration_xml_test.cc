// Registration descriptions in Atom XML: each family parsed into an installation of kind
// kRegistration and written back in Azure's element order, and the channel $filter.
#include "api/registration_xml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pushhub::api {
namespace {

using storage::Platform;
using ::testing::HasSubstr;
using ::testing::Not;

std::string wrap(const std::string& description) {
  return "<entry xmlns=\"http://www.w3.org/2005/Atom\"><content type=\"application/xml\">" +
         description + "</content></entry>";
}

TEST(RegistrationXml, EachFamilyParsesIntoARegistration) {
  auto gcm = parseRegistrationXml(
      wrap("<GcmRegistrationDescription xmlns=\"http://schemas.microsoft.com/netservices/2010/10/"
           "servicebus/connect\"><RegistrationId>1-2-3</RegistrationId><Tags> a , b,,c </Tags>"
           "<GcmRegistrationId>tok:en</GcmRegistrationId><ExpirationTime>2030-01-02T03:04:05Z"
           "</ExpirationTime><ETag>9</ETag></GcmRegistrationDescription>"));
  ASSERT_TRUE(gcm.has_value()) << gcm.error();
  EXPECT_EQ(gcm->kind, storage::DeviceKind::kRegistration);
  EXPECT_EQ(gcm->platform, Platform::kFcmV1);
  EXPECT_EQ(gcm->id, "1-2-3");
  EXPECT_EQ(gcm->push_channel, "tok:en");
  EXPECT_EQ(gcm->tags, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(gcm->expiration_time, 1'893'553'445'000);
  EXPECT_TRUE(gcm->templates.empty());

  auto fcm = parseRegistrationXml(
      "<ns:FcmV1TemplateRegistrationDescription xmlns:ns=\"x\"><ns:FcmV1RegistrationId>t"
      "</"
      "ns:FcmV1RegistrationId><ns:BodyTemplate><![CDATA[{\"message\":{\"data\":{\"m\":\"$(m)\"}}}]]"
      ">"
      "</ns:BodyTemplate><ns:TemplateName>t1</ns:TemplateName>"
      "</ns:FcmV1TemplateRegistrationDescription>");
  ASSERT_TRUE(fcm.has_value()) << fcm.error();
  EXPECT_EQ(fcm->platform, Platform::kFcmV1);
  ASSERT_EQ(fcm->templates.count("t1"), 1u);
  EXPECT_EQ(fcm->templates.at("t1").body, R"x({"message":{"data":{"m":"$(m)"}}})x");

  auto wns = parseRegistrationXml(
      wrap("<WindowsTemplateRegistrationDescription><ChannelUri>https://wns.example/c?t=1&amp;u=2"
           "</ChannelUri><BodyTemplate>&lt;toast&gt;$(m)&lt;/toast&gt;</BodyTemplate><WnsHeaders>"
           "<WnsHeader><Header>X-WNS-Type</Header><Value>wns/toast</Value></WnsHeader></WnsHeaders>"
           "</WindowsTemplateRegistrationDescription>"));
  ASSERT_TRUE(wns.has_value()) << wns.error();
  EXPECT_EQ(wns->push_channel, "https://wns.example/c?t=1&u=2");
  ASSERT_EQ(wns->templates.count(""), 1u);  // unnamed: the caller names it after the id
  EXPECT_EQ(wns->templates.at("").body, "<toast>$(m)</toast>");
  EXPECT_EQ(wns->templates.at("").headers.at("X-WNS-Type"), "wns/toast");

  auto broken = parseRegistrationXml(
      wrap("<WindowsTemplateRegistrationDescription><ChannelUri>https://x</ChannelUri><WnsHeaders>"
           "<Other/></WnsHeaders></WindowsTemplateRegistrationDescription>"));
  ASSERT_FALSE(broken.has_value());
  EXPECT_THAT(broken.error(), HasSubstr("WnsHeaders holds <Other>, expected <WnsHeader>"));
  auto bad_time = parseRegistrationXml(
      wrap("<AppleRegistrationDescription><DeviceToken>ab</DeviceToken><ExpirationTime>soon"
           "</ExpirationTime></AppleRegistrationDescription>"));
  ASSERT_FALSE(bad_time.has_value());
  EXPECT_THAT(bad_time.error(), HasSubstr("ExpirationTime: 'soon'"));
}

TEST(RegistrationXml, EntriesAndFeedsAreWrittenInAzuresShape) {
  storage::Installation r;
  r.id = "5-6-1";
  r.kind = storage::DeviceKind::kRegistration;
  r.platform = Platform::kWns;
  r.push_channel = "https://wns.example/c?a=1&b=2";
  r.tags = {"x", "y"};
  r.version = 3;
  r.last_update = 1'800'000'000'000;
  storage::InstallationTemplate t;
  t.body = "<toast>]]>$(m)</toast>";
  t.headers["X-WNS-Type"] = "wns/toast";
  r.templates["5-6-1"] = t;
  const std::string xml = registrationEntryXml(r, "https://h/hub");
  EXPECT_THAT(xml, HasSubstr("<id>https://h/hub/registrations/5-6-1?api-version=2015-01</id>"));
  EXPECT_THAT(xml, HasSubstr("<WindowsTemplateRegistrationDescription xmlns:i="));
  EXPECT_THAT(xml, HasSubstr("<ETag>3</ETag><ExpirationTime>9999-12-31T23:59:59Z</ExpirationTime>"
                             "<RegistrationId>5-6-1</RegistrationId><Tags>x,y</Tags>"
                             "<ChannelUri>https://wns.example/c?a=1&amp;b=2</ChannelUri>"));
  // The unnamed template shows no TemplateName; "]]>" in the body survives CDATA.
  EXPECT_THAT(xml, Not(HasSubstr("TemplateName")));
  auto back = parseRegistrationXml(xml);
  ASSERT_TRUE(back.has_value()) << back.error();
  EXPECT_EQ(back->templates.at("").body, t.body);
  EXPECT_EQ(back->templates.at("").headers, t.headers);
  EXPECT_EQ(back->push_channel, r.push_channel);

  const std::string feed =
      registrationFeedXml({r, r}, "https://h/hub", "https://h/hub/registrations");
  EXPECT_THAT(feed, HasSubstr("<feed xmlns=\"http://www.w3.org/2005/Atom\"><title type=\"text\">"
                              "Registrations</title>"));
  size_t entries = 0;
  for (size_t at = 0; (at = feed.find("<entry ", at)) != std::string::npos; ++at) ++entries;
  EXPECT_EQ(entries, 2u);
}

TEST(RegistrationXml, ChannelFiltersAsTheSdksWriteThem) {
  auto uri = parseChannelFilter("ChannelUri eq 'https://wns.example/c?x=''1'''");
  ASSERT_TRUE(uri.has_value()) << uri.error();
  EXPECT_EQ(uri->platform, Platform::kWns);
  EXPECT_EQ(uri->handle, "https://wns.example/c?x='1'");
  auto token = parseChannelFilter("DeviceToken  eq  'ABCD'");
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->platform, Platform::kApns);
  EXPECT_EQ(parseChannelFilter("FcmV1RegistrationId eq 't'")->platform, Platform::kFcmV1);
  EXPECT_EQ(parseChannelFilter("GcmRegistrationId eq 't'")->platform, Platform::kFcmV1);
  EXPECT_THAT(parseChannelFilter("Tags eq 'a'").error(), HasSubstr("field 'Tags'"));
  EXPECT_THAT(parseChannelFilter("DeviceToken ne 'a'").error(), HasSubstr("only 'eq'"));
  EXPECT_THAT(parseChannelFilter("DeviceToken eq a").error(), HasSubstr("not a quoted string"));
  EXPECT_THAT(parseChannelFilter("DeviceToken eq 'a'b'").error(), HasSubstr("doubled"));
}

}  // namespace
}  // namespace pushhub::api
