#pragma once

// Send requests as backends write them to Kafka (pushhub.sends): one notification each, as a
// JSON object or the same object in msgpack (a map with the same keys), chosen by the message's
// content-type header. docs/kafka.md has the schema with examples:
//
//   {"hub": "demo", "format": "template", "tags": "sports && !muted",
//    "properties": {"msg": "Goal!"}, "idempotency_key": "match-42-goal-3"}
//   {"hub": "demo", "format": "apple", "handles": ["<device token>"],
//    "body": {"aps": {"alert": "hi"}}, "headers": {"apns-priority": "5"}}
//
// Keys: hub (required), format (required: template, apple, fcmv1, gcm, windows), tags (a tag
// expression; absent or empty with no handles: broadcast), handles (direct send, 1–1000, native
// formats only), body (native: a string, or a JSON object sent as its text), properties
// (template: string values), headers (pass-through apns-* / x-wns-*), schedule (ISO 8601 time
// or unix milliseconds), ttl_seconds, idempotency_key. Unknown keys are refused, so that a typo
// does not silently change what is sent.

#include <expected>
#include <string>
#include <string_view>

#include "hub/notification.h"

namespace pushhub::hub {

// Errors name the key ("properties.msg: not a string").
std::expected<Notification, std::string> parseSendRequestJson(std::string_view json);
std::expected<Notification, std::string> parseSendRequestMsgpack(std::string_view bytes);

// By content type: application/json (also when absent), application/msgpack or
// application/x-msgpack.
std::expected<Notification, std::string> parseSendRequest(std::string_view content_type,
                                                          std::string_view bytes);

}  // namespace pushhub::hub
