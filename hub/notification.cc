#include "hub/notification.h"

#include <fmt/format.h>

#include <msgpack.hpp>

#include <algorithm>
#include <cctype>

#include "common/text.h"
#include "connectors/apns_protocol.h"
#include "connectors/fcm_protocol.h"
#include "connectors/wns.h"
#include "storage/msgpack_reader.h"
#include "storage/tag.h"
#include "storage/tag_expression.h"

namespace pushhub::hub {

namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

void packCounts(Packer& pk, const std::vector<NotificationStatus::Count>& counts) {
  pk.pack_array(static_cast<uint32_t>(counts.size()));
  for (const auto& c : counts) {
    pk.pack_array(3);
    pk.pack(static_cast<uint8_t>(c.platform));
    pk.pack(static_cast<uint8_t>(c.outcome));
    pk.pack(c.n);
  }
}

bool readCounts(storage::MsgpackReader& r, const msgpack::object& o,
                std::vector<NotificationStatus::Count>& out) {
  if (o.type != msgpack::type::ARRAY) return r.fail("counts is not an array");
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const auto& e = o.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 3) {
      return r.fail("a count is not a 3-element array");
    }
    int64_t platform = 0, outcome = 0, n = 0;
    if (!r.integer(e.via.array.ptr[0], platform, "count platform") ||
        !r.integer(e.via.array.ptr[1], outcome, "count outcome") ||
        !r.integer(e.via.array.ptr[2], n, "count")) {
      return false;
    }
    if (platform < 0 || platform >= static_cast<int64_t>(storage::kPlatformCount) || outcome < 0 ||
        outcome >= static_cast<int64_t>(connectors::kPnsOutcomeCount) || n < 0) {
      return r.fail(fmt::format("count ({}, {}, {}) is out of range", platform, outcome, n));
    }
    out.push_back({static_cast<storage::Platform>(platform),
                   static_cast<connectors::PnsOutcome>(outcome), static_cast<uint64_t>(n)});
  }
  return true;
}

// The array of a record whose first field is its format number, checked.
std::expected<const msgpack::object*, std::string> recordFields(
    const msgpack::object_handle& handle, std::string_view what, int64_t format_expected,
    uint32_t fields) {
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size == 0) {
    return std::unexpected(fmt::format("not a {} record (expected an array)", what));
  }
  std::string error;
  storage::MsgpackReader r{error};
  int64_t format = 0;
  if (!r.integer(o.via.array.ptr[0], format, "record format")) return std::unexpected(error);
  if (format != format_expected) {
    return std::unexpected(
        fmt::format("{} record format {} is not known to this build", what, format));
  }
  if (o.via.array.size != fields) {
    return std::unexpected(fmt::format("{} record has {} fields, format {} has {}", what,
                                       o.via.array.size, format, fields));
  }
  return o.via.array.ptr;
}

std::expected<msgpack::object_handle, std::string> unpack(std::string_view bytes) {
  try {
    return msgpack::unpack(bytes.data(), bytes.size());
  } catch (const std::exception& e) {
    return std::unexpected(fmt::format("not a msgpack record: {}", e.what()));
  }
}

}  // namespace

std::string Notification::formatName() const {
  if (content.kind == NotificationContent::Kind::kTemplate) return "template";
  switch (content.platform) {
    case storage::Platform::kApns: return "apple";
    case storage::Platform::kFcmV1: return "fcmv1";
    case storage::Platform::kWns: return "windows";
    default: return std::string(storage::platformName(content.platform));
  }
}

std::expected<void, std::string> parseFormat(std::string_view format,
                                             NotificationContent& content) {
  if (equalsIgnoreCase(format, "template")) {
    content.kind = NotificationContent::Kind::kTemplate;
    return {};
  }
  content.kind = NotificationContent::Kind::kNative;
  if (equalsIgnoreCase(format, "apple")) {
    content.platform = storage::Platform::kApns;
  } else if (equalsIgnoreCase(format, "fcmv1") || equalsIgnoreCase(format, "gcm")) {
    content.platform = storage::Platform::kFcmV1;
  } else if (equalsIgnoreCase(format, "windows")) {
    content.platform = storage::Platform::kWns;
  } else {
    return std::unexpected(fmt::format(
        "format \"{}\" is not supported (template, apple, fcmv1, gcm, windows)", format));
  }
  return {};
}

namespace {

std::string_view headerOf(const NotificationContent& content, std::string_view name) {
  for (const auto& [n, v] : content.headers) {
    if (equalsIgnoreCase(n, name)) return v;
  }
  return {};
}

bool isJsonObjectText(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  return text.starts_with('{');
}

}  // namespace

std::expected<void, std::string> checkNativeBody(const NotificationContent& content) {
  const std::string_view body = content.body;
  const auto wellFormed = [](std::string_view text,
                             TemplateFormat format) -> std::expected<void, std::string> {
    if (auto problem = Template::checkWellFormed(text, format)) {
      return std::unexpected(fmt::format("not well-formed {} at byte {}: {}",
                                         format == TemplateFormat::kXml ? "XML" : "JSON",
                                         problem->position, problem->message));
    }
    return {};
  };
  switch (content.platform) {
    case storage::Platform::kApns: {
      const size_t limit = headerOf(content, "apns-push-type") == "voip"
                               ? connectors::kApnsMaxVoipPayload
                               : connectors::kApnsMaxPayload;
      if (body.size() > limit) {
        return std::unexpected(fmt::format("{} bytes, over APNs' limit of {}", body.size(), limit));
      }
      if (auto ok = wellFormed(body, TemplateFormat::kJson); !ok) return ok;
      if (!isJsonObjectText(body)) return std::unexpected("an APNs payload is a JSON object");
      return {};
    }
    case storage::Platform::kFcmV1: {
      // Renderer::create has found the "message" object; its size is what FCM limits.
      const auto message = jsonTopLevelMember(body, "message");
      if (auto ok = wellFormed(body, TemplateFormat::kJson); !ok) return ok;
      const auto size = connectors::fcmPayloadSize(*message, connectors::kFcmMaxMessage);
      if (!size) return std::unexpected("the FCM message is not a JSON object");
      if (*size > connectors::kFcmMaxMessage) {
        return std::unexpected(fmt::format("a message of {} bytes, over FCM's limit of {}", *size,
                                           connectors::kFcmMaxMessage));
      }
      return {};
    }
    case storage::Platform::kWns: {
      if (body.size() > connectors::kWnsMaxPayload) {
        return std::unexpected(fmt::format("{} bytes, over WNS's limit of {}", body.size(),
                                           connectors::kWnsMaxPayload));
      }
      std::string_view type = headerOf(content, "x-wns-type");
      if (type.empty()) return {};  // typed by its content: raw unless it is a toast, tile or badge
      if (type == "wns/raw") return {};
      return wellFormed(body, TemplateFormat::kXml);
    }
    default: return {};
  }
}

std::expected<void, std::string> validateNotification(const Notification& n,
                                                      size_t max_tag_length) {
  if (n.hub.empty()) return std::unexpected("hub: missing");
  const bool native = n.content.kind == NotificationContent::Kind::kNative;
  if (native && n.content.body.empty()) return std::unexpected("body: missing");
  if (!native && n.content.properties.size() == 0 && !n.content.body.empty()) {
    // A template send carries its properties; a body is what native formats carry.
    return std::unexpected("body: a template notification carries properties, not a body");
  }
  switch (n.target) {
    case TargetKind::kBroadcast: break;
    case TargetKind::kExpression: {
      auto parsed = storage::TagExpression::parse(n.expression);
      if (!parsed) return std::unexpected("tags: " + parsed.error().message);
      // A tag no installation can have is a mistake, not a send to nobody.
      for (const auto& tag : parsed->tags()) {
        if (!storage::isValidTag(tag, max_tag_length)) {
          return std::unexpected(fmt::format(
              "tags: a tag of {} characters; tags have 1 to {} of A-Z a-z 0-9 _ @ # . : -",
              tag.size(), max_tag_length));
        }
      }
      break;
    }
    case TargetKind::kHandles:
      if (!native) return std::unexpected("format: a direct send needs a native format");
      if (n.handles.empty()) return std::unexpected("handles: a direct send needs a handle");
      if (n.handles.size() > kMaxDirectHandles) {
        return std::unexpected(
            fmt::format("handles: {} given, at most {}", n.handles.size(), kMaxDirectHandles));
      }
      for (size_t i = 0; i < n.handles.size(); ++i) {
        if (n.handles[i].empty()) return std::unexpected(fmt::format("handles/{}: empty", i));
      }
      break;
  }
  if (native) {
    if (auto renderer = Renderer::create(n.content, {}); !renderer) {
      return std::unexpected("body: " + renderer.error());
    }
    if (auto ok = checkNativeBody(n.content); !ok) return std::unexpected("body: " + ok.error());
  }
  for (const auto& [name, value] : n.content.headers) {
    if (name.empty()) return std::unexpected("headers: a header without a name");
  }
  if (n.expires_at != 0 && n.expires_at <= n.enqueue_time) {
    return std::unexpected("timeToLive: must be positive");
  }
  return {};
}

std::string encodeNotification(const Notification& n) {
  msgpack::sbuffer buffer(256);
  Packer pk(buffer);
  pk.pack_array(15);
  pk.pack(kNotificationRecordFormat);
  pk.pack(n.hub);
  pk.pack(n.id);
  pk.pack(n.idempotency_key);
  pk.pack(static_cast<uint8_t>(n.content.kind));
  pk.pack(static_cast<uint8_t>(n.content.platform));
  pk.pack(n.content.body);
  pk.pack_map(static_cast<uint32_t>(n.content.properties.size()));
  for (const auto& [name, value] : n.content.properties.values()) {
    pk.pack(name);
    pk.pack(value);
  }
  pk.pack_array(static_cast<uint32_t>(n.content.headers.size()));
  for (const auto& [name, value] : n.content.headers) {
    pk.pack_array(2);
    pk.pack(name);
    pk.pack(value);
  }
  pk.pack(static_cast<uint8_t>(n.target));
  pk.pack(n.target == TargetKind::kExpression ? n.expression : std::string());
  pk.pack(n.handles);
  pk.pack(n.enqueue_time);
  pk.pack_array(2);
  pk.pack(n.scheduled_for);
  pk.pack(n.expires_at);
  pk.pack(n.max_targets);
  return std::string(buffer.data(), buffer.size());
}

std::expected<Notification, std::string> decodeNotification(std::string_view bytes) {
  auto handle = unpack(bytes);
  if (!handle) return std::unexpected(handle.error());
  // Format 1 had 14 fields; format 2 appended max_targets.
  const bool format1 =
      handle->get().type == msgpack::type::ARRAY && handle->get().via.array.size == 14;
  auto fields = format1 ? recordFields(*handle, "notification", 1, 14)
                        : recordFields(*handle, "notification", kNotificationRecordFormat, 15);
  if (!fields) return std::unexpected(fields.error());
  const msgpack::object* f = *fields;
  std::string error;
  storage::MsgpackReader r{error};
  Notification n;
  int64_t kind = 0, platform = 0, target = 0;
  bool ok = r.string(f[1], n.hub, "hub") && r.string(f[2], n.id, "id") &&
            r.string(f[3], n.idempotency_key, "idempotency key") && r.integer(f[4], kind, "kind") &&
            r.integer(f[5], platform, "platform") && r.string(f[6], n.content.body, "body");
  std::map<std::string, std::string> properties;
  ok = ok && r.stringMap(f[7], properties, "properties");
  for (auto& [name, value] : properties) n.content.properties.set(name, std::move(value));
  if (ok && f[8].type != msgpack::type::ARRAY) ok = r.fail("headers is not an array");
  for (uint32_t i = 0; ok && i < f[8].via.array.size; ++i) {
    const auto& h = f[8].via.array.ptr[i];
    if (h.type != msgpack::type::ARRAY || h.via.array.size != 2) {
      ok = r.fail("a header is not a 2-element array");
      break;
    }
    auto& [name, value] = n.content.headers.emplace_back();
    ok = r.string(h.via.array.ptr[0], name, "header name") &&
         r.string(h.via.array.ptr[1], value, "header value");
  }
  ok = ok && r.integer(f[9], target, "target") && r.string(f[10], n.expression, "expression") &&
       r.strings(f[11], n.handles, "handles") && r.integer(f[12], n.enqueue_time, "enqueue time");
  if (ok && (f[13].type != msgpack::type::ARRAY || f[13].via.array.size != 2)) {
    ok = r.fail("times is not a 2-element array");
  }
  ok = ok && r.integer(f[13].via.array.ptr[0], n.scheduled_for, "schedule time") &&
       r.integer(f[13].via.array.ptr[1], n.expires_at, "expiry");
  int64_t max_targets = 0;
  ok = ok && (format1 || r.integer(f[14], max_targets, "max targets"));
  if (!ok) return std::unexpected(error);
  if (max_targets < 0 || max_targets > 1'000'000'000) {
    return std::unexpected(fmt::format("max targets {} is out of range", max_targets));
  }
  n.max_targets = static_cast<uint32_t>(max_targets);
  if (kind < 0 || kind > 1) return std::unexpected(fmt::format("unknown content kind {}", kind));
  if (platform < 0 || platform >= static_cast<int64_t>(storage::kPlatformCount)) {
    return std::unexpected(fmt::format("unknown platform {}", platform));
  }
  if (target < 0 || target > 2) return std::unexpected(fmt::format("unknown target {}", target));
  n.content.kind = static_cast<NotificationContent::Kind>(kind);
  n.content.platform = static_cast<storage::Platform>(platform);
  n.target = static_cast<TargetKind>(target);
  return n;
}

std::string encodeStatus(const NotificationStatus& s) {
  msgpack::sbuffer buffer(64);
  Packer pk(buffer);
  pk.pack_array(6);
  pk.pack(2);
  pk.pack(static_cast<uint8_t>(s.state));
  pk.pack(s.start_time);
  pk.pack(s.end_time);
  packCounts(pk, s.counts);
  pk.pack(s.resends);
  return std::string(buffer.data(), buffer.size());
}

std::expected<NotificationStatus, std::string> decodeStatus(std::string_view bytes) {
  auto handle = unpack(bytes);
  if (!handle) return std::unexpected(handle.error());
  const msgpack::object& o = handle->get();
  const bool format1 = o.type == msgpack::type::ARRAY && o.via.array.size == 5;
  auto fields = format1 ? recordFields(*handle, "notification status", 1, 5)
                        : recordFields(*handle, "notification status", 2, 6);
  if (!fields) return std::unexpected(fields.error());
  const msgpack::object* f = *fields;
  std::string error;
  storage::MsgpackReader r{error};
  NotificationStatus s;
  int64_t state = 0;
  if (!(r.integer(f[1], state, "state") && r.integer(f[2], s.start_time, "start time") &&
        r.integer(f[3], s.end_time, "end time") && readCounts(r, f[4], s.counts))) {
    return std::unexpected(error);
  }
  if (!format1) {
    int64_t resends = 0;
    if (!r.integer(f[5], resends, "resends")) return std::unexpected(error);
    s.resends = static_cast<uint64_t>(std::max<int64_t>(resends, 0));
  }
  if (state < 0 || state > static_cast<int64_t>(NotificationState::kScheduled)) {
    return std::unexpected(fmt::format("unknown state {}", state));
  }
  s.state = static_cast<NotificationState>(state);
  return s;
}

std::string encodeCheckpoint(const Checkpoint& c) {
  msgpack::sbuffer buffer(64);
  Packer pk(buffer);
  pk.pack_array(5);
  pk.pack(1);
  pk.pack(c.next);
  pk.pack(c.finished);
  pk.pack(c.pending);
  packCounts(pk, c.counts);
  return std::string(buffer.data(), buffer.size());
}

std::expected<Checkpoint, std::string> decodeCheckpoint(std::string_view bytes) {
  auto handle = unpack(bytes);
  if (!handle) return std::unexpected(handle.error());
  auto fields = recordFields(*handle, "checkpoint", 1, 5);
  if (!fields) return std::unexpected(fields.error());
  const msgpack::object* f = *fields;
  std::string error;
  storage::MsgpackReader r{error};
  Checkpoint c;
  int64_t next = 0;
  bool ok = r.integer(f[1], next, "next") && r.boolean(f[2], c.finished, "finished");
  if (ok && f[3].type != msgpack::type::ARRAY) ok = r.fail("pending is not an array");
  for (uint32_t i = 0; ok && i < f[3].via.array.size; ++i) {
    int64_t v = 0;
    ok = r.integer(f[3].via.array.ptr[i], v, "pending");
    if (ok && (v < 0 || v > UINT32_MAX)) ok = r.fail("pending is out of range");
    c.pending.push_back(static_cast<uint32_t>(v));
  }
  ok = ok && readCounts(r, f[4], c.counts);
  if (!ok) return std::unexpected(error);
  if (next < 0 || next > static_cast<int64_t>(UINT32_MAX) + 1) {
    return std::unexpected(fmt::format("next {} is out of range", next));
  }
  c.next = static_cast<uint32_t>(std::min<int64_t>(next, UINT32_MAX));
  return c;
}

}  // namespace pushhub::hub
