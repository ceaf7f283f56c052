// libFuzzer target for Azure's registration Atom XML (api/registration_xml.*): any input is a
// registration or refused with a reason, never a crash; what pushhub writes back for a parsed
// registration parses again to the same registration.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/registration_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  auto parsed = pushhub::api::parseRegistrationXml(xml);
  if (!parsed) {
    if (parsed.error().empty()) std::abort();
    return 0;
  }
  parsed->id = "reg-1";
  const std::string written = pushhub::api::registrationEntryXml(*parsed, "https://h/demo");
  auto again = pushhub::api::parseRegistrationXml(written);
  if (!again) std::abort();
  (void)pushhub::api::parseChannelFilter(xml);
  return 0;
}
