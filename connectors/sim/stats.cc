#include "connectors/sim/stats.h"

#include <fmt/format.h>

#include "common/json.h"

namespace pushhub::connectors::sim {

Stats::Stats(unsigned loops) {
  for (unsigned i = 0; i < std::max(1u, loops); ++i) shards_.push_back(std::make_unique<Shard>());
}

Stats::Counts& Stats::counts(Shard& shard, std::string_view service) {
  auto it = shard.services.find(service);
  if (it == shard.services.end()) it = shard.services.emplace(std::string(service), Counts{}).first;
  return it->second;
}

void Stats::count(unsigned loop, std::string_view service, int status, std::string_view reason) {
  Shard& shard = *shards_[loop % shards_.size()];
  std::lock_guard lock(shard.mutex);
  Counts& c = counts(shard, service);
  ++c.requests;
  if (status >= 200 && status < 300 && reason.empty()) ++c.accepted;
  ++c.by_status[status];
  if (!reason.empty()) {
    auto it = c.by_reason.find(reason);
    if (it == c.by_reason.end()) it = c.by_reason.emplace(std::string(reason), 0).first;
    ++it->second;
  }
}

void Stats::countConnection(unsigned loop, std::string_view service) {
  Shard& shard = *shards_[loop % shards_.size()];
  std::lock_guard lock(shard.mutex);
  ++counts(shard, service).connections;
}

std::string Stats::json() const {
  std::map<std::string, Counts, std::less<>> total;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    for (const auto& [service, c] : shard->services) {
      Counts& t = total[service];
      t.requests += c.requests;
      t.accepted += c.accepted;
      t.connections += c.connections;
      for (const auto& [status, n] : c.by_status) t.by_status[status] += n;
      for (const auto& [reason, n] : c.by_reason) t.by_reason[reason] += n;
    }
  }
  std::string out = "{";
  bool first_service = true;
  for (const auto& [service, c] : total) {
    if (!first_service) out += ',';
    first_service = false;
    out += fmt::format(R"({}:{{"requests":{},"accepted":{},"connections":{},"by_status":{{)",
                       jsonQuoted(service), c.requests, c.accepted, c.connections);
    bool first = true;
    for (const auto& [status, n] : c.by_status) {
      out += fmt::format(R"({}"{}":{})", first ? "" : ",", status, n);
      first = false;
    }
    out += R"(},"by_reason":{)";
    first = true;
    for (const auto& [reason, n] : c.by_reason) {
      out += fmt::format("{}{}:{}", first ? "" : ",", jsonQuoted(reason), n);
      first = false;
    }
    out += "}}";
  }
  out += "}";
  return out;
}

void Stats::reset() {
  for (auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    shard->services.clear();
  }
}

uint64_t Stats::accepted(std::string_view service) const {
  uint64_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    auto it = shard->services.find(service);
    if (it != shard->services.end()) total += it->second.accepted;
  }
  return total;
}

}  // namespace pushhub::connectors::sim
