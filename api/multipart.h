#pragma once

// multipart/mixed bodies as the direct batch send uses them
// (../shared/reference/notification-hubs-api.md §1.4, quirk #7): the boundary parameter may have
// spaces around '=' and quotes (`multipart/mixed; boundary = "nh-boundary-…"`), parts are
// separated by "--boundary" lines, each with its headers, an empty line, and its content.

#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pushhub::api {

struct MultipartPart {
  std::map<std::string, std::string> headers;  // lower-case names, trimmed values
  std::string body;
  // The `name` parameter of Content-Disposition ("inline; name=notification" → "notification").
  std::string name() const;
};

// The boundary of a multipart Content-Type; errors name what is missing.
std::expected<std::string, std::string> multipartBoundary(std::string_view content_type);
// The parts of `body` (CRLF or LF line ends). Errors say what is malformed.
std::expected<std::vector<MultipartPart>, std::string> parseMultipart(std::string_view body,
                                                                      std::string_view boundary);

}  // namespace pushhub::api
