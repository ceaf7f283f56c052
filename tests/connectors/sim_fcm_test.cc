// pushhub-sim's FCM HTTP v1 listener and its OAuth token endpoint, driven by curl (HTTP/2 and
// HTTP/1.1) and nghttp against the real binary: the service-account assertion rules, bearer
// checks, strict message parsing, device fates, the per-project quota, faults and validate_only.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <thread>

#include "common/json.h"
#include "connectors/jwt.h"
#include "tests/connectors/sim_fixture.h"

namespace pushhub::connectors::sim {
namespace {

using namespace pushhub::connectors::sim::testing;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

const std::string kDevice = "cXq1:APA91bH" + std::string(140, 'x');
const std::string kGrant = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
const std::string kScope = "https://www.googleapis.com/auth/firebase.messaging";

std::string stringAt(const std::string& json, const char* name) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember(name) || !d[name].IsString()) return "";
  return d[name].GetString();
}

class SimFcmTest : public SimTest {
 protected:
  static void SetUpTestSuite() {
    SimTest::SetUpTestSuite();
    const std::string account = readFile(credentialsDir() / "fcm-service-account.json");
    email_ = stringAt(account, "client_email");
    project_ = stringAt(account, "project_id");
    auto key = loadPrivateKeyPem(stringAt(account, "private_key"));
    ASSERT_TRUE(key.has_value()) << key.error();
    key_ = key->release();
  }
  static void TearDownTestSuite() {
    EVP_PKEY_free(key_);
    SimTest::TearDownTestSuite();
  }

  static int64_t now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // A signed assertion; `claims` replace the defaults (an empty value drops the claim).
  std::string assertion(std::map<std::string, std::string> claims = {},
                        std::string header = R"({"alg":"RS256","typ":"JWT"})",
                        EVP_PKEY* key = nullptr) {
    std::map<std::string, std::string> all = {
        {"iss", jsonQuoted(email_)},
        {"scope", jsonQuoted(kScope)},
        {"aud", jsonQuoted(fmt::format("https://localhost:{}/token", fcm_port_))},
        {"iat", std::to_string(now())},
        {"exp", std::to_string(now() + 3600)}};
    for (auto& [k, v] : claims) all[k] = v;
    std::string json = "{";
    for (auto& [k, v] : all) {
      if (v.empty()) continue;
      if (json.size() > 1) json += ',';
      json += jsonQuoted(k) + ":" + v;
    }
    json += "}";
    return *signJwt(header, json, key != nullptr ? key : key_, JwtAlgorithm::kRs256);
  }

  Reply tokenRequest(const std::string& body, std::vector<std::string> extra = {},
                     std::string content_type = "application/x-www-form-urlencoded") {
    std::vector<std::string> args = {"curl",     "-s", "-i",
                                     "--cacert", ca_,  "--data-binary",
                                     body,       "-H", "content-type: " + content_type};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(fmt::format("https://localhost:{}/token", fcm_port_));
    auto replies = parseReplies(run(args));
    return replies.empty() ? Reply{} : replies.front();
  }

  std::string accessToken(std::map<std::string, std::string> claims = {}) {
    Reply reply = tokenRequest("grant_type=" + kGrant + "&assertion=" + assertion(claims));
    EXPECT_EQ(reply.status, 200) << reply.body;
    return stringAt(reply.body, "access_token");
  }

  Reply sendMessage(const std::string& body, const std::string& token, std::string project = "",
                    std::vector<std::string> extra = {},
                    std::string content_type = "application/json; charset=UTF-8") {
    std::vector<std::string> args = {"curl",
                                     "-s",
                                     "-i",
                                     "--http2",
                                     "--cacert",
                                     ca_,
                                     "--data-binary",
                                     body,
                                     "-H",
                                     "content-type: " + content_type};
    if (!token.empty()) args.insert(args.end(), {"-H", "authorization: Bearer " + token});
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(fmt::format("https://localhost:{}/v1/projects/{}/messages:send", fcm_port_,
                               project.empty() ? project_ : project));
    auto replies = parseReplies(run(args));
    EXPECT_EQ(replies.size(), 1u) << body;
    return replies.empty() ? Reply{} : replies.front();
  }

  static std::string tokenMessage(const std::string& inner = R"("data":{"k":"v"})",
                                  const std::string& token = kDevice) {
    return fmt::format(R"({{"message":{{"token":"{}",{}}}}})", token, inner);
  }

  static std::string errorCodeOf(const Reply& reply) {
    std::smatch m;
    if (std::regex_search(reply.body, m, std::regex(R"re("errorCode":"(\w+)")re"))) return m[1];
    return "";
  }
  static std::string statusOf(const Reply& reply) {
    std::smatch m;
    if (std::regex_search(reply.body, m, std::regex(R"re("status":"(\w+)")re"))) return m[1];
    return "";
  }

  static inline std::string email_, project_;
  static inline EVP_PKEY* key_ = nullptr;
};

TEST_F(SimFcmTest, IssuesAccessTokensForValidServiceAccountAssertions) {
  start();
  Reply reply = tokenRequest("grant_type=" + kGrant + "&assertion=" + assertion());
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_THAT(reply.body, MatchesRegex(R"(\{"access_token":"ya29\.[^"]+","expires_in":3599,)"
                                       R"("token_type":"Bearer"\})"));
  // Google's own audience is accepted too, and a kid naming the key.
  EXPECT_EQ(tokenRequest("grant_type=" + kGrant + "&assertion=" +
                         assertion({{"aud", R"("https://oauth2.googleapis.com/token")"}}))
                .status,
            200);
  sim_.reset();
  start({"--fcm-token-lifetime", "120"});
  EXPECT_THAT(tokenRequest("grant_type=" + kGrant + "&assertion=" + assertion()).body,
              HasSubstr(R"("expires_in":119)"));
}

TEST_F(SimFcmTest, RejectsBadAssertionsWithOAuthErrors) {
  start();
  auto other = generateRsaKey(2048);
  ASSERT_TRUE(other.has_value());
  auto ec = generateEcP256Key();
  ASSERT_TRUE(ec.has_value());
  struct Case {
    std::string name;
    Reply reply;
    int status;
    std::string error;
    std::string description;
  };
  const auto with = [&](const std::string& jwt) {
    return tokenRequest("grant_type=" + kGrant + "&assertion=" + jwt);
  };
  std::vector<Case> cases;
  cases.push_back({"grant type", tokenRequest("grant_type=password&assertion=" + assertion()), 400,
                   "unsupported_grant_type", "Invalid grant_type: password"});
  cases.push_back({"no assertion", tokenRequest("grant_type=" + kGrant), 400, "invalid_request",
                   "Missing required parameter: assertion"});
  cases.push_back({"not a JWT", with("abc"), 400, "invalid_grant", "Invalid JWT"});
  cases.push_back({"other key", with(assertion({}, R"({"alg":"RS256"})", other->get())), 400,
                   "invalid_grant", "Invalid JWT Signature."});
  cases.push_back({"unknown account",
                   with(assertion({{"iss", R"("nobody@x.iam.gserviceaccount.com")"}})), 400,
                   "invalid_grant", "account not found"});
  cases.push_back({"wrong kid", with(assertion({}, R"({"alg":"RS256","kid":"0000"})")), 400,
                   "invalid_grant", "Invalid JWT Signature."});
  cases.push_back({"audience", with(assertion({{"aud", R"("https://example.com/token")"}})), 400,
                   "invalid_grant", "Failed audience check"});
  cases.push_back({"lifetime over an hour",
                   with(assertion({{"exp", std::to_string(now() + 3601)}})), 400, "invalid_grant",
                   "short-lived token (60 minutes)"});
  cases.push_back({"expired",
                   with(assertion({{"iat", std::to_string(now() - 4000)},
                                   {"exp", std::to_string(now() - 400)}})),
                   400, "invalid_grant", "short-lived token"});
  cases.push_back({"issued in the future",
                   with(assertion({{"iat", std::to_string(now() + 1000)},
                                   {"exp", std::to_string(now() + 2000)}})),
                   400, "invalid_grant", "reasonable timeframe"});
  cases.push_back({"no exp", with(assertion({{"exp", ""}})), 400, "invalid_grant", "iat and exp"});
  cases.push_back({"no scope", with(assertion({{"scope", ""}})), 400, "invalid_scope",
                   "Empty or missing scope not allowed."});
  cases.push_back(
      {"ES256",
       with(*signJwt(R"({"alg":"ES256"})", R"({"iss":"x"})", ec->get(), JwtAlgorithm::kEs256)), 400,
       "invalid_grant", "Invalid JWT Signature."});
  cases.push_back({"JSON body", tokenRequest("{}", {}, "application/json"), 400, "invalid_request",
                   "x-www-form-urlencoded"});
  cases.push_back({"GET", tokenRequest("", {"-G"}), 405, "invalid_request", "POST only"});
  for (const auto& c : cases) {
    EXPECT_EQ(c.reply.status, c.status) << c.name << ": " << c.reply.body;
    EXPECT_EQ(stringAt(c.reply.body, "error"), c.error) << c.name << ": " << c.reply.body;
    EXPECT_THAT(stringAt(c.reply.body, "error_description"), HasSubstr(c.description)) << c.name;
  }
}

TEST_F(SimFcmTest, SendsOverHttp2AndHttp11WithABearerToken) {
  start();
  const std::string token = accessToken();
  Reply h2 = sendMessage(tokenMessage(), token);
  EXPECT_EQ(h2.status, 200) << h2.body;
  EXPECT_THAT(h2.body,
              MatchesRegex(R"(\{"name":"projects/pushhub-dev/messages/0:[0-9]+%[0-9a-f]{16}"\})"));
  EXPECT_EQ(h2.headers["content-type"], "application/json; charset=UTF-8");
  Reply h1 = sendMessage(tokenMessage(), token, "", {"--http1.1"});
  EXPECT_EQ(h1.status, 200) << h1.body;
  // Topic and condition targets, camelCase field names, repeated keys (the last one counts).
  EXPECT_EQ(
      sendMessage(R"({"message":{"topic":"weather","notification":{"title":"t"}}})", token).status,
      200);
  EXPECT_EQ(
      sendMessage(R"({"message":{"condition":"'a' in topics && 'b' in topics"}})", token).status,
      200);
  EXPECT_EQ(sendMessage(R"({"validateOnly":false,"message":{"token":")" + kDevice +
                            R"(","fcmOptions":{"analyticsLabel":"x"},"android":{"ttl":"3.5s",)"
                            R"("priority":"HIGH","collapseKey":"c","directBootOk":true}}})",
                        token)
                .status,
            200);
  const std::string stats = adminGet("/stats");
  EXPECT_THAT(stats, HasSubstr(R"("fcm":{"requests":6,"accepted":5,)"));
  EXPECT_THAT(stats, HasSubstr(R"("TokenIssued":1)"));
}

TEST_F(SimFcmTest, RejectsMissingInvalidAndForeignCredentials) {
  start();
  const std::string token = accessToken();
  Reply none = sendMessage(tokenMessage(), "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(statusOf(none), "UNAUTHENTICATED");
  EXPECT_THAT(none.body, Not(HasSubstr("details")));  // no FcmError: refresh the token
  EXPECT_EQ(none.headers["www-authenticate"], R"(Bearer realm="https://accounts.google.com/")");
  Reply bogus = sendMessage(tokenMessage(), "ya29.not-issued");
  EXPECT_EQ(bogus.status, 401);
  EXPECT_THAT(bogus.body, HasSubstr("invalid authentication credentials"));
  Reply other_project = sendMessage(tokenMessage(), token, "someone-else");
  EXPECT_EQ(other_project.status, 403);
  EXPECT_EQ(statusOf(other_project), "PERMISSION_DENIED");
  EXPECT_THAT(other_project.body, HasSubstr("cloudmessaging.messages.create"));
  const std::string wrong_scope =
      accessToken({{"scope", R"("https://www.googleapis.com/auth/userinfo.email")"}});
  Reply scope = sendMessage(tokenMessage(), wrong_scope);
  EXPECT_EQ(scope.status, 403);
  EXPECT_THAT(scope.body, HasSubstr("insufficient authentication scopes"));
  // cloud-platform covers FCM.
  EXPECT_EQ(
      sendMessage(tokenMessage(),
                  accessToken({{"scope", R"("https://www.googleapis.com/auth/cloud-platform")"}}))
          .status,
      200);
}

TEST_F(SimFcmTest, AccessTokensExpire) {
  start({"--fcm-token-lifetime", "1"});
  const std::string token = accessToken();
  EXPECT_EQ(sendMessage(tokenMessage(), token).status, 200);
  std::this_thread::sleep_for(1100ms);
  Reply expired = sendMessage(tokenMessage(), token);
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(statusOf(expired), "UNAUTHENTICATED");
}

TEST_F(SimFcmTest, RejectsEachMalformedMessageAsInvalidArgument) {
  start();
  const std::string token = accessToken();
  struct Case {
    std::string name;
    std::string body;
    std::string message;  // a substring of error.message
  };
  const std::string big(4092, 'v');  // with "k", "k2" and "xx": 4097 bytes
  const std::vector<Case> cases = {
      {"malformed JSON", R"({"message":)", "Invalid JSON payload received"},
      {"not an object", R"([1])", "Invalid JSON payload received"},
      {"unknown top-level field", R"({"message":{"token":"x"},"dry_run":true})",
       R"(Unknown name \"dry_run\")"},
      {"unknown message field", tokenMessage(R"("priority":"high")"),
       R"(Unknown name \"priority\" at 'message')"},
      {"unknown android field", tokenMessage(R"("android":{"time_to_live":5})"),
       R"(Unknown name \"time_to_live\" at 'message.android')"},
      {"no message", R"({"validate_only":true})", "message is required"},
      {"no target", R"({"message":{"data":{"k":"v"}}})", "Recipient of the message is not set."},
      {"two targets", tokenMessage(R"("topic":"news")"), "Oneof field 'target' is already set"},
      {"number in data", tokenMessage(R"("data":{"a":"1","b":2})"),
       "Invalid value at 'message.data[1].value' (TYPE_STRING), 2"},
      {"token not a string", R"({"message":{"token":5}})",
       "Invalid value at 'message.token' (TYPE_STRING), 5"},
      {"reserved key from", tokenMessage(R"("data":{"from":"me"})"), "\\\"from\\\" is reserved"},
      {"reserved google. key", tokenMessage(R"("android":{"data":{"google.x":"y"}})"),
       "is reserved"},
      {"reserved gcm key", tokenMessage(R"("data":{"gcm":"y"})"), "is reserved"},
      {"ttl not a duration", tokenMessage(R"("android":{"ttl":"5 minutes"})"),
       "google.protobuf.Duration"},
      {"ttl over 4 weeks", tokenMessage(R"("android":{"ttl":"2419201s"})"), "Invalid TTL"},
      {"priority", tokenMessage(R"("android":{"priority":"URGENT"})"), "AndroidMessagePriority"},
      {"too big", tokenMessage(fmt::format(R"("data":{{"k":"{}","k2":"xx"}})", big)),
       "Message too big"},
      {"too big for a topic",
       fmt::format(R"({{"message":{{"topic":"t","data":{{"k":"{}"}}}}}})", std::string(2048, 'v')),
       "Message too big"},
      {"topic name", R"({"message":{"topic":"a b"}})", "Invalid topic name."},
      {"six topics",
       R"({"message":{"condition":"'a' in topics || 'b' in topics || 'c' in topics || 'd' in topics || 'e' in topics || 'f' in topics"}})",
       "Invalid condition expression"},
      {"short token", tokenMessage(R"("data":{})", "abc"), "not a valid FCM registration token"},
      {"token characters", tokenMessage(R"("data":{})", std::string(40, '!')),
       "not a valid FCM registration token"},
      {"bad token by fate", tokenMessage(R"("data":{})", "bbbb" + std::string(60, 'x')),
       "not a valid FCM registration token"},
  };
  for (const auto& c : cases) {
    Reply reply = sendMessage(c.body, token);
    EXPECT_EQ(reply.status, 400) << c.name << ": " << reply.body;
    EXPECT_EQ(statusOf(reply), "INVALID_ARGUMENT") << c.name << ": " << reply.body;
    EXPECT_THAT(reply.body, HasSubstr(c.message)) << c.name;
    EXPECT_THAT(reply.body, HasSubstr(R"("code":400)")) << c.name;
  }
  // At the limits: accepted.
  EXPECT_EQ(sendMessage(tokenMessage(fmt::format(R"("data":{{"k":"{}"}})", std::string(4095, 'v'))),
                        token)
                .status,
            200);
  EXPECT_EQ(sendMessage(tokenMessage(R"("android":{"ttl":"2419200s"})"), token).status, 200);
  EXPECT_EQ(sendMessage(tokenMessage(R"("android":{"priority":"normal"})"), token).status, 200);
  // A wrong Content-Type is not JSON to Google.
  Reply text = sendMessage(tokenMessage(), token, "", {}, "text/plain");
  EXPECT_EQ(text.status, 400);
  // Details: field violations carry the field, message-level errors the FcmError code.
  Reply typed = sendMessage(tokenMessage(R"("data":{"b":2})"), token);
  EXPECT_THAT(typed.body, HasSubstr(R"("@type":"type.googleapis.com/google.rpc.BadRequest")"));
  EXPECT_THAT(typed.body, HasSubstr(R"("field":"message.data[0].value")"));
  EXPECT_EQ(errorCodeOf(sendMessage(R"({"message":{}})", token)), "INVALID_ARGUMENT");
}

TEST_F(SimFcmTest, DeviceFatesAnswerUnregisteredAndSenderIdMismatch) {
  start();
  const std::string token = accessToken();
  Reply dead = sendMessage(tokenMessage(R"("data":{})", "dead" + std::string(60, 'x')), token);
  EXPECT_EQ(dead.status, 404);
  EXPECT_EQ(statusOf(dead), "NOT_FOUND");
  EXPECT_EQ(errorCodeOf(dead), "UNREGISTERED");
  EXPECT_THAT(dead.body, HasSubstr("google.firebase.fcm.v1.FcmError"));
  Reply foreign = sendMessage(tokenMessage(R"("data":{})", "f0f0" + std::string(60, 'x')), token);
  EXPECT_EQ(foreign.status, 403);
  EXPECT_EQ(errorCodeOf(foreign), "SENDER_ID_MISMATCH");
  // An offline device's message is stored by FCM: accepted.
  EXPECT_EQ(sendMessage(tokenMessage(R"("data":{})", "0ff" + std::string(60, 'x')), token).status,
            200);
}

TEST_F(SimFcmTest, ValidateOnlyAnswersWithoutDelivering) {
  const std::string record = (dir_->path() / "fcm-record.jsonl").string();
  start({"--record", record});
  const std::string token = accessToken();
  Reply reply =
      sendMessage(R"({"validate_only":true,"message":{"token":")" + kDevice + R"("}})", token);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, R"({"name":"projects/pushhub-dev/messages/fake_message_id"})");
  EXPECT_EQ(sendMessage(tokenMessage(R"("data":{"n":"recorded"})"), token).status, 200);
  const std::string stats = adminGet("/stats");
  EXPECT_THAT(stats, HasSubstr(R"("ValidateOnly":1)"));
  EXPECT_THAT(stats, HasSubstr(R"("accepted":1,)"));
  sim_.reset();
  const std::string lines = readFile(record);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 1);
  EXPECT_THAT(lines, HasSubstr(R"("service":"fcm","handle":")" + kDevice + "\""));
  EXPECT_THAT(lines, HasSubstr(R"(\"n\":\"recorded\")"));
}

TEST_F(SimFcmTest, AProjectOverItsQuotaGets429UntilTheMinuteEnds) {
  start({"--fcm-quota-per-minute", "3"});
  const std::string token = accessToken();
  EXPECT_EQ(sendMessage(tokenMessage(), token).status, 200);
  EXPECT_EQ(sendMessage(tokenMessage(R"("data":{"from":"x"})"), token).status,
            400);  // client errors count against the quota
  EXPECT_EQ(sendMessage(tokenMessage(), token).status, 200);
  Reply over = sendMessage(tokenMessage(), token);
  EXPECT_EQ(over.status, 429);
  EXPECT_EQ(statusOf(over), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(errorCodeOf(over), "QUOTA_EXCEEDED");
  EXPECT_THAT(over.body, HasSubstr("google.rpc.QuotaFailure"));
  ASSERT_TRUE(over.headers.contains("retry-after"));
  const int wait = std::stoi(over.headers["retry-after"]);
  EXPECT_GE(wait, 1);
  EXPECT_LE(wait, 60);
}

TEST_F(SimFcmTest, InjectsInternalUnavailableAndQuotaFaults) {
  start({"--fault", "fcm:500=1"});
  Reply internal = sendMessage(tokenMessage(), "any");
  EXPECT_EQ(internal.status, 500);
  EXPECT_EQ(errorCodeOf(internal), "INTERNAL");
  sim_.reset();
  start({"--fault", "fcm:503=1", "--fcm-retry-after", "7"});
  Reply unavailable = sendMessage(tokenMessage(), "any");
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_EQ(errorCodeOf(unavailable), "UNAVAILABLE");
  EXPECT_EQ(unavailable.headers["retry-after"], "7");
  sim_.reset();
  start({"--fault", "fcm:throttle=1"});
  Reply throttled = sendMessage(tokenMessage(), "any");
  EXPECT_EQ(throttled.status, 429);
  EXPECT_EQ(errorCodeOf(throttled), "QUOTA_EXCEEDED");
  EXPECT_TRUE(throttled.headers.contains("retry-after"));
  // Faults are per service: APNs is untouched.
  EXPECT_THAT(adminGet("/stats"), Not(HasSubstr(R"("apns")")));
}

TEST_F(SimFcmTest, LegacyApisAreGoneAndOtherPathsAreNotFound) {
  start();
  for (const std::string path : {"/fcm/send", "/batch", "/v1/projects/p/messages", "/"}) {
    auto replies = parseReplies(run({"curl", "-s", "-i", "--cacert", ca_, "-d", "{}",
                                     fmt::format("https://localhost:{}{}", fcm_port_, path)}));
    ASSERT_EQ(replies.size(), 1u) << path;
    EXPECT_EQ(replies[0].status, 404) << path;
    EXPECT_EQ(statusOf(replies[0]), "NOT_FOUND") << path;
  }
}

TEST_F(SimFcmTest, AdvertisesOneHundredConcurrentStreams) {
  start();
  const std::string out =
      run({"nghttp", "-nv", fmt::format("https://127.0.0.1:{}/batch", fcm_port_)});
  EXPECT_THAT(out, HasSubstr("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100]"));
}

TEST_F(SimFcmTest, RefusesToStartWithABadServiceAccount) {
  ChildProcess missing(PUSHHUB_SIM_BINARY,
                       {"--config", conf_, "--fcm-service-account", "/nonexistent.json"});
  EXPECT_EQ(missing.waitForExit(kTimeout), 2);
  EXPECT_THAT(missing.output(), HasSubstr("cannot read the service account /nonexistent.json"));
  const std::string incomplete = (dir_->path() / "incomplete.json").string();
  std::ofstream(incomplete) << R"({"client_email":"a@b"})";
  ChildProcess bad(PUSHHUB_SIM_BINARY, {"--config", conf_, "--fcm-service-account", incomplete});
  EXPECT_EQ(bad.waitForExit(kTimeout), 2);
  EXPECT_THAT(bad.output(), HasSubstr("needs client_email, project_id and private_key"));
}

}  // namespace
}  // namespace pushhub::connectors::sim
