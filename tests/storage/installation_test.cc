#include "storage/installation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include "tests/storage/test_installations.h"

namespace pushhub::storage {
namespace {

using testing::apnsInstallation;
using ::testing::HasSubstr;

std::string problemWith(const Installation& in, const ValidationLimits& limits = {}) {
  auto result = validateInstallation(in, limits);
  EXPECT_FALSE(result.has_value()) << "expected invalid";
  return result ? std::string() : result.error().message();
}

Installation withTemplate(Platform platform, std::string body,
                          std::map<std::string, std::string> headers = {}) {
  Installation in = apnsInstallation("i1");
  in.platform = platform;
  if (platform == Platform::kWns) in.push_channel = "https://db5.notify.windows.com/?token=abc";
  if (platform == Platform::kFcmV1) in.push_channel = "fcm-token-123";
  in.templates["t1"] = InstallationTemplate{std::move(body), std::move(headers), "", {}};
  return in;
}

TEST(Platform, ParsesNamesCaseInsensitivelyWithGcmAsFcmV1) {
  EXPECT_EQ(parsePlatform("apns"), Platform::kApns);
  EXPECT_EQ(parsePlatform("APNS"), Platform::kApns);
  EXPECT_EQ(parsePlatform("gcm"), Platform::kFcmV1);
  EXPECT_EQ(parsePlatform("FcmV1"), Platform::kFcmV1);
  EXPECT_EQ(parsePlatform("wns"), Platform::kWns);
  EXPECT_EQ(parsePlatform("browser"), Platform::kBrowser);
  EXPECT_FALSE(parsePlatform("mpns"));
  EXPECT_FALSE(parsePlatform(""));
  EXPECT_EQ(platformName(Platform::kFcmV1), "fcmv1");
}

TEST(Tag, FollowsAzureCharacterAndLengthRules) {
  EXPECT_TRUE(isValidTag("sports"));
  EXPECT_TRUE(isValidTag("user@contoso.com#1:a_b-c"));
  EXPECT_TRUE(isValidTag(std::string(120, 'a')));
  EXPECT_FALSE(isValidTag(std::string(121, 'a')));
  EXPECT_FALSE(isValidTag(""));
  EXPECT_FALSE(isValidTag("has space"));
  EXPECT_FALSE(isValidTag("no/slash"));
  EXPECT_FALSE(isValidTag("a&&b"));
  EXPECT_FALSE(isValidTag("ümlaut"));
}

TEST(Validation, AcceptsAWellFormedInstallation) {
  Installation in = apnsInstallation("device-1", {"sports", "news"});
  in.user_id = "bob@contoso.com";
  in.templates["generic"] = {R"j({"aps":{"alert":"$(message)"}})j", {}, "$(expiry)", {"t"}};
  EXPECT_TRUE(validateInstallation(in, {}).has_value());
}

TEST(Validation, RejectsMissingOrMalformedIds) {
  EXPECT_EQ(problemWith(apnsInstallation("")), "installationId: is required");
  EXPECT_THAT(problemWith(apnsInstallation("a/b")),
              HasSubstr("installationId: must not contain '/'"));
  EXPECT_THAT(problemWith(apnsInstallation(std::string(257, 'x'))), HasSubstr("longer than 256"));
  Installation in = apnsInstallation("i");
  in.user_id = "bob smith";
  EXPECT_THAT(problemWith(in), HasSubstr("userId: 'bob smith' has characters"));
}

TEST(Validation, RejectsBadPushChannels) {
  Installation in = apnsInstallation("i");
  in.push_channel = "";
  EXPECT_EQ(problemWith(in), "pushChannel: is required");
  in.push_channel = "not-hex-at-all-zzzz";
  EXPECT_THAT(problemWith(in), HasSubstr("APNs device token"));
  in.push_channel = "abc";  // odd length
  EXPECT_THAT(problemWith(in), HasSubstr("APNs device token"));
  in.push_channel = "ab cd";
  EXPECT_THAT(problemWith(in), HasSubstr("spaces or control characters"));
  in.platform = Platform::kWns;
  in.push_channel = "http://insecure.example/";
  EXPECT_THAT(problemWith(in), HasSubstr("https:// URI"));
  in.platform = Platform::kBrowser;
  in.push_channel = "https://push.example/abc";
  EXPECT_EQ(problemWith(in), "pushChannel/p256dh: is required");
  ValidationLimits limits;
  limits.max_push_channel_bytes = 10;
  in.platform = Platform::kFcmV1;
  in.push_channel = std::string(11, 'a');
  EXPECT_THAT(problemWith(in, limits), HasSubstr("longer than 10 bytes"));
}

TEST(Validation, RejectsBadTagsAndTooManyTags) {
  EXPECT_THAT(problemWith(apnsInstallation("i", {"ok", "not ok"})),
              HasSubstr("tags/1: 'not ok' is not a tag"));
  std::vector<std::string> many;
  for (int i = 0; i < 61; ++i) many.push_back("t" + std::to_string(i));
  EXPECT_THAT(problemWith(apnsInstallation("i", many)),
              HasSubstr("61 tags, more than the limit of 60"));
  ValidationLimits limits;
  limits.max_tags = 100;
  limits.max_tag_length = 10;
  EXPECT_TRUE(validateInstallation(apnsInstallation("i", many), limits).has_value());
  EXPECT_THAT(problemWith(apnsInstallation("i", {"elevenchars"}), limits), HasSubstr("tags/0"));
}

TEST(Validation, RequiresTemplateBodiesThatParseForTheirPlatform) {
  EXPECT_THAT(problemWith(withTemplate(Platform::kApns, "{\"aps\": ")),
              HasSubstr("templates/t1/body: not valid JSON at offset"));
  EXPECT_THAT(problemWith(withTemplate(Platform::kApns, "[1,2]")),
              HasSubstr("must be a JSON object"));
  EXPECT_THAT(problemWith(withTemplate(Platform::kApns, "")),
              HasSubstr("templates/t1/body: is required"));
  EXPECT_TRUE(validateInstallation(
      withTemplate(Platform::kFcmV1, R"j({"message":{"data":{"m":"$(m)"}}})j"), {}));

  const std::string toast =
      R"j(<toast><visual><binding template="ToastText01"><text id="1">$(msg)</text></binding></visual></toast>)j";
  EXPECT_TRUE(
      validateInstallation(withTemplate(Platform::kWns, toast, {{"X-WNS-Type", "wns/toast"}}), {}));
  EXPECT_THAT(problemWith(withTemplate(Platform::kWns, toast)),
              HasSubstr("needs an X-WNS-Type header"));
  EXPECT_THAT(problemWith(withTemplate(Platform::kWns, toast, {{"X-WNS-Type", "wns/popup"}})),
              HasSubstr("is not wns/toast"));
  EXPECT_THAT(
      problemWith(withTemplate(Platform::kWns, "<toast><visual>", {{"X-WNS-Type", "wns/toast"}})),
      HasSubstr("not well-formed XML"));
  // Raw WNS notifications are opaque bytes.
  EXPECT_TRUE(validateInstallation(
      withTemplate(Platform::kWns, "anything {", {{"X-WNS-Type", "wns/raw"}}), {}));
}

TEST(Validation, RejectsBadTemplateNamesHeadersAndExpiry) {
  Installation in = withTemplate(Platform::kApns, "{}");
  in.templates["bad name"] = in.templates["t1"];
  EXPECT_THAT(problemWith(in),
              HasSubstr("templates/bad name: a template name follows the tag rules"));
  in = withTemplate(Platform::kApns, "{}", {{"bad header", "x"}});
  EXPECT_THAT(problemWith(in), HasSubstr("'bad header' is not a header name"));
  in = withTemplate(Platform::kFcmV1, "{}");
  in.templates["t1"].expiry = "2030-01-01T00:00:00Z";
  EXPECT_THAT(problemWith(in), HasSubstr("expiry: applies to APNs templates only"));
  in = withTemplate(Platform::kApns, "{}");
  in.templates["t1"].tags = {"bad tag"};
  EXPECT_THAT(problemWith(in), HasSubstr("templates/t1/tags/0"));
}

TEST(Record, RoundTripsEveryField) {
  Installation in = apnsInstallation("device-é", {"a", "b"});
  in.kind = DeviceKind::kRegistration;
  in.user_id = "u1";
  in.templates["t"] = {"{\"x\":1}", {{"apns-priority", "5"}}, "$(exp)", {"tt"}};
  in.expiration_time = 1'700'000'000'000;
  in.expired_push_channel = true;
  in.last_active_on = -5;
  in.last_update = 42;
  in.version = 7;
  auto decoded = decodeInstallation(encodeInstallation(in));
  ASSERT_TRUE(decoded.has_value()) << decoded.error();
  EXPECT_EQ(*decoded, in);

  Installation browser = apnsInstallation("b");
  browser.platform = Platform::kBrowser;
  browser.browser_p256dh = "key";
  browser.browser_auth = "auth";
  EXPECT_EQ(*decodeInstallation(encodeInstallation(browser)), browser);
}

TEST(Record, RefusesBytesThatAreNotARecord) {
  EXPECT_THAT(decodeInstallation("").error(), HasSubstr("not a msgpack record"));
  EXPECT_THAT(decodeInstallation("\x93\x01\x02\x03").error(), HasSubstr("has 3 fields"));
  EXPECT_THAT(decodeInstallation("\xa3"
                                 "abc")
                  .error(),
              HasSubstr("expected an array"));
  // A format from the future.
  msgpack::sbuffer future;
  msgpack::pack(future, std::vector<int>{2, 0});
  EXPECT_THAT(decodeInstallation(std::string_view(future.data(), future.size())).error(),
              HasSubstr("format 2 is not known"));
  // Right shape, wrong field type.
  std::string bytes = encodeInstallation(apnsInstallation("x"));
  auto handle = msgpack::unpack(bytes.data(), bytes.size());
  auto fields = handle.get().as<std::vector<msgpack::object>>();
  msgpack::sbuffer broken;
  msgpack::packer<msgpack::sbuffer> pk(broken);
  pk.pack_array(15);
  for (size_t i = 0; i < 15; ++i) {
    if (i == 2) {
      pk.pack(12345);  // the id as a number
    } else {
      pk.pack(fields[i]);
    }
  }
  EXPECT_EQ(decodeInstallation(std::string_view(broken.data(), broken.size())).error(),
            "id is not a string");
  // Every truncation of a valid record is refused, never misread.
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decodeInstallation(std::string_view(bytes).substr(0, n)).has_value()) << n;
  }
}

TEST(Installation, NormalizeSortsAndDeduplicatesTags) {
  Installation in = apnsInstallation("i", {"b", "a", "b"});
  in.templates["t"].tags = {"z", "y", "z"};
  in.normalize();
  EXPECT_EQ(in.tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(in.templates["t"].tags, (std::vector<std::string>{"y", "z"}));
}

}  // namespace
}  // namespace pushhub::storage

namespace pushhub::storage {
namespace {

TEST(Validation, RefusesIdsUrlsCannotAddressAndTextThatIsNotUtf8) {
  EXPECT_THAT(problemWith(apnsInstallation(".")), HasSubstr("'.' and '..'"));
  EXPECT_THAT(problemWith(apnsInstallation("..")), HasSubstr("'.' and '..'"));
  EXPECT_TRUE(validateInstallation(apnsInstallation("..."), {}).has_value());
  EXPECT_THAT(problemWith(apnsInstallation("a\xff"
                                           "b")),
              HasSubstr("installationId: is not valid UTF-8"));
  EXPECT_THAT(problemWith(apnsInstallation(std::string("a\0b", 3))), HasSubstr("installationId"));
  EXPECT_TRUE(validateInstallation(apnsInstallation("caf\xc3\xa9"), {}).has_value());
  EXPECT_THAT(problemWith(withTemplate(Platform::kApns, "{\"a\":\"\xff\"}")),
              HasSubstr("templates/t1/body: is not valid UTF-8 (byte 7)"));
  EXPECT_THAT(problemWith(withTemplate(Platform::kApns, std::string("{}\0", 3))),
              HasSubstr("templates/t1/body: contains a NUL character (byte 3)"));
  EXPECT_THAT(problemWith(withTemplate(Platform::kApns, "{}", {{"apns-topic", "\xc3"}})),
              HasSubstr("templates/t1/headers/apns-topic: is not valid UTF-8"));
}

}  // namespace
}  // namespace pushhub::storage
