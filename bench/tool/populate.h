#pragma once

// `pushhub-bench populate`: registers installations through the REST API as apps do (one
// `PUT /{hub}/installations/{id}` each, SAS-signed, over keep-alive connections).

#include <sys/types.h>

#include <optional>
#include <string>

#include "bench/tool/http_load.h"
#include "bench/tool/proc_stats.h"
#include "bench/tool/scenario.h"

namespace pushhub::bench {

// Where pushhub is and how to sign for it.
struct Target {
  std::string host = "127.0.0.1";
  uint16_t port = 7070;
  std::string ca_file;  // HTTPS when set
  std::string hub = "demo";
  std::string rule = "DefaultFullSharedAccessSignature";
  std::string key;
  std::string wns_host = "localhost:2199";  // the host WNS channel URLs name (the simulator's)
  std::optional<pid_t> pushhub_pid;         // for CPU and memory figures from /proc
  std::string scheme() const { return ca_file.empty() ? "http" : "https"; }
  // "SharedAccessSignature sr=…" for the namespace root, valid for a day.
  std::string authorization() const;
};

struct PopulateOptions {
  PopulationOptions population;
  unsigned connections = 64;
  unsigned threads = 1;
  uint64_t first = 0;  // devices first … first+count-1
  bool progress = true;
};

struct PopulateResult {
  HttpLoadResult load;
  ProcessUsage pushhub;
};

// The request registering device `d` (what `populate` sends; also used by tests).
std::string installationRequest(const Target& target, const std::string& authorization,
                                const Device& d, bool with_template);

PopulateResult populate(const Target& target, const PopulateOptions& options);

}  // namespace pushhub::bench
