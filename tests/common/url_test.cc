#include "common/url.h"

#include <gtest/gtest.h>

namespace pushhub {
namespace {

TEST(UrlTest, PercentDecodesEscapesAndOptionallyPlus) {
  EXPECT_EQ(percentDecode("a%2Fb%2bc", false), "a/b+c");
  EXPECT_EQ(percentDecode("two+words", true), "two words");
  EXPECT_EQ(percentDecode("two+words", false), "two+words");
  EXPECT_EQ(percentDecode("%", false), std::nullopt);
  EXPECT_EQ(percentDecode("%4", false), std::nullopt);
  EXPECT_EQ(percentDecode("%zz", false), std::nullopt);
  EXPECT_EQ(percentDecode("end%41", false), "endA");
}

TEST(UrlTest, PercentEncodeRoundTrips) {
  const std::string text = "ms-app://s-1-15-2 ä+/=";
  EXPECT_EQ(percentEncode(text), "ms-app%3A%2F%2Fs-1-15-2%20%C3%A4%2B%2F%3D");
  EXPECT_EQ(percentDecode(percentEncode(text), false), text);
}

TEST(UrlTest, ParsesFormBodies) {
  auto form =
      parseForm("grant_type=client_credentials&scope=notify.windows.com&empty=&flag&&x=a+b");
  ASSERT_TRUE(form.has_value());
  ASSERT_EQ(form->size(), 5u);
  EXPECT_EQ((*form)[0].first, "grant_type");
  EXPECT_EQ((*form)[0].second, "client_credentials");
  EXPECT_EQ((*form)[2].second, "");
  EXPECT_EQ((*form)[3].first, "flag");
  EXPECT_EQ((*form)[4].second, "a b");
  EXPECT_EQ(parseForm("a=%g0"), std::nullopt);
}

}  // namespace
}  // namespace pushhub
