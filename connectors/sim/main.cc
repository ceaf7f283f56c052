// pushhub-sim: a strict, fast simulator of APNs (FCM and WNS follow), for tests, benchmarks and
// load tests. See connectors/sim/README.md.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <fstream>
#include <iostream>

#include "common/build_info.h"
#include "common/log.h"
#include "connectors/sim/keygen.h"
#include "connectors/sim/server.h"

namespace {

using namespace pushhub;
using namespace pushhub::connectors;
using namespace pushhub::connectors::sim;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// "KEYID:TEAMID:PATH[:TOPIC,TOPIC…]"
std::expected<ApnsKey, std::string> parseApnsKey(const std::string& spec) {
  const auto bad = [&](std::string_view why) {
    return std::unexpected(fmt::format("--apns-key {}: {}", spec, why));
  };
  std::vector<std::string> parts;
  size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t colon = spec.find(':', start);
    if (colon == std::string::npos) {
      parts.push_back(spec.substr(start));
      start = std::string::npos;
      break;
    }
    parts.push_back(spec.substr(start, colon - start));
    start = colon + 1;
  }
  if (parts.size() < 3) return bad("expected KEYID:TEAMID:P8FILE[:TOPIC,…]");
  ApnsKey key;
  key.key_id = parts[0];
  key.team_id = parts[1];
  if (key.key_id.empty() || key.team_id.empty()) return bad("empty key id or team id");
  if (start != std::string::npos) {
    std::string topics = spec.substr(start);
    for (size_t p = 0; p <= topics.size();) {
      const size_t comma = std::min(topics.find(',', p), topics.size());
      if (comma > p) key.topics.push_back(topics.substr(p, comma - p));
      p = comma + 1;
    }
  }
  std::ifstream in(parts[2]);
  if (!in) return bad(fmt::format("cannot read {}", parts[2]));
  const std::string pem(std::istreambuf_iterator<char>(in), {});
  EvpKey public_key;
  if (auto private_key = loadPrivateKeyPem(pem)) {
    public_key = std::move(*private_key);  // verifying with the private key's public half
  } else if (auto loaded = loadPublicKeyPem(pem)) {
    public_key = std::move(*loaded);
  } else {
    return bad(fmt::format("{} holds neither a PEM private key (.p8) nor a public key", parts[2]));
  }
  if (EVP_PKEY_get_base_id(public_key.get()) != EVP_PKEY_EC) return bad("not an EC (P-256) key");
  key.public_key = std::shared_ptr<EVP_PKEY>(public_key.release(), EvpKeyDeleter{});
  return key;
}

std::expected<ListenAddress, std::string> listenOption(const std::string& flag,
                                                       const std::string& value) {
  auto address = parseListenAddress(value);
  if (!address) return std::unexpected(fmt::format("{}: {}", flag, address.error()));
  return address;
}

sig_atomic_t volatile g_signal = 0;

}  // namespace

int main(int argc, char** argv) {
  const auto& build = buildInfo();
  CLI::App app{"pushhub-sim: a strict simulator of APNs (HTTP/2), for tests and load tests.",
               "pushhub-sim"};
  app.set_version_flag("--version",
                       fmt::format("pushhub-sim {} (commit {})", build.version, build.git_commit));
  app.set_config("--config", "", "Read options from a file (key = value lines, as keygen writes)");

  std::string apns_listen = "127.0.0.1:2197";
  std::string admin_listen = "127.0.0.1:8089";
  std::string tls_cert, tls_key, client_ca, record, unregistered_file;
  std::vector<std::string> apns_keys, unregistered_prefixes, bad_prefixes;
  SimOptions options;
  std::string log_level = "info";
  uint32_t initial_streams = options.apns.initial_max_streams;
  uint32_t raised_streams = options.apns.raised_max_streams;
  int64_t latency_us = 0, jitter_us = 0;

  app.add_option("--apns-listen", apns_listen, "APNs listener (TLS, HTTP/2)")
      ->capture_default_str();
  app.add_option("--admin-listen", admin_listen, "Admin listener (plain HTTP: /stats)")
      ->capture_default_str();
  app.add_option("--tls-cert", tls_cert, "Server certificate chain (PEM)");
  app.add_option("--tls-key", tls_key, "Server private key (PEM)");
  app.add_option("--client-ca", client_ca, "CA of APNs client certificates (certificate auth)");
  app.add_option("--apns-key", apns_keys, "APNs token key: KEYID:TEAMID:P8FILE[:BUNDLE,…]");
  app.add_option("--apns-initial-streams", initial_streams,
                 "MAX_CONCURRENT_STREAMS until the first accepted push")
      ->capture_default_str();
  app.add_option("--apns-max-streams", raised_streams, "MAX_CONCURRENT_STREAMS after it")
      ->capture_default_str();
  app.add_flag("--apns-drop-streams-after-rejection", options.apns.drop_streams_after_rejection,
               "Back to 1 stream after a rejected push, as APNs has been seen to do");
  app.add_flag("--apns-reject-invalid-json", options.apns.reject_invalid_json,
               "Reject payloads that are not a JSON object (400 BadRequestPayload)");
  app.add_flag("--apns-sandbox", options.apns.sandbox, "Add apns-unique-id, as the sandbox does");
  app.add_option("--apns-min-token-hex", options.apns.min_token_hex,
                 "Device tokens: even-length hex of at least this many digits")
      ->capture_default_str();
  app.add_option("--unregistered-prefix", unregistered_prefixes,
                 "Handles starting with this are unregistered (410)");
  app.add_option("--bad-prefix", bad_prefixes, "Handles starting with this are invalid");
  app.add_option("--unregistered-file", unregistered_file, "Unregistered handles, one per line");
  app.add_option("--fault-500", options.apns_faults.internal_error_rate, "Fraction answered 500")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-503", options.apns_faults.unavailable_rate, "Fraction answered 503")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-429", options.apns_faults.throttle_rate,
                 "Fraction answered 429 TooManyRequests")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-reset", options.apns_faults.reset_rate,
                 "Fraction of requests that cut the connection")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-goaway-every", options.apns_faults.goaway_every,
                 "GOAWAY (Shutdown) after every N requests on a connection");
  app.add_option("--latency-us", latency_us, "Added to every answer (microseconds)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--latency-jitter-us", jitter_us, "Plus a uniform random [0, N) microseconds")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--record", record, "Append every accepted notification as a JSON line");
  app.add_option("--loops", options.loops, "Event loops (0: one per core)")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();

  std::string keygen_dir;
  auto* keygen =
      app.add_subcommand("keygen", "Write development credentials and a sim.conf to DIR");
  keygen->add_option("dir", keygen_dir, "Directory to write")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  const auto fail = [](int code, const std::string& message) {
    std::cerr << "pushhub-sim: " << message << "\n";
    return code;
  };

  if (keygen->parsed()) {
    auto result = generateDevelopmentCredentials(keygen_dir);
    if (!result) return fail(kExitFailure, result.error());
    std::cout << "wrote development credentials to " << keygen_dir << "\n"
              << "run: pushhub-sim --config " << result->sim_config.string() << "\n";
    return 0;
  }

  if (auto level = parseLogLevel(log_level)) {
    configureLogging(LogFormat::kText, *level);
  } else {
    return fail(kExitUsage, "--log-level: " + log_level + " is not a log level");
  }
  auto apns_address = listenOption("--apns-listen", apns_listen);
  if (!apns_address) return fail(kExitUsage, apns_address.error());
  auto admin_address = listenOption("--admin-listen", admin_listen);
  if (!admin_address) return fail(kExitUsage, admin_address.error());
  if (tls_cert.empty() || tls_key.empty()) {
    return fail(kExitUsage,
                "--tls-cert and --tls-key are required (pushhub-sim keygen DIR writes a set)");
  }
  options.apns_listen = *apns_address;
  options.admin_listen = *admin_address;
  options.tls_certificate = tls_cert;
  options.tls_private_key = tls_key;
  options.client_ca = client_ca;
  options.record_file = record;
  options.apns.initial_max_streams = initial_streams;
  options.apns.raised_max_streams = raised_streams;
  options.apns_faults.latency = std::chrono::microseconds(latency_us);
  options.apns_faults.latency_jitter = std::chrono::microseconds(jitter_us);
  for (const auto& spec : apns_keys) {
    auto key = parseApnsKey(spec);
    if (!key) return fail(kExitUsage, key.error());
    options.apns.keys.push_back(std::move(*key));
  }
  DeviceFates fates;
  for (auto& p : unregistered_prefixes) fates.addUnregisteredPrefix(p);
  for (auto& p : bad_prefixes) fates.addBadPrefix(p);
  if (!unregistered_file.empty()) {
    if (auto loaded = fates.loadUnregisteredFile(unregistered_file); !loaded) {
      return fail(kExitUsage, loaded.error());
    }
  }

  auto server = SimServer::create(std::move(options), std::move(fates));
  if (!server) return fail(kExitFailure, server.error());
  (*server)->start();
  // One line tests and scripts wait for, with the ports actually bound.
  std::cout << fmt::format("pushhub-sim ready apns={} admin={}", (*server)->apnsPort(),
                           (*server)->adminPort())
            << std::endl;

  std::signal(SIGINT, [](int s) { g_signal = s; });
  std::signal(SIGTERM, [](int s) { g_signal = s; });
  while (g_signal == 0) pause();
  (*server)->stop();
  return 0;
}
