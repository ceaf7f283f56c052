#pragma once

#include <string_view>

namespace pushhub {

// What this binary is: reported by `--version`, in the start-up log line and as the
// `pushhub_build_info` metric.
struct BuildInfo {
  std::string_view version;     // the project version, e.g. "0.1.0"
  std::string_view git_commit;  // short commit, "-dirty" when built from a modified tree
  std::string_view build_type;  // CMake build type
  std::string_view compiler;
};

const BuildInfo& buildInfo();

}  // namespace pushhub
