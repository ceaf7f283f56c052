#include "common/text.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace pushhub {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

size_t utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint32_t code_point = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    code_point = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    code_point = lead & 0x0Fu;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    code_point = lead & 0x07u;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    const uint8_t continuation = byte(i + k);
    if ((continuation & 0xC0u) != 0x80u) return 0;
    code_point = (code_point << 6) | (continuation & 0x3Fu);
  }
  if (length == 3 && (code_point < 0x800 || (code_point >= 0xD800 && code_point <= 0xDFFF))) {
    return 0;
  }
  if (length == 4 && (code_point < 0x10000 || code_point > 0x10FFFF)) return 0;
  return length;
}

const char* textProblem(std::string_view text, size_t* offset) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      if (text[i] == '\0') {
        if (offset != nullptr) *offset = i;
        return "contains a NUL character";
      }
      ++i;
      continue;
    }
    const size_t length = utf8SequenceLength(text, i);
    if (length == 0) {
      if (offset != nullptr) *offset = i;
      return "is not valid UTF-8";
    }
    i += length;
  }
  return nullptr;
}

}  // namespace pushhub
