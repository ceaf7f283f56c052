#pragma once

// One blocking HTTP/1.1 request on a new connection: for the bench's control traffic (a send,
// telemetry, /metrics, the simulator's /stats), not for load.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pushhub::bench {

struct HttpEndpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 80;
  std::string ca_file;  // HTTPS when set
};

struct HttpReply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Throws std::runtime_error naming the endpoint on network or protocol errors.
HttpReply httpCall(const HttpEndpoint& endpoint, const std::string& method,
                   const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& headers = {},
                   const std::string& body = {});

// "http://host:port/path…" → endpoint and target; https:// takes `ca_file`. Throws
// std::runtime_error naming the URL when it is not one.
std::pair<HttpEndpoint, std::string> splitUrl(const std::string& url, const std::string& ca_file);

}  // namespace pushhub::bench
