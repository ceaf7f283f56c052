#include "common/log.h"

#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>

namespace pushhub {
namespace {

TEST(JsonLogFormatter, WritesOneEscapedJsonObjectPerLine) {
  JsonLogFormatter formatter;
  spdlog::details::log_msg msg("api", spdlog::level::warn, "bad \"input\"\nsecond line");
  msg.time =
      std::chrono::system_clock::time_point(std::chrono::microseconds(1'700'000'000'123'456));
  spdlog::memory_buf_t out;
  formatter.format(msg, out);
  EXPECT_EQ(std::string(out.data(), out.size()),
            "{\"ts\":\"2023-11-14T22:13:20.123456Z\",\"level\":\"warning\",\"logger\":\"api\","
            "\"msg\":\"bad \\\"input\\\"\\nsecond line\"}\n");
}

TEST(LogOptions, ParsesKnownLevelsAndFormatsOnly) {
  EXPECT_EQ(parseLogLevel("debug"), spdlog::level::debug);
  EXPECT_EQ(parseLogLevel("error"), spdlog::level::err);
  EXPECT_FALSE(parseLogLevel("verbose"));
  EXPECT_EQ(parseLogFormat("json"), LogFormat::kJson);
  EXPECT_FALSE(parseLogFormat("xml"));
}

TEST(ModuleLogger, ReturnsOneLoggerPerModule) {
  auto a = moduleLogger("test-module");
  auto b = moduleLogger("test-module");
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(a->name(), "test-module");
}

}  // namespace
}  // namespace pushhub
