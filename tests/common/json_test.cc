#include "common/json.h"

#include <gtest/gtest.h>

namespace pushhub {
namespace {

std::string escaped(std::string_view text) {
  std::string out;
  appendJsonEscaped(out, text);
  return out;
}

TEST(JsonEscape, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(escaped("say \"hi\" \\ bye"), "say \\\"hi\\\" \\\\ bye");
  EXPECT_EQ(escaped("a\nb\rc\td\be\ff"), "a\\nb\\rc\\td\\be\\ff");
  EXPECT_EQ(escaped(std::string_view("\x01\x1f\x7f", 3)), "\\u0001\\u001f\\u007f");
  EXPECT_EQ(escaped(std::string_view("nul\0x", 5)), "nul\\u0000x");
}

TEST(JsonEscape, CopiesValidUtf8Unchanged) {
  EXPECT_EQ(escaped("Grüße, 東京, 🎉"), "Grüße, 東京, 🎉");
}

TEST(JsonEscape, ReplacesInvalidUtf8WithReplacementCharacter) {
  EXPECT_EQ(escaped("a\xff"
                    "b"),
            "a\\ufffdb");                                       // never valid in UTF-8
  EXPECT_EQ(escaped("\xc3"), "\\ufffd");                        // truncated 2-byte sequence
  EXPECT_EQ(escaped("\xc0\xaf"), "\\ufffd\\ufffd");             // overlong '/'
  EXPECT_EQ(escaped("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");  // UTF-16 surrogate
  EXPECT_EQ(escaped("\xf4\x90\x80\x80"), "\\ufffd\\ufffd\\ufffd\\ufffd");  // above U+10FFFF
}

TEST(JsonEscape, QuotedAddsQuotes) { EXPECT_EQ(jsonQuoted("x\"y"), "\"x\\\"y\""); }

}  // namespace
}  // namespace pushhub
