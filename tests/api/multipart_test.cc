// multipart/mixed as the direct batch send uses it: the JS SDK's boundary with spaces around '='
// (quirk #7), CRLF and LF line ends, and malformed bodies named.
#include "api/multipart.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pushhub::api {
namespace {

using ::testing::HasSubstr;

TEST(Multipart, TheJsSdksBoundaryAndBodyParse) {
  auto boundary = multipartBoundary(R"(multipart/mixed; boundary = "nh-boundary-1f2e")");
  ASSERT_TRUE(boundary.has_value()) << boundary.error();
  EXPECT_EQ(*boundary, "nh-boundary-1f2e");
  EXPECT_EQ(*multipartBoundary("multipart/mixed;boundary=simple-boundary"), "simple-boundary");
  const std::string body =
      "--nh-boundary-1f2e\r\nContent-type: application/json;charset=utf-8\r\n"
      "Content-Disposition: inline; name=notification\r\n\r\n{\"aps\":{\"alert\":\"x\"}}\r\n"
      "--nh-boundary-1f2e\r\nContent-type: application/json\r\n"
      "Content-Disposition: inline; name=devices\r\n\r\n[\"a\",\"b\"]\r\n--nh-boundary-1f2e--\r\n";
  auto parts = parseMultipart(body, *boundary);
  ASSERT_TRUE(parts.has_value()) << parts.error();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name(), "notification");
  EXPECT_EQ((*parts)[0].headers.at("content-type"), "application/json;charset=utf-8");
  EXPECT_EQ((*parts)[0].body, R"({"aps":{"alert":"x"}})");
  EXPECT_EQ((*parts)[1].name(), "devices");
  EXPECT_EQ((*parts)[1].body, R"(["a","b"])");
  // The docs' sample with LF only and a preamble.
  auto lf = parseMultipart(
      "preamble\n--b\nContent-Disposition: inline; name=\"devices\"\n\n[]\n--b--", "b");
  ASSERT_TRUE(lf.has_value()) << lf.error();
  EXPECT_EQ((*lf)[0].name(), "devices");
  EXPECT_EQ((*lf)[0].body, "[]");
}

TEST(Multipart, MalformedBodiesAreNamed) {
  EXPECT_THAT(multipartBoundary("application/json").error(), HasSubstr("not multipart/mixed"));
  EXPECT_THAT(multipartBoundary("multipart/mixed").error(), HasSubstr("names no boundary"));
  EXPECT_THAT(parseMultipart("nothing here", "b").error(), HasSubstr("no '--b' delimiter"));
  EXPECT_THAT(parseMultipart("--b\r\nX: y\r\n\r\nbody", "b").error(),
              HasSubstr("closing '--b--' is missing"));
  EXPECT_THAT(parseMultipart("--b\r\nnot a header\r\n\r\nx\r\n--b--", "b").error(),
              HasSubstr("'not a header' is not a header line"));
}

}  // namespace
}  // namespace pushhub::api
