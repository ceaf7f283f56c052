// pushhub-bench: load-tests a running pushhub the way its users do, and reports figures with
// the parameters and machine they were measured on (bench/README.md).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/tool/populate.h"
#include "bench/tool/report.h"
#include "common/url.h"

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
  const bool https = c.url.starts_with("https://");
  if (!https && !c.url.starts_with("http://")) {
    return std::unexpected("--url: expected http://HOST:PORT or https://HOST:PORT");
  }
  std::string rest = c.url.substr(https ? 8 : 7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  t.host = colon == std::string::npos ? rest : rest.substr(0, colon);
  t.port = https ? 443 : 80;
  if (colon != std::string::npos) {
    try {
      const int port = std::stoi(rest.substr(colon + 1));
      if (port < 1 || port > 65535) throw std::out_of_range("port");
      t.port = static_cast<uint16_t>(port);
    } catch (const std::exception&) {
      return std::unexpected("--url: bad port in " + c.url);
    }
  }
  if (https && c.ca_file.empty()) return std::unexpected("--url https:// needs --ca-file");
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pushhub-bench: load-tests a running pushhub as apps and backends use it"};
  app.require_subcommand(1);

  Common common;
  PopulateOptions populate_options;
  std::string mix_text = "apns:70,fcm:30";
  auto* populate_command = app.add_subcommand(
      "populate", "Register installations through the REST API (PUT /{hub}/installations/{id})");
  addCommon(*populate_command, common);
  auto& p = populate_options.population;
  populate_command->add_option("-n,--count", p.count, "Installations to register")
      ->capture_default_str();
  populate_command->add_option("--first", populate_options.first, "Index of the first device")
      ->capture_default_str();
  populate_command->add_option("--mix", mix_text, "Platform mix, e.g. apns:70,fcm:25,wns:5")
      ->capture_default_str();
  populate_command->add_option("--tags", p.tag_count, "Distinct tags (t0 … tK-1)")
      ->capture_default_str();
  populate_command->add_option("--tags-per-device", p.tags_per_device, "Tags each device has")
      ->capture_default_str();
  populate_command->add_option("--zipf", p.zipf_s, "Zipf exponent of tag popularity")
      ->capture_default_str();
  populate_command->add_option("--users", p.users, "Distinct userIds (0: none)")
      ->capture_default_str();
  bool no_templates = false;
  populate_command->add_flag("--no-templates", no_templates, "Register without a template");
  populate_command->add_option("--seed", p.seed, "Seed: the same devices for the same seed")
      ->capture_default_str();
  populate_command->add_option("--id-prefix", p.id_prefix, "Installation ids are PREFIX-i")
      ->capture_default_str();
  populate_command
      ->add_option("-c,--connections", populate_options.connections, "Keep-alive connections")
      ->capture_default_str();
  populate_command->add_option("-t,--threads", populate_options.threads, "Client threads")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  auto target = targetOf(common);
  if (!target) {
    std::cerr << "pushhub-bench: " << target.error() << "\n";
    return kExitUsage;
  }

  try {
    if (populate_command->parsed()) {
      auto mix = parsePlatformMix(mix_text);
      if (!mix) {
        std::cerr << "pushhub-bench: --mix: " << mix.error() << "\n";
        return kExitUsage;
      }
      p.mix = *mix;
      p.templates = !no_templates;
      const auto result = populate(*target, populate_options);
      const auto& load = result.load;
      const double rate = load.seconds > 0 ? static_cast<double>(load.answered) / load.seconds : 0;
      std::cout << fmt::format(
          "populate: {} installations in {:.2f} s = {:.0f}/s; latency p50 {} µs, p90 {} µs, "
          "p99 {} µs, max {} µs; {} not 2xx, {} errors",
          load.answered, load.seconds, rate, load.latency_us.percentile(0.5),
          load.latency_us.percentile(0.9), load.latency_us.percentile(0.99), load.latency_us.max(),
          load.non2xx(), load.errors);
      if (result.pushhub_cpu_seconds) {
        std::cout << fmt::format("; pushhub {:.1f} µs CPU each",
                                 *result.pushhub_cpu_seconds * 1e6 /
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
        writePopulation(report, populate_options, mix_text);
        report.w().EndObject();
        report.httpLoad("populate", load);
        writePushhub(report, result.pushhub_cpu_seconds, load.answered, result.pushhub_peak_rss);
        if (!writeText(common.json, report.finish())) return kExitFailed;
      }
      return load.non2xx() == 0 && load.errors == 0 && load.answered == p.count ? 0 : kExitFailed;
    }
  } catch (const std::exception& e) {
    std::cerr << "pushhub-bench: " << e.what() << "\n";
    return kExitFailed;
  }
  return kExitUsage;
}
