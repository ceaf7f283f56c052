#pragma once

// From one notification and one installation to what the connectors send: a native
// notification goes to installations of its platform as it is (with its pass-through headers);
// a template notification goes through each of the installation's templates that the target
// selects, rendered with the notification's properties. Templates are compiled once per
// notification (cached by body), never parsed per device.

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "connectors/apns.h"
#include "connectors/fcm.h"
#include "connectors/wns.h"
#include "hub/template.h"
#include "storage/installation.h"

namespace pushhub::hub {

struct NotificationContent {
  enum class Kind { kTemplate, kNative };
  Kind kind = Kind::kTemplate;
  storage::Platform platform = storage::Platform::kApns;  // kNative: whose payload it is
  std::string body;                                       // kNative: the payload
  TemplateProperties properties;                          // kTemplate
  // Pass-through headers of the send request (apns-*, x-wns-*), lowercase names.
  std::vector<std::pair<std::string, std::string>> headers;
};

using Delivery = std::variant<connectors::ApnsNotification, connectors::FcmNotification,
                              connectors::WnsNotification>;

// A delivery that could not be made (a template that does not compile, an unusable payload):
// counted, not sent.
struct RenderFailure {
  std::string template_name;  // empty for native notifications
  std::string reason;
};

struct RenderOptions {
  std::string apns_topic;  // the hub's bundle id
};

class Renderer {
 public:
  // Fails when a native payload is unusable for its platform (e.g. an fcmv1 body without a
  // "message" object).
  static std::expected<Renderer, std::string> create(NotificationContent content,
                                                     RenderOptions options);

  // `template_selected(name, template)`: whether a template of this installation is addressed
  // (the tag expression matched through its tags or the installation's); null: all are.
  using TemplateFilter =
      std::function<bool(std::string_view name, const storage::InstallationTemplate&)>;
  void render(const storage::Installation& installation, const TemplateFilter* selected,
              std::vector<Delivery>& out, std::vector<RenderFailure>& failures);

  size_t compiledTemplates() const {
    size_t n = 0;
    for (const auto& cache : compiled_) n += cache.size();
    return n;
  }

 private:
  Renderer(NotificationContent content, RenderOptions options)
      : content_(std::move(content)), options_(std::move(options)) {}
  // The template `body` compiled and rendered with this notification's properties (once per
  // body), or why it does not compile.
  const std::expected<std::string, TemplateError>& rendered(std::string_view body,
                                                            TemplateFormat format);
  void native(const storage::Installation& installation, std::vector<Delivery>& out);
  void fromTemplate(const storage::Installation& installation, std::string_view name,
                    const storage::InstallationTemplate& t, std::vector<Delivery>& out,
                    std::vector<RenderFailure>& failures);
  std::string_view header(std::string_view name) const;

  NotificationContent content_;
  RenderOptions options_;
  std::string fcm_message_;  // kNative FCM: the "message" object of the body
  // By format, then body; looked up by string_view so that a device's template body is hashed,
  // never copied.
  struct BodyHash {
    using is_transparent = void;
    size_t operator()(std::string_view body) const { return std::hash<std::string_view>{}(body); }
  };
  std::array<std::unordered_map<std::string, std::expected<std::string, TemplateError>, BodyHash,
                                std::equal_to<>>,
             3>
      compiled_;
};

// The span of a top-level member's value in a JSON object text (no copy, no full parse), or
// nullopt when the text is not an object or has no such member.
std::optional<std::string_view> jsonTopLevelMember(std::string_view json, std::string_view key);

// Compiles every template of `installation` the way a send compiles it (the body as JSON, XML
// or text by platform and X-WNS-Type, each header value and the APNs expiry as text), so that a
// template that could never render is refused when it is registered rather than failing every
// send. The error names the field ("templates/t1/body") and the 1-based byte position.
std::expected<void, storage::InvalidField> checkTemplates(
    const storage::Installation& installation);

// An APNs expiry as templates give it (a W3C date, or unix seconds) → unix seconds.
std::optional<int64_t> parseApnsExpiry(std::string_view text);

}  // namespace pushhub::hub
