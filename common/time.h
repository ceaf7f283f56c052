#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pushhub {

// Milliseconds since the Unix epoch, UTC: how pushhub stores every point in time.
using UnixMillis = int64_t;

UnixMillis nowMillis();

// W3C date-time (ISO 8601) as Azure Notification Hubs writes it: "2026-11-25T09:30:00.123Z";
// milliseconds are omitted when zero ("9999-12-31T23:59:59Z").
std::string formatIso8601(UnixMillis t);

// Accepts "YYYY-MM-DDTHH:MM:SS" with optional fraction and optional "Z" or "+HH:MM"/"-HH:MM"
// (no zone means UTC, as Azure's examples do). nullopt when it is not such a date-time.
std::optional<UnixMillis> parseIso8601(std::string_view text);

}  // namespace pushhub
