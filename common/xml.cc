#include "common/xml.h"

#include <cstdint>

#include "common/text.h"

namespace pushhub {

void appendXmlEscaped(std::string& out, std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    const auto b = static_cast<uint8_t>(c);
    if (b >= 0x80) {
      // XML documents are UTF-8 here: a byte that is not part of a valid sequence would make the
      // whole document unreadable, so it becomes U+FFFD.
      const size_t length = utf8SequenceLength(text, i);
      if (length == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\t':
      case '\n':
      case '\r': out.push_back(c); break;
      default:
        // XML 1.0 allows no other control character, not even as a character reference.
        if (b < 0x20) {
          out += "\xEF\xBF\xBD";
        } else {
          out.push_back(c);
        }
    }
    ++i;
  }
}

}  // namespace pushhub
