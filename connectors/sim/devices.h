#pragma once

// Device handles with a fixed fate, for tests and load tests: unregistered (APNs 410, FCM 404,
// WNS 410), bad (APNs 400 BadDeviceToken, FCM 400 INVALID_ARGUMENT, WNS 404). A handle matches by
// exact value (from a file, one per line) or by prefix. Everything else is a live device.

#include <expected>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace pushhub::connectors::sim {

enum class DeviceFate { kActive, kUnregistered, kBad };

class DeviceFates {
 public:
  void addUnregisteredPrefix(std::string prefix) {
    unregistered_prefixes_.push_back(std::move(prefix));
  }
  void addBadPrefix(std::string prefix) { bad_prefixes_.push_back(std::move(prefix)); }
  void addUnregistered(std::string handle) { unregistered_.insert(std::move(handle)); }
  // One handle per line; blank lines and lines starting with '#' are skipped.
  std::expected<size_t, std::string> loadUnregisteredFile(const std::string& path);

  DeviceFate fate(std::string_view handle) const;

 private:
  std::vector<std::string> unregistered_prefixes_;
  std::vector<std::string> bad_prefixes_;
  std::unordered_set<std::string> unregistered_;
};

}  // namespace pushhub::connectors::sim
