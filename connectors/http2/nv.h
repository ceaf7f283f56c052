#pragma once

// What both HTTP/2 sessions (server_session.cc, client_session.cc) need to hand headers to
// nghttp2 and to look them up. Internal to connectors/http2.

#include <nghttp2/nghttp2.h>

#include <string_view>
#include <vector>

#include "connectors/http2/server_session.h"  // Header

namespace pushhub::connectors::http2 {

// nghttp2 copies name and value before the submit call returns.
inline nghttp2_nv makeNv(std::string_view name, std::string_view value,
                         uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), flags};
}

// The first value of a header (lowercase name), or nullptr.
inline const std::string* findHeader(const std::vector<Header>& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

}  // namespace pushhub::connectors::http2
