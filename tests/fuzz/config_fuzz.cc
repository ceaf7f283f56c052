// libFuzzer target for the configuration file (hub/config.*): any TOML text is a configuration or
// one error naming file, line and key; a configuration rendered back parses to the same values.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "hub/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = pushhub::parseConfig(text, "fuzz.toml", {});
  if (!config) {
    if (config.error().message().empty()) std::abort();
    return 0;
  }
  const std::string rendered = pushhub::renderConfig(*config);
  auto again = pushhub::parseConfig(rendered, "rendered.toml", {});
  if (!again || pushhub::renderConfig(*again) != rendered) std::abort();
  return 0;
}
