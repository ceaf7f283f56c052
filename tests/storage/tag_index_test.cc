#include "storage/tag_index.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace pushhub::storage {
namespace {

TEST(TagDictionary, InternsEachTagOnce) {
  TagDictionary d;
  const uint32_t a = d.intern("a");
  EXPECT_EQ(d.intern("a"), a);
  EXPECT_NE(d.intern("b"), a);
  EXPECT_EQ(d.find("a"), a);
  EXPECT_EQ(d.find("zzz"), TagDictionary::kMissing);
  EXPECT_EQ(d.size(), 2u);
}

TEST(PartitionIndex, ReusesTheLowestFreeOrdinal) {
  PartitionIndex index;
  EXPECT_EQ(index.allocateOrdinal(), 0u);
  EXPECT_EQ(index.allocateOrdinal(), 1u);
  EXPECT_EQ(index.allocateOrdinal(), 2u);
  index.releaseOrdinal(2);
  index.releaseOrdinal(0);
  EXPECT_EQ(index.allocateOrdinal(), 0u);
  EXPECT_EQ(index.allocateOrdinal(), 2u);
  EXPECT_EQ(index.allocateOrdinal(), 3u);
}

TEST(PartitionIndex, FinishRebuildFreesTheGaps) {
  PartitionIndex index;
  const IndexEntry entry{Platform::kApns, true, {}};
  for (const uint32_t ordinal : {1u, 4u, 5u}) index.add(ordinal, entry);
  index.finishRebuild();
  EXPECT_EQ(index.allocateOrdinal(), 0u);
  EXPECT_EQ(index.allocateOrdinal(), 2u);
  EXPECT_EQ(index.allocateOrdinal(), 3u);
  EXPECT_EQ(index.allocateOrdinal(), 6u);
}

TEST(PartitionIndex, AddRemoveAndActiveKeepEverySetInStep) {
  TagDictionary d;
  PartitionIndex index;
  Installation in;
  in.platform = Platform::kWns;
  in.tags = {"a", "b"};
  in.templates["tmpl"].tags = {"c"};
  const IndexEntry entry = indexEntryOf(in, d);
  index.add(7, entry);
  EXPECT_TRUE(index.tag(d.find("a"))->contains(7));
  EXPECT_TRUE(index.tag(d.find("tmpl"))->contains(7));  // template names are tags
  EXPECT_TRUE(index.tag(d.find("c"))->contains(7));     // and so are template tags
  EXPECT_TRUE(index.platform(Platform::kWns).contains(7));
  EXPECT_TRUE(index.active().contains(7));
  index.setActive(7, false);
  EXPECT_FALSE(index.active().contains(7));
  EXPECT_TRUE(index.all().contains(7));
  index.remove(7, entry);
  EXPECT_EQ(index.tag(d.find("a")), nullptr);  // empty bitmaps are dropped
  EXPECT_EQ(index.size(), 0u);
  EXPECT_TRUE(index.platform(Platform::kWns).isEmpty());
}

// Random installations and random expressions: the bitmap evaluation must agree with evaluating
// the expression on each installation directly.
class BitmapEvaluationProperty : public ::testing::TestWithParam<uint32_t> {};

std::string randomExpression(std::mt19937& rng, int depth, int tag_count, int installations) {
  std::uniform_int_distribution<int> pick(0, 9);
  const int choice = depth >= 4 ? 0 : pick(rng);
  if (choice <= 3) {
    const int kind = pick(rng);
    if (kind == 0) return "$InstallationId:{i" + std::to_string(rng() % installations) + "}";
    if (kind == 1) return "$UserId:{u" + std::to_string(rng() % 20) + "}";
    return "t" + std::to_string(rng() % (tag_count + 3));  // a few tags no one has
  }
  if (choice <= 5) return "!" + randomExpression(rng, depth + 1, tag_count, installations);
  const int n = 2 + static_cast<int>(rng() % 4);
  std::string out = "(";
  const char* op = choice <= 7 ? " && " : " || ";
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += op;
    out += randomExpression(rng, depth + 1, tag_count, installations);
  }
  return out + ")";
}

TEST_P(BitmapEvaluationProperty, AgreesWithDirectEvaluation) {
  std::mt19937 rng(GetParam());
  constexpr int kInstallations = 400;
  constexpr int kTags = 12;
  TagDictionary dictionary;
  PartitionIndex index;
  struct Device {
    std::string id, user;
    std::set<std::string> tags;
    uint32_t ordinal;
  };
  std::vector<Device> devices;
  for (int i = 0; i < kInstallations; ++i) {
    Installation in;
    in.id = "i" + std::to_string(i);
    if (rng() % 2) in.user_id = "u" + std::to_string(rng() % 20);
    for (int t = 0; t < kTags; ++t) {
      if (rng() % 4 == 0) in.tags.push_back("t" + std::to_string(t));
    }
    in.normalize();
    const uint32_t ordinal = index.allocateOrdinal();
    index.add(ordinal, indexEntryOf(in, dictionary));
    devices.push_back({in.id, in.user_id, {in.tags.begin(), in.tags.end()}, ordinal});
  }
  // Delete some, so ordinals have gaps, and give their slots to newcomers.
  for (int i = 0; i < 40; ++i) {
    const size_t victim = rng() % devices.size();
    Installation in;
    in.tags.assign(devices[victim].tags.begin(), devices[victim].tags.end());
    index.remove(devices[victim].ordinal, indexEntryOf(in, dictionary));
    index.releaseOrdinal(devices[victim].ordinal);
    devices.erase(devices.begin() + static_cast<long>(victim));
  }
  const auto resolve = [&](const TagExpressionNode& leaf) {
    std::vector<std::pair<uint32_t, uint32_t>> found;
    for (const auto& d : devices) {
      const bool hit = leaf.kind == TagExpressionNode::Kind::kInstallationId ? d.id == leaf.value
                                                                             : d.user == leaf.value;
      if (hit) found.emplace_back(0, d.ordinal);
    }
    return found;
  };
  for (int round = 0; round < 200; ++round) {
    const std::string text = randomExpression(rng, 0, kTags, kInstallations);
    auto expression = TagExpression::parse(text);
    ASSERT_TRUE(expression.has_value()) << text << ": " << expression.error().message;
    const auto compiled = CompiledExpression::compile(*expression, dictionary, resolve);
    const Roaring bitmap = compiled.evaluate(index, 0);
    Roaring expected;
    for (const auto& d : devices) {
      const bool hit = expression->matches(
          [&](std::string_view t) { return d.tags.contains(std::string(t)); }, d.id, d.user);
      if (hit) expected.add(d.ordinal);
    }
    ASSERT_EQ(bitmap, expected) << "seed " << GetParam() << ", expression " << text << ": got "
                                << bitmap.cardinality() << ", expected " << expected.cardinality();
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, BitmapEvaluationProperty,
                         ::testing::Values(1u, 2u, 3u, 42u, 2026u));

}  // namespace
}  // namespace pushhub::storage
