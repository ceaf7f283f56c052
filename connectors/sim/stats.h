#pragma once

// What pushhub-sim answered, per service, status and reason: GET /stats on the admin port. Counted
// per event loop (no shared cache line on the hot path), summed when read.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pushhub::connectors::sim {

class Stats {
 public:
  explicit Stats(unsigned loops);

  void count(unsigned loop, std::string_view service, int status, std::string_view reason);
  void countConnection(unsigned loop, std::string_view service);
  // {"apns":{"requests":n,"accepted":n,"connections":n,"by_status":{"200":n},"by_reason":{...}}}
  std::string json() const;
  void reset();
  // Accepted requests of one service, all loops (tests and pushhub-bench read this).
  uint64_t accepted(std::string_view service) const;

 private:
  struct Counts {
    uint64_t requests = 0;
    uint64_t accepted = 0;
    uint64_t connections = 0;
    std::map<int, uint64_t> by_status;
    std::map<std::string, uint64_t, std::less<>> by_reason;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::map<std::string, Counts, std::less<>> services;
  };
  Counts& counts(Shard& shard, std::string_view service);

  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace pushhub::connectors::sim
