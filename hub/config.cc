#include "hub/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/json.h"

extern char** environ;

namespace pushhub {
namespace {

using Problem = std::optional<std::string>;

std::string tomlString(std::string_view text) { return jsonQuoted(text); }

Problem checkRange(int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) return fmt::format("{} is out of range (allowed: {} to {})", v, lo, hi);
  return std::nullopt;
}

int64_t asInt(const ConfigValue& v) { return std::get<int64_t>(v); }
const std::string& asString(const ConfigValue& v) { return std::get<std::string>(v); }

std::string levelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err:
    case spdlog::level::critical: return "error";
    case spdlog::level::off: return "off";
    case spdlog::level::n_levels: break;
  }
  return "info";
}

// Sets an integer field after a range check.
template <typename T>
Problem setInt(T& field, const ConfigValue& v, int64_t lo, int64_t hi) {
  if (auto p = checkRange(asInt(v), lo, hi)) return p;
  field = static_cast<T>(asInt(v));
  return std::nullopt;
}

Problem setMillis(std::chrono::milliseconds& field, const ConfigValue& v, int64_t lo, int64_t hi) {
  if (auto p = checkRange(asInt(v), lo, hi)) return p;
  field = std::chrono::milliseconds(asInt(v));
  return std::nullopt;
}

const std::vector<ConfigKey> kKeys = {
    {"server", "listen", ValueKind::kString,
     "Address the HTTP API listens on, HOST:PORT (IPv6 as [ADDR]:PORT). Port 0 picks a free port; "
     "the one chosen is logged at start-up.",
     [](Config& c, const ConfigValue& v) -> Problem {
       auto address = parseListenAddress(asString(v));
       if (!address) return address.error();
       c.server.listen = *address;
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.server.listen.toString()); }},
    {"server", "shards", ValueKind::kInteger,
     "Number of shards: event loops, each on its own thread, owning a share of the partitions. "
     "0 means one per core.",
     [](Config& c, const ConfigValue& v) { return setInt(c.server.shards, v, 0, 256); },
     [](const Config& c) { return std::to_string(c.server.shards); }},
    {"server", "shutdown_timeout_ms", ValueKind::kInteger,
     "On SIGINT/SIGTERM, how long in-flight requests may take to finish before connections are "
     "closed anyway.",
     [](Config& c, const ConfigValue& v) {
       return setMillis(c.server.shutdown_timeout, v, 0, 600'000);
     },
     [](const Config& c) { return std::to_string(c.server.shutdown_timeout.count()); }},
    {"http", "max_header_bytes", ValueKind::kInteger,
     "Largest request header block accepted; larger requests are answered 431.",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.http.max_header_bytes, v, 1024, 1 << 20);
     },
     [](const Config& c) { return std::to_string(c.http.max_header_bytes); }},
    {"http", "max_body_bytes", ValueKind::kInteger,
     "Largest request body accepted; larger requests are answered 413.",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.http.max_body_bytes, v, 1024, int64_t{1} << 30);
     },
     [](const Config& c) { return std::to_string(c.http.max_body_bytes); }},
    {"http", "tls_cert_file", ValueKind::kString,
     "PEM certificate chain for HTTPS (with http.tls_key_file). Both empty: plain HTTP. The "
     "official SDKs use https:// endpoints.",
     [](Config& c, const ConfigValue& v) -> Problem {
       c.http.tls_cert_file = asString(v);
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.http.tls_cert_file); }},
    {"http", "tls_key_file", ValueKind::kString, "PEM private key of http.tls_cert_file.",
     [](Config& c, const ConfigValue& v) -> Problem {
       c.http.tls_key_file = asString(v);
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.http.tls_key_file); }},
    {"http", "idle_timeout_ms", ValueKind::kInteger,
     "A connection that takes longer than this to send a whole request (or sits idle between "
     "keep-alive requests) is closed.",
     [](Config& c, const ConfigValue& v) {
       return setMillis(c.http.idle_timeout, v, 100, 3'600'000);
     },
     [](const Config& c) { return std::to_string(c.http.idle_timeout.count()); }},
    {"http", "header_timeout_ms", ValueKind::kInteger,
     "A new connection must finish its TLS handshake, send its first byte, and send each request "
     "head (from the head's first byte) within this; shorter than idle_timeout_ms so that silent "
     "or slow clients give their connection slot back.",
     [](Config& c, const ConfigValue& v) {
       return setMillis(c.http.header_timeout, v, 100, 3'600'000);
     },
     [](const Config& c) { return std::to_string(c.http.header_timeout.count()); }},
    {"http", "max_connections_per_client", ValueKind::kInteger,
     "Open connections one client address may hold at once; more are answered 503 and closed. "
     "0: no limit.",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.http.max_connections_per_client, v, 0, 1'000'000);
     },
     [](const Config& c) { return std::to_string(c.http.max_connections_per_client); }},
    {"http", "max_connections", ValueKind::kInteger,
     "Open client connections allowed at once (shared evenly by the shards). At the limit a new "
     "connection closes the oldest idle keep-alive connection of its shard; when none is idle it "
     "is answered 503 and closed, except that a small reserve still answers /healthz and "
     "/metrics.",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.http.max_connections, v, 1, 1'000'000);
     },
     [](const Config& c) { return std::to_string(c.http.max_connections); }},
    {"log", "level", ValueKind::kString, "Log level: trace, debug, info, warn, error or off.",
     [](Config& c, const ConfigValue& v) -> Problem {
       auto level = parseLogLevel(asString(v));
       if (!level) {
         return fmt::format("{} is not a log level (trace, debug, info, warn, error, off)",
                            tomlString(asString(v)));
       }
       c.log.level = *level;
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(levelName(c.log.level)); }},
    {"log", "format", ValueKind::kString,
     "Log format: \"text\" for people, \"json\" for one JSON object per line.",
     [](Config& c, const ConfigValue& v) -> Problem {
       auto format = parseLogFormat(asString(v));
       if (!format)
         return fmt::format("{} is not a log format (text, json)", tomlString(asString(v)));
       c.log.format = *format;
       return std::nullopt;
     },
     [](const Config& c) {
       return tomlString(c.log.format == LogFormat::kJson ? "json" : "text");
     }},
    {"auth", "rules", ValueKind::kString,
     "Namespace-level Shared Access Signature rules the REST API accepts, as "
     "\"name=key:rights;…\" with rights among Listen, Send, Manage (e.g. "
     "\"DefaultFullSharedAccessSignature=<key>:Listen,Send,Manage\"). Tokens are signed with the "
     "key as Azure's SDKs do. Empty: every Azure route answers 401.",
     [](Config& c, const ConfigValue& v) -> Problem {
       c.auth.rules = asString(v);
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.auth.rules.empty() ? "" : "<set>"); }},
    {"auth", "public_url", ValueKind::kString,
     "The URL clients reach pushhub at (\"https://push.example.com\", a path prefix allowed when a "
     "proxy strips it). When set, a Shared Access Signature's resource (sr) must cover this URL "
     "plus the request's path; when empty, it is checked against the Host header the client "
     "sends, which the client chooses. Set it in production.",
     [](Config& c, const ConfigValue& v) -> Problem {
       const std::string url = asString(v);
       if (!url.empty()) {
         const size_t scheme = url.find("://");
         const std::string_view prefix = std::string_view(url).substr(0, scheme);
         if (scheme == std::string::npos || (prefix != "http" && prefix != "https") ||
             url.size() == scheme + 3 || url.find_first_of("?# ") != std::string::npos) {
           return fmt::format("{} is not an http:// or https:// URL without query or fragment",
                              tomlString(url));
         }
       }
       c.auth.public_url = url;
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.auth.public_url); }},
    {"engine", "hubs", ValueKind::kString,
     "Hubs this process serves and where their push-service credentials are: \"name=file,…\", "
     "each file a hub definition (JSON, the shape `pushhub-sim keygen` writes to "
     "credentials.json; docs/engine.md). Empty: no hub, nothing can be sent.",
     [](Config& c, const ConfigValue& v) -> Problem {
       c.engine.hubs = asString(v);
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.engine.hubs); }},
    {"engine", "in_flight_per_shard", ValueKind::kInteger,
     "Deliveries handed to push services and not yet answered, per shard: the fan-out's "
     "backpressure. A crash re-sends at most this plus checkpoint_every deliveries per shard.",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.engine.in_flight_per_shard, v, 1, 1'000'000);
     },
     [](const Config& c) { return std::to_string(c.engine.in_flight_per_shard); }},
    {"engine", "in_flight_per_service", ValueKind::kInteger,
     "Of a shard's deliveries in flight, those to one push service (a hub's APNs, FCM or WNS) at "
     "most: a slow or unreachable service holds only this share while the others go on.",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.engine.in_flight_per_service, v, 1, 1'000'000);
     },
     [](const Config& c) { return std::to_string(c.engine.in_flight_per_service); }},
    {"engine", "streams_per_connection", ValueKind::kInteger,
     "HTTP/2 streams pushhub opens at once on one APNs or FCM connection, at most (below the "
     "service's own limit; 0: the service's limit). A lost connection's requests in flight are "
     "sent again and may arrive twice, so this bounds the duplicates one loss causes; pools open "
     "enough connections to carry in_flight_per_service at this cap. bench/RESULTS.md has the "
     "trade-off measured.",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.engine.streams_per_connection, v, 0, 1'000'000);
     },
     [](const Config& c) { return std::to_string(c.engine.streams_per_connection); }},
    {"engine", "fcm_per_minute", ValueKind::kInteger,
     "FCM messages a hub sends per minute at most: FCM's default project quota is 600,000; "
     "raise it with your project's quota (0: no limit, e.g. against the simulator).",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.engine.fcm_per_minute, v, 0, 1'000'000'000);
     },
     [](const Config& c) { return std::to_string(c.engine.fcm_per_minute); }},
    {"engine", "checkpoint_every", ValueKind::kInteger,
     "A shard writes its fan-out progress after this many push-service answers (or "
     "checkpoint_interval_ms, whichever comes first).",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.engine.checkpoint_every, v, 1, 1'000'000);
     },
     [](const Config& c) { return std::to_string(c.engine.checkpoint_every); }},
    {"engine", "checkpoint_interval_ms", ValueKind::kInteger,
     "Longest time fan-out progress waits before it is written, in milliseconds.",
     [](Config& c, const ConfigValue& v) {
       return setMillis(c.engine.checkpoint_interval, v, 1, 60'000);
     },
     [](const Config& c) { return std::to_string(c.engine.checkpoint_interval.count()); }},
    {"engine", "time_to_live_seconds", ValueKind::kInteger,
     "Default time-to-live of a notification: what is not delivered by then is counted as "
     "Abandoned. Azure's is 30 minutes.",
     [](Config& c, const ConfigValue& v) -> Problem {
       if (auto p = checkRange(asInt(v), 1, 7 * 24 * 3600)) return p;
       c.engine.time_to_live = std::chrono::seconds(asInt(v));
       return std::nullopt;
     },
     [](const Config& c) { return std::to_string(c.engine.time_to_live.count()); }},
    {"kafka", "brokers", ValueKind::kString,
     "Kafka bootstrap servers (host:port,…) to read send requests from and publish outcomes to. "
     "Empty: Kafka is off and the REST API is the intake. `pushhub-kafka-dev` runs a local one.",
     [](Config& c, const ConfigValue& v) -> Problem {
       c.kafka.brokers = asString(v);
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.kafka.brokers); }},
    {"kafka", "group_id", ValueKind::kString, "Consumer group of the pushhub processes.",
     [](Config& c, const ConfigValue& v) -> Problem {
       if (asString(v).empty()) return std::string("must not be empty");
       c.kafka.group_id = asString(v);
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.kafka.group_id); }},
    {"kafka", "sends_topic", ValueKind::kString, "Topic of send requests (docs/kafka.md).",
     [](Config& c, const ConfigValue& v) -> Problem {
       if (asString(v).empty()) return std::string("must not be empty");
       c.kafka.sends_topic = asString(v);
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.kafka.sends_topic); }},
    {"kafka", "outcomes_topic", ValueKind::kString,
     "Topic pushhub publishes completion summaries, dead handles and refused requests to.",
     [](Config& c, const ConfigValue& v) -> Problem {
       if (asString(v).empty()) return std::string("must not be empty");
       c.kafka.outcomes_topic = asString(v);
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.kafka.outcomes_topic); }},
    {"kafka", "max_running", ValueKind::kInteger,
     "Notifications running at once before the consumer pauses its partitions (nothing is "
     "dropped; it resumes as they finish).",
     [](Config& c, const ConfigValue& v) { return setInt(c.kafka.max_running, v, 1, 1'000'000); },
     [](const Config& c) { return std::to_string(c.kafka.max_running); }},
    {"storage", "data_dir", ValueKind::kString,
     "Directory of the RocksDB database (created if missing). Relative paths are relative to the "
     "working directory.",
     [](Config& c, const ConfigValue& v) -> Problem {
       if (asString(v).empty()) return std::string("must not be empty");
       c.storage.data_dir = asString(v);
       return std::nullopt;
     },
     [](const Config& c) { return tomlString(c.storage.data_dir.string()); }},
    {"storage", "sync_writes", ValueKind::kBoolean,
     "fsync the write-ahead log on every write: survives power loss, at a cost in write latency. "
     "Without it a write survives a process crash (kill -9) but not a machine crash.",
     [](Config& c, const ConfigValue& v) -> Problem {
       c.storage.sync_writes = std::get<bool>(v);
       return std::nullopt;
     },
     [](const Config& c) { return std::string(c.storage.sync_writes ? "true" : "false"); }},
    {"storage", "block_cache_mb", ValueKind::kInteger,
     "RocksDB block cache shared by all column families, in MiB.",
     [](Config& c, const ConfigValue& v) -> Problem {
       if (auto p = checkRange(asInt(v), 8, 1 << 20)) return p;
       c.storage.block_cache_bytes = static_cast<size_t>(asInt(v)) << 20;
       return std::nullopt;
     },
     [](const Config& c) { return std::to_string(c.storage.block_cache_bytes >> 20); }},
    {"storage", "partitions", ValueKind::kInteger,
     "Logical partitions per hub: the unit of ownership, of index rebuild and of fan-out progress. "
     "Fixed when a data directory is created; a different value later is refused at start-up.",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.installations.partitions, v, 1, 65536);
     },
     [](const Config& c) { return std::to_string(c.installations.partitions); }},
    {"storage", "max_tags_per_installation", ValueKind::kInteger,
     "Most tags one installation (and each of its templates) may carry. Azure allows 60.",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.installations.limits.max_tags, v, 1, 10'000);
     },
     [](const Config& c) { return std::to_string(c.installations.limits.max_tags); }},
    {"storage", "max_tag_length", ValueKind::kInteger,
     "Longest tag accepted, in characters. Azure allows 120.",
     [](Config& c, const ConfigValue& v) {
       return setInt(c.installations.limits.max_tag_length, v, 1, 1024);
     },
     [](const Config& c) { return std::to_string(c.installations.limits.max_tag_length); }},
};

std::string upper(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (did you mean 'server.listen'?)" when a known name is close to `wrong`, else "".
template <typename NameOf>
std::string suggestion(std::string_view wrong, NameOf name_of) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, wrong.size() / 3) + 1;
  for (const auto& key : kKeys) {
    const std::string candidate = name_of(key);
    const size_t d = editDistance(wrong, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", best);
}

const ConfigKey* findKey(std::string_view dotted) {
  for (const auto& key : kKeys) {
    if (key.dottedName() == dotted) return &key;
  }
  return nullptr;
}

bool isSection(std::string_view name) {
  return std::any_of(kKeys.begin(), kKeys.end(), [&](const auto& k) { return k.section == name; });
}

std::string_view kindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::kString: return "a string";
    case ValueKind::kInteger: return "an integer";
    case ValueKind::kBoolean: return "a boolean (true or false)";
  }
  return "a value";
}

std::string_view tomlTypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
  }
  return "an unknown type";
}

// A string from the environment or the command line, read as a value of `kind`.
std::expected<ConfigValue, std::string> parseText(ValueKind kind, std::string_view text) {
  switch (kind) {
    case ValueKind::kString: return ConfigValue(std::string(text));
    case ValueKind::kInteger: {
      int64_t v = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        return std::unexpected(fmt::format("{} is not an integer", tomlString(text)));
      }
      return ConfigValue(v);
    }
    case ValueKind::kBoolean:
      if (text == "true" || text == "1") return ConfigValue(true);
      if (text == "false" || text == "0") return ConfigValue(false);
      return std::unexpected(fmt::format("{} is not a boolean (true or false)", tomlString(text)));
  }
  return std::unexpected(std::string("unknown value kind"));
}

std::expected<ConfigValue, std::string> fromToml(ValueKind kind, const toml::node& node) {
  switch (kind) {
    case ValueKind::kString:
      if (const auto* s = node.as_string()) return ConfigValue(s->get());
      break;
    case ValueKind::kInteger:
      if (const auto* i = node.as_integer()) return ConfigValue(i->get());
      break;
    case ValueKind::kBoolean:
      if (const auto* b = node.as_boolean()) return ConfigValue(b->get());
      break;
  }
  return std::unexpected(
      fmt::format("expected {}, got {}", kindName(kind), tomlTypeName(node.type())));
}

std::string where(std::string_view source_name, const toml::source_region& region) {
  if (region.begin.line == 0) return std::string(source_name);
  return fmt::format("{} line {}", source_name, region.begin.line);
}

// The line of the first byte outside the 7-bit range that is not inside a string or a comment,
// or 0. Every key pushhub knows is ASCII, and Debian's toml++ reaches undefined behaviour on some
// non-ASCII bare keys (found by config_fuzz): such text is refused before it gets there.
size_t nonAsciiOutsideStrings(std::string_view text) {
  size_t line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
    } else if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      const bool multi = text.substr(i, 3) == std::string(3, c);
      const std::string_view close = multi ? text.substr(i, 3) : text.substr(i, 1);
      i += close.size();
      while (i < text.size() && text.substr(i, close.size()) != close) {
        if (text[i] == '\n') ++line;
        if (c == '"' && text[i] == '\\') ++i;  // an escape in a basic string
        ++i;
      }
      i += close.size() - 1;
    } else if (static_cast<unsigned char>(c) >= 0x80) {
      return line;
    }
  }
  return 0;
}

std::optional<ConfigError> applyToml(Config& config, std::string_view text,
                                     std::string_view source_name) {
  if (const size_t line = nonAsciiOutsideStrings(text)) {
    return ConfigError{fmt::format("{} line {}", source_name, line), "",
                       "not valid TOML: a character outside ASCII that is not in a string or a "
                       "comment"};
  }
  toml::table table;
  try {
    table = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return ConfigError{where(source_name, e.source()), "",
                       fmt::format("not valid TOML: {}", e.description())};
  }
  for (auto&& [section_name, section_node] : table) {
    const std::string section(section_name.str());
    if (!isSection(section)) {
      return ConfigError{where(source_name, section_node.source()), section,
                         "unknown section" + suggestion(section, [](const ConfigKey& k) {
                           return std::string(k.section);
                         })};
    }
    const auto* keys = section_node.as_table();
    if (keys == nullptr) {
      return ConfigError{where(source_name, section_node.source()), section,
                         fmt::format("must be a table ([{}]), got {}", section,
                                     tomlTypeName(section_node.type()))};
    }
    for (auto&& [key_name, node] : *keys) {
      const std::string dotted = section + "." + std::string(key_name.str());
      const ConfigKey* key = findKey(dotted);
      if (key == nullptr) {
        return ConfigError{
            where(source_name, node.source()), dotted,
            "unknown key" + suggestion(dotted, [](const ConfigKey& k) { return k.dottedName(); })};
      }
      auto value = fromToml(key->kind, node);
      if (!value) return ConfigError{where(source_name, node.source()), dotted, value.error()};
      if (auto problem = key->set(config, *value)) {
        return ConfigError{where(source_name, node.source()), dotted, *problem};
      }
    }
  }
  return std::nullopt;
}

std::optional<ConfigError> applyEnvironment(Config& config, const Environment& environment) {
  for (const auto& [variable, text] : environment) {
    if (!variable.starts_with("PUSHHUB_")) continue;
    const ConfigKey* key = nullptr;
    for (const auto& k : kKeys) {
      if (k.environmentName() == variable) key = &k;
    }
    const std::string source = "environment " + variable;
    if (key == nullptr) {
      return ConfigError{source, "", "unknown variable" + suggestion(variable, [](const auto& k) {
                                       return k.environmentName();
                                     })};
    }
    auto value = parseText(key->kind, text);
    if (!value) return ConfigError{source, key->dottedName(), value.error()};
    if (auto problem = key->set(config, *value)) {
      return ConfigError{source, key->dottedName(), *problem};
    }
  }
  return std::nullopt;
}

// Wraps `text` into comment lines of at most `width` characters.
std::string commentBlock(std::string_view text, size_t width = 100) {
  std::string out;
  std::string line = "#";
  std::istringstream words{std::string(text)};
  std::string word;
  while (words >> word) {
    if (line.size() + 1 + word.size() > width && line != "#") {
      out += line + "\n";
      line = "#";
    }
    line += " " + word;
  }
  out += line + "\n";
  return out;
}

}  // namespace

unsigned Config::shardCount() const {
  if (server.shards != 0) return server.shards;
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string ConfigError::message() const {
  if (key.empty()) return fmt::format("config error: {}: {}", source, problem);
  return fmt::format("config error: {}: {}: {}", source, key, problem);
}

std::string ConfigKey::dottedName() const { return fmt::format("{}.{}", section, name); }

std::string ConfigKey::environmentName() const {
  return fmt::format("PUSHHUB_{}_{}", upper(section), upper(name));
}

const std::vector<ConfigKey>& configKeys() { return kKeys; }

Environment processEnvironment() {
  Environment environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view pair(*entry);
    if (!pair.starts_with("PUSHHUB_")) continue;
    const auto equals = pair.find('=');
    if (equals == std::string_view::npos) continue;
    environment.emplace(pair.substr(0, equals), pair.substr(equals + 1));
  }
  return environment;
}

std::expected<Config, ConfigError> parseConfig(std::optional<std::string_view> toml_text,
                                               std::string_view source_name,
                                               const Environment& environment) {
  Config config;
  if (toml_text) {
    if (auto error = applyToml(config, *toml_text, source_name)) return std::unexpected(*error);
  }
  if (auto error = applyEnvironment(config, environment)) return std::unexpected(*error);
  return config;
}

std::expected<Config, ConfigError> loadConfig(const std::optional<std::filesystem::path>& file,
                                              const Environment& environment) {
  if (!file) return parseConfig(std::nullopt, "", environment);
  std::ifstream in(*file, std::ios::binary);
  if (!in) {
    return std::unexpected(
        ConfigError{file->string(), "",
                    fmt::format("cannot read the file: {}",
                                std::error_code(errno, std::generic_category()).message())});
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  const std::string text = contents.str();
  return parseConfig(text, file->string(), environment);
}

std::optional<ConfigError> applyOverride(Config& config, std::string_view dotted_key,
                                         std::string_view text, std::string_view source) {
  const ConfigKey* key = findKey(dotted_key);
  if (key == nullptr)
    return ConfigError{std::string(source), std::string(dotted_key), "unknown key"};
  auto value = parseText(key->kind, text);
  if (!value) return ConfigError{std::string(source), key->dottedName(), value.error()};
  if (auto problem = key->set(config, *value)) {
    return ConfigError{std::string(source), key->dottedName(), *problem};
  }
  return std::nullopt;
}

std::string renderConfig(const Config& config) {
  std::string out;
  std::string_view section;
  for (const auto& key : kKeys) {
    if (key.section != section) {
      if (!section.empty()) out += "\n";
      section = key.section;
      out += fmt::format("[{}]\n", section);
    }
    out += commentBlock(fmt::format("{} Environment: {}.", key.doc, key.environmentName()));
    out += fmt::format("{} = {}\n", key.name, key.get(config));
  }
  return out;
}

}  // namespace pushhub
