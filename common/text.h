#pragma once

#include <cstddef>
#include <string_view>

namespace pushhub {

// ASCII case-insensitive equality (header names, platform names, HTTP tokens).
bool equalsIgnoreCase(std::string_view a, std::string_view b);

// Length of the valid UTF-8 sequence starting at text[i] (1 for ASCII), or 0 when the bytes there
// are not one (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t utf8SequenceLength(std::string_view text, size_t i);

// Why `text` cannot be an identifier, a tag, a name or a template body: invalid UTF-8 or a NUL
// byte (with its offset), or nullptr when it can. The message has no part of `text` in it, so it
// can be echoed safely.
const char* textProblem(std::string_view text, size_t* offset = nullptr);

}  // namespace pushhub
