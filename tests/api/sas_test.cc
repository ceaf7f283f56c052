// Azure's SharedAccessSignature: the token format the SDKs send, the signature over the
// resource as received, scope, expiry, rules and rights — each refusal with its status and a
// detail that never shows a key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/sas.h"

#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

#include "common/log.h"

namespace pushhub::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kNow = 1'800'000'000;
const SasRule kFull{"DefaultFullSharedAccessSignature", "full-key-123", kListen | kSend | kManage};
const SasRule kListenOnly{"DefaultListenSharedAccessSignature", "listen-key-456", kListen};
const SasRule kSendOnly{"SendRule", "send-key-789", kSend};

SasAuthenticator authenticator() { return SasAuthenticator({kFull, kListenOnly}); }

TEST(Sas, MatchesAKnownSignature) {
  // HMAC-SHA256("key", "https%3A%2F%2Fns.servicebus.windows.net%2F\n1800000000"), base64: an
  // independent computation (openssl dgst -sha256 -hmac key -binary | base64).
  EXPECT_EQ(sasSignature("key", "https%3A%2F%2Fns.servicebus.windows.net%2F", 1'800'000'000),
            "DXInJy9WMmhWKzLMok+DwgduJDNIIE25dOD7z6IA8Xo=");
}

TEST(Sas, AcceptsTheNamespaceRootAsTheJsSdkSignsItAndTheHubUrlAsTheDocsDo) {
  auto auth = authenticator();
  for (const char* resource :
       {"https://ns.example.com/", "http://ns.example.com/demo", "sb://NS.example.com/demo/"}) {
    const auto header = makeSasToken(resource, kFull, kNow + 3600);
    auto ok = auth.check(header, "ns.example.com", "/demo/messages", "demo", kSend, kNow);
    EXPECT_TRUE(ok.has_value()) << resource << ": " << ok.error().detail;
  }
}

TEST(Sas, WithAPublicUrlTheResourceIsCheckedAgainstItNotTheClientsHostHeader) {
  SasAuthenticator auth({kFull}, "https://Push.Example.com/");
  const auto header = makeSasToken("https://push.example.com/", kFull, kNow + 3600);
  // Whatever Host the client claims, the public URL decides.
  EXPECT_TRUE(auth.check(header, "anything.invalid", "/demo/messages", "demo", kSend, kNow));
  const auto forged = makeSasToken("https://evil.example.org/", kFull, kNow + 3600);
  auto refused = auth.check(forged, "evil.example.org", "/demo/messages", "demo", kSend, kNow);
  ASSERT_FALSE(refused.has_value());
  EXPECT_THAT(refused.error().detail, HasSubstr("does not cover"));
  // Without one, the Host header is what the resource must cover (Azure-compatible default).
  SasAuthenticator by_host({kFull});
  EXPECT_TRUE(by_host.check(forged, "evil.example.org", "/demo/messages", "demo", kSend, kNow));
  // A path prefix a proxy strips.
  SasAuthenticator prefixed({kFull}, "https://example.com/push");
  EXPECT_TRUE(prefixed.check(makeSasToken("https://example.com/push/demo", kFull, kNow + 60),
                             "internal:7070", "/demo/messages", "demo", kSend, kNow));
}

TEST(Sas, RefusalsAreLoggedAtDebugWithTheReasonNeverTheToken) {
  std::ostringstream captured;
  auto logger = moduleLogger("auth");
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(captured);
  logger->sinks().push_back(sink);
  const auto level = logger->level();
  logger->set_level(spdlog::level::debug);
  auto auth = authenticator();
  const auto expired = makeSasToken("https://ns.example.com/", kFull, kNow - 1);
  EXPECT_FALSE(auth.check(expired, "ns.example.com", "/demo/messages", "demo", kSend, kNow));
  const auto listen = makeSasToken("https://ns.example.com/", kListenOnly, kNow + 60);
  EXPECT_FALSE(auth.check(listen, "ns.example.com", "/demo/messages", "demo", kSend, kNow));
  logger->sinks().pop_back();
  logger->set_level(level);
  EXPECT_THAT(captured.str(),
              HasSubstr("401 for /demo/messages: the SharedAccessSignature has expired"));
  EXPECT_THAT(
      captured.str(),
      HasSubstr(
          "403 for /demo/messages: rule \"DefaultListenSharedAccessSignature\" grants Listen"));
  const std::string signature = expired.substr(expired.find("sig=") + 4, 20);
  EXPECT_THAT(captured.str(), Not(HasSubstr(signature)));
  EXPECT_THAT(captured.str(), Not(HasSubstr("key-")));
}

TEST(Sas, RefusesWithTheRightStatusAndNeverShowsTheKey) {
  auto auth = authenticator();
  const auto check = [&](const std::string& header, uint8_t needed = kSend,
                         std::string_view path = "/demo/messages") {
    auto result = auth.check(header, "ns.example.com", path, "demo", needed, kNow);
    EXPECT_FALSE(result.has_value()) << header;
    if (!result) {
      EXPECT_THAT(result.error().detail, Not(HasSubstr("key-")));
      return result.error();
    }
    return AuthFailure{0, ""};
  };
  const std::string good = makeSasToken("https://ns.example.com/", kFull, kNow + 3600);

  auto f = check("");
  EXPECT_EQ(f.status, 401u);
  EXPECT_THAT(f.detail, HasSubstr("missing"));
  EXPECT_THAT(check("Bearer abc").detail, HasSubstr("not a SharedAccessSignature"));
  EXPECT_THAT(check("SharedAccessSignature sr=x&sig=y&se=1").detail, HasSubstr("skn is missing"));
  EXPECT_THAT(check("SharedAccessSignature sr=x&sig=%zz&se=1&skn=a").detail,
              HasSubstr("sig is malformed"));
  EXPECT_THAT(check("SharedAccessSignature sr=x&sig=y&se=soon&skn=a").detail,
              HasSubstr("se is not a number"));
  f = check(makeSasToken("https://ns.example.com/", kFull, kNow - 1));
  EXPECT_EQ(f.status, 401u);
  EXPECT_THAT(f.detail, HasSubstr("expired"));
  EXPECT_THAT(check(makeSasToken("https://ns.example.com/otherhub", kFull, kNow + 60)).detail,
              HasSubstr("does not cover /demo/messages"));
  EXPECT_THAT(check(makeSasToken("https://ns.example.com/dem", kFull, kNow + 60)).detail,
              HasSubstr("does not cover"));
  EXPECT_THAT(check(makeSasToken("https://other.example.com/", kFull, kNow + 60)).detail,
              HasSubstr("does not cover"));
  EXPECT_THAT(check(makeSasToken("https://ns.example.com/", kSendOnly, kNow + 60)).detail,
              HasSubstr("no authorization rule named \"SendRule\""));
  // A signature made with another key, and one tampered with.
  SasRule forged = kFull;
  forged.key = "guessed-key";
  f = check(makeSasToken("https://ns.example.com/", forged, kNow + 60));
  EXPECT_EQ(f.status, 401u);
  EXPECT_THAT(f.detail, HasSubstr("signature does not match"));
  std::string tampered = good;
  tampered.replace(tampered.find("se=") + 3, 10, std::to_string(kNow + 999999));
  EXPECT_THAT(check(tampered).detail, HasSubstr("signature does not match"));
  // Listen cannot send or manage; Send cannot manage.
  f = check(makeSasToken("https://ns.example.com/", kListenOnly, kNow + 60), kSend);
  EXPECT_EQ(f.status, 403u);
  EXPECT_THAT(f.detail, HasSubstr("grants Listen, this needs Send"));
  auth.setHubRules("demo", {kSendOnly});
  f = check(makeSasToken("https://ns.example.com/demo", kSendOnly, kNow + 60), kManage);
  EXPECT_EQ(f.status, 403u);
}

TEST(Sas, HubRulesWorkOnlyOnTheirHubAndManageGrantsEverything) {
  auto auth = authenticator();
  auth.setHubRules("demo", {kSendOnly});
  const auto header = makeSasToken("https://ns.example.com/demo", kSendOnly, kNow + 60);
  EXPECT_TRUE(auth.check(header, "ns.example.com", "/demo/messages", "demo", kSend, kNow));
  EXPECT_FALSE(auth.check(makeSasToken("https://ns.example.com/", kSendOnly, kNow + 60),
                          "ns.example.com", "/other/messages", "other", kSend, kNow));
  const auto full = makeSasToken("https://ns.example.com/", kFull, kNow + 60);
  for (uint8_t right : {kListen, kSend, kManage}) {
    EXPECT_TRUE(auth.check(full, "ns.example.com", "/demo/installations/x", "demo", right, kNow));
  }
}

TEST(Sas, RulesFromConfiguration) {
  auto rules = parseSasRules("Full=abc:Listen,Send,Manage; Listen=def:listen");
  ASSERT_TRUE(rules.has_value()) << rules.error();
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[0].key, "abc");
  EXPECT_EQ((*rules)[0].rights, kListen | kSend | kManage);
  EXPECT_EQ((*rules)[1].rights, kListen);
  EXPECT_THAT(parseSasRules("Full=abc").error(), HasSubstr("name=key:rights"));
  EXPECT_THAT(parseSasRules("Full=abc:Read").error(), HasSubstr("\"read\" is not a right"));
  EXPECT_THAT(parseSasRules("A=x:Send;A=y:Send").error(), HasSubstr("declared twice"));
  EXPECT_THAT(parseSasRules("A=:Send").error(), HasSubstr("empty key"));
  EXPECT_TRUE(parseSasRules("")->empty());
}

}  // namespace
}  // namespace pushhub::api
