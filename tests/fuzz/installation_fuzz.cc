// libFuzzer target for what apps send about their installations (storage/installation_json.*,
// storage/installation.*, hub::checkTemplates): the first byte picks an installation (PUT) or a
// PATCH, the rest is the JSON body. Any input is parsed or refused with a field, never crashes;
// an installation that passes validation encodes and decodes to itself; a patch applied to a
// valid installation leaves it valid or is refused.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hub/render.h"
#include "storage/installation.h"
#include "storage/installation_json.h"

using namespace pushhub;

namespace {

bool acceptable(const storage::Installation& in) {
  return storage::validateInstallation(in, {}).has_value() && hub::checkTemplates(in).has_value();
}

void roundTrip(const storage::Installation& in) {
  auto decoded = storage::decodeInstallation(storage::encodeInstallation(in));
  if (!decoded || !(*decoded == in)) std::abort();
  // What is served back parses again.
  if (!storage::parseInstallationJson(storage::installationToJson(in))) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto parsed = storage::parseInstallationJson(body);
    if (!parsed) {
      if (parsed.error().problem.empty()) std::abort();
      return 0;
    }
    parsed->normalize();
    if (acceptable(*parsed)) roundTrip(*parsed);
    return 0;
  }
  auto operations = storage::parsePatchJson(body);
  if (!operations) return 0;
  storage::Installation in;
  in.id = "fuzz";
  in.platform = storage::Platform::kApns;
  in.push_channel = std::string(64, 'a');
  in.tags = {"a", "b"};
  storage::InstallationTemplate t;
  t.body = "{\"aps\":{\"alert\":\"$(m)\"}}";
  t.tags = {"x"};
  in.templates["t"] = std::move(t);
  if (!storage::applyPatch(in, *operations)) return 0;
  in.normalize();
  if (acceptable(in)) roundTrip(in);
  return 0;
}
