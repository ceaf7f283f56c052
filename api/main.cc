// pushhub: the server binary. `pushhub serve` runs the hub; `pushhub config` prints the effective
// configuration. Exit codes: 0 clean exit, 1 failed to start or run, 2 bad command line or
// configuration.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "api/sas.h"
#include "api/server.h"
#include "common/build_info.h"
#include "common/log.h"
#include "hub/config.h"

namespace {

using pushhub::Config;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Overrides {
  std::optional<std::string> config_file;
  std::optional<std::string> listen;
  std::optional<std::string> data_dir;
  std::optional<std::string> shards;
  std::optional<std::string> log_format;
  std::optional<std::string> log_level;
};

// File, then environment, then flags. Prints the error and returns nullopt on bad input.
std::optional<Config> buildConfig(const Overrides& o) {
  std::optional<std::filesystem::path> file;
  if (o.config_file) file = *o.config_file;
  auto config = pushhub::loadConfig(file, pushhub::processEnvironment());
  if (!config) {
    fmt::print(stderr, "pushhub: {}\n", config.error().message());
    return std::nullopt;
  }
  const std::pair<const std::optional<std::string>*, std::pair<const char*, const char*>> flags[] =
      {
          {&o.listen, {"server.listen", "--listen"}},
          {&o.data_dir, {"storage.data_dir", "--data-dir"}},
          {&o.shards, {"server.shards", "--shards"}},
          {&o.log_format, {"log.format", "--log-format"}},
          {&o.log_level, {"log.level", "--log-level"}},
      };
  for (const auto& [value, names] : flags) {
    if (!*value) continue;
    if (auto error = pushhub::applyOverride(*config, names.first, **value, names.second)) {
      fmt::print(stderr, "pushhub: {}\n", error->message());
      return std::nullopt;
    }
  }
  // Checked here, with the rest of the configuration, so that bad rules are a usage error (2).
  if (auto rules = pushhub::api::parseSasRules(config->auth.rules); !rules) {
    fmt::print(stderr, "pushhub: auth.rules: {}\n", rules.error());
    return std::nullopt;
  }
  return *config;
}

void addConfigOptions(CLI::App& command, Overrides& o, bool with_server_flags) {
  command.add_option("-c,--config", o.config_file,
                     "TOML configuration file (every key documented in "
                     "deploy/pushhub.example.toml); without it, defaults and PUSHHUB_* "
                     "environment variables apply");
  if (!with_server_flags) return;
  command.add_option("--listen", o.listen,
                     "HOST:PORT the HTTP API listens on (server.listen; port 0 picks a free one)");
  command.add_option("--data-dir", o.data_dir,
                     "directory of the RocksDB database, created if missing (storage.data_dir)");
  command.add_option("--shards", o.shards,
                     "number of shards, one event loop and thread each; 0 = one per core "
                     "(server.shards)");
  command.add_option("--log-format", o.log_format, "text or json (log.format)");
  command.add_option("--log-level", o.log_level,
                     "trace, debug, info, warn, error or off (log.level)");
}

// Blocks SIGINT and SIGTERM in this thread and every thread started after it, so that only
// waitForSignal() receives them.
sigset_t blockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int serve(const Overrides& overrides) {
  const sigset_t signals = blockShutdownSignals();
  auto config = buildConfig(overrides);
  if (!config) return kExitUsage;
  pushhub::configureLogging(config->log.format, config->log.level);
  auto log = pushhub::moduleLogger("server");

  pushhub::api::Server server(*config);
  if (auto started = server.start(); !started) {
    log->error("cannot start: {}", started.error());
    return kExitFailure;
  }
  log->info("listening on {}://{}", server.tls() ? "https" : "http",
            server.listenAddress().toString());

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  log->info("received {}, shutting down (again to exit at once)", strsignal(signal_number));
  std::thread([signals] {
    int again = 0;
    sigwait(&signals, &again);
    _exit(128 + again);
  }).detach();
  server.shutdown();
  log->info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto& build = pushhub::buildInfo();
  CLI::App app{
      "pushhub: a high-throughput push notification hub, compatible with the Azure "
      "Notification Hubs REST API.",
      "pushhub"};
  app.set_version_flag("--version",
                       fmt::format("pushhub {} (commit {}, {} build, {})", build.version,
                                   build.git_commit, build.build_type, build.compiler));
  app.require_subcommand(1);

  Overrides serve_options;
  auto* serve_command = app.add_subcommand("serve", "Run the hub until SIGINT or SIGTERM");
  addConfigOptions(*serve_command, serve_options, true);

  Overrides config_options;
  auto* config_command = app.add_subcommand(
      "config", "Print the effective configuration (defaults, file, environment) as TOML");
  addConfigOptions(*config_command, config_options, true);

  std::string token_resource, token_rule = "DefaultFullSharedAccessSignature", token_key;
  int64_t token_ttl = 3600;
  auto* token_command = app.add_subcommand(
      "sas-token",
      "Print an Authorization header value (SharedAccessSignature) for a resource, signed as "
      "Azure's SDKs sign it");
  token_command
      ->add_option("--resource", token_resource,
                   "What the token is for: the namespace root or a hub, e.g. "
                   "http://127.0.0.1:7070/")
      ->required();
  token_command->add_option("--rule", token_rule, "The rule's name (skn)");
  token_command->add_option("--key", token_key, "The rule's key (as configured in auth.rules)")
      ->required();
  token_command->add_option("--ttl", token_ttl, "Seconds the token is valid")
      ->check(CLI::Range(int64_t{1}, int64_t{10} * 365 * 24 * 3600));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  if (serve_command->parsed()) return serve(serve_options);
  if (token_command->parsed()) {
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    std::cout << pushhub::api::makeSasToken(token_resource, {token_rule, token_key, 0},
                                            now + token_ttl)
              << "\n";
    return 0;
  }
  if (config_command->parsed()) {
    auto config = buildConfig(config_options);
    if (!config) return kExitUsage;
    std::cout << pushhub::renderConfig(*config);
    return 0;
  }
  return kExitUsage;
}
