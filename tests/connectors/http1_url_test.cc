// Channel URIs and token endpoints as the HTTPS/1.1 client reads them: only https, ports
// checked, IPv6 literals, the target kept byte for byte (WNS tokens carry %2f and %2b).
#include <gtest/gtest.h>

#include "connectors/http1/client.h"

namespace pushhub::connectors::http1 {
namespace {

TEST(HttpsUrlTest, ParsesHostPortAndTarget) {
  auto wns = parseHttpsUrl("https://dm3p.notify.windows.com/?token=AwYAAAB%2fQAhY%2b");
  ASSERT_TRUE(wns.has_value());
  EXPECT_EQ(wns->host, "dm3p.notify.windows.com");
  EXPECT_EQ(wns->port, 443);
  EXPECT_EQ(wns->target, "/?token=AwYAAAB%2fQAhY%2b");
  auto local = parseHttpsUrl("https://localhost:2199/accesstoken.srf");
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->port, 2199);
  EXPECT_EQ(local->target, "/accesstoken.srf");
  auto bare = parseHttpsUrl("https://example.com");
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->target, "/");
  auto query = parseHttpsUrl("https://example.com?a=1");
  ASSERT_TRUE(query.has_value());
  EXPECT_EQ(query->target, "/?a=1");
  auto v6 = parseHttpsUrl("https://[::1]:8443/x");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8443);
}

TEST(HttpsUrlTest, RefusesWhatIsNotAnHttpsUrl) {
  for (const char* bad :
       {"http://example.com/", "example.com", "https://", "https://:443/", "https://host:0/",
        "https://host:65536/", "https://host:12ab/", "https://[::1/"}) {
    auto url = parseHttpsUrl(bad);
    EXPECT_FALSE(url.has_value()) << bad;
    if (!url) {
      EXPECT_NE(url.error().find(bad), std::string::npos) << url.error();
    }
  }
}

// pushhub-bench's --url and the simulator's /stats: http:// too, with its own default port.
TEST(HttpUrlTest, ParsesBothSchemesWithTheirDefaultPorts) {
  auto plain = parseHttpUrl("http://127.0.0.1/stats");
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->https);
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, 80);
  EXPECT_EQ(plain->target, "/stats");
  auto secure = parseHttpUrl("https://localhost:7070");
  ASSERT_TRUE(secure.has_value());
  EXPECT_TRUE(secure->https);
  EXPECT_EQ(secure->port, 7070);
  EXPECT_EQ(secure->target, "/");
  for (const char* bad : {"ftp://host/", "127.0.0.1:8089/stats", "http://host:abc/stats",
                          "http://host:99999", "http:///x"}) {
    auto url = parseHttpUrl(bad);
    EXPECT_FALSE(url.has_value()) << bad;
    if (!url) {
      EXPECT_NE(url.error().find(bad), std::string::npos) << url.error();
    }
  }
}

}  // namespace
}  // namespace pushhub::connectors::http1
