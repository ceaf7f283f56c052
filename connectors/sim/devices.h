#pragma once

// Device handles with a fixed fate, for tests and load tests:
//   unregistered  APNs 410 Unregistered, FCM 404 UNREGISTERED, WNS 410 (channel expired)
//   bad           APNs 400 BadDeviceToken, FCM 400 INVALID_ARGUMENT, WNS 404 (unknown channel)
//   foreign       belongs to another app: APNs 400 DeviceTokenNotForTopic,
//                 FCM 403 SENDER_ID_MISMATCH, WNS 403
//   offline       the device is not connected: accepted by APNs and FCM (stored), WNS answers
//                 200 with X-WNS-Status: dropped for toasts, disconnected when asked
// A handle matches by exact value (unregistered, from a file, one per line) or by prefix.
// Everything else is a live device.

#include <expected>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace pushhub::connectors::sim {

enum class DeviceFate { kActive, kUnregistered, kBad, kForeign, kOffline };

class DeviceFates {
 public:
  // The first matching prefix decides, in the order added.
  void addPrefix(DeviceFate fate, std::string prefix) {
    prefixes_.emplace_back(std::move(prefix), fate);
  }
  void addUnregistered(std::string handle) { unregistered_.insert(std::move(handle)); }
  // One handle per line; blank lines and lines starting with '#' are skipped.
  std::expected<size_t, std::string> loadUnregisteredFile(const std::string& path);

  DeviceFate fate(std::string_view handle) const;

 private:
  std::vector<std::pair<std::string, DeviceFate>> prefixes_;
  std::unordered_set<std::string> unregistered_;
};

}  // namespace pushhub::connectors::sim
