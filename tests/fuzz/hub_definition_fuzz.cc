// libFuzzer target for hub definitions (hub/hub_definition.*, the admin API's PUT body and the
// configuration's hub files): any JSON is a hub or refused naming the field; files it names are
// looked up under a directory that does not exist.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hub/hub_definition.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto hub = pushhub::hub::parseHubDefinition("fuzz", json, "/nonexistent/pushhub-fuzz");
  if (!hub && hub.error().empty()) std::abort();
  return 0;
}
