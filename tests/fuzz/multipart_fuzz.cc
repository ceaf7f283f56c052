// libFuzzer target for $batch bodies (api/multipart.*): the first line is the Content-Type
// header's value, the rest the body. A part's content is taken from the body; nothing crashes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  if (newline == std::string_view::npos) return 0;
  auto boundary = pushhub::api::multipartBoundary(input.substr(0, newline));
  if (!boundary) return 0;
  const std::string_view body = input.substr(newline + 1);
  auto parts = pushhub::api::parseMultipart(body, *boundary);
  if (!parts) return 0;
  for (const auto& part : *parts) {
    // A part's content is text of the body, never anything else.
    if (body.find(part.body) == std::string_view::npos) std::abort();
    (void)part.name();
  }
  return 0;
}
