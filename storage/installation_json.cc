#include "storage/installation_json.h"
#include "common/json_parse.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

namespace pushhub::storage {
namespace {

using rapidjson::Value;

std::unexpected<InvalidField> invalid(std::string field, std::string problem) {
  return std::unexpected(InvalidField{std::move(field), std::move(problem)});
}

std::string_view typeName(const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType: return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return "a boolean";
    case rapidjson::kObjectType: return "an object";
    case rapidjson::kArrayType: return "an array";
    case rapidjson::kStringType: return "a string";
    case rapidjson::kNumberType: return "a number";
  }
  return "a value";
}

std::string_view str(const Value& v) { return {v.GetString(), v.GetStringLength()}; }

// Moves a parsed value into `target`, or passes its error on.
template <typename T>
std::expected<void, InvalidField> assign(T& target, std::expected<T, InvalidField> value) {
  if (!value) return std::unexpected(value.error());
  target = std::move(*value);
  return {};
}

std::expected<std::string, InvalidField> stringField(const Value& v, const std::string& field) {
  if (!v.IsString()) return invalid(field, fmt::format("must be a string, not {}", typeName(v)));
  return std::string(str(v));
}

std::expected<std::vector<std::string>, InvalidField> stringArray(const Value& v,
                                                                  const std::string& field) {
  if (!v.IsArray())
    return invalid(field, fmt::format("must be an array of strings, not {}", typeName(v)));
  std::vector<std::string> out;
  out.reserve(v.Size());
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    if (!v[i].IsString()) {
      return invalid(fmt::format("{}/{}", field, i),
                     fmt::format("must be a string, not {}", typeName(v[i])));
    }
    out.emplace_back(str(v[i]));
  }
  return out;
}

std::expected<void, InvalidField> parseDocument(rapidjson::Document& document,
                                                std::string_view json, const std::string& field) {
  if (auto ok = parseJson(document, json); !ok)
    return invalid(field, "not valid JSON " + ok.error());
  return {};
}

// An object of strings, also accepted as a string holding the object's JSON.
std::expected<std::map<std::string, std::string>, InvalidField> headersOf(
    const Value& v, const std::string& field) {
  if (v.IsString()) {
    rapidjson::Document inner;
    if (auto ok = parseDocument(inner, str(v), field); !ok) return std::unexpected(ok.error());
    return headersOf(inner, field);
  }
  if (!v.IsObject())
    return invalid(field, fmt::format("must be an object of strings, not {}", typeName(v)));
  std::map<std::string, std::string> headers;
  for (const auto& member : v.GetObject()) {
    const std::string name(str(member.name));
    if (auto ok = assign(headers[name], stringField(member.value, field + "/" + name)); !ok)
      return std::unexpected(ok.error());
  }
  return headers;
}

// A template object, also accepted as a string holding the object's JSON (Azure's examples).
std::expected<InstallationTemplate, InvalidField> templateOf(const Value& v,
                                                             const std::string& field) {
  if (v.IsString()) {
    rapidjson::Document inner;
    if (auto ok = parseDocument(inner, str(v), field); !ok) return std::unexpected(ok.error());
    return templateOf(inner, field);
  }
  if (!v.IsObject()) return invalid(field, fmt::format("must be an object, not {}", typeName(v)));
  InstallationTemplate t;
  for (const auto& member : v.GetObject()) {
    const std::string_view name = str(member.name);
    const std::string sub = field + "/" + std::string(name);
    if (name == "body") {
      if (auto ok = assign(t.body, stringField(member.value, sub)); !ok)
        return std::unexpected(ok.error());
    } else if (name == "headers") {
      if (auto ok = assign(t.headers, headersOf(member.value, sub)); !ok)
        return std::unexpected(ok.error());
    } else if (name == "expiry") {
      if (auto ok = assign(t.expiry, stringField(member.value, sub)); !ok)
        return std::unexpected(ok.error());
    } else if (name == "tags") {
      if (auto ok = assign(t.tags, stringArray(member.value, sub)); !ok)
        return std::unexpected(ok.error());
    }
  }
  return t;
}

std::expected<void, InvalidField> setPushChannel(Installation& in, const Value& v) {
  if (v.IsString()) {
    in.push_channel = std::string(str(v));
    in.browser_p256dh.clear();
    in.browser_auth.clear();
    return {};
  }
  if (v.IsObject()) {  // browser: {endpoint, p256dh, auth}
    for (const auto& [key, target] :
         {std::pair{"endpoint", &in.push_channel}, std::pair{"p256dh", &in.browser_p256dh},
          std::pair{"auth", &in.browser_auth}}) {
      auto member = v.FindMember(key);
      if (member == v.MemberEnd()) return invalid(std::string("pushChannel/") + key, "is required");
      auto value = stringField(member->value, std::string("pushChannel/") + key);
      if (!value) return std::unexpected(value.error());
      *target = std::move(*value);
    }
    return {};
  }
  return invalid("pushChannel",
                 fmt::format("must be a string (or an object for browsers), not {}", typeName(v)));
}

void writeStrings(rapidjson::Writer<rapidjson::StringBuffer>& w,
                  const std::vector<std::string>& v) {
  w.StartArray();
  for (const auto& s : v) w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
}

void writeString(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string_view key,
                 std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

// JSON Pointer segment unescaping: ~1 is '/', ~0 is '~'.
std::string unescapeSegment(std::string_view segment) {
  std::string out;
  for (size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] == '~' && i + 1 < segment.size() &&
        (segment[i + 1] == '0' || segment[i + 1] == '1')) {
      out += segment[i + 1] == '0' ? '~' : '/';
      ++i;
    } else {
      out += segment[i];
    }
  }
  return out;
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> segments;
  if (path.starts_with('/')) path.remove_prefix(1);
  while (true) {
    const size_t slash = path.find('/');
    segments.push_back(unescapeSegment(path.substr(0, slash)));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

void addTags(std::vector<std::string>& tags, std::vector<std::string> more) {
  for (auto& t : more) tags.push_back(std::move(t));
}

void removeTag(std::vector<std::string>& tags, std::string_view tag) {
  tags.erase(std::remove(tags.begin(), tags.end(), tag), tags.end());
}

// One string or an array of strings: what add/replace on a tags path takes.
std::expected<std::vector<std::string>, InvalidField> tagsValue(const Value& v,
                                                                const std::string& field) {
  if (v.IsString()) return std::vector<std::string>{std::string(str(v))};
  return stringArray(v, field);
}

class Patcher {
 public:
  Patcher(Installation& in, const PatchOperation& op, std::string where)
      : in_(in), op_(op), where_(std::move(where)) {}

  std::expected<void, InvalidField> apply() {
    const auto segments = splitPath(op_.path);
    if (!op_.path.starts_with('/') || segments.empty() || segments[0].empty()) {
      return fail("the path must start with '/' and name a field");
    }
    if (op_.op != PatchOp::kRemove) {
      if (op_.value_json.empty()) return fail("needs a value");
      if (auto ok = parseDocument(value_, op_.value_json, where_ + " value"); !ok) return ok;
    }
    const std::string& field = segments[0];
    if (field == "pushChannel" && segments.size() == 1) return pushChannel();
    if ((field == "userId" || field == "userID") && segments.size() == 1) {
      return stringMember(in_.user_id, "");
    }
    if (field == "tags") return tags(in_.tags, segments, 1);
    if (field == "templates" && segments.size() >= 2) return templates(segments);
    return fail(
        "pushhub patches /pushChannel, /userId, /tags, /tags/{tag}, /templates/{name} "
        "and /templates/{name}/body|headers|expiry|tags");
  }

 private:
  std::unexpected<InvalidField> fail(std::string problem) {
    return invalid(where_, std::move(problem));
  }

  std::expected<void, InvalidField> pushChannel() {
    if (op_.op == PatchOp::kRemove) return fail("pushChannel is required and cannot be removed");
    const std::string before = in_.push_channel;
    if (auto ok = setPushChannel(in_, value_); !ok) return ok;
    if (in_.push_channel != before) in_.expired_push_channel = false;  // a new, live channel
    return {};
  }

  // A string member: add and replace set it, remove clears it unless `required` says why not.
  std::expected<void, InvalidField> stringMember(std::string& member, std::string_view required) {
    if (op_.op == PatchOp::kRemove) {
      if (!required.empty()) return fail(std::string(required));
      member.clear();
      return {};
    }
    if (auto ok = assign(member, stringField(value_, where_ + " value")); !ok)
      return std::unexpected(ok.error());
    return {};
  }

  // /tags, /tags/{tag} (relative to `first`), on the installation's or a template's tags.
  std::expected<void, InvalidField> tags(std::vector<std::string>& tags,
                                         const std::vector<std::string>& segments, size_t first) {
    if (segments.size() == first + 1) {
      // Remove by value, as Azure does ("remove /tags/myTag"), whatever the op says otherwise.
      if (op_.op == PatchOp::kRemove) {
        removeTag(tags, segments[first]);
        return {};
      }
      if (op_.op == PatchOp::kAdd) {
        tags.push_back(segments[first]);
        return {};
      }
      return fail("replace takes the whole tags array (/tags), not one tag");
    }
    if (segments.size() != first) return fail("too many path segments after tags");
    if (op_.op == PatchOp::kRemove) {
      tags.clear();
      return {};
    }
    auto value = tagsValue(value_, where_ + " value");
    if (!value) return std::unexpected(value.error());
    if (op_.op == PatchOp::kReplace) tags.clear();
    addTags(tags, std::move(*value));
    return {};
  }

  std::expected<void, InvalidField> templates(const std::vector<std::string>& segments) {
    const std::string& name = segments[1];
    if (segments.size() == 2) {
      if (op_.op == PatchOp::kRemove) {
        if (in_.templates.erase(name) == 0)
          return fail(fmt::format("no template named '{}'", name));
        return {};
      }
      if (auto ok = assign(in_.templates[name], templateOf(value_, where_ + " value")); !ok)
        return std::unexpected(ok.error());
      return {};
    }
    auto it = in_.templates.find(name);
    if (it == in_.templates.end()) return fail(fmt::format("no template named '{}'", name));
    InstallationTemplate& t = it->second;
    const std::string& part = segments[2];
    if (part == "tags") return tags(t.tags, segments, 3);
    if (segments.size() != 3) return fail("too many path segments");
    if (part == "body") {
      return stringMember(t.body, "a template's body is required and cannot be removed");
    }
    if (part == "expiry") return stringMember(t.expiry, "");
    if (part == "headers") {
      if (op_.op == PatchOp::kRemove) {
        t.headers.clear();
        return {};
      }
      // 'add' on headers replaces the whole headers object (Azure).
      if (auto ok = assign(t.headers, headersOf(value_, where_ + " value")); !ok)
        return std::unexpected(ok.error());
      return {};
    }
    return fail(fmt::format("a template has body, headers, expiry and tags, not '{}'", part));
  }

  Installation& in_;
  const PatchOperation& op_;
  const std::string where_;
  rapidjson::Document value_;
};

std::string_view opName(PatchOp op) {
  switch (op) {
    case PatchOp::kAdd: return "add";
    case PatchOp::kRemove: return "remove";
    case PatchOp::kReplace: return "replace";
  }
  return "?";
}

}  // namespace

std::expected<Installation, InvalidField> parseInstallationJson(std::string_view json) {
  rapidjson::Document document;
  if (auto ok = parseDocument(document, json, ""); !ok) return std::unexpected(ok.error());
  if (!document.IsObject()) return invalid("", "an installation is a JSON object");
  Installation in;
  bool has_id = false, has_platform = false, has_channel = false;
  for (const auto& member : document.GetObject()) {
    const std::string_view name = str(member.name);
    const Value& v = member.value;
    if (name == "installationId") {
      if (auto ok = assign(in.id, stringField(v, "installationId")); !ok)
        return std::unexpected(ok.error());
      has_id = true;
    } else if (name == "userId" || name == "userID") {
      if (v.IsNull()) continue;
      if (auto ok = assign(in.user_id, stringField(v, std::string(name))); !ok)
        return std::unexpected(ok.error());
    } else if (name == "platform") {
      auto platform_name = stringField(v, "platform");
      if (!platform_name) return std::unexpected(platform_name.error());
      auto platform = parsePlatform(*platform_name);
      if (!platform) {
        return invalid("platform", fmt::format("'{}' is not one of apns, fcmv1 (or gcm), wns, adm, "
                                               "baidu, browser, xiaomi",
                                               *platform_name));
      }
      in.platform = *platform;
      has_platform = true;
    } else if (name == "pushChannel") {
      if (auto ok = setPushChannel(in, v); !ok) return std::unexpected(ok.error());
      has_channel = true;
    } else if (name == "tags") {
      if (v.IsNull()) continue;
      if (auto ok = assign(in.tags, stringArray(v, "tags")); !ok)
        return std::unexpected(ok.error());
    } else if (name == "templates") {
      if (v.IsNull()) continue;
      if (!v.IsObject())
        return invalid("templates", fmt::format("must be an object, not {}", typeName(v)));
      for (const auto& t : v.GetObject()) {
        const std::string template_name(str(t.name));
        if (auto ok = assign(in.templates[template_name],
                             templateOf(t.value, "templates/" + template_name));
            !ok)
          return std::unexpected(ok.error());
      }
    } else if (name == "expirationTime") {
      if (v.IsNull()) continue;
      auto text = stringField(v, "expirationTime");
      if (!text) return std::unexpected(text.error());
      auto when = parseIso8601(*text);
      if (!when)
        return invalid("expirationTime", fmt::format("'{}' is not a W3C date-time", *text));
      in.expiration_time = *when;
    }
    // Anything else is read-only (lastActiveOn, expiredPushChannel, lastUpdate) or not used.
  }
  if (!has_id) return invalid("installationId", "is required");
  if (!has_platform) return invalid("platform", "is required");
  if (!has_channel) return invalid("pushChannel", "is required");
  in.normalize();
  return in;
}

std::string installationToJson(const Installation& in) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  writeString(w, "installationId", in.id);
  if (!in.user_id.empty()) writeString(w, "userId", in.user_id);
  writeString(w, "platform", platformName(in.platform));
  if (in.platform == Platform::kBrowser) {
    w.Key("pushChannel");
    w.StartObject();
    writeString(w, "endpoint", in.push_channel);
    writeString(w, "p256dh", in.browser_p256dh);
    writeString(w, "auth", in.browser_auth);
    w.EndObject();
  } else {
    writeString(w, "pushChannel", in.push_channel);
  }
  w.Key("expiredPushChannel");
  w.Bool(in.expired_push_channel);
  if (!in.tags.empty()) {
    w.Key("tags");
    writeStrings(w, in.tags);
  }
  if (!in.templates.empty()) {
    w.Key("templates");
    w.StartObject();
    for (const auto& [name, t] : in.templates) {
      w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
      w.StartObject();
      writeString(w, "body", t.body);
      if (!t.headers.empty()) {
        w.Key("headers");
        w.StartObject();
        for (const auto& [header, value] : t.headers) writeString(w, header, value);
        w.EndObject();
      }
      if (!t.expiry.empty()) writeString(w, "expiry", t.expiry);
      if (!t.tags.empty()) {
        w.Key("tags");
        writeStrings(w, t.tags);
      }
      w.EndObject();
    }
    w.EndObject();
  }
  writeString(w, "expirationTime", formatIso8601(in.expiration_time));
  if (in.last_active_on != 0) writeString(w, "lastActiveOn", formatIso8601(in.last_active_on));
  if (in.last_update != 0) writeString(w, "lastUpdate", formatIso8601(in.last_update));
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::expected<std::vector<PatchOperation>, InvalidField> parsePatchJson(std::string_view json) {
  rapidjson::Document document;
  if (auto ok = parseDocument(document, json, ""); !ok) return std::unexpected(ok.error());
  if (!document.IsArray()) return invalid("", "a patch is a JSON array of operations");
  std::vector<PatchOperation> operations;
  for (rapidjson::SizeType i = 0; i < document.Size(); ++i) {
    const Value& item = document[i];
    const std::string where = fmt::format("/{}", i);
    if (!item.IsObject()) return invalid(where, "an operation is an object {op, path, value}");
    PatchOperation op;
    auto op_member = item.FindMember("op");
    if (op_member == item.MemberEnd()) return invalid(where + "/op", "is required");
    auto op_name = stringField(op_member->value, where + "/op");
    if (!op_name) return std::unexpected(op_name.error());
    if (*op_name == "add") {
      op.op = PatchOp::kAdd;
    } else if (*op_name == "remove") {
      op.op = PatchOp::kRemove;
    } else if (*op_name == "replace") {
      op.op = PatchOp::kReplace;
    } else {
      return invalid(where + "/op", fmt::format("'{}' is not add, remove or replace", *op_name));
    }
    auto path_member = item.FindMember("path");
    if (path_member == item.MemberEnd()) return invalid(where + "/path", "is required");
    if (auto ok = assign(op.path, stringField(path_member->value, where + "/path")); !ok)
      return std::unexpected(ok.error());
    if (auto value = item.FindMember("value"); value != item.MemberEnd()) {
      rapidjson::StringBuffer buffer;
      rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
      value->value.Accept(w);
      op.value_json.assign(buffer.GetString(), buffer.GetSize());
    }
    operations.push_back(std::move(op));
  }
  return operations;
}

std::expected<void, InvalidField> applyPatch(Installation& installation,
                                             const std::vector<PatchOperation>& operations) {
  for (size_t i = 0; i < operations.size(); ++i) {
    const auto& op = operations[i];
    Patcher patcher(installation, op, fmt::format("/{} ({} {})", i, opName(op.op), op.path));
    if (auto ok = patcher.apply(); !ok) return ok;
  }
  installation.normalize();
  return {};
}

}  // namespace pushhub::storage
