#include "bench/tool/baseline.h"

#include <gtest/gtest.h>

#include "bench/tool/http_load.h"
#include "bench/tool/scenario.h"

namespace pushhub::bench {
namespace {

TEST(Baseline, ReadsH2loadsReport) {
  const std::string output = R"(starting benchmark...
finished in 633.50ms, 315239.56 req/s, 13.23MB/s
requests: 200000 total, 200000 started, 200000 done, 199703 succeeded, 297 failed, 297 errored, 0 timeout
status codes: 199703 2xx, 0 3xx, 0 4xx, 0 5xx
)";
  BaselineResult r;
  ASSERT_TRUE(parseH2loadOutput(output, r));
  EXPECT_DOUBLE_EQ(r.requests_per_s, 315239.56);
  EXPECT_DOUBLE_EQ(r.seconds, 0.6335);
  EXPECT_EQ(r.requests, 200000u);
  EXPECT_EQ(r.ok, 199703u);
  BaselineResult seconds;
  ASSERT_TRUE(
      parseH2loadOutput("finished in 2.01s, 99502.00 req/s, 1MB/s\nrequests: 200000 total\nstatus "
                        "codes: 200000 2xx\n",
                        seconds));
  EXPECT_DOUBLE_EQ(seconds.seconds, 2.01);
  EXPECT_FALSE(parseH2loadOutput("h2load: command not found", r));
}

TEST(Baseline, PayloadsHaveTheSizeAsked) {
  for (size_t n : {40u, 256u, 4096u}) EXPECT_EQ(apnsPayload(n).size(), n);
  EXPECT_TRUE(apnsPayload(256).starts_with(R"({"aps":{"alert":")"));
}

TEST(HttpHead, ReadsStatusLengthCloseAndHeaders) {
  std::string error;
  auto h = parseHttpHead(
      "HTTP/1.1 201 Created\r\nContent-Length: 12\r\nLocation: http://x/y\r\nConnection: close",
      error, true);
  ASSERT_TRUE(h.has_value()) << error;
  EXPECT_EQ(h->status, 201u);
  EXPECT_EQ(h->body_length, 12u);
  EXPECT_TRUE(h->close);
  EXPECT_EQ(h->headers.at("location"), "http://x/y");
  EXPECT_FALSE(parseHttpHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", error).has_value());
  EXPECT_EQ(error, "chunked answers are not supported");
  EXPECT_FALSE(parseHttpHead("SSH-2.0-OpenSSH", error).has_value());
  EXPECT_FALSE(parseHttpHead("HTTP/1.1 999 What", error).has_value());
}

TEST(Expression, AWindowOfTagsMatchingAboutTheFractionAsked) {
  PopulationOptions o;
  o.count = 20000;
  o.mix = *parsePlatformMix("apns:1");
  o.tag_count = 1000;
  o.tags_per_device = 5;
  const Population population(o);
  for (double want : {0.2, 0.5, 0.8}) {
    double achieved = 0;
    const std::string e = orExpressionMatching(population, 20, want, 20000, &achieved);
    EXPECT_NEAR(achieved, want, 0.03) << e;
    EXPECT_EQ(std::count(e.begin(), e.end(), '|'), 2 * 19) << e;
    // Check the claim against the devices themselves.
    const size_t first = std::stoul(e.substr(1, e.find(' ') - 1));
    uint64_t hits = 0;
    for (uint64_t i = 0; i < 20000; ++i) {
      const auto tags = population.device(i, "").tags;
      hits += std::any_of(tags.begin(), tags.end(),
                          [&](uint32_t t) { return t >= first && t < first + 20; });
    }
    EXPECT_DOUBLE_EQ(static_cast<double>(hits) / 20000, achieved);
  }
}

}  // namespace
}  // namespace pushhub::bench
