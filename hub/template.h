#pragma once

// Azure Notification Hubs' template language (../shared/reference/notification-hubs-api.md §4):
// a template body (JSON, or XML for WNS) whose string values carry expressions —
//   $(prop)  $(prop, n)  .(prop, n)  %(prop)  #(prop)  and {'literal' + $(prop) + …}
// — rendered per device from a notification's properties. Property names are case-insensitive,
// a missing property is empty, output is escaped for where it lands (JSON string, JSON number
// for #(), XML). A template is compiled once and rendered many times: rendering does no parsing.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pushhub::hub {

enum class TemplateFormat {
  kJson,  // APNs, FCM, …: expressions in string values
  kXml,   // WNS toast/tile/badge: expressions in attribute values and text nodes
  kText,  // one value (a header, an APNs expiry): the whole text is an expression or a constant
};

struct TemplateError {
  size_t position = 0;  // 1-based byte offset into the body
  std::string message;
};

// A notification's properties, looked up case-insensitively.
class TemplateProperties {
 public:
  void set(std::string_view name, std::string value);
  // Empty when missing.
  std::string_view get(std::string_view name) const;
  size_t size() const { return values_.size(); }
  // Every property, by lowercase name.
  const std::unordered_map<std::string, std::string>& values() const { return values_; }

 private:
  std::unordered_map<std::string, std::string> values_;  // lowercase names
};

class Template {
 public:
  static std::expected<Template, TemplateError> compile(std::string_view body,
                                                        TemplateFormat format);

  // Whether `text` is well-formed JSON or XML as the compiler reads it, expressions aside (for
  // checking rendered output, which may well contain "$(" as text).
  static std::optional<TemplateError> checkWellFormed(std::string_view text, TemplateFormat format);

  std::string render(const TemplateProperties& properties) const;
  // Appends, for callers that reuse a buffer.
  void renderTo(const TemplateProperties& properties, std::string& out) const;
  // Whether any expression is present (a constant template renders to itself).
  bool hasExpressions() const { return expressions_ > 0; }

  struct Term {
    enum class Kind : uint8_t { kLiteral, kValue, kClip, kEllipsis, kUri, kNumber };
    Kind kind = Kind::kLiteral;
    std::string text;  // the literal, or the property name (lowercase)
    size_t limit = 0;  // kClip, kEllipsis
  };
  enum class Context : uint8_t { kJsonString, kXml, kText };
  struct Segment {
    std::string literal;      // copied as is when `terms` is empty
    std::vector<Term> terms;  // an expression: the terms' values concatenated
    Context context = Context::kText;
  };

 private:
  std::vector<Segment> segments_;
  size_t expressions_ = 0;
  friend class TemplateCompiler;
};

}  // namespace pushhub::hub
