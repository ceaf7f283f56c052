#include "storage/tag_expression.h"

#include <fmt/format.h>

#include <algorithm>

#include "storage/tag.h"

namespace pushhub::storage {
namespace {

using Node = TagExpressionNode;
using Kind = TagExpressionNode::Kind;

bool isOperatorChar(char c) { return c == '(' || c == ')' || c == '&' || c == '|' || c == '!'; }
bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  std::expected<Node, TagExpressionError> parseAll() {
    skipSpace();
    if (pos_ == text_.size()) {
      return fail(TagExpressionError::Code::kEmpty, "the tag expression is empty");
    }
    auto node = parseOr(0);
    if (!node) return node;
    skipSpace();
    if (pos_ < text_.size()) {
      if (text_[pos_] == ')') return syntax("')' without a matching '('");
      return syntax(fmt::format("expected && or || before '{}'", nextToken()));
    }
    return node;
  }

 private:
  std::unexpected<TagExpressionError> fail(TagExpressionError::Code code, std::string what) {
    return std::unexpected(
        TagExpressionError{code, pos_ + 1, fmt::format("position {}: {}", pos_ + 1, what)});
  }
  std::unexpected<TagExpressionError> syntax(std::string what) {
    return fail(TagExpressionError::Code::kSyntax, std::move(what));
  }

  void skipSpace() {
    while (pos_ < text_.size() && isSpace(text_[pos_])) ++pos_;
  }

  std::string_view nextToken() const {
    size_t end = pos_;
    while (end < text_.size() && !isSpace(text_[end]) && !isOperatorChar(text_[end])) ++end;
    if (end == pos_) end = std::min(text_.size(), pos_ + 1);
    return text_.substr(pos_, end - pos_);
  }

  // Consumes `op` ("&&" or "||") if it is next; a lone '&' or '|' is an error.
  std::expected<bool, TagExpressionError> take(char op) {
    skipSpace();
    if (pos_ >= text_.size() || text_[pos_] != op) return false;
    if (pos_ + 1 >= text_.size() || text_[pos_ + 1] != op) {
      return syntax(fmt::format("'{}' must be doubled: '{}{}'", op, op, op));
    }
    pos_ += 2;
    return true;
  }

  static void append(Node& parent, Node child) {
    if (child.kind == parent.kind) {
      for (auto& grandchild : child.children) parent.children.push_back(std::move(grandchild));
    } else {
      parent.children.push_back(std::move(child));
    }
  }

  std::expected<Node, TagExpressionError> parseOr(size_t depth) {
    return parseChain(depth, '|', Kind::kOr, &Parser::parseAnd);
  }

  std::expected<Node, TagExpressionError> parseAnd(size_t depth) {
    return parseChain(depth, '&', Kind::kAnd, &Parser::parseUnary);
  }

  // operand (op op operand)*, one flattened node of `kind` (or the operand alone).
  std::expected<Node, TagExpressionError> parseChain(
      size_t depth, char op, Kind kind,
      std::expected<Node, TagExpressionError> (Parser::*operand)(size_t)) {
    auto first = (this->*operand)(depth);
    if (!first) return first;
    Node node{kind, {}, {}};
    append(node, std::move(*first));
    for (;;) {
      auto more = take(op);
      if (!more) return std::unexpected(more.error());
      if (!*more) break;
      auto next = (this->*operand)(depth);
      if (!next) return next;
      append(node, std::move(*next));
    }
    if (node.children.size() == 1) return std::move(node.children.front());
    return node;
  }

  std::expected<Node, TagExpressionError> parseUnary(size_t depth) {
    if (depth >= TagExpression::kMaxDepth) {
      return fail(TagExpressionError::Code::kTooDeep,
                  fmt::format("nested more than {} levels deep", TagExpression::kMaxDepth));
    }
    skipSpace();
    if (pos_ == text_.size()) return syntax("expected a tag, '(' or '!' at the end");
    const char c = text_[pos_];
    if (c == '!') {
      ++pos_;
      auto inner = parseUnary(depth + 1);
      if (!inner) return inner;
      if (inner->kind == Kind::kNot) return std::move(inner->children.front());
      Node node{Kind::kNot, {}, {}};
      node.children.push_back(std::move(*inner));
      return node;
    }
    if (c == '(') {
      const size_t open = pos_;
      ++pos_;
      auto inner = parseOr(depth + 1);
      if (!inner) return inner;
      skipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ')') {
        if (pos_ >= text_.size()) {
          return syntax(fmt::format("missing ')' for the '(' at position {}", open + 1));
        }
        return syntax(fmt::format("expected ')' for the '(' at position {}, found '{}'", open + 1,
                                  nextToken()));
      }
      ++pos_;
      return inner;
    }
    if (c == ')') return syntax("expected a tag before ')'");
    if (c == '&' || c == '|') return syntax(fmt::format("expected a tag before '{}'", c));
    return parseTag();
  }

  std::expected<Node, TagExpressionError> parseTag() {
    const size_t start = pos_;
    const std::string_view token = nextToken();
    // A built-in's id may be wrapped in braces and may contain characters a tag may not ('='),
    // but never whitespace or operator characters.
    for (const auto& [prefix, kind] :
         {std::pair{std::string_view("$InstallationId:"), Kind::kInstallationId},
          std::pair{std::string_view("$UserId:"), Kind::kUserId}}) {
      if (!token.starts_with(prefix)) continue;
      std::string_view id = token.substr(prefix.size());
      if (id.starts_with('{')) {
        if (!id.ends_with('}') || id.size() < 2) {
          return syntax(fmt::format("'{}' opens a brace it does not close", token));
        }
        id = id.substr(1, id.size() - 2);
      }
      if (id.empty()) return syntax(fmt::format("'{}' names no id", token));
      pos_ += token.size();
      return Node{kind, std::string(id), {}};
    }
    // Length is not checked: a tag longer than any stored one simply matches nothing.
    if (!isValidTag(token, token.size())) {
      return syntax(fmt::format("'{}' is not a tag (characters A-Z a-z 0-9 _ @ # . : -)", token));
    }
    pos_ = start + token.size();
    return Node{Kind::kTag, std::string(token), {}};
  }

  std::string_view text_;
  size_t pos_ = 0;
};

bool evaluate(const Node& node, const std::function<bool(std::string_view)>& has_tag,
              std::string_view installation_id, std::string_view user_id) {
  switch (node.kind) {
    case Kind::kTag: return has_tag(node.value);
    case Kind::kInstallationId: return node.value == installation_id;
    case Kind::kUserId: return !user_id.empty() && node.value == user_id;
    case Kind::kAnd:
      return std::all_of(node.children.begin(), node.children.end(), [&](const Node& c) {
        return evaluate(c, has_tag, installation_id, user_id);
      });
    case Kind::kOr:
      return std::any_of(node.children.begin(), node.children.end(), [&](const Node& c) {
        return evaluate(c, has_tag, installation_id, user_id);
      });
    case Kind::kNot: return !evaluate(node.children.front(), has_tag, installation_id, user_id);
  }
  return false;
}

void collectTags(const Node& node, std::vector<std::string>& out) {
  if (node.kind == Kind::kTag) {
    if (std::find(out.begin(), out.end(), node.value) == out.end()) out.push_back(node.value);
  }
  for (const auto& child : node.children) collectTags(child, out);
}

size_t countLeaves(const Node& node) {
  if (node.children.empty()) return 1;
  size_t n = 0;
  for (const auto& child : node.children) n += countLeaves(child);
  return n;
}

void print(const Node& node, std::string& out) {
  switch (node.kind) {
    case Kind::kTag: out += node.value; return;
    case Kind::kInstallationId: out += "$InstallationId:{" + node.value + "}"; return;
    case Kind::kUserId: out += "$UserId:{" + node.value + "}"; return;
    case Kind::kNot:
      out += '!';
      print(node.children.front(), out);
      return;
    case Kind::kAnd:
    case Kind::kOr:
      out += '(';
      for (size_t i = 0; i < node.children.size(); ++i) {
        if (i > 0) out += node.kind == Kind::kAnd ? " && " : " || ";
        print(node.children[i], out);
      }
      out += ')';
      return;
  }
}

}  // namespace

std::expected<TagExpression, TagExpressionError> TagExpression::parse(std::string_view text) {
  auto root = Parser(text).parseAll();
  if (!root) return std::unexpected(root.error());
  return TagExpression(std::move(*root));
}

std::vector<std::string> TagExpression::tags() const {
  std::vector<std::string> out;
  collectTags(root_, out);
  return out;
}

size_t TagExpression::leafCount() const { return countLeaves(root_); }

bool TagExpression::matches(const std::function<bool(std::string_view)>& has_tag,
                            std::string_view installation_id, std::string_view user_id) const {
  return evaluate(root_, has_tag, installation_id, user_id);
}

std::string TagExpression::toString() const {
  std::string out;
  print(root_, out);
  return out;
}

}  // namespace pushhub::storage
