#pragma once

#include <string>
#include <string_view>

namespace pushhub {

// Appends `text` to `out` as the body of a JSON string (without the surrounding quotes): quotes,
// backslashes and control characters are escaped, valid UTF-8 is copied as is, and every byte
// that is not part of a valid UTF-8 sequence becomes U+FFFD, so the output is always valid JSON
// whatever the input.
void appendJsonEscaped(std::string& out, std::string_view text);

// `text` as a complete JSON string literal, quotes included.
std::string jsonQuoted(std::string_view text);

}  // namespace pushhub
