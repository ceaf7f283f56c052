// pushhub-sim: a strict, fast simulator of APNs, FCM and WNS, for tests, benchmarks and load
// tests. See connectors/sim/README.md.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <sys/prctl.h>
#include <unistd.h>
#include <csignal>
#include <fstream>
#include <iostream>
#include <tuple>

#include "common/build_info.h"
#include "common/json.h"
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

// A provider token for "KEYID:TEAMID:P8FILE[:…]", issued now.
std::expected<std::string, std::string> signApnsToken(const std::string& spec) {
  const size_t first = spec.find(':');
  const size_t second = first == std::string::npos ? first : spec.find(':', first + 1);
  if (second == std::string::npos) {
    return std::unexpected(fmt::format("--apns-key {}: expected KEYID:TEAMID:P8FILE", spec));
  }
  const size_t third = spec.find(':', second + 1);
  const std::string path =
      spec.substr(second + 1, third == std::string::npos ? std::string::npos : third - second - 1);
  std::ifstream in(path);
  if (!in) return std::unexpected(fmt::format("cannot read {}", path));
  auto key = loadPrivateKeyPem(std::string(std::istreambuf_iterator<char>(in), {}));
  if (!key) return std::unexpected(fmt::format("{}: {}", path, key.error()));
  const auto iat = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return signJwt(fmt::format(R"({{"alg":"ES256","kid":{}}})", jsonQuoted(spec.substr(0, first))),
                 fmt::format(R"({{"iss":{},"iat":{}}})",
                             jsonQuoted(spec.substr(first + 1, second - first - 1)), iat),
                 key->get(), JwtAlgorithm::kEs256);
}

std::expected<ListenAddress, std::string> listenOption(const std::string& flag,
                                                       const std::string& value) {
  auto address = parseListenAddress(value);
  if (!address) return std::unexpected(fmt::format("{}: {}", flag, address.error()));
  return address;
}

// "SERVICE:KIND=VALUE": SERVICE is apns, fcm, wns or all; KIND is 500, 503, throttle (APNs/FCM
// 429, WNS 406), reset, tls-stall (connections whose handshake is never answered),
// goaway-every, latency-us or jitter-us.
std::expected<void, std::string> applyFault(const std::string& spec, SimOptions& options) {
  const auto bad = [&](std::string_view why) {
    return std::unexpected(fmt::format("--fault {}: {}", spec, why));
  };
  const size_t colon = spec.find(':');
  const size_t eq = spec.find('=');
  if (colon == std::string::npos || eq == std::string::npos || eq < colon) {
    return bad("expected SERVICE:KIND=VALUE, e.g. apns:500=0.01 or all:latency-us=200");
  }
  const std::string service = spec.substr(0, colon);
  const std::string kind = spec.substr(colon + 1, eq - colon - 1);
  const std::string text = spec.substr(eq + 1);
  std::vector<FaultOptions*> targets;
  if (service == "apns" || service == "all") targets.push_back(&options.apns_faults);
  if (service == "fcm" || service == "all") targets.push_back(&options.fcm_faults);
  if (service == "wns" || service == "all") targets.push_back(&options.wns_faults);
  if (targets.empty()) return bad("the service is apns, fcm, wns or all");
  double value = 0;
  try {
    size_t used = 0;
    value = std::stod(text, &used);
    if (used != text.size()) throw std::invalid_argument("trailing characters");
  } catch (const std::exception&) {
    return bad("the value is not a number");
  }
  const bool rate = kind == "500" || kind == "503" || kind == "throttle" || kind == "reset" ||
                    kind == "tls-stall";
  if (rate && (value < 0 || value > 1)) return bad("a rate is between 0 and 1");
  if (!rate && (value < 0 || value != static_cast<double>(static_cast<int64_t>(value)))) {
    return bad("a count or a duration is a non-negative integer");
  }
  for (FaultOptions* f : targets) {
    if (kind == "500") {
      f->internal_error_rate = value;
    } else if (kind == "503") {
      f->unavailable_rate = value;
    } else if (kind == "throttle") {
      f->throttle_rate = value;
    } else if (kind == "reset") {
      f->reset_rate = value;
    } else if (kind == "tls-stall") {
      f->tls_stall_rate = value;
    } else if (kind == "goaway-every") {
      f->goaway_every = static_cast<uint64_t>(value);
    } else if (kind == "latency-us") {
      f->latency = std::chrono::microseconds(static_cast<int64_t>(value));
    } else if (kind == "jitter-us") {
      f->latency_jitter = std::chrono::microseconds(static_cast<int64_t>(value));
    } else {
      return bad(
          "the kind is 500, 503, throttle, reset, tls-stall, goaway-every, latency-us or "
          "jitter-us");
    }
  }
  if (targets.front()->internal_error_rate + targets.front()->unavailable_rate +
          targets.front()->throttle_rate + targets.front()->reset_rate >
      1) {
    return bad("the error rates of one service add up to more than 1");
  }
  return {};
}

// "CLIENT_ID=SECRET" (package SIDs contain ':', secrets may contain '=': the first '=' splits).
std::expected<WnsApp, std::string> parseWnsApp(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    return std::unexpected(fmt::format("--wns-app {}: expected CLIENT_ID=SECRET", spec));
  }
  return WnsApp{spec.substr(0, eq), spec.substr(eq + 1)};
}

sig_atomic_t volatile g_signal = 0;

}  // namespace

int main(int argc, char** argv) {
  const auto& build = buildInfo();
  CLI::App app{
      "pushhub-sim: a strict simulator of APNs (HTTP/2), FCM HTTP v1 and WNS, with their "
      "OAuth token endpoints, for tests and load tests.",
      "pushhub-sim"};
  app.set_version_flag("--version",
                       fmt::format("pushhub-sim {} (commit {})", build.version, build.git_commit));
  app.set_config("--config", "", "Read options from a file (key = value lines, as keygen writes)");

  std::string apns_listen = "127.0.0.1:2197";
  std::string fcm_listen = "127.0.0.1:2198";
  std::string wns_listen = "127.0.0.1:2199";
  std::string admin_listen = "127.0.0.1:8089";
  std::string tls_cert, tls_key, client_ca, record, unregistered_file;
  std::vector<std::string> apns_keys, fcm_accounts, wns_apps, faults;
  std::vector<std::string> unregistered_prefixes, bad_prefixes, foreign_prefixes, offline_prefixes;
  SimOptions options;
  std::string log_level = "info";
  uint32_t initial_streams = options.apns.initial_max_streams;
  uint32_t raised_streams = options.apns.raised_max_streams;
  int64_t fcm_token_lifetime = options.fcm.token_lifetime.count();
  int64_t fcm_retry_after = options.fcm.unavailable_retry_after.count();
  int64_t wns_token_lifetime = options.wns.token_lifetime.count();

  app.add_option("--apns-listen", apns_listen, "APNs listener (TLS, HTTP/2)")
      ->capture_default_str();
  app.add_option("--fcm-listen", fcm_listen,
                 "FCM listener and its token endpoint /token (TLS, HTTP/2 or HTTP/1.1)")
      ->capture_default_str();
  app.add_option("--wns-listen", wns_listen, "WNS listener and its token endpoints (TLS, HTTP/1.1)")
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
  app.add_option("--fcm-service-account", fcm_accounts,
                 "FCM service-account JSON file whose assertions the token endpoint accepts");
  app.add_option("--fcm-token-lifetime", fcm_token_lifetime,
                 "Seconds an FCM access token lives (expires_in is one less)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--fcm-quota-per-minute", options.fcm.quota_per_minute,
                 "Messages per project per minute before 429 QUOTA_EXCEEDED (0: unlimited; "
                 "Google's default is 600000)")
      ->capture_default_str();
  app.add_option("--fcm-retry-after", fcm_retry_after, "Retry-After seconds of 503 UNAVAILABLE")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--fcm-min-token-length", options.fcm.min_token_length,
                 "Shorter registration tokens are not valid FCM registration tokens")
      ->capture_default_str();
  app.add_option("--wns-app", wns_apps,
                 "WNS application: CLIENT_ID=SECRET (package SID or Entra application id)");
  app.add_option("--wns-tenant", options.wns.tenants,
                 "Entra tenant served at /{tenant}/oauth2/v2.0/token");
  app.add_option("--wns-token-lifetime", wns_token_lifetime, "Seconds a WNS access token lives")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--wns-max-tag", options.wns.max_tag, "Longest X-WNS-Tag / X-WNS-Group")
      ->capture_default_str();
  app.add_option("--wns-app-quota-per-minute", options.wns.app_quota_per_minute,
                 "Notifications per app per minute before 406 (0: unlimited)")
      ->capture_default_str();
  app.add_option("--wns-channel-quota-per-minute", options.wns.channel_quota_per_minute,
                 "Notifications per channel per minute before X-WNS-Status: channelthrottled "
                 "(0: unlimited)")
      ->capture_default_str();
  app.add_option("--unregistered-prefix", unregistered_prefixes,
                 "Handles starting with this are unregistered (APNs 410, FCM 404, WNS 410)");
  app.add_option("--bad-prefix", bad_prefixes,
                 "Handles starting with this are invalid (APNs/FCM 400, WNS 404)");
  app.add_option("--foreign-prefix", foreign_prefixes,
                 "Handles starting with this belong to another app (APNs 400 "
                 "DeviceTokenNotForTopic, FCM 403 SENDER_ID_MISMATCH, WNS 403)");
  app.add_option("--offline-prefix", offline_prefixes,
                 "Handles starting with this are offline devices (WNS: toasts dropped)");
  app.add_option("--unregistered-file", unregistered_file, "Unregistered handles, one per line");
  app.add_option("--fault", faults,
                 "SERVICE:KIND=VALUE, SERVICE apns|fcm|wns|all, KIND 500|503|throttle|reset "
                 "(rates 0..1), goaway-every (N), latency-us, jitter-us");
  app.add_option("--record", record, "Append every accepted notification as a JSON line");
  bool exit_with_parent = false;
  app.add_flag("--exit-with-parent", exit_with_parent,
               "Stop when the process that started this one dies (tests, scripts)");
  app.add_option("--loops", options.loops, "Event loops (0: one per core)")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();

  std::string keygen_dir;
  auto* keygen =
      app.add_subcommand("keygen", "Write development credentials and a sim.conf to DIR");
  keygen->add_option("dir", keygen_dir, "Directory to write")->required();
  KeygenOptions keygen_options;
  keygen->add_option("--apns-port", keygen_options.apns_port, "APNs port in sim.conf")
      ->capture_default_str();
  keygen
      ->add_option("--fcm-port", keygen_options.fcm_port,
                   "FCM port in sim.conf and the service account's token_uri")
      ->capture_default_str();
  keygen->add_option("--wns-port", keygen_options.wns_port, "WNS port in sim.conf")
      ->capture_default_str();
  keygen->add_option("--admin-port", keygen_options.admin_port, "Admin port in sim.conf")
      ->capture_default_str();

  auto* apns_token = app.add_subcommand(
      "apns-token",
      "Print a provider token (ES256 JWT) signed with the first --apns-key, for h2load or curl");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (exit_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) return 0;  // the parent is already gone
  }
  const auto fail = [](int code, const std::string& message) {
    std::cerr << "pushhub-sim: " << message << "\n";
    return code;
  };

  if (keygen->parsed()) {
    auto result = generateDevelopmentCredentials(keygen_dir, keygen_options);
    if (!result) return fail(kExitFailure, result.error());
    std::cout << "wrote development credentials to " << keygen_dir << "\n"
              << "run: pushhub-sim --config " << result->sim_config.string() << "\n";
    return 0;
  }

  if (apns_token->parsed()) {
    if (apns_keys.empty()) return fail(kExitUsage, "apns-token needs an --apns-key (or --config)");
    auto jwt = signApnsToken(apns_keys.front());
    if (!jwt) return fail(kExitUsage, jwt.error());
    std::cout << *jwt << "\n";
    return 0;
  }

  if (auto level = parseLogLevel(log_level)) {
    configureLogging(LogFormat::kText, *level);
  } else {
    return fail(kExitUsage, "--log-level: " + log_level + " is not a log level");
  }
  for (auto [flag, text, target] :
       {std::tuple{"--apns-listen", &apns_listen, &options.apns_listen},
        std::tuple{"--fcm-listen", &fcm_listen, &options.fcm_listen},
        std::tuple{"--wns-listen", &wns_listen, &options.wns_listen},
        std::tuple{"--admin-listen", &admin_listen, &options.admin_listen}}) {
    auto address = listenOption(flag, *text);
    if (!address) return fail(kExitUsage, address.error());
    *target = *address;
  }
  if (tls_cert.empty() || tls_key.empty()) {
    return fail(kExitUsage,
                "--tls-cert and --tls-key are required (pushhub-sim keygen DIR writes a set)");
  }
  options.tls_certificate = tls_cert;
  options.tls_private_key = tls_key;
  options.client_ca = client_ca;
  options.record_file = record;
  options.apns.initial_max_streams = initial_streams;
  options.apns.raised_max_streams = raised_streams;
  options.fcm.token_lifetime = std::chrono::seconds(fcm_token_lifetime);
  options.fcm.unavailable_retry_after = std::chrono::seconds(fcm_retry_after);
  options.wns.token_lifetime = std::chrono::seconds(wns_token_lifetime);
  for (const auto& spec : faults) {
    if (auto ok = applyFault(spec, options); !ok) return fail(kExitUsage, ok.error());
  }
  for (const auto& spec : apns_keys) {
    auto key = parseApnsKey(spec);
    if (!key) return fail(kExitUsage, key.error());
    options.apns.keys.push_back(std::move(*key));
  }
  for (const auto& path : fcm_accounts) {
    auto account = loadFcmServiceAccount(path);
    if (!account) return fail(kExitUsage, "--fcm-service-account " + account.error());
    options.fcm.accounts.push_back(std::move(*account));
  }
  for (const auto& spec : wns_apps) {
    auto app_spec = parseWnsApp(spec);
    if (!app_spec) return fail(kExitUsage, app_spec.error());
    options.wns.apps.push_back(std::move(*app_spec));
  }
  DeviceFates fates;
  for (auto& p : unregistered_prefixes) fates.addPrefix(DeviceFate::kUnregistered, p);
  for (auto& p : bad_prefixes) fates.addPrefix(DeviceFate::kBad, p);
  for (auto& p : foreign_prefixes) fates.addPrefix(DeviceFate::kForeign, p);
  for (auto& p : offline_prefixes) fates.addPrefix(DeviceFate::kOffline, p);
  if (!unregistered_file.empty()) {
    if (auto loaded = fates.loadUnregisteredFile(unregistered_file); !loaded) {
      return fail(kExitUsage, loaded.error());
    }
  }

  auto server = SimServer::create(std::move(options), std::move(fates));
  if (!server) return fail(kExitFailure, server.error());
  (*server)->start();
  // One line tests and scripts wait for, with the ports actually bound.
  std::cout << fmt::format("pushhub-sim ready apns={} fcm={} wns={} admin={}",
                           (*server)->apnsPort(), (*server)->fcmPort(), (*server)->wnsPort(),
                           (*server)->adminPort())
            << std::endl;

  std::signal(SIGINT, [](int s) { g_signal = s; });
  std::signal(SIGTERM, [](int s) { g_signal = s; });
  while (g_signal == 0) pause();
  (*server)->stop();
  return 0;
}
