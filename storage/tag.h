#pragma once

#include <cstddef>
#include <string_view>

namespace pushhub::storage {

// Azure's tag alphabet: A-Z a-z 0-9 _ @ # . : -
constexpr bool isTagChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '@' || c == '#' || c == '.' || c == ':' || c == '-';
}

// A tag: 1..max_length characters of the tag alphabet.
constexpr bool isValidTag(std::string_view tag, size_t max_length = 120) {
  if (tag.empty() || tag.size() > max_length) return false;
  for (const char c : tag) {
    if (!isTagChar(c)) return false;
  }
  return true;
}

}  // namespace pushhub::storage
