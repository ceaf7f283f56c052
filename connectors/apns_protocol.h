#pragma once

// Facts of the APNs provider API that both the client (apns.*) and pushhub-sim use
// (../shared/reference/pns-protocols.md §1.2–1.3).

#include <array>
#include <cstddef>
#include <string_view>

namespace pushhub::connectors {

struct ApnsPushType {
  std::string_view name;
  std::string_view topic_suffix;  // what apns-topic must end with for this push type
};
// Every push type and the suffix its apns-topic carries. mdm topics come from the MDM
// certificate and are not checked.
inline constexpr std::array<ApnsPushType, 11> kApnsPushTypes{{
    {"alert", ""},
    {"background", ""},
    {"complication", ".complication"},
    {"controls", ".push-type.controls"},
    {"fileprovider", ".pushkit.fileprovider"},
    {"liveactivity", ".push-type.liveactivity"},
    {"location", ".location-query"},
    {"mdm", ""},
    {"pushtotalk", ".voip-ptt"},
    {"voip", ".voip"},
    {"widgets", ".push-type.widgets"},
}};

inline constexpr size_t kApnsMaxPayload = 4096;
inline constexpr size_t kApnsMaxVoipPayload = 5120;
inline constexpr size_t kApnsMaxCollapseId = 64;

inline const ApnsPushType* findApnsPushType(std::string_view name) {
  for (const auto& type : kApnsPushTypes) {
    if (type.name == name) return &type;
  }
  return nullptr;
}

}  // namespace pushhub::connectors
