#pragma once

// A lean HTTP/1.1 load generator: C connections keep-alive to one server, each sending one
// request at a time (no pipelining: what SDKs and browsers do) until N requests have been
// answered or a deadline passes. Requests are made on demand by a callback, so every request can
// differ (a new installation each) without holding them all in memory. Latency is measured from
// the request's first byte written to its answer's last byte read.
//
// Plain HTTP, or HTTPS when a CA file is given (verifying the server as 127.0.0.1/localhost).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/tool/stats.h"

namespace pushhub::bench {

struct HttpLoadOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7070;
  std::string ca_file;  // non-empty: HTTPS
  unsigned connections = 64;
  unsigned threads = 1;
  uint64_t requests = 0;                  // 0: until `duration` ends
  std::chrono::milliseconds duration{0};  // 0: until `requests` are answered
  // Requests a second over all connections (0: as fast as answers come): request i is sent at
  // start + i / rate, or as soon as a connection is free after that (so a slow server shows as
  // latency, not as a lower offered rate, while connections last).
  double rate_per_s = 0;
  // Appends request i, whole (request line, headers, body), to `out`.
  std::function<void(uint64_t i, std::string& out)> make_request;
  // Called about once a second from the first thread with the answers so far.
  std::function<void(uint64_t answered)> progress;
};

struct HttpLoadResult {
  uint64_t answered = 0;
  std::map<unsigned, uint64_t> statuses;   // status code → count
  uint64_t errors = 0;                     // connection failures and malformed answers
  std::vector<std::string> error_samples;  // the first few errors and non-2xx bodies
  Histogram latency_us;
  TimeSeries per_second{0.1};
  double seconds = 0;
  uint64_t non2xx() const;
};

// The head of an HTTP/1.x answer (without its blank line): status, body length, whether the
// server closes after it, and its headers (lower-case names). Chunked answers are refused.
struct HttpHead {
  unsigned status = 0;
  size_t body_length = 0;
  bool close = false;
  std::map<std::string, std::string> headers;
};
std::optional<HttpHead> parseHttpHead(std::string_view head, std::string& error,
                                      bool keep_headers = false);

// Runs the load; throws std::runtime_error when no connection can be made at all.
HttpLoadResult runHttpLoad(const HttpLoadOptions& options);

}  // namespace pushhub::bench
