#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "storage/tag.h"

namespace pushhub::storage {

// The push services an installation can be reached through. The numbers are stored on disk.
enum class Platform : uint8_t {
  kApns = 0,
  kFcmV1 = 1,  // "gcm" is accepted as an alias: GCM is gone, FCM HTTP v1 replaced it
  kWns = 2,
  kAdm = 3,
  kBaidu = 4,
  kBrowser = 5,
  kXiaomi = 6,
};
inline constexpr size_t kPlatformCount = 7;

// Case-insensitive: "apns", "APNS", "fcmv1", "gcm", "wns", "adm", "baidu", "browser", "xiaomi".
std::optional<Platform> parsePlatform(std::string_view name);
std::string_view platformName(Platform platform);

struct InstallationTemplate {
  std::string body;
  std::map<std::string, std::string> headers;  // e.g. X-WNS-Type for WNS
  std::string expiry;                          // APNs only: a constant or template expression
  std::vector<std::string> tags;               // sorted, unique

  bool operator==(const InstallationTemplate&) const = default;
};

// Installations are Azure's current model; registrations its older one. Both are stored as
// installations so that both APIs see one set of devices: a native registration is an
// installation without templates, a template registration one with exactly one template.
enum class DeviceKind : uint8_t { kInstallation = 0, kRegistration = 1 };

// Azure's "never expires".
inline constexpr UnixMillis kNeverExpires = 253'402'300'799'000;  // 9999-12-31T23:59:59Z

struct Installation {
  std::string id;
  DeviceKind kind = DeviceKind::kInstallation;
  std::string user_id;
  Platform platform = Platform::kApns;
  // The device handle: APNs device token (hex), FCM registration token, WNS channel URI, or for
  // browsers the push endpoint (with the keys below).
  std::string push_channel;
  std::string browser_p256dh;
  std::string browser_auth;
  std::vector<std::string> tags;  // sorted, unique
  std::map<std::string, InstallationTemplate> templates;
  UnixMillis expiration_time = kNeverExpires;
  // Set by pushhub, never by clients:
  bool expired_push_channel =
      false;                      // the PNS rejected the handle, or another installation took it
  UnixMillis last_active_on = 0;  // when the channel expired
  UnixMillis last_update = 0;
  uint64_t version = 0;  // bumped on every write; the registration ETag

  bool operator==(const Installation&) const = default;

  // Sorts and de-duplicates tags here and in templates.
  void normalize();
};

struct ValidationLimits {
  size_t max_tags = 60;  // per installation, and per template
  size_t max_tag_length = 120;
  size_t max_templates = 20;
  size_t max_template_bytes = 64 << 10;
  size_t max_push_channel_bytes = 2048;
};

// What is wrong with a record from outside: the field (JSON-pointer style, "/tags/3") and why.
struct InvalidField {
  std::string field;
  std::string problem;
  std::string message() const;  // "tags/3: ..."
};

// Every rule an installation must meet before it is stored; the first one broken is reported.
std::expected<void, InvalidField> validateInstallation(const Installation& installation,
                                                       const ValidationLimits& limits);

// The record as stored: msgpack, starting with a record format number so that later formats
// can still read it. decode fails (with a reason) on bytes that are not such a record.
inline constexpr uint32_t kInstallationRecordFormat = 1;
std::string encodeInstallation(const Installation& installation);
std::expected<Installation, std::string> decodeInstallation(std::string_view bytes);

}  // namespace pushhub::storage
