#include "common/build_info.h"

#include "git_commit.h"

namespace pushhub {

const BuildInfo& buildInfo() {
  static const BuildInfo info {
    .version = PUSHHUB_VERSION, .git_commit = PUSHHUB_GIT_COMMIT, .build_type = PUSHHUB_BUILD_TYPE,
#if defined(__clang__)
    .compiler = "clang " __clang_version__,
#elif defined(__GNUC__)
    .compiler = "gcc " __VERSION__,
#else
    .compiler = "unknown",
#endif
  };
  return info;
}

}  // namespace pushhub
