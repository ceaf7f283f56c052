#include "hub/render.h"

#include <fmt/format.h>

#include "common/text.h"
#include "common/time.h"

namespace pushhub::hub {
namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Skips one JSON string starting at text[i] == '"'; returns the index after it, or npos.
size_t skipString(std::string_view text, size_t i) {
  for (++i; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Skips one JSON value; returns the index after it, or npos.
size_t skipValue(std::string_view text, size_t i) {
  while (i < text.size() && isSpace(text[i])) ++i;
  if (i >= text.size()) return std::string_view::npos;
  if (text[i] == '"') return skipString(text, i);
  if (text[i] == '{' || text[i] == '[') {
    size_t depth = 0;
    for (; i < text.size(); ++i) {
      const char c = text[i];
      if (c == '"') {
        i = skipString(text, i);
        if (i == std::string_view::npos) return i;
        --i;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return std::string_view::npos;
  }
  while (i < text.size() && text[i] != ',' && text[i] != '}' && text[i] != ']' &&
         !isSpace(text[i])) {
    ++i;
  }
  return i;
}

}  // namespace

std::optional<std::string_view> jsonTopLevelMember(std::string_view json, std::string_view key) {
  size_t i = 0;
  while (i < json.size() && isSpace(json[i])) ++i;
  if (i >= json.size() || json[i] != '{') return std::nullopt;
  ++i;
  for (;;) {
    while (i < json.size() && isSpace(json[i])) ++i;
    if (i >= json.size() || json[i] != '"') return std::nullopt;
    const size_t key_end = skipString(json, i);
    if (key_end == std::string_view::npos) return std::nullopt;
    const std::string_view name = json.substr(i + 1, key_end - i - 2);
    i = key_end;
    while (i < json.size() && isSpace(json[i])) ++i;
    if (i >= json.size() || json[i] != ':') return std::nullopt;
    ++i;
    while (i < json.size() && isSpace(json[i])) ++i;
    const size_t value_end = skipValue(json, i);
    if (value_end == std::string_view::npos) return std::nullopt;
    if (name == key) return json.substr(i, value_end - i);
    i = value_end;
    while (i < json.size() && isSpace(json[i])) ++i;
    if (i >= json.size() || json[i] != ',') return std::nullopt;
    ++i;
  }
}

std::optional<int64_t> parseApnsExpiry(std::string_view text) {
  while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
      text.size() <= 12) {
    int64_t seconds = 0;
    for (const char c : text) seconds = seconds * 10 + (c - '0');
    return seconds;
  }
  if (auto millis = parseIso8601(text)) return *millis / 1000;
  return std::nullopt;
}

std::expected<Renderer, std::string> Renderer::create(NotificationContent content,
                                                      RenderOptions options) {
  Renderer renderer(std::move(content), std::move(options));
  if (renderer.content_.kind == NotificationContent::Kind::kNative &&
      renderer.content_.platform == storage::Platform::kFcmV1) {
    // Azure's fcmv1 format: {"message":{…}}; the connector adds the target.
    auto message = jsonTopLevelMember(renderer.content_.body, "message");
    if (!message || !message->starts_with('{')) {
      return std::unexpected("an fcmv1 notification needs a \"message\" object");
    }
    renderer.fcm_message_ = std::string(*message);
  }
  return renderer;
}

std::string_view Renderer::header(std::string_view name) const {
  for (const auto& [n, v] : content_.headers) {
    if (n == name) return v;
  }
  return {};
}

const std::expected<std::string, TemplateError>& Renderer::rendered(std::string_view body,
                                                                    TemplateFormat format) {
  auto& cache = compiled_[static_cast<size_t>(format)];
  auto it = cache.find(body);
  if (it == cache.end()) {
    // A template's output depends on the notification's properties alone: rendered once here,
    // copied for every device that has the same body.
    auto compiled = Template::compile(body, format);
    std::expected<std::string, TemplateError> text =
        compiled ? std::expected<std::string, TemplateError>(compiled->render(content_.properties))
                 : std::unexpected(compiled.error());
    it = cache.emplace(std::string(body), std::move(text)).first;
  }
  return it->second;
}

void Renderer::render(const storage::Installation& installation, const TemplateFilter* selected,
                      std::vector<Delivery>& out, std::vector<RenderFailure>& failures) {
  if (installation.expired_push_channel) return;
  if (content_.kind == NotificationContent::Kind::kNative) {
    if (installation.platform == content_.platform) native(installation, out);
    return;
  }
  for (const auto& [name, t] : installation.templates) {
    if (selected != nullptr && !(*selected)(name, t)) continue;
    fromTemplate(installation, name, t, out, failures);
  }
}

namespace {

void applyApnsHeaders(connectors::ApnsNotification& n,
                      const std::function<std::string(std::string_view)>& header) {
  if (auto v = header("apns-push-type"); !v.empty()) n.push_type = v;
  if (auto v = header("apns-priority"); v == "10" || v == "5" || v == "1") {
    n.priority = v[0] == '1' && v.size() == 2 ? 10 : v[0] - '0';
  }
  if (auto v = parseApnsExpiry(header("apns-expiration"))) n.expiration = *v;
  n.collapse_id = header("apns-collapse-id");
  n.apns_id = header("apns-id");
}

}  // namespace

void Renderer::native(const storage::Installation& installation, std::vector<Delivery>& out) {
  switch (installation.platform) {
    case storage::Platform::kApns: {
      connectors::ApnsNotification n;
      n.device_token = installation.push_channel;
      n.payload = content_.body;
      n.topic = options_.apns_topic;
      applyApnsHeaders(n, [this](std::string_view name) { return std::string(header(name)); });
      out.emplace_back(std::move(n));
      return;
    }
    case storage::Platform::kFcmV1:
      out.emplace_back(connectors::FcmNotification{installation.push_channel, fcm_message_, false});
      return;
    case storage::Platform::kWns: {
      connectors::WnsNotification n;
      n.channel_uri = installation.push_channel;
      n.payload = content_.body;
      n.type = std::string(header("x-wns-type"));
      n.tag = std::string(header("x-wns-tag"));
      n.cache_policy = std::string(header("x-wns-cache-policy"));
      n.request_for_status = header("x-wns-requestforstatus") == "true";
      if (auto ttl = parseApnsExpiry(header("x-wns-ttl"))) n.ttl = *ttl;
      out.emplace_back(std::move(n));
      return;
    }
    default: return;  // platforms without a connector yet
  }
}

namespace {

// What of an FCM template body is the message: {"message":{…}} (FCM v1 templates) or a legacy
// GCM body used as the message itself.
std::string_view fcmTemplateMessage(std::string_view body) {
  const auto inner = jsonTopLevelMember(body, "message");
  return inner && inner->starts_with('{') ? *inner : body;
}

TemplateFormat wnsBodyFormat(std::string_view type) {
  return type == "wns/raw" ? TemplateFormat::kText : TemplateFormat::kXml;
}

}  // namespace

std::expected<void, storage::InvalidField> checkTemplates(
    const storage::Installation& installation) {
  for (const auto& [name, t] : installation.templates) {
    const std::string field = "templates/" + name;
    const auto check = [&](std::string_view text, TemplateFormat format, const std::string& where,
                           size_t offset) -> std::expected<void, storage::InvalidField> {
      auto compiled = Template::compile(text, format);
      if (compiled) return {};
      return std::unexpected(storage::InvalidField{
          where, fmt::format("position {}: {}", compiled.error().position + offset,
                             compiled.error().message)});
    };
    std::string wns_type;
    for (const auto& [header_name, value] : t.headers) {
      if (auto ok = check(value, TemplateFormat::kText, field + "/headers/" + header_name, 0); !ok)
        return ok;
      if (equalsIgnoreCase(header_name, "x-wns-type")) wns_type = value;
    }
    if (!t.expiry.empty()) {
      if (auto ok = check(t.expiry, TemplateFormat::kText, field + "/expiry", 0); !ok) return ok;
    }
    switch (installation.platform) {
      case storage::Platform::kFcmV1: {
        const std::string_view message = fcmTemplateMessage(t.body);
        const size_t offset = static_cast<size_t>(message.data() - t.body.data());
        if (auto ok = check(message, TemplateFormat::kJson, field + "/body", offset); !ok)
          return ok;
        break;
      }
      case storage::Platform::kWns:
        if (auto ok = check(t.body, wnsBodyFormat(wns_type), field + "/body", 0); !ok) return ok;
        break;
      default:
        if (auto ok = check(t.body, TemplateFormat::kJson, field + "/body", 0); !ok) return ok;
    }
  }
  return {};
}

void Renderer::fromTemplate(const storage::Installation& installation, std::string_view name,
                            const storage::InstallationTemplate& t, std::vector<Delivery>& out,
                            std::vector<RenderFailure>& failures) {
  const auto fail = [&](const std::string& why) {
    failures.push_back(RenderFailure{std::string(name), why});
  };
  const auto renderText = [&](std::string_view text) -> std::optional<std::string> {
    const auto& rendered_text = rendered(text, TemplateFormat::kText);
    if (!rendered_text) return std::nullopt;
    return *rendered_text;
  };
  switch (installation.platform) {
    case storage::Platform::kApns: {
      const auto& body = rendered(t.body, TemplateFormat::kJson);
      if (!body) return fail("template body: " + body.error().message);
      connectors::ApnsNotification n;
      n.device_token = installation.push_channel;
      n.payload = *body;
      n.topic = options_.apns_topic;
      // The template's headers (a registration's ApnsHeaders and Priority), rendered, over the
      // ones the notification was sent with.
      bool header_failed = false;
      applyApnsHeaders(n, [&](std::string_view wanted) {
        for (const auto& [header_name, value] : t.headers) {
          if (!equalsIgnoreCase(header_name, wanted)) continue;
          auto rendered = renderText(value);
          header_failed = header_failed || !rendered;
          return rendered.value_or(std::string());
        }
        return std::string(header(wanted));
      });
      if (header_failed) return fail("a template header is malformed");
      if (!t.expiry.empty()) {
        auto expiry = renderText(t.expiry);
        if (!expiry) return fail("template expiry is malformed");
        if (auto seconds = parseApnsExpiry(*expiry)) n.expiration = *seconds;
      }
      out.emplace_back(std::move(n));
      return;
    }
    case storage::Platform::kFcmV1: {
      const auto& body = rendered(fcmTemplateMessage(t.body), TemplateFormat::kJson);
      if (!body) return fail("template body: " + body.error().message);
      out.emplace_back(connectors::FcmNotification{installation.push_channel, *body, false});
      return;
    }
    case storage::Platform::kWns: {
      connectors::WnsNotification n;
      n.channel_uri = installation.push_channel;
      for (const auto& [header_name, value] : t.headers) {
        auto rendered = renderText(value);
        if (!rendered) return fail("template header " + header_name + " is malformed");
        std::string lower = header_name;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower == "x-wns-type") n.type = *rendered;
        if (lower == "x-wns-tag") n.tag = *rendered;
        if (lower == "x-wns-cache-policy") n.cache_policy = *rendered;
        if (lower == "x-wns-ttl") {
          if (auto ttl = parseApnsExpiry(*rendered)) n.ttl = *ttl;
        }
      }
      const auto& body = rendered(t.body, wnsBodyFormat(n.type));
      if (!body) return fail("template body: " + body.error().message);
      n.payload = *body;
      out.emplace_back(std::move(n));
      return;
    }
    default: return;
  }
}

}  // namespace pushhub::hub
