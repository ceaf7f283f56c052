// pushhub-bench: load-tests a running pushhub the way its users do, and reports figures with
// the parameters and machine they were measured on (bench/README.md).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/tool/baseline.h"
#include "bench/tool/populate.h"
#include "bench/tool/report.h"
#include "bench/tool/send.h"
#include "bench/tool/stream.h"
#include "common/url.h"
#include "connectors/http1/client.h"

namespace {

using namespace pushhub::bench;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

struct Common {
  std::string url = "http://127.0.0.1:7070";
  std::string ca_file;
  std::string hub = "demo";
  std::string rule = "DefaultFullSharedAccessSignature";
  std::string key;
  std::string key_file;
  std::string wns_host = "localhost:2199";
  pid_t pushhub_pid = 0;
  std::string json;
};

void addCommon(CLI::App& command, Common& c) {
  command.add_option("--url", c.url, "pushhub's REST API (http:// or https://)")
      ->capture_default_str();
  command.add_option("--ca-file", c.ca_file, "CA to verify an https:// pushhub with");
  command.add_option("--hub", c.hub, "The hub")->capture_default_str();
  command.add_option("--rule", c.rule, "SAS rule name (skn)")->capture_default_str();
  command.add_option("--key", c.key, "SAS rule key");
  command.add_option("--key-file", c.key_file, "File holding the SAS rule key (dev/sas.key)");
  command.add_option("--wns-host", c.wns_host, "host:port that WNS channel URLs name")
      ->capture_default_str();
  command.add_option("--pushhub-pid", c.pushhub_pid,
                     "pushhub's process id: its CPU and memory are read from /proc");
  command.add_option("--json", c.json, "Write the run's JSON document here ('-': stdout)");
}

// Common options → Target; the error names the option.
std::expected<Target, std::string> targetOf(const Common& c) {
  Target t;
  if (!c.url.starts_with("http://") && !c.url.starts_with("https://")) {
    return std::unexpected("--url: expected http://HOST:PORT or https://HOST:PORT");
  }
  auto url = pushhub::connectors::http1::parseHttpUrl(c.url);
  if (!url) return std::unexpected("--url: " + url.error());
  if (url->target != "/") {
    return std::unexpected("--url: expected http://HOST:PORT or https://HOST:PORT, not a path (" +
                           c.url + ")");
  }
  t.host = std::move(url->host);
  t.port = url->port;
  if (url->https && c.ca_file.empty()) return std::unexpected("--url https:// needs --ca-file");
  t.ca_file = c.ca_file;
  t.hub = c.hub;
  t.rule = c.rule;
  t.key = c.key;
  if (!c.key_file.empty()) {
    std::ifstream in(c.key_file);
    if (!in) return std::unexpected("--key-file: cannot read " + c.key_file);
    std::getline(in, t.key);
  }
  if (t.key.empty()) return std::unexpected("give --key or --key-file (the SAS rule's key)");
  t.wns_host = c.wns_host;
  if (c.pushhub_pid > 0) t.pushhub_pid = c.pushhub_pid;
  return t;
}

void writePopulation(Report& r, const PopulateOptions& o, std::string_view mix_text) {
  r.key("population");
  r.w().StartObject();
  r.field("count", o.population.count);
  r.field("first", o.first);
  r.field("mix", mix_text);
  r.field("tags", o.population.tag_count);
  r.field("tags_per_device", o.population.tags_per_device);
  r.field("zipf_s", o.population.zipf_s);
  r.field("users", o.population.users);
  r.field("templates", o.population.templates);
  r.field("seed", o.population.seed);
  r.field("id_prefix", o.population.id_prefix);
  r.w().EndObject();
}

void writePushhub(Report& r, const std::optional<double>& cpu, uint64_t work,
                  const std::optional<uint64_t>& peak) {
  r.key("pushhub");
  r.w().StartObject();
  if (cpu) {
    r.field("cpu_seconds", *cpu);
    if (work > 0) r.field("cpu_us_each", *cpu * 1e6 / static_cast<double>(work));
  }
  if (peak) r.field("peak_rss_bytes", *peak);
  r.w().EndObject();
}

// The population flags, shared by populate and stream (stream sends to the same devices).
struct PopulationFlags {
  std::string mix_text = "apns:70,fcm:30";
  bool no_templates = false;
};

void addPopulationOptions(CLI::App& command, PopulationOptions& p, PopulationFlags& flags) {
  command.add_option("-n,--count", p.count, "Installations (populate: to register)")
      ->capture_default_str();
  command.add_option("--mix", flags.mix_text, "Platform mix, e.g. apns:70,fcm:25,wns:5")
      ->capture_default_str();
  command.add_option("--tags", p.tag_count, "Distinct tags (t0 … tK-1)")->capture_default_str();
  command.add_option("--tags-per-device", p.tags_per_device, "Tags each device has")
      ->capture_default_str();
  command.add_option("--zipf", p.zipf_s, "Zipf exponent of tag popularity")->capture_default_str();
  command.add_option("--users", p.users, "Distinct userIds (0: none)")->capture_default_str();
  command.add_flag("--no-templates", flags.no_templates, "Register without a template");
  command.add_option("--seed", p.seed, "Seed: the same devices for the same seed")
      ->capture_default_str();
  command.add_option("--id-prefix", p.id_prefix, "Installation ids are PREFIX-i")
      ->capture_default_str();
}

std::expected<void, std::string> finishPopulation(PopulationOptions& p,
                                                  const PopulationFlags& flags) {
  auto mix = parsePlatformMix(flags.mix_text);
  if (!mix) return std::unexpected("--mix: " + mix.error());
  p.mix = *mix;
  p.templates = !flags.no_templates;
  return {};
}

void writeBuckets(Report& r, std::string_view key, const Buckets& b) {
  r.key(key);
  r.w().StartObject();
  r.field("count", static_cast<uint64_t>(b.total()));
  r.field("p50_ms", b.quantile(0.50) * 1e3);
  r.field("p90_ms", b.quantile(0.90) * 1e3);
  r.field("p99_ms", b.quantile(0.99) * 1e3);
  r.field("max_bound_ms", b.maxBound() * 1e3);
  r.w().EndObject();
}

std::string bucketsLine(const Buckets& b) {
  return fmt::format("p50 {:.2f} ms, p90 {:.2f} ms, p99 {:.2f} ms, max ≤ {:.1f} ms",
                     b.quantile(0.5) * 1e3, b.quantile(0.9) * 1e3, b.quantile(0.99) * 1e3,
                     b.maxBound() * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pushhub-bench: load-tests a running pushhub as apps and backends use it"};
  app.require_subcommand(1);

  Common common;
  PopulateOptions populate_options;
  auto* populate_command = app.add_subcommand(
      "populate", "Register installations through the REST API (PUT /{hub}/installations/{id})");
  addCommon(*populate_command, common);
  auto& p = populate_options.population;
  PopulationFlags population_flags;
  addPopulationOptions(*populate_command, p, population_flags);
  populate_command->add_option("--first", populate_options.first, "Index of the first device")
      ->capture_default_str();
  populate_command
      ->add_option("-c,--connections", populate_options.connections, "Keep-alive connections")
      ->capture_default_str();
  populate_command->add_option("-t,--threads", populate_options.threads, "Client threads")
      ->capture_default_str();

  SendOptions send_options;
  auto* send_command = app.add_subcommand(
      "send", "Post one notification to a tag expression or everyone and follow it to its end");
  addCommon(*send_command, common);
  send_command->add_option("--label", send_options.label, "Its name in the report")
      ->capture_default_str();
  send_command
      ->add_option("--format", send_options.format,
                   "template, apple, gcm, fcmv1 or windows (ServiceBusNotification-Format)")
      ->capture_default_str();
  send_command->add_option("--tags", send_options.tags, "Tag expression (none: everyone)");
  send_command->add_option("--body", send_options.body,
                           "Template properties (JSON) or the native payload");
  std::vector<std::string> send_headers;
  send_command->add_option("--header", send_headers, "Extra header NAME:VALUE (repeatable)");
  send_command->add_option("--sim-stats", send_options.sim_stats_url, "The simulator's /stats")
      ->capture_default_str();
  send_command->add_option("--baseline-rate", send_options.baseline_per_s,
                           "h2load's requests/s in this run (pushhub-bench baseline): the "
                           "deliveries are reported as a ratio of it");
  send_command->add_option("--via", send_options.via, "rest, or kafka (with --kafka)")
      ->capture_default_str()
      ->check(CLI::IsMember({"rest", "kafka"}));
  send_command->add_option("--kafka", send_options.kafka_bootstrap,
                           "Kafka bootstrap servers (dev/kafka.bootstrap with KAFKA=1 make run)");
  send_command->add_option("--sends-topic", send_options.sends_topic, "pushhub's sends topic")
      ->capture_default_str();
  send_command
      ->add_option("--outcomes-topic", send_options.outcomes_topic, "pushhub's outcomes topic")
      ->capture_default_str();
  int send_timeout = 900;
  send_command->add_option("--timeout", send_timeout, "Seconds to wait for the end")
      ->capture_default_str();

  StreamOptions stream_options;
  PopulationFlags stream_flags;
  auto* stream_command = app.add_subcommand(
      "stream", "Direct sends at a steady rate (plus tag sends every K) for a while");
  addCommon(*stream_command, common);
  addPopulationOptions(*stream_command, stream_options.population, stream_flags);
  stream_command->add_option("--rate", stream_options.rate_per_s, "Sends a second")
      ->capture_default_str();
  stream_command->add_option("--seconds", stream_options.seconds, "How long")
      ->capture_default_str();
  stream_command
      ->add_option("-c,--connections", stream_options.connections, "Keep-alive connections")
      ->capture_default_str();
  stream_command
      ->add_option("--tag-every", stream_options.tag_every,
                   "Every K-th send is a template send to --tag-expression (0: never)")
      ->capture_default_str();
  stream_command->add_option("--tag-expression", stream_options.tags, "For the tag sends")
      ->capture_default_str();
  stream_command->add_option("--sim-stats", stream_options.sim_stats_url, "The simulator's /stats")
      ->capture_default_str();

  PopulationOptions expression_population;
  PopulationFlags expression_flags;
  uint32_t expression_terms = 20;
  double expression_match = 0.5;
  uint64_t expression_sample = 20000;
  auto* expression_command = app.add_subcommand(
      "expression",
      "Print an OR of N tags matching about a fraction of a population (for send --tags)");
  addPopulationOptions(*expression_command, expression_population, expression_flags);
  expression_command->add_option("--terms", expression_terms, "Tags in the expression")
      ->capture_default_str();
  expression_command->add_option("--match", expression_match, "Fraction of devices to match")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  expression_command->add_option("--sample", expression_sample, "Devices judged")
      ->capture_default_str();

  BaselineOptions baseline_options;
  baseline_options.sim_binary =
      (std::filesystem::path(argv[0]).parent_path() / "pushhub-sim").string();
  auto* baseline_command = app.add_subcommand(
      "baseline", "h2load against the simulator's APNs endpoint: this machine's HTTP/2 ceiling");
  baseline_command->add_option("--apns-url", baseline_options.apns_url, "The simulator's APNs")
      ->capture_default_str();
  baseline_command->add_option("--sim", baseline_options.sim_binary, "pushhub-sim")
      ->capture_default_str();
  baseline_command
      ->add_option("--sim-config", baseline_options.sim_config,
                   "The simulator's configuration (signs the provider token)")
      ->capture_default_str();
  baseline_command->add_option("--topic", baseline_options.topic, "apns-topic")
      ->capture_default_str();
  baseline_command->add_option("-n,--requests", baseline_options.requests, "Requests")
      ->capture_default_str();
  baseline_command->add_option("-c,--connections", baseline_options.connections, "Connections")
      ->capture_default_str();
  baseline_command
      ->add_option("-m,--streams", baseline_options.streams, "Concurrent streams per connection")
      ->capture_default_str();
  baseline_command->add_option("-t,--threads", baseline_options.threads, "h2load threads")
      ->capture_default_str();
  baseline_command->add_option("--payload-bytes", baseline_options.payload_bytes, "Payload size")
      ->capture_default_str();
  std::string baseline_json;
  baseline_command->add_option("--json", baseline_json, "Write the JSON document here");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  if (expression_command->parsed()) {
    if (auto ok = finishPopulation(expression_population, expression_flags); !ok) {
      std::cerr << "pushhub-bench: " << ok.error() << "\n";
      return kExitUsage;
    }
    double achieved = 0;
    const Population population(expression_population);
    std::cout << orExpressionMatching(population, expression_terms, expression_match,
                                      expression_sample, &achieved)
              << "\n";
    std::cerr << fmt::format("expression: matches {:.1f}% of the first {} devices\n",
                             100 * achieved,
                             std::min(expression_sample, expression_population.count));
    return 0;
  }
  if (baseline_command->parsed()) {
    try {
      const auto r = runBaseline(baseline_options);
      std::cout << fmt::format(
          "baseline: h2load {:.0f} req/s ({} requests in {:.2f} s, {} connections × {} streams, "
          "{} threads, {}-byte payload)\n",
          r.requests_per_s, r.requests, r.seconds, baseline_options.connections,
          baseline_options.streams, baseline_options.threads, baseline_options.payload_bytes);
      if (!baseline_json.empty()) {
        Report report("baseline");
        report.key("parameters");
        report.w().StartObject();
        report.field("apns_url", baseline_options.apns_url);
        report.field("requests", baseline_options.requests);
        report.field("connections", baseline_options.connections);
        report.field("streams", baseline_options.streams);
        report.field("threads", baseline_options.threads);
        report.field("payload_bytes", static_cast<uint64_t>(baseline_options.payload_bytes));
        report.field("command", r.command);
        report.w().EndObject();
        report.key("baseline");
        report.w().StartObject();
        report.field("requests_per_s", r.requests_per_s);
        report.field("requests", r.requests);
        report.field("seconds", r.seconds);
        report.w().EndObject();
        if (!writeText(baseline_json, report.finish())) return kExitFailed;
      }
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "pushhub-bench: " << e.what() << "\n";
      return kExitFailed;
    }
  }

  auto target = targetOf(common);
  if (!target) {
    std::cerr << "pushhub-bench: " << target.error() << "\n";
    return kExitUsage;
  }

  try {
    if (populate_command->parsed()) {
      if (auto ok = finishPopulation(p, population_flags); !ok) {
        std::cerr << "pushhub-bench: " << ok.error() << "\n";
        return kExitUsage;
      }
      const auto result = populate(*target, populate_options);
      const auto& load = result.load;
      const double rate = load.seconds > 0 ? static_cast<double>(load.answered) / load.seconds : 0;
      std::cout << fmt::format(
          "populate: {} installations in {:.2f} s = {:.0f}/s; latency p50 {} µs, p90 {} µs, "
          "p99 {} µs, max {} µs; {} not 2xx, {} errors",
          load.answered, load.seconds, rate, load.latency_us.percentile(0.5),
          load.latency_us.percentile(0.9), load.latency_us.percentile(0.99), load.latency_us.max(),
          load.non2xx(), load.errors);
      if (result.pushhub.cpu_seconds) {
        std::cout << fmt::format("; pushhub {:.1f} µs CPU each",
                                 *result.pushhub.cpu_seconds * 1e6 /
                                     static_cast<double>(std::max<uint64_t>(1, load.answered)));
      }
      std::cout << "\n";
      for (const auto& sample : load.error_samples) std::cerr << "  " << sample << "\n";
      if (!common.json.empty()) {
        Report report("populate");
        report.key("parameters");
        report.w().StartObject();
        report.field("url", common.url);
        report.field("hub", common.hub);
        report.field("connections", populate_options.connections);
        report.field("threads", populate_options.threads);
        writePopulation(report, populate_options, population_flags.mix_text);
        report.w().EndObject();
        report.httpLoad("populate", load);
        writePushhub(report, result.pushhub.cpu_seconds, load.answered, result.pushhub.peak_rss);
        if (!writeText(common.json, report.finish())) return kExitFailed;
      }
      return load.non2xx() == 0 && load.errors == 0 && load.answered == p.count ? 0 : kExitFailed;
    }
    if (send_command->parsed()) {
      for (const auto& h : send_headers) {
        const size_t colon = h.find(':');
        if (colon == std::string::npos || colon + 1 >= h.size()) {
          std::cerr << "pushhub-bench: --header " << h << ": expected NAME:VALUE\n";
          return kExitUsage;
        }
        const size_t value = h.find_first_not_of(' ', colon + 1);
        send_options.headers.emplace_back(h.substr(0, colon),
                                          value == std::string::npos ? "" : h.substr(value));
      }
      send_options.timeout = std::chrono::seconds(send_timeout);
      if (send_options.via == "kafka" && send_options.kafka_bootstrap.empty()) {
        std::cerr << "pushhub-bench: --via kafka needs --kafka BOOTSTRAP\n";
        return kExitUsage;
      }
      const auto r = sendOne(*target, send_options);
      std::cout << fmt::format(
          "{}: {} {} — {} deliveries, {:.0f}/s; first after {:.3f} s, last after {:.3f} s; "
          "accept → push service {}",
          send_options.label, r.id, r.state, r.deliveries, r.deliveries_per_s, r.first_delivery_s,
          r.last_delivery_s, bucketsLine(r.latency_s));
      if (send_options.baseline_per_s > 0) {
        std::cout << fmt::format(" ({:.0f}% of h2load's {:.0f}/s)",
                                 100 * r.deliveries_per_s / send_options.baseline_per_s,
                                 send_options.baseline_per_s);
      }
      if (r.pushhub.cpu_seconds && r.deliveries > 0) {
        std::cout << fmt::format("; pushhub {:.2f} CPU s per million deliveries",
                                 *r.pushhub.cpu_seconds * 1e6 / static_cast<double>(r.deliveries));
      }
      std::cout << "\n";
      if (!common.json.empty()) {
        Report report("send");
        report.key("parameters");
        report.w().StartObject();
        report.field("url", common.url);
        report.field("hub", common.hub);
        report.field("label", send_options.label);
        report.field("format", send_options.format);
        report.field("tags", send_options.tags);
        report.field("via", send_options.via);
        report.w().EndObject();
        report.key("send");
        report.w().StartObject();
        report.field("id", r.id);
        report.field("state", r.state);
        report.field("accept_ms", r.accept_ms);
        report.field("deliveries", r.deliveries);
        report.field("simulator_requests", r.sim_requests);
        report.field("deliveries_per_s", r.deliveries_per_s);
        report.field("first_delivery_s", r.first_delivery_s);
        report.field("last_delivery_s", r.last_delivery_s);
        report.field("completed_s", r.completed_s);
        if (send_options.baseline_per_s > 0) {
          report.field("baseline_per_s", send_options.baseline_per_s);
          report.field("ratio_to_baseline", r.deliveries_per_s / send_options.baseline_per_s);
        }
        writeBuckets(report, "accept_to_pns_answer", r.latency_s);
        report.key("counts");
        report.w().StartObject();
        for (const auto& [platform, outcomes] : r.counts) {
          report.key(platform);
          report.w().StartObject();
          for (const auto& [outcome, n] : outcomes) report.field(outcome, n);
          report.w().EndObject();
        }
        report.w().EndObject();
        report.series("deliveries_over_time", r.per_second);
        report.w().EndObject();
        report.key("pushhub");
        report.w().StartObject();
        if (r.pushhub.cpu_seconds) {
          report.field("cpu_seconds", *r.pushhub.cpu_seconds);
          if (r.deliveries > 0) {
            report.field("cpu_seconds_per_million_deliveries",
                         *r.pushhub.cpu_seconds * 1e6 / static_cast<double>(r.deliveries));
          }
        }
        if (r.pushhub.peak_rss) report.field("peak_rss_bytes", *r.pushhub.peak_rss);
        if (r.pushhub.rss) {
          report.field("rss_bytes", *r.pushhub.rss);
          if (r.installations > 0) {
            report.field("rss_bytes_per_installation",
                         static_cast<double>(*r.pushhub.rss) / r.installations);
          }
        }
        report.field("installations", static_cast<uint64_t>(r.installations));
        report.w().EndObject();
        if (!writeText(common.json, report.finish())) return kExitFailed;
      }
      return r.state == "Completed" ? 0 : kExitFailed;
    }
    if (stream_command->parsed()) {
      if (auto ok = finishPopulation(stream_options.population, stream_flags); !ok) {
        std::cerr << "pushhub-bench: " << ok.error() << "\n";
        return kExitUsage;
      }
      const auto r = stream(*target, stream_options);
      const auto& load = r.load;
      std::cout << fmt::format(
          "stream: {} sends at {:.0f}/s over {:.1f} s ({} not 2xx, {} errors), {} deliveries; "
          "POST → 201 p50 {} µs, p99 {} µs; accept → push service (direct) {}",
          load.answered, static_cast<double>(load.answered) / std::max(load.seconds, 1e-9),
          load.seconds, load.non2xx(), load.errors, r.deliveries, load.latency_us.percentile(0.5),
          load.latency_us.percentile(0.99), bucketsLine(r.direct_latency_s));
      if (r.tag_latency_s.total() > 0) std::cout << "; tag sends " << bucketsLine(r.tag_latency_s);
      std::cout << "\n";
      for (const auto& sample : load.error_samples) std::cerr << "  " << sample << "\n";
      if (!common.json.empty()) {
        Report report("stream");
        report.key("parameters");
        report.w().StartObject();
        report.field("url", common.url);
        report.field("hub", common.hub);
        report.field("rate_per_s", stream_options.rate_per_s);
        report.field("seconds", stream_options.seconds);
        report.field("connections", stream_options.connections);
        report.field("tag_every", stream_options.tag_every);
        report.field("tag_expression", stream_options.tags);
        writePopulation(report, PopulateOptions{stream_options.population}, stream_flags.mix_text);
        report.w().EndObject();
        report.httpLoad("posts", load);
        report.key("stream");
        report.w().StartObject();
        report.field("deliveries", r.deliveries);
        writeBuckets(report, "direct_accept_to_pns_answer", r.direct_latency_s);
        writeBuckets(report, "tags_accept_to_pns_answer", r.tag_latency_s);
        report.w().EndObject();
        writePushhub(report, r.pushhub.cpu_seconds, load.answered, std::nullopt);
        if (!writeText(common.json, report.finish())) return kExitFailed;
      }
      return load.non2xx() == 0 && load.errors == 0 ? 0 : kExitFailed;
    }

  } catch (const std::exception& e) {
    std::cerr << "pushhub-bench: " << e.what() << "\n";
    return kExitFailed;
  }
  return kExitUsage;
}
