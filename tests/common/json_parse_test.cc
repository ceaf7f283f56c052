#include "common/json_parse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/text.h"
#include "common/xml.h"

namespace pushhub {
namespace {

using ::testing::HasSubstr;

TEST(JsonParse, ParsesWhatRapidJsonParses) {
  rapidjson::Document doc;
  ASSERT_TRUE(parseJson(doc, R"({"a":[1,{"b":"c"}],"d":null})").has_value());
  EXPECT_EQ(std::string(doc["a"][1]["b"].GetString()), "c");
  // Not NUL-terminated: only the view is read.
  const std::string text = R"({"x":1}garbage)";
  ASSERT_TRUE(parseJson(doc, std::string_view(text).substr(0, 7)).has_value());
  EXPECT_EQ(doc["x"].GetInt(), 1);
}

TEST(JsonParse, DeepNestingIsRefusedWithoutRecursion) {
  // 110,000 '[' overflowed a shard's stack inside RapidJSON's recursive parser.
  rapidjson::Document doc;
  auto deep = parseJson(doc, std::string(110'000, '['));
  ASSERT_FALSE(deep.has_value());
  EXPECT_THAT(deep.error(), HasSubstr("nested deeper than 64 levels"));
  EXPECT_TRUE(doc.IsNull());
  std::string objects;
  for (int i = 0; i < 100'000; ++i) objects += "{\"a\":";
  EXPECT_FALSE(parseJson(doc, objects).has_value());
  // The limit is exact: 64 levels parse, 65 do not.
  const auto nested = [](int levels) {
    return std::string(static_cast<size_t>(levels), '[') +
           std::string(static_cast<size_t>(levels), ']');
  };
  EXPECT_TRUE(parseJson(doc, nested(64)).has_value());
  EXPECT_FALSE(parseJson(doc, nested(65)).has_value());
}

TEST(JsonParse, InvalidUtf8AndBadEscapesAreRefusedWithTheirOffset) {
  rapidjson::Document doc;
  auto raw = parseJson(doc,
                       "{\"id\":\"a\xff"
                       "b\"}");
  ASSERT_FALSE(raw.has_value());
  EXPECT_THAT(raw.error(), HasSubstr("Invalid encoding"));
  EXPECT_THAT(raw.error(), HasSubstr("offset"));
  EXPECT_FALSE(parseJson(doc, R"({"id":"\ud800"})").has_value());  // a lone high surrogate
  // RapidJSON lets a lone low surrogate through as its (invalid) UTF-8 form: the fields that must
  // be text check what they get.
  ASSERT_TRUE(parseJson(doc, R"({"id":"\udc00"})").has_value());
  EXPECT_NE(textProblem(doc["id"].GetString()), nullptr);
  auto truncated = parseJson(doc, R"({"a":)");
  ASSERT_FALSE(truncated.has_value());
  EXPECT_THAT(truncated.error(), HasSubstr("offset 5"));
}

TEST(Text, ProblemsNameNulAndInvalidUtf8WithTheirOffset) {
  size_t offset = 99;
  EXPECT_EQ(textProblem("plain ascii, é, 日本"), nullptr);
  EXPECT_STREQ(textProblem(std::string_view("ab\0c", 4), &offset), "contains a NUL character");
  EXPECT_EQ(offset, 2u);
  EXPECT_STREQ(textProblem("a\xff", &offset), "is not valid UTF-8");
  EXPECT_EQ(offset, 1u);
  EXPECT_NE(textProblem("\xed\xa0\x80"), nullptr);                      // an encoded surrogate
  EXPECT_NE(textProblem("\xc0\xaf"), nullptr);                          // an overlong '/'
  EXPECT_STREQ(textProblem("\xf5\x80\x80\x80"), "is not valid UTF-8");  // above U+10FFFF
}

TEST(XmlEscape, OutputIsWellFormedWhateverTheInput) {
  std::string out;
  appendXmlEscaped(out, std::string_view("a\xff<b>\0&\t\x01", 9));
  EXPECT_EQ(out, "a\xEF\xBF\xBD&lt;b&gt;\xEF\xBF\xBD&amp;\t\xEF\xBF\xBD");
  out.clear();
  appendXmlEscaped(out, "caf\xc3\xa9");
  EXPECT_EQ(out, "caf\xc3\xa9");
}

}  // namespace
}  // namespace pushhub
