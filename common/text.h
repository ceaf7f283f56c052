#pragma once

#include <string_view>

namespace pushhub {

// ASCII case-insensitive equality (header names, platform names, HTTP tokens).
bool equalsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace pushhub
