#include "hub/config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace pushhub {
namespace {

using ::testing::HasSubstr;

std::expected<Config, ConfigError> parse(std::string_view toml, const Environment& env = {}) {
  return parseConfig(toml, "test.toml", env);
}

// Every key's value, for comparing whole configurations.
std::map<std::string, std::string> values(const Config& config) {
  std::map<std::string, std::string> out;
  for (const auto& key : configKeys()) out[key.dottedName()] = key.get(config);
  return out;
}

std::string errorOf(std::string_view toml, const Environment& env = {}) {
  auto result = parse(toml, env);
  EXPECT_FALSE(result.has_value()) << "expected an error for: " << toml;
  return result ? std::string() : result.error().message();
}

TEST(Config, DefaultsWhenNothingIsGiven) {
  auto config = parseConfig(std::nullopt, "", {});
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->server.listen.toString(), "127.0.0.1:7070");
  EXPECT_EQ(config->server.shards, 0u);
  EXPECT_GE(config->shardCount(), 1u);
  EXPECT_EQ(config->storage.data_dir, "data");
  EXPECT_FALSE(config->storage.sync_writes);
  EXPECT_EQ(config->log.format, LogFormat::kText);
}

TEST(Config, ReadsEverySectionFromToml) {
  auto config = parse(R"(
[server]
listen = "0.0.0.0:9000"
shards = 3
shutdown_timeout_ms = 2500
[http]
max_body_bytes = 65536
idle_timeout_ms = 1000
[log]
level = "debug"
format = "json"
[storage]
data_dir = "/var/lib/pushhub"
sync_writes = true
block_cache_mb = 64
)");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  EXPECT_EQ(config->server.listen.host, "0.0.0.0");
  EXPECT_EQ(config->server.listen.port, 9000);
  EXPECT_EQ(config->shardCount(), 3u);
  EXPECT_EQ(config->server.shutdown_timeout.count(), 2500);
  EXPECT_EQ(config->http.max_body_bytes, 65536u);
  EXPECT_EQ(config->http.idle_timeout.count(), 1000);
  EXPECT_EQ(config->log.level, spdlog::level::debug);
  EXPECT_EQ(config->log.format, LogFormat::kJson);
  EXPECT_EQ(config->storage.data_dir, "/var/lib/pushhub");
  EXPECT_TRUE(config->storage.sync_writes);
  EXPECT_EQ(config->storage.block_cache_bytes, 64u << 20);
}

TEST(Config, EnvironmentOverridesTheFile) {
  auto config = parse("[server]\nshards = 2\n", {{"PUSHHUB_SERVER_SHARDS", "5"},
                                                 {"PUSHHUB_STORAGE_SYNC_WRITES", "true"},
                                                 {"PUSHHUB_LOG_FORMAT", "json"},
                                                 {"OTHER_VARIABLE", "ignored"}});
  ASSERT_TRUE(config.has_value()) << config.error().message();
  EXPECT_EQ(config->server.shards, 5u);
  EXPECT_TRUE(config->storage.sync_writes);
  EXPECT_EQ(config->log.format, LogFormat::kJson);
}

TEST(Config, CommandLineOverrideSetsAKey) {
  Config config;
  EXPECT_FALSE(applyOverride(config, "server.listen", "[::1]:0", "--listen"));
  EXPECT_EQ(config.server.listen.host, "::1");
  EXPECT_EQ(config.server.listen.toString(), "[::1]:0");
  auto error = applyOverride(config, "server.shards", "many", "--shards");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->message(), "config error: --shards: server.shards: \"many\" is not an integer");
}

TEST(Config, RejectsUnknownKeyNamingItAndSuggestingTheClosest) {
  EXPECT_EQ(errorOf("[server]\nlistn = \"127.0.0.1:1\"\n"),
            "config error: test.toml line 2: server.listn: unknown key (did you mean "
            "'server.listen'?)");
  EXPECT_EQ(errorOf("[server]\ncolour = 1\n"),
            "config error: test.toml line 2: server.colour: unknown key");
}

TEST(Config, RejectsUnknownSection) {
  EXPECT_THAT(errorOf("[storge]\ndata_dir = \"x\"\n"),
              HasSubstr("storge: unknown section (did you mean 'storage'?)"));
}

TEST(Config, RejectsTopLevelValueWhereASectionBelongs) {
  EXPECT_EQ(errorOf("server = 1\n"),
            "config error: test.toml line 1: server: must be a table ([server]), got an integer");
}

TEST(Config, RejectsWrongTypes) {
  EXPECT_EQ(errorOf("[server]\nshards = \"4\"\n"),
            "config error: test.toml line 2: server.shards: expected an integer, got a string");
  EXPECT_EQ(errorOf("[storage]\nsync_writes = \"yes\"\n"),
            "config error: test.toml line 2: storage.sync_writes: expected a boolean (true or "
            "false), got a string");
  EXPECT_EQ(errorOf("[server]\nlisten = 7070\n"),
            "config error: test.toml line 2: server.listen: expected a string, got an integer");
  EXPECT_THAT(errorOf("[http]\nmax_body_bytes = 1.5\n"),
              HasSubstr("http.max_body_bytes: expected an integer, got a floating-point number"));
}

TEST(Config, RejectsOutOfRangeValues) {
  EXPECT_EQ(errorOf("[server]\nshards = -1\n"),
            "config error: test.toml line 2: server.shards: -1 is out of range (allowed: 0 to "
            "256)");
  EXPECT_THAT(errorOf("[http]\nmax_header_bytes = 10\n"),
              HasSubstr("http.max_header_bytes: 10 is out of range"));
  EXPECT_THAT(errorOf("[storage]\nblock_cache_mb = 0\n"),
              HasSubstr("storage.block_cache_mb: 0 is out of range"));
  EXPECT_THAT(errorOf("[storage]\npartitions = 0\n"),
              HasSubstr("storage.partitions: 0 is out of range (allowed: 1 to 65536)"));
  EXPECT_THAT(errorOf("[storage]\nmax_tags_per_installation = 0\n"),
              HasSubstr("storage.max_tags_per_installation: 0 is out of range"));
  EXPECT_THAT(errorOf("[storage]\nmax_tag_length = 2000\n"),
              HasSubstr("storage.max_tag_length: 2000 is out of range"));
}

TEST(Config, RejectsBadEnumValuesAndEmptyDataDir) {
  EXPECT_THAT(errorOf("[log]\nlevel = \"loud\"\n"),
              HasSubstr("log.level: \"loud\" is not a log level (trace, debug, info, warn, error, "
                        "off)"));
  EXPECT_THAT(errorOf("[log]\nformat = \"xml\"\n"),
              HasSubstr("log.format: \"xml\" is not a log format (text, json)"));
  EXPECT_THAT(errorOf("[storage]\ndata_dir = \"\"\n"),
              HasSubstr("storage.data_dir: must not be empty"));
}

TEST(Config, RejectsInvalidToml) {
  EXPECT_THAT(errorOf("[server]\nlisten = \"unterminated\n"),
              HasSubstr("config error: test.toml line 2: not valid TOML"));
  EXPECT_THAT(errorOf("[server]\nshards = 1\nshards = 2\n"),
              HasSubstr("config error: test.toml line 3: not valid TOML"));
}

TEST(Config, RejectsBadEnvironmentVariables) {
  EXPECT_EQ(errorOf("", {{"PUSHHUB_SERVER_SHARDS", "two"}}),
            "config error: environment PUSHHUB_SERVER_SHARDS: server.shards: \"two\" is not an "
            "integer");
  EXPECT_EQ(errorOf("", {{"PUSHHUB_STORAGE_SYNC_WRITES", "maybe"}}),
            "config error: environment PUSHHUB_STORAGE_SYNC_WRITES: storage.sync_writes: "
            "\"maybe\" is not a boolean (true or false)");
  EXPECT_EQ(errorOf("", {{"PUSHHUB_SERVER_LISTN", "x"}}),
            "config error: environment PUSHHUB_SERVER_LISTN: unknown variable (did you mean "
            "'PUSHHUB_SERVER_LISTEN'?)");
  EXPECT_THAT(errorOf("", {{"PUSHHUB_SERVER_LISTEN", "nowhere"}}),
              HasSubstr("server.listen: \"nowhere\" is not HOST:PORT (missing :PORT)"));
}

TEST(Config, MissingFileIsAnErrorNamingIt) {
  auto config = loadConfig(std::filesystem::path("/nonexistent/pushhub.toml"), {});
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().message(),
            "config error: /nonexistent/pushhub.toml: cannot read the file: No such file or "
            "directory");
}

TEST(ListenAddress, ParsesHostsAndPorts) {
  EXPECT_EQ(parseListenAddress("127.0.0.1:80")->toString(), "127.0.0.1:80");
  EXPECT_EQ(parseListenAddress("localhost:0")->host, "127.0.0.1");
  EXPECT_EQ(parseListenAddress("[::]:443")->host, "::");
  EXPECT_EQ(parseListenAddress("0.0.0.0:65535")->port, 65535);
}

TEST(ListenAddress, SaysWhatIsWrong) {
  EXPECT_EQ(parseListenAddress("127.0.0.1").error(),
            "\"127.0.0.1\" is not HOST:PORT (missing :PORT)");
  EXPECT_THAT(parseListenAddress("127.0.0.1:70000").error(),
              HasSubstr("port must be a number from 0 to 65535"));
  EXPECT_THAT(parseListenAddress("127.0.0.1:").error(), HasSubstr("port must be a number"));
  EXPECT_THAT(parseListenAddress(":80").error(), HasSubstr("missing host"));
  EXPECT_THAT(parseListenAddress("example.com:80").error(), HasSubstr("IP address or localhost"));
  EXPECT_THAT(parseListenAddress("::1:80").error(), HasSubstr("[ADDR]:PORT"));
  EXPECT_THAT(parseListenAddress("[::1:80").error(), HasSubstr("missing ']'"));
}

TEST(Config, RenderedConfigurationParsesBackToTheSameValues) {
  auto config = parse(
      "[server]\nlisten = \"[::1]:1234\"\nshards = 7\n[log]\nlevel = \"warn\"\n"
      "[storage]\ndata_dir = \"dir with \\\"quotes\\\"\"\nsync_writes = true\n");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  const std::string rendered = renderConfig(*config);
  auto reparsed = parse(rendered);
  ASSERT_TRUE(reparsed.has_value()) << reparsed.error().message() << "\n" << rendered;
  EXPECT_EQ(values(*reparsed), values(*config));
}

TEST(Config, ExampleFileDocumentsEveryKeyWithItsDefault) {
  std::ifstream in(PUSHHUB_EXAMPLE_CONFIG);
  ASSERT_TRUE(in) << PUSHHUB_EXAMPLE_CONFIG;
  std::stringstream text;
  text << in.rdbuf();
  auto example = parseConfig(text.str(), PUSHHUB_EXAMPLE_CONFIG, {});
  ASSERT_TRUE(example.has_value()) << example.error().message();
  const Config defaults;
  EXPECT_EQ(values(*example), values(defaults));
  // Every key is set explicitly (not only left to its default) and documented by its env name.
  for (const auto& key : configKeys()) {
    const std::string assignment = fmt::format("\n{} = ", key.name);
    EXPECT_THAT(text.str(), HasSubstr(assignment)) << key.dottedName();
    EXPECT_THAT(text.str(), HasSubstr(key.environmentName())) << key.dottedName();
  }
}

TEST(Config, RefusesNonAsciiOutsideStringsBeforeTomlSeesIt) {
  // Found by config_fuzz: Debian's toml++ reaches undefined behaviour on such bare keys.
  auto bad = parseConfig("[log]\nlevel\xef\xbb\xa3\"nos'\"\n", "fuzz.toml", {});
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message(), HasSubstr("fuzz.toml line 2"));
  EXPECT_THAT(bad.error().message(), HasSubstr("outside ASCII"));
  // In strings and comments it is text like any other.
  auto good =
      parseConfig("# caf\xc3\xa9\n[storage]\ndata_dir = \"/var/caf\xc3\xa9\"\n", "ok.toml", {});
  ASSERT_TRUE(good.has_value()) << good.error().message();
}

TEST(Config, KeyNamesAreUnique) {
  std::set<std::string> names;
  for (const auto& key : configKeys()) EXPECT_TRUE(names.insert(key.dottedName()).second);
}

}  // namespace
}  // namespace pushhub
