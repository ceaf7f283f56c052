#include "storage/installation.h"

#include "common/json_parse.h"
#include "common/text.h"
#include "storage/msgpack_reader.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <msgpack.hpp>
#include <pugixml.hpp>

#include <algorithm>
#include <cctype>

namespace pushhub::storage {
namespace {

constexpr std::string_view kPlatformNames[kPlatformCount] = {"apns",  "fcmv1",   "wns",   "adm",
                                                             "baidu", "browser", "xiaomi"};

bool isHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

bool hasControlCharacter(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

void sortUnique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

std::unexpected<InvalidField> invalid(std::string field, std::string problem) {
  return std::unexpected(InvalidField{std::move(field), std::move(problem)});
}

std::expected<void, InvalidField> validateTags(const std::vector<std::string>& tags,
                                               const std::string& field,
                                               const ValidationLimits& limits) {
  if (tags.size() > limits.max_tags) {
    return invalid(field,
                   fmt::format("{} tags, more than the limit of {}", tags.size(), limits.max_tags));
  }
  for (size_t i = 0; i < tags.size(); ++i) {
    if (!isValidTag(tags[i], limits.max_tag_length)) {
      return invalid(fmt::format("{}/{}", field, i),
                     fmt::format("'{}' is not a tag: 1 to {} characters of A-Z a-z 0-9 _ @ # . : -",
                                 tags[i], limits.max_tag_length));
    }
  }
  return {};
}

std::expected<void, InvalidField> validatePushChannel(const Installation& installation,
                                                      const ValidationLimits& limits) {
  const std::string& channel = installation.push_channel;
  if (channel.empty()) return invalid("pushChannel", "is required");
  if (channel.size() > limits.max_push_channel_bytes) {
    return invalid("pushChannel",
                   fmt::format("longer than {} bytes", limits.max_push_channel_bytes));
  }
  if (hasControlCharacter(channel) || channel.find(' ') != std::string::npos) {
    return invalid("pushChannel", "must not contain spaces or control characters");
  }
  if (const char* problem = textProblem(channel)) return invalid("pushChannel", problem);
  switch (installation.platform) {
    case Platform::kApns:
      // APNs device tokens are hex; 32 bytes today, longer ones allowed as Apple advises.
      if (!isHex(channel) || channel.size() % 2 != 0 || channel.size() < 16) {
        return invalid("pushChannel",
                       "an APNs device token is an even number (16 or more) of hex digits");
      }
      break;
    case Platform::kWns:
      if (!channel.starts_with("https://")) {
        return invalid("pushChannel", "a WNS channel is an https:// URI");
      }
      break;
    case Platform::kBrowser:
      if (!channel.starts_with("https://")) {
        return invalid("pushChannel/endpoint", "a browser push endpoint is an https:// URL");
      }
      if (installation.browser_p256dh.empty()) return invalid("pushChannel/p256dh", "is required");
      if (installation.browser_auth.empty()) return invalid("pushChannel/auth", "is required");
      break;
    case Platform::kFcmV1:
    case Platform::kAdm:
    case Platform::kBaidu:
    case Platform::kXiaomi: break;
  }
  return {};
}

bool isHttpToken(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

std::expected<void, InvalidField> validateTemplate(const std::string& name,
                                                   const InstallationTemplate& t, Platform platform,
                                                   const ValidationLimits& limits) {
  const std::string field = "templates/" + name;
  if (!isValidTag(name, limits.max_tag_length)) {
    // Template names are usable as tags (Azure behaviour), so they follow the tag rules.
    return invalid(field, "a template name follows the tag rules: 1 to " +
                              std::to_string(limits.max_tag_length) +
                              " characters of A-Z a-z 0-9 _ @ # . : -");
  }
  if (t.body.empty()) return invalid(field + "/body", "is required");
  if (t.body.size() > limits.max_template_bytes) {
    return invalid(field + "/body", fmt::format("longer than {} bytes", limits.max_template_bytes));
  }
  size_t offset = 0;
  if (const char* problem = textProblem(t.body, &offset)) {
    return invalid(field + "/body", fmt::format("{} (byte {})", problem, offset + 1));
  }
  for (const auto& [header, value] : t.headers) {
    if (!isHttpToken(header))
      return invalid(field + "/headers", fmt::format("'{}' is not a header name", header));
    if (hasControlCharacter(value)) {
      return invalid(field + "/headers/" + header, "must not contain control characters");
    }
    if (const char* problem = textProblem(value))
      return invalid(field + "/headers/" + header, problem);
  }
  if (const char* problem = textProblem(t.expiry)) return invalid(field + "/expiry", problem);
  if (!t.expiry.empty() && platform != Platform::kApns) {
    return invalid(field + "/expiry", "applies to APNs templates only");
  }
  if (auto tags = validateTags(t.tags, field + "/tags", limits); !tags) return tags;

  if (platform == Platform::kWns) {
    const auto type = std::find_if(t.headers.begin(), t.headers.end(), [](const auto& h) {
      return equalsIgnoreCase(h.first, "X-WNS-Type");
    });
    if (type == t.headers.end()) {
      return invalid(field + "/headers", "a WNS template needs an X-WNS-Type header");
    }
    static constexpr std::string_view kTypes[] = {"wns/toast", "wns/tile", "wns/badge", "wns/raw"};
    if (std::find(std::begin(kTypes), std::end(kTypes), type->second) == std::end(kTypes)) {
      return invalid(
          field + "/headers/X-WNS-Type",
          fmt::format("'{}' is not wns/toast, wns/tile, wns/badge or wns/raw", type->second));
    }
    if (type->second == "wns/raw") return {};  // raw bodies are opaque
    pugi::xml_document document;
    const auto parsed = document.load_buffer(t.body.data(), t.body.size(), pugi::parse_default,
                                             pugi::encoding_utf8);
    if (!parsed) {
      return invalid(field + "/body", fmt::format("not well-formed XML at offset {}: {}",
                                                  parsed.offset, parsed.description()));
    }
    return {};
  }
  rapidjson::Document document;
  if (auto ok = parseJson(document, t.body); !ok) {
    return invalid(field + "/body", "not valid JSON " + ok.error());
  }
  if (!document.IsObject()) return invalid(field + "/body", "must be a JSON object");
  return {};
}

// --- msgpack -------------------------------------------------------------------------------

void packTags(msgpack::packer<msgpack::sbuffer>& pk, const std::vector<std::string>& tags) {
  pk.pack_array(static_cast<uint32_t>(tags.size()));
  for (const auto& tag : tags) pk.pack(tag);
}

}  // namespace

std::optional<Platform> parsePlatform(std::string_view name) {
  if (equalsIgnoreCase(name, "gcm")) return Platform::kFcmV1;
  for (size_t i = 0; i < kPlatformCount; ++i) {
    if (equalsIgnoreCase(name, kPlatformNames[i])) return static_cast<Platform>(i);
  }
  return std::nullopt;
}

std::string_view platformName(Platform platform) {
  const auto index = static_cast<size_t>(platform);
  return index < kPlatformCount ? kPlatformNames[index] : "unknown";
}

void Installation::normalize() {
  sortUnique(tags);
  for (auto& [name, t] : templates) sortUnique(t.tags);
}

std::string InvalidField::message() const {
  return field.empty() ? problem : fmt::format("{}: {}", field, problem);
}

std::expected<void, InvalidField> validateInstallation(const Installation& installation,
                                                       const ValidationLimits& limits) {
  const std::string& id = installation.id;
  if (id.empty()) return invalid("installationId", "is required");
  if (id.size() > 256) return invalid("installationId", "longer than 256 bytes");
  if (hasControlCharacter(id) || id.find('/') != std::string::npos) {
    return invalid("installationId", "must not contain '/' or control characters");
  }
  if (const char* problem = textProblem(id)) return invalid("installationId", problem);
  if (id == "." || id == "..") {
    // Path segments that URLs resolve away: such an installation could not be addressed.
    return invalid("installationId", "'.' and '..' are not installation ids");
  }
  const std::string& user = installation.user_id;
  if (user.size() > 256) return invalid("userId", "longer than 256 bytes");
  if (!std::all_of(user.begin(), user.end(), [](char c) { return isTagChar(c) || c == '='; })) {
    return invalid("userId",
                   fmt::format("'{}' has characters other than A-Z a-z 0-9 - _ @ # . : =", user));
  }
  if (static_cast<size_t>(installation.platform) >= kPlatformCount) {
    return invalid("platform", "unknown platform");
  }
  if (auto channel = validatePushChannel(installation, limits); !channel) return channel;
  if (auto tags = validateTags(installation.tags, "tags", limits); !tags) return tags;
  if (installation.templates.size() > limits.max_templates) {
    return invalid("templates", fmt::format("{} templates, more than the limit of {}",
                                            installation.templates.size(), limits.max_templates));
  }
  for (const auto& [name, t] : installation.templates) {
    if (auto ok = validateTemplate(name, t, installation.platform, limits); !ok) return ok;
  }
  return {};
}

std::string encodeInstallation(const Installation& in) {
  msgpack::sbuffer buffer(256);
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_array(15);
  pk.pack(kInstallationRecordFormat);
  pk.pack(static_cast<uint8_t>(in.kind));
  pk.pack(in.id);
  pk.pack(in.user_id);
  pk.pack(static_cast<uint8_t>(in.platform));
  pk.pack(in.push_channel);
  pk.pack(in.browser_p256dh);
  pk.pack(in.browser_auth);
  packTags(pk, in.tags);
  pk.pack_map(static_cast<uint32_t>(in.templates.size()));
  for (const auto& [name, t] : in.templates) {
    pk.pack(name);
    pk.pack_array(4);
    pk.pack(t.body);
    pk.pack(t.headers);
    pk.pack(t.expiry);
    packTags(pk, t.tags);
  }
  pk.pack(in.expiration_time);
  pk.pack(in.expired_push_channel);
  pk.pack(in.last_active_on);
  pk.pack(in.last_update);
  pk.pack(in.version);
  return std::string(buffer.data(), buffer.size());
}

std::expected<Installation, std::string> decodeInstallation(std::string_view bytes) {
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(bytes.data(), bytes.size());
  } catch (const std::exception& e) {
    return std::unexpected(fmt::format("not a msgpack record: {}", e.what()));
  }
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size == 0) {
    return std::unexpected(std::string("not an installation record (expected an array)"));
  }
  const msgpack::object* f = o.via.array.ptr;
  std::string error;
  MsgpackReader r{error};
  int64_t format = 0;
  if (!r.integer(f[0], format, "record format")) return std::unexpected(error);
  if (format != 1) {
    return std::unexpected(
        fmt::format("installation record format {} is not known to this build", format));
  }
  if (o.via.array.size != 15) {
    return std::unexpected(
        fmt::format("installation record has {} fields, format 1 has 15", o.via.array.size));
  }
  Installation in;
  int64_t kind = 0, platform = 0, version = 0;
  bool ok = r.integer(f[1], kind, "kind") && r.string(f[2], in.id, "id") &&
            r.string(f[3], in.user_id, "userId") && r.integer(f[4], platform, "platform") &&
            r.string(f[5], in.push_channel, "pushChannel") &&
            r.string(f[6], in.browser_p256dh, "p256dh") &&
            r.string(f[7], in.browser_auth, "auth") && r.strings(f[8], in.tags, "tags");
  if (ok && f[9].type != msgpack::type::MAP) ok = r.fail("templates is not a map");
  for (uint32_t i = 0; ok && i < f[9].via.map.size; ++i) {
    const auto& entry = f[9].via.map.ptr[i];
    std::string name;
    ok = r.string(entry.key, name, "template name");
    if (!ok) break;
    if (entry.val.type != msgpack::type::ARRAY || entry.val.via.array.size != 4) {
      ok = r.fail("template is not a 4-element array");
      break;
    }
    const msgpack::object* t = entry.val.via.array.ptr;
    InstallationTemplate& tmpl = in.templates[name];
    ok = r.string(t[0], tmpl.body, "template body") &&
         r.stringMap(t[1], tmpl.headers, "template headers") &&
         r.string(t[2], tmpl.expiry, "template expiry") &&
         r.strings(t[3], tmpl.tags, "template tags");
  }
  ok = ok && r.integer(f[10], in.expiration_time, "expirationTime") &&
       r.boolean(f[11], in.expired_push_channel, "expiredPushChannel") &&
       r.integer(f[12], in.last_active_on, "lastActiveOn") &&
       r.integer(f[13], in.last_update, "lastUpdate") && r.integer(f[14], version, "version");
  if (!ok) return std::unexpected(error);
  if (kind < 0 || kind > 1) return std::unexpected(fmt::format("unknown device kind {}", kind));
  if (platform < 0 || platform >= static_cast<int64_t>(kPlatformCount)) {
    return std::unexpected(fmt::format("unknown platform {}", platform));
  }
  in.kind = static_cast<DeviceKind>(kind);
  in.platform = static_cast<Platform>(platform);
  in.version = static_cast<uint64_t>(version);
  return in;
}

}  // namespace pushhub::storage
