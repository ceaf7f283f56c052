#include "bench/tool/scenario.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

#include "bench/tool/populate.h"
#include "storage/installation.h"
#include "storage/installation_json.h"

namespace pushhub::bench {
namespace {

using ::testing::HasSubstr;

TEST(PlatformMix, ParsesWeightsAndSpreadsThemEvenly) {
  auto mix = parsePlatformMix("apns:70,fcm:25,wns:5");
  ASSERT_TRUE(mix.has_value()) << mix.error();
  EXPECT_EQ(mix->total(), 100u);
  std::map<Platform, int> seen;
  for (uint64_t i = 0; i < 1000; ++i) ++seen[mix->of(i)];
  EXPECT_EQ(seen[Platform::kApns], 700);
  EXPECT_EQ(seen[Platform::kFcm], 250);
  EXPECT_EQ(seen[Platform::kWns], 50);
  auto fcmv1 = parsePlatformMix("fcmv1:1");
  ASSERT_TRUE(fcmv1.has_value());
  EXPECT_EQ(fcmv1->of(12345), Platform::kFcm);
}

TEST(PlatformMix, RefusesWhatIsNotAMixNamingIt) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "no platform with a positive weight"},       {"apns", "expected name:weight"},
      {"apns:x", "\"x\" is not a whole number"},        {"apns:-3", "is not a whole number"},
      {"gcm:10", "unknown platform \"gcm\""},           {"apns:1,apns:2", "apns given twice"},
      {"apns:0", "no platform with a positive weight"},
  };
  for (const auto& [text, expected] : cases) {
    auto mix = parsePlatformMix(text);
    ASSERT_FALSE(mix.has_value()) << text;
    EXPECT_THAT(mix.error(), HasSubstr(expected)) << text;
  }
}

TEST(Zipf, FavoursLowRanksInProportion) {
  const Zipf zipf(100, 1.0);
  double sum = 0;
  for (uint32_t r = 0; r < 100; ++r) sum += zipf.probability(r);
  EXPECT_NEAR(sum, 1.0, 1e-9);
  EXPECT_NEAR(zipf.probability(0) / zipf.probability(1), 2.0, 1e-9);
  SplitMix64 rng{1};
  std::vector<int> counts(100);
  const int n = 200000;
  for (int i = 0; i < n; ++i) ++counts[zipf(rng)];
  for (uint32_t r : {0u, 1u, 9u, 99u}) {
    const double expected = zipf.probability(r) * n;
    EXPECT_NEAR(counts[r], expected, 5 * std::sqrt(expected) + 5) << r;
  }
}

TEST(Population, DeviceIIsTheSameEveryTimeWithDistinctTagsAndUniqueHandles) {
  PopulationOptions o;
  o.mix = *parsePlatformMix("apns:70,fcm:25,wns:5");
  o.tag_count = 50;
  o.tags_per_device = 5;
  o.users = 10;
  const Population a(o), b(o);
  std::set<std::string> handles;
  for (uint64_t i = 0; i < 2000; ++i) {
    const Device d = a.device(i, "localhost:2199");
    const Device again = b.device(i, "localhost:2199");
    EXPECT_EQ(d.id, again.id);
    EXPECT_EQ(d.handle, again.handle);
    EXPECT_EQ(d.tags, again.tags);
    EXPECT_EQ(std::set<uint32_t>(d.tags.begin(), d.tags.end()).size(), 5u) << "distinct tags";
    for (uint32_t t : d.tags) EXPECT_LT(t, 50u);
    EXPECT_EQ(d.user, "u" + std::to_string(i % 10));
    EXPECT_TRUE(handles.insert(d.handle).second) << "handle of device " << i << " is unique";
  }
  o.seed = 43;
  EXPECT_NE(Population(o).device(0, "x").handle, a.device(0, "x").handle) << "seed matters";
  o.tags_per_device = 80;  // more than there are tags: every tag, once
  EXPECT_EQ(Population(o).device(3, "x").tags.size(), 50u);
}

TEST(Population, InstallationsAreWhatPushhubAccepts) {
  PopulationOptions o;
  o.mix = *parsePlatformMix("apns:1,fcm:1,wns:1");
  o.users = 3;
  const Population population(o);
  for (uint64_t i = 0; i < 3; ++i) {
    for (bool with_template : {true, false}) {
      const Device d = population.device(i, "localhost:2199");
      const std::string json = Population::installationJson(d, with_template);
      auto parsed = storage::parseInstallationJson(json);
      ASSERT_TRUE(parsed.has_value()) << parsed.error().message() << "\n" << json;
      EXPECT_EQ(parsed->id, d.id);
      EXPECT_EQ(parsed->push_channel, d.handle);
      EXPECT_EQ(parsed->tags.size(), d.tags.size());
      EXPECT_EQ(parsed->templates.size(), with_template ? 1u : 0u);
      auto valid = storage::validateInstallation(*parsed, storage::ValidationLimits{});
      EXPECT_TRUE(valid.has_value()) << valid.error().message() << "\n" << json;
    }
  }
}

TEST(Populate, TheRequestIsASignedPutWithItsLength) {
  Target target;
  target.port = 7070;
  target.hub = "demo";
  target.key = "k";
  PopulationOptions o;
  o.mix = *parsePlatformMix("apns:1");
  const Device d = Population(o).device(7, "localhost:2199");
  const std::string request = installationRequest(target, "SharedAccessSignature sr=x", d, true);
  EXPECT_TRUE(
      request.starts_with("PUT /demo/installations/bench-7?api-version=2020-06 HTTP/1.1\r\n"));
  EXPECT_THAT(request, HasSubstr("\r\nAuthorization: SharedAccessSignature sr=x\r\n"));
  const size_t body_at = request.find("\r\n\r\n") + 4;
  EXPECT_THAT(request, HasSubstr(fmt::format("Content-Length: {}\r\n", request.size() - body_at)));
  EXPECT_THAT(target.authorization(), HasSubstr("sr=http%3A%2F%2F127.0.0.1%3A7070%2F"));
  EXPECT_THAT(target.authorization(), HasSubstr("skn=DefaultFullSharedAccessSignature"));
}

}  // namespace
}  // namespace pushhub::bench
