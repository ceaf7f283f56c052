#include "connectors/fcm_protocol.h"
#include "common/json_parse.h"

namespace pushhub::connectors {
namespace {

std::string_view view(const rapidjson::Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

}  // namespace

std::string fcmProtoName(std::string_view json_name) {
  std::string out;
  out.reserve(json_name.size() + 4);
  for (const char c : json_name) {
    if (c >= 'A' && c <= 'Z') {
      out.push_back('_');
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

const rapidjson::Value* fcmField(const rapidjson::Value& object, std::string_view name) {
  if (!object.IsObject()) return nullptr;
  const rapidjson::Value* found = nullptr;
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    if (fcmProtoName(view(it->name)) == name) found = &it->value;
  }
  return found;
}

size_t fcmPayloadSize(const rapidjson::Value& message) {
  size_t size = 0;
  const auto add = [&](const rapidjson::Value* object) {
    if (object == nullptr || !object->IsObject()) return;
    for (auto it = object->MemberBegin(); it != object->MemberEnd(); ++it) {
      if (!it->value.IsString()) continue;
      size += it->name.GetStringLength() + it->value.GetStringLength();
    }
  };
  add(fcmField(message, "data"));
  add(fcmField(message, "notification"));
  if (const rapidjson::Value* android = fcmField(message, "android")) {
    add(fcmField(*android, "data"));
    add(fcmField(*android, "notification"));
  }
  if (const rapidjson::Value* webpush = fcmField(message, "webpush")) {
    add(fcmField(*webpush, "data"));
  }
  return size;
}

std::optional<size_t> fcmPayloadSize(std::string_view message_json, size_t limit) {
  if (message_json.size() <= limit) return message_json.size();
  rapidjson::Document document;
  if (!parseJson(document, message_json) || !document.IsObject()) return std::nullopt;
  return fcmPayloadSize(document);
}

}  // namespace pushhub::connectors
