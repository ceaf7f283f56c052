#pragma once

#include <string>
#include <string_view>

namespace pushhub {

// Appends `text` escaped for XML text and attribute values (either quote): & < > " '.
void appendXmlEscaped(std::string& out, std::string_view text);

}  // namespace pushhub
