#include "bench/tool/populate.h"

#include <fmt/format.h>

#include <chrono>

#include "api/sas.h"
#include "bench/tool/proc_stats.h"
#include "bench/tool/progress.h"

namespace pushhub::bench {

std::string Target::authorization() const {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return api::makeSasToken(fmt::format("{}://{}:{}/", scheme(), host, port), {rule, key, 0},
                           now + 24 * 3600);
}

std::string installationRequest(const Target& target, const std::string& authorization,
                                const Device& d, bool with_template) {
  const std::string body = Population::installationJson(d, with_template);
  return fmt::format(
      "PUT /{}/installations/{}?api-version=2020-06 HTTP/1.1\r\nHost: {}:{}\r\n"
      "Authorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
      target.hub, d.id, target.host, target.port, authorization, body.size(), body);
}

PopulateResult populate(const Target& target, const PopulateOptions& options) {
  const Population population(options.population);
  const std::string authorization = target.authorization();
  const uint64_t count = options.population.count;
  Progress progress("populate", count);

  HttpLoadOptions load;
  load.host = target.host;
  load.port = target.port;
  load.ca_file = target.ca_file;
  load.connections = options.connections;
  load.threads = options.threads;
  load.requests = count;
  load.make_request = [&](uint64_t i, std::string& out) {
    out = installationRequest(target, authorization,
                              population.device(options.first + i, target.wns_host),
                              options.population.templates);
  };
  if (options.progress) load.progress = [&](uint64_t answered) { progress.update(answered); };

  PopulateResult result;
  const ProcessWatch watch(target.pushhub_pid);
  result.load = runHttpLoad(load);
  if (options.progress) progress.finish(result.load.answered);
  result.pushhub = watch.finish();
  return result;
}

}  // namespace pushhub::bench
