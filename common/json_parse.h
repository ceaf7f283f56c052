#pragma once

// The one way pushhub parses JSON that comes from outside (HTTP bodies, Kafka messages, hub
// definitions, configuration, push services' answers): bounded in nesting depth, iterative (no
// recursion on the thread's stack whatever the input), and strict about UTF-8. RapidJSON's own
// Document::Parse recurses once per nesting level: 110,000 '[' overflowed a shard's stack.

#include <rapidjson/document.h>

#include <expected>
#include <string>
#include <string_view>

namespace pushhub {

// Deeper than any document pushhub reads (an FCM message nests 5, a hub definition 4), shallow
// enough that code walking a parsed document recursively is safe.
inline constexpr unsigned kMaxJsonDepth = 64;

// Parses `json` into `document`. On failure `document` is left null and the error says where and
// what is wrong ("at offset 70: nested deeper than 64 levels", "at offset 3: Invalid encoding in
// string.", …), without quoting the input.
[[nodiscard]] std::expected<void, std::string> parseJson(rapidjson::Document& document,
                                                         std::string_view json,
                                                         unsigned max_depth = kMaxJsonDepth);

}  // namespace pushhub
