#pragma once

// The Azure Notification Hubs JSON forms of an installation and of an installation PATCH, as the
// REST API and the official SDKs use them (see docs/installations.md).

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "storage/installation.h"

namespace pushhub::storage {

// Parses a PUT body. Required: installationId, platform, pushChannel (a string, or for browser
// installations an object {endpoint, p256dh, auth}). Read-only fields (lastActiveOn,
// expiredPushChannel, lastUpdate) and fields pushhub does not use (secondaryTiles, user, appId,
// advertisingId) are ignored. Wrong types name the field. The result is not yet validated.
std::expected<Installation, InvalidField> parseInstallationJson(std::string_view json);

// The GET form: every field, timestamps in W3C form.
std::string installationToJson(const Installation& installation);

enum class PatchOp { kAdd, kRemove, kReplace };

struct PatchOperation {
  PatchOp op = PatchOp::kAdd;
  std::string path;
  // The "value" member as JSON text ("\"tag\"", "[\"a\",\"b\"]", "{...}"); empty when absent.
  std::string value_json;
};

// Parses a PATCH body: a JSON array of {op, path, value}.
std::expected<std::vector<PatchOperation>, InvalidField> parsePatchJson(std::string_view json);

// Applies `operations` in order to `installation` (Azure semantics, see docs/installations.md);
// on failure `installation` may be partly changed, so callers apply to a copy. Errors name the
// operation ("/2 (add /templates/t1/body)").
std::expected<void, InvalidField> applyPatch(Installation& installation,
                                             const std::vector<PatchOperation>& operations);

}  // namespace pushhub::storage
