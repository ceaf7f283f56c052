#pragma once

// Facts of FCM HTTP v1 that both the client (fcm.*) and pushhub-sim use
// (../shared/reference/pns-protocols.md §2.2).

#include <rapidjson/document.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pushhub::connectors {

inline constexpr size_t kFcmMaxMessage = 4096;       // to a token
inline constexpr size_t kFcmMaxTopicMessage = 2048;  // to a topic or condition

// Proto3 JSON accepts a field's proto name and its lowerCamelCase form: "analyticsLabel" →
// "analytics_label"; proto names map to themselves.
std::string fcmProtoName(std::string_view json_name);
// A message field by proto name; the last occurrence wins, as Google documents for repeated keys.
const rapidjson::Value* fcmField(const rapidjson::Value& object, std::string_view name);
// The size FCM limits, "counting keys and values" [derived]: the data maps and the notification
// strings that reach the device.
size_t fcmPayloadSize(const rapidjson::Value& message);
// The same for a message given as JSON text (the `message` object), or nullopt if it is not an
// object; but when the whole text is within `limit` it is returned unparsed, as the payload can
// only be smaller: the result is over `limit` exactly when the payload is.
std::optional<size_t> fcmPayloadSize(std::string_view message_json, size_t limit);

}  // namespace pushhub::connectors
