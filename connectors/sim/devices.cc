#include "connectors/sim/devices.h"

#include <fmt/format.h>

#include <fstream>

namespace pushhub::connectors::sim {

std::expected<size_t, std::string> DeviceFates::loadUnregisteredFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::unexpected(fmt::format("cannot read the handle file {}", path));
  size_t count = 0;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    unregistered_.insert(std::move(line));
    ++count;
  }
  return count;
}

DeviceFate DeviceFates::fate(std::string_view handle) const {
  for (const auto& [prefix, fate] : prefixes_) {
    if (handle.starts_with(prefix)) return fate;
  }
  if (!unregistered_.empty() && unregistered_.contains(std::string(handle))) {
    return DeviceFate::kUnregistered;
  }
  return DeviceFate::kActive;
}

}  // namespace pushhub::connectors::sim
