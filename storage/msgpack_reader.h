#pragma once

// Reading msgpack records field by field with one error message naming the first field that is
// not what the record format says (the record is then refused, never half-read).

#include <fmt/format.h>
#include <msgpack.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pushhub::storage {

struct MsgpackReader {
  std::string& error;

  bool fail(std::string why) {
    if (error.empty()) error = std::move(why);
    return false;
  }
  bool string(const msgpack::object& o, std::string& out, std::string_view what) {
    if (o.type != msgpack::type::STR) return fail(fmt::format("{} is not a string", what));
    out.assign(o.via.str.ptr, o.via.str.size);
    return true;
  }
  bool integer(const msgpack::object& o, int64_t& out, std::string_view what) {
    if (o.type == msgpack::type::POSITIVE_INTEGER) {
      out = static_cast<int64_t>(o.via.u64);
      return true;
    }
    if (o.type == msgpack::type::NEGATIVE_INTEGER) {
      out = o.via.i64;
      return true;
    }
    return fail(fmt::format("{} is not an integer", what));
  }
  bool boolean(const msgpack::object& o, bool& out, std::string_view what) {
    if (o.type != msgpack::type::BOOLEAN) return fail(fmt::format("{} is not a boolean", what));
    out = o.via.boolean;
    return true;
  }
  bool strings(const msgpack::object& o, std::vector<std::string>& out, std::string_view what) {
    if (o.type != msgpack::type::ARRAY) return fail(fmt::format("{} is not an array", what));
    out.resize(o.via.array.size);
    for (uint32_t i = 0; i < o.via.array.size; ++i) {
      if (!string(o.via.array.ptr[i], out[i], what)) return false;
    }
    return true;
  }
  bool stringMap(const msgpack::object& o, std::map<std::string, std::string>& out,
                 std::string_view what) {
    if (o.type != msgpack::type::MAP) return fail(fmt::format("{} is not a map", what));
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      std::string key, value;
      if (!string(o.via.map.ptr[i].key, key, what) || !string(o.via.map.ptr[i].val, value, what)) {
        return false;
      }
      out.emplace(std::move(key), std::move(value));
    }
    return true;
  }
};

}  // namespace pushhub::storage
