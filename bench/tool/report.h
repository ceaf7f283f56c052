#pragma once

// The run's JSON document: parameters, machine facts and figures, written as one object. Built
// with rapidjson's writer; sections are added in order.

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "bench/tool/http_load.h"
#include "bench/tool/stats.h"

namespace pushhub::bench {

class Report {
 public:
  explicit Report(std::string_view command);
  rapidjson::PrettyWriter<rapidjson::StringBuffer>& w() { return writer_; }
  void key(std::string_view k) {
    writer_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
  }
  void field(std::string_view k, std::string_view v) {
    key(k);
    writer_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  // Without this, a string literal would take the bool overload.
  void field(std::string_view k, const char* v) { field(k, std::string_view(v)); }
  void field(std::string_view k, double v) {
    key(k);
    writer_.Double(v);
  }
  void field(std::string_view k, uint64_t v) {
    key(k);
    writer_.Uint64(v);
  }
  void field(std::string_view k, bool v) {
    key(k);
    writer_.Bool(v);
  }
  void field(std::string_view k, int v) { field(k, static_cast<uint64_t>(v < 0 ? 0 : v)); }
  void field(std::string_view k, unsigned v) { field(k, static_cast<uint64_t>(v)); }
  void latency(std::string_view k, const Histogram& h);  // {"p50":…,"p90":…,"p99":…,"max":…}
  void series(std::string_view k, const TimeSeries& s);
  void httpLoad(std::string_view k, const HttpLoadResult& r);
  // Closes the document and returns it.
  std::string finish();

 private:
  rapidjson::StringBuffer buffer_;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer_;
};

// Writes `text` to `path` ("-": standard output); false with a message on stderr when it fails.
bool writeText(const std::string& path, const std::string& text);

}  // namespace pushhub::bench
