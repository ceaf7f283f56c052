#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/listen.h"
#include "common/log.h"
#include "storage/database.h"
#include "storage/installation.h"

namespace pushhub {

// The whole configuration of a pushhub process. Every field has a default; a configuration file
// (TOML), the environment (PUSHHUB_<SECTION>_<KEY>) and command-line flags override it, in that
// order. The keys are listed, with their documentation, by configKeys().
struct Config {
  struct Server {
    ListenAddress listen{"127.0.0.1", 7070};
    unsigned shards = 0;  // 0: one per core
    std::chrono::milliseconds shutdown_timeout{10'000};
  } server;
  struct Http {
    size_t max_header_bytes = 16 << 10;
    size_t max_body_bytes = 4 << 20;
    std::chrono::milliseconds idle_timeout{60'000};
    std::chrono::milliseconds header_timeout{10'000};
    size_t max_connections = 10'000;
    size_t max_connections_per_client = 1'000;
    // Both set: the API speaks HTTPS (TLS 1.2+) with this certificate chain and key (PEM).
    std::string tls_cert_file;
    std::string tls_key_file;
  } http;
  struct Log {
    spdlog::level::level_enum level = spdlog::level::info;
    LogFormat format = LogFormat::kText;
  } log;
  storage::StorageOptions storage;
  struct Installations {
    uint32_t partitions = 256;
    storage::ValidationLimits limits;
  } installations;  // keys in [storage]
  struct Engine {
    // "name=file,…": hubs and their push-service credentials (hub/hub_definition.h), until the
    // admin API stores them.
    std::string hubs;
    size_t in_flight_per_shard = 2048;
    size_t in_flight_per_service = 512;
    uint32_t streams_per_connection = 100;
    size_t checkpoint_every = 128;
    std::chrono::milliseconds checkpoint_interval{200};
    std::chrono::seconds time_to_live{30 * 60};
    uint64_t fcm_per_minute = 600'000;  // per hub; 0: no limit
  } engine;
  struct Auth {
    // Namespace-level SAS rules: "name=key:Listen,Send,Manage;…" (api/sas.h).
    std::string rules;
    // The URL clients reach pushhub at; when set, SAS resources are checked against it rather
    // than the Host header. Empty: the Host header.
    std::string public_url;
  } auth;
  struct Kafka {
    std::string brokers;  // empty: no Kafka intake
    std::string group_id = "pushhub";
    std::string sends_topic = "pushhub.sends";
    std::string outcomes_topic = "pushhub.outcomes";
    size_t max_running = 256;
  } kafka;

  // server.shards resolved: the core count when 0.
  unsigned shardCount() const;
};

// Where a bad value came from, which key, and what is wrong with it. message() is the one line
// that `pushhub` prints before refusing to start.
struct ConfigError {
  std::string source;  // "pushhub.toml line 3", "environment PUSHHUB_SERVER_LISTEN", "--listen"
  std::string key;     // "server.listen"; empty for a file that is not TOML at all
  std::string problem;
  std::string message() const;
};

enum class ValueKind { kString, kInteger, kBoolean };
// A key's value as read from TOML, the environment or a flag; the alternative matches its kind.
using ConfigValue = std::variant<std::string, int64_t, bool>;

// One configuration key: its name, type, documentation, and how it reads and writes Config.
struct ConfigKey {
  std::string_view section;
  std::string_view name;
  ValueKind kind;
  std::string_view doc;
  // Sets the field from a value of `kind`, or says what is wrong with it.
  std::optional<std::string> (*set)(Config&, const ConfigValue& value);
  // The field's current value as a TOML literal ("\"127.0.0.1:7070\"", "0", "false").
  std::string (*get)(const Config&);

  std::string dottedName() const;       // "server.listen"
  std::string environmentName() const;  // "PUSHHUB_SERVER_LISTEN"
};

const std::vector<ConfigKey>& configKeys();

using Environment = std::map<std::string, std::string>;
// The PUSHHUB_* variables of this process.
Environment processEnvironment();

// Defaults, then `toml_text` (if any; `source_name` names it in errors), then `environment`.
// Unknown sections, keys and PUSHHUB_* variables are errors, as are values of the wrong type or
// out of range: nothing is silently ignored or defaulted.
std::expected<Config, ConfigError> parseConfig(std::optional<std::string_view> toml_text,
                                               std::string_view source_name,
                                               const Environment& environment);

// parseConfig() on the contents of `file` (or on nothing when no file is given).
std::expected<Config, ConfigError> loadConfig(const std::optional<std::filesystem::path>& file,
                                              const Environment& environment);

// Sets one key from text given on the command line, e.g. ("server.listen", "0.0.0.0:80",
// "--listen").
std::optional<ConfigError> applyOverride(Config& config, std::string_view dotted_key,
                                         std::string_view text, std::string_view source);

// The configuration as a TOML document with every key and its documentation.
std::string renderConfig(const Config& config);

}  // namespace pushhub
