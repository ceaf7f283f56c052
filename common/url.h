#pragma once

// Percent-decoding and application/x-www-form-urlencoded bodies (OAuth token requests to
// pushhub-sim, SAS tokens and query strings in the API).

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pushhub {

// %XX sequences decoded; with `plus_is_space` (form bodies, query strings) '+' becomes ' '.
// nullopt for a '%' not followed by two hex digits.
std::optional<std::string> percentDecode(std::string_view text, bool plus_is_space);

// Unreserved characters (RFC 3986) as they are, everything else as %XX (uppercase hex).
std::string percentEncode(std::string_view text);

// "a=1&b=two+words" → {{"a","1"},{"b","two words"}}, in order, repeats kept; a field without
// '=' has an empty value. nullopt when a name or value has a malformed escape.
std::optional<std::vector<std::pair<std::string, std::string>>> parseForm(std::string_view body);

}  // namespace pushhub
