#include "api/multipart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace pushhub::api {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The value of parameter `name` in "a; b = c; name=value" (quotes removed), or empty.
std::string parameter(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view item = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || lower(trim(item.substr(0, eq))) != name) continue;
    std::string_view value = trim(item.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return std::string(value);
  }
  return {};
}

}  // namespace

std::string MultipartPart::name() const {
  auto it = headers.find("content-disposition");
  return it == headers.end() ? std::string() : parameter(it->second, "name");
}

std::expected<std::string, std::string> multipartBoundary(std::string_view content_type) {
  if (!lower(trim(content_type)).starts_with("multipart/")) {
    return std::unexpected(
        fmt::format("Content-Type '{}' is not multipart/mixed with a boundary", content_type));
  }
  std::string boundary = parameter(content_type, "boundary");
  if (boundary.empty()) {
    return std::unexpected(fmt::format("Content-Type '{}' names no boundary", content_type));
  }
  return boundary;
}

std::expected<std::vector<MultipartPart>, std::string> parseMultipart(std::string_view body,
                                                                      std::string_view boundary) {
  const std::string delimiter = "--" + std::string(boundary);
  size_t at = body.find(delimiter);
  if (at == std::string_view::npos) {
    return std::unexpected(fmt::format("the body has no '{}' delimiter", delimiter));
  }
  std::vector<MultipartPart> parts;
  for (;;) {
    at += delimiter.size();
    if (body.substr(at, 2) == "--") return parts;  // the closing delimiter
    // The rest of the delimiter line.
    const size_t line_end = body.find('\n', at);
    if (line_end == std::string_view::npos) {
      return std::unexpected("a part delimiter is the last line: the closing one is missing");
    }
    size_t next = body.find(delimiter, line_end + 1);
    if (next == std::string_view::npos) {
      return std::unexpected(fmt::format("the closing '{}--' is missing", delimiter));
    }
    std::string_view part = body.substr(line_end + 1, next - line_end - 1);
    // The line break before the next delimiter belongs to it.
    if (part.ends_with("\r\n")) {
      part.remove_suffix(2);
    } else if (part.ends_with("\n")) {
      part.remove_suffix(1);
    }
    MultipartPart out;
    for (;;) {
      const size_t eol = part.find('\n');
      std::string_view line = part.substr(0, eol);
      part = eol == std::string_view::npos ? std::string_view() : part.substr(eol + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) break;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        return std::unexpected(
            fmt::format("part {}: '{}' is not a header line", parts.size() + 1, line));
      }
      out.headers[lower(trim(line.substr(0, colon)))] = std::string(trim(line.substr(colon + 1)));
      if (eol == std::string_view::npos) break;
    }
    out.body = std::string(part);
    parts.push_back(std::move(out));
    at = next;
  }
}

}  // namespace pushhub::api
