#include "hub/send_request.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <msgpack.hpp>

#include <cctype>

#include "common/json_parse.h"
#include "common/time.h"

namespace pushhub::hub {

namespace {

using Value = rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

std::string text(const Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::expected<std::string, std::string> stringOf(const Value& v, std::string_view key) {
  if (!v.IsString()) return std::unexpected(fmt::format("{}: not a string", key));
  return std::string(v.GetString(), v.GetStringLength());
}

std::expected<Notification, std::string> fromValue(const Value& doc) {
  if (!doc.IsObject()) return std::unexpected("a send request is an object");
  Notification n;
  bool has_format = false;
  for (const auto& member : doc.GetObject()) {
    const std::string_view key(member.name.GetString(), member.name.GetStringLength());
    const Value& v = member.value;
    if (key == "hub") {
      auto s = stringOf(v, key);
      if (!s) return std::unexpected(s.error());
      n.hub = std::move(*s);
    } else if (key == "format") {
      auto s = stringOf(v, key);
      if (!s) return std::unexpected(s.error());
      if (auto ok = parseFormat(*s, n.content); !ok)
        return std::unexpected("format: " + ok.error());
      has_format = true;
    } else if (key == "tags") {
      if (v.IsNull()) continue;
      auto s = stringOf(v, key);
      if (!s) return std::unexpected(s.error());
      n.expression = std::move(*s);
    } else if (key == "handles") {
      if (!v.IsArray()) return std::unexpected("handles: not an array");
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        auto s = stringOf(v[i], fmt::format("handles/{}", i));
        if (!s) return std::unexpected(s.error());
        n.handles.push_back(std::move(*s));
      }
    } else if (key == "body") {
      if (v.IsString()) {
        n.content.body.assign(v.GetString(), v.GetStringLength());
      } else if (v.IsObject()) {
        n.content.body = text(v);
      } else {
        return std::unexpected("body: not a string or an object");
      }
    } else if (key == "properties") {
      if (!v.IsObject()) return std::unexpected("properties: not an object");
      for (const auto& p : v.GetObject()) {
        const std::string name(p.name.GetString(), p.name.GetStringLength());
        auto s = stringOf(p.value, "properties." + name);
        if (!s) return std::unexpected(s.error());
        n.content.properties.set(name, std::move(*s));
      }
    } else if (key == "headers") {
      if (!v.IsObject()) return std::unexpected("headers: not an object");
      for (const auto& h : v.GetObject()) {
        std::string name(h.name.GetString(), h.name.GetStringLength());
        auto s = stringOf(h.value, "headers." + name);
        if (!s) return std::unexpected(s.error());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        n.content.headers.emplace_back(std::move(name), std::move(*s));
      }
    } else if (key == "schedule") {
      if (v.IsInt64() && v.GetInt64() > 0) {
        n.scheduled_for = v.GetInt64();
      } else if (v.IsString()) {
        auto t = parseIso8601(std::string_view(v.GetString(), v.GetStringLength()));
        if (!t) return std::unexpected("schedule: not an ISO 8601 time");
        n.scheduled_for = *t;
      } else {
        return std::unexpected("schedule: not an ISO 8601 time or unix milliseconds");
      }
    } else if (key == "ttl_seconds") {
      if (!v.IsInt64() || v.GetInt64() <= 0) {
        return std::unexpected("ttl_seconds: not a positive integer");
      }
      n.ttl_ms = v.GetInt64() * 1000;
    } else if (key == "idempotency_key") {
      auto s = stringOf(v, key);
      if (!s) return std::unexpected(s.error());
      n.idempotency_key = std::move(*s);
    } else {
      return std::unexpected(fmt::format("{}: not a send request key", key));
    }
  }
  if (n.hub.empty()) return std::unexpected("hub: missing");
  if (!has_format) return std::unexpected("format: missing");
  if (!n.handles.empty()) {
    if (!n.expression.empty()) return std::unexpected("tags: not with handles");
    n.target = TargetKind::kHandles;
  } else if (!n.expression.empty()) {
    n.target = TargetKind::kExpression;
  }
  return n;
}

constexpr size_t kMaxMsgpackDepth = 32;

// msgpack → the JSON value tree fromValue() reads (maps need string keys; binary is a string).
std::expected<void, std::string> convert(const msgpack::object& o, Value& out, Allocator& alloc,
                                         int depth) {
  if (depth > static_cast<int>(kMaxMsgpackDepth)) return std::unexpected("nested too deeply");
  switch (o.type) {
    case msgpack::type::NIL: out.SetNull(); return {};
    case msgpack::type::BOOLEAN: out.SetBool(o.via.boolean); return {};
    case msgpack::type::POSITIVE_INTEGER: out.SetUint64(o.via.u64); return {};
    case msgpack::type::NEGATIVE_INTEGER: out.SetInt64(o.via.i64); return {};
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: out.SetDouble(o.via.f64); return {};
    case msgpack::type::STR: out.SetString(o.via.str.ptr, o.via.str.size, alloc); return {};
    case msgpack::type::BIN: out.SetString(o.via.bin.ptr, o.via.bin.size, alloc); return {};
    case msgpack::type::ARRAY:
      out.SetArray();
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        Value item;
        if (auto ok = convert(o.via.array.ptr[i], item, alloc, depth + 1); !ok) return ok;
        out.PushBack(item, alloc);
      }
      return {};
    case msgpack::type::MAP:
      out.SetObject();
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) return std::unexpected("a map key is not a string");
        Value key(kv.key.via.str.ptr, kv.key.via.str.size, alloc);
        Value value;
        if (auto ok = convert(kv.val, value, alloc, depth + 1); !ok) return ok;
        out.AddMember(key, value, alloc);
      }
      return {};
    default: return std::unexpected("an extension type is not expected");
  }
}

}  // namespace

std::expected<Notification, std::string> parseSendRequestJson(std::string_view json) {
  rapidjson::Document doc;
  if (auto ok = parseJson(doc, json); !ok) {
    return std::unexpected(fmt::format("not JSON ({})", ok.error()));
  }
  return fromValue(doc);
}

std::expected<Notification, std::string> parseSendRequestMsgpack(std::string_view bytes) {
  msgpack::object_handle handle;
  try {
    // No element count can exceed the message's size (each element takes a byte at least):
    // without this a 5-byte array header makes msgpack reserve room for 4 billion objects.
    const size_t most = bytes.size();
    const msgpack::unpack_limit limit(most, most, most, most, most, kMaxMsgpackDepth);
    handle = msgpack::unpack(bytes.data(), bytes.size(), nullptr, nullptr, limit);
  } catch (const std::exception& e) {
    return std::unexpected(fmt::format("not msgpack ({})", e.what()));
  }
  rapidjson::Document doc;
  if (auto ok = convert(handle.get(), doc, doc.GetAllocator(), 0); !ok) {
    return std::unexpected("msgpack: " + ok.error());
  }
  return fromValue(doc);
}

std::expected<Notification, std::string> parseSendRequest(std::string_view content_type,
                                                          std::string_view bytes) {
  const std::string_view type = content_type.substr(0, content_type.find(';'));
  if (type.empty() || type == "application/json") return parseSendRequestJson(bytes);
  if (type == "application/msgpack" || type == "application/x-msgpack") {
    return parseSendRequestMsgpack(bytes);
  }
  return std::unexpected(fmt::format(
      "content-type \"{}\" is not application/json or application/msgpack", content_type));
}

}  // namespace pushhub::hub
