#include "storage/tag_expression.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace pushhub::storage {
namespace {

using ::testing::HasSubstr;

std::string canonical(std::string_view text) {
  auto e = TagExpression::parse(text);
  EXPECT_TRUE(e.has_value()) << text << ": " << (e ? "" : e.error().message);
  return e ? e->toString() : "";
}

TagExpressionError errorOf(std::string_view text) {
  auto e = TagExpression::parse(text);
  EXPECT_FALSE(e.has_value()) << text;
  return e ? TagExpressionError{} : e.error();
}

bool matches(std::string_view text, std::set<std::string> tags, std::string id = "i",
             std::string user = "") {
  auto e = TagExpression::parse(text);
  EXPECT_TRUE(e.has_value());
  return e->matches([&](std::string_view t) { return tags.contains(std::string(t)); }, id, user);
}

TEST(TagExpression, BindsNotTighterThanAndTighterThanOr) {
  EXPECT_EQ(canonical("a || b && c"), "(a || (b && c))");
  EXPECT_EQ(canonical("a && b || c"), "((a && b) || c)");
  EXPECT_EQ(canonical("!a && b"), "(!a && b)");
  EXPECT_EQ(canonical("(a || b) && c"), "((a || b) && c)");
  EXPECT_EQ(canonical("!(a || b)"), "!(a || b)");
}

TEST(TagExpression, IgnoresWhitespaceAndFlattensChains) {
  EXPECT_EQ(canonical("a&&b&&c"), "(a && b && c)");
  EXPECT_EQ(canonical("  a \t&&\n(b && c)  "), "(a && b && c)");
  EXPECT_EQ(canonical("a||(b||c)||d"), "(a || b || c || d)");
  EXPECT_EQ(canonical("!!a"), "a");
  EXPECT_EQ(canonical("((a))"), "a");
}

TEST(TagExpression, AcceptsAnyNumberOfTags) {
  std::string text;
  for (int i = 0; i < 500; ++i)
    text += (i ? (i % 3 ? " || " : " && ") : "") + std::string("tag") + std::to_string(i);
  auto e = TagExpression::parse(text);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->leafCount(), 500u);
  EXPECT_EQ(e->tags().size(), 500u);
}

TEST(TagExpression, ParsesBuiltIns) {
  auto e = TagExpression::parse(
      "$InstallationId:{abc-123} || $UserId:{bob@contoso.com=} || $UserId:carol");
  ASSERT_TRUE(e.has_value()) << e.error().message;
  const auto& children = e->root().children;
  ASSERT_EQ(children.size(), 3u);
  EXPECT_EQ(children[0].kind, TagExpressionNode::Kind::kInstallationId);
  EXPECT_EQ(children[0].value, "abc-123");
  EXPECT_EQ(children[1].kind, TagExpressionNode::Kind::kUserId);
  EXPECT_EQ(children[1].value, "bob@contoso.com=");
  EXPECT_EQ(children[2].value, "carol");
  EXPECT_TRUE(e->tags().empty());
}

TEST(TagExpression, NamesThePositionOfASyntaxError) {
  EXPECT_EQ(errorOf("a && ").message, "position 6: expected a tag, '(' or '!' at the end");
  EXPECT_EQ(errorOf("a & b").message, "position 3: '&' must be doubled: '&&'");
  EXPECT_EQ(errorOf("a | b").message, "position 3: '|' must be doubled: '||'");
  EXPECT_EQ(errorOf("(a || b").message, "position 8: missing ')' for the '(' at position 1");
  EXPECT_EQ(errorOf("a || b)").message, "position 7: ')' without a matching '('");
  EXPECT_EQ(errorOf("a b").message, "position 3: expected && or || before 'b'");
  EXPECT_EQ(errorOf("&& a").message, "position 1: expected a tag before '&'");
  EXPECT_EQ(errorOf("()").message, "position 2: expected a tag before ')'");
  EXPECT_EQ(errorOf("a && b$c").message,
            "position 6: 'b$c' is not a tag (characters A-Z a-z 0-9 _ @ # . : -)");
  EXPECT_EQ(errorOf("$UserId:{bob").message,
            "position 1: '$UserId:{bob' opens a brace it does not close");
  EXPECT_EQ(errorOf("$InstallationId:{}").message, "position 1: '$InstallationId:{}' names no id");
}

TEST(TagExpression, EmptyIsItsOwnError) {
  EXPECT_EQ(errorOf("").code, TagExpressionError::Code::kEmpty);
  EXPECT_EQ(errorOf("   ").code, TagExpressionError::Code::kEmpty);
  EXPECT_EQ(errorOf("a ||").code, TagExpressionError::Code::kSyntax);
}

TEST(TagExpression, RefusesNestingDeeperThanTheLimit) {
  const std::string deep = std::string(300, '(') + "a" + std::string(300, ')');
  EXPECT_EQ(errorOf(deep).code, TagExpressionError::Code::kTooDeep);
  EXPECT_EQ(errorOf(std::string(300, '!') + "a").code, TagExpressionError::Code::kTooDeep);
  const std::string fine = std::string(100, '(') + "a" + std::string(100, ')');
  EXPECT_TRUE(TagExpression::parse(fine).has_value());
}

TEST(TagExpression, MatchesAgainstOneDevice) {
  EXPECT_TRUE(matches("a && !b", {"a"}));
  EXPECT_FALSE(matches("a && !b", {"a", "b"}));
  EXPECT_TRUE(matches("(a || b) && c", {"b", "c"}));
  EXPECT_FALSE(matches("(a || b) && c", {"c"}));
  EXPECT_TRUE(matches("$InstallationId:{i}", {}, "i"));
  EXPECT_FALSE(matches("$InstallationId:{i}", {}, "j"));
  EXPECT_TRUE(matches("$UserId:{bob} && x", {"x"}, "i", "bob"));
  EXPECT_FALSE(matches("$UserId:{bob}", {}, "i", ""));
}

}  // namespace
}  // namespace pushhub::storage
