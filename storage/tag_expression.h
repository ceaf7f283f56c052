#pragma once

#include <cstddef>
#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pushhub::storage {

// A parsed tag expression: tags combined with && (and), || (or), ! (not) and parentheses, with
// precedence ! > && > || and whitespace ignored between tokens. Tags are Azure's
// ([A-Za-z0-9_@#.:-], up to 120 characters) or the built-ins $InstallationId:{id} and
// $UserId:{id} (braces optional). Unlike Azure there is no limit on the number of tags.
//
// Chains of the same operator are flattened (a && b && c is one node with three children) and
// double negations removed, so evaluation sees the expression's real shape.
struct TagExpressionNode {
  enum class Kind { kTag, kInstallationId, kUserId, kAnd, kOr, kNot };
  Kind kind = Kind::kTag;
  std::string value;  // the tag, installation id or user id for the leaf kinds
  std::vector<TagExpressionNode> children;
};

struct TagExpressionError {
  enum class Code { kEmpty, kSyntax, kTooDeep };
  Code code = Code::kSyntax;
  size_t position = 0;  // 1-based character position where the problem was found
  std::string message;  // "position 7: expected a tag after '&&'"
};

class TagExpression {
 public:
  static constexpr size_t kMaxDepth = 200;

  // Fails with kEmpty on an empty or blank expression (the caller decides whether that means
  // broadcast), kSyntax naming the position and what was expected, kTooDeep past kMaxDepth
  // nested parentheses or negations.
  static std::expected<TagExpression, TagExpressionError> parse(std::string_view text);

  const TagExpressionNode& root() const { return root_; }
  // Every distinct plain tag named (not the built-ins), in first-appearance order.
  std::vector<std::string> tags() const;
  // Number of leaves (tags and built-ins), as written.
  size_t leafCount() const;

  // Direct evaluation against one device: `has_tag` answers for plain tags (including template
  // names); the built-ins compare with `installation_id` and `user_id`. The reference semantics
  // the bitmap evaluation must agree with.
  bool matches(const std::function<bool(std::string_view)>& has_tag,
               std::string_view installation_id, std::string_view user_id) const;

  // The expression written back in a canonical form, fully parenthesised.
  std::string toString() const;

 private:
  explicit TagExpression(TagExpressionNode root) : root_(std::move(root)) {}
  TagExpressionNode root_;
};

}  // namespace pushhub::storage
