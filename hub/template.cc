#include "hub/template.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "common/json.h"
#include "common/url.h"
#include "common/xml.h"

namespace pushhub::hub {
namespace {

using Term = Template::Term;

constexpr size_t kMaxDepth = 64;

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
  return text;
}

bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

// Parses the expression language over one value. nullopt: not an expression (a constant);
// an empty vector never results.
class ExpressionParser {
 public:
  explicit ExpressionParser(std::string_view text) : text_(text) {}

  std::optional<std::vector<Term>> parse() {
    skipSpace();
    std::vector<Term> terms;
    if (peek() == '{') {
      ++pos_;
      for (;;) {
        skipSpace();
        auto term = parseTerm(true);
        if (!term) return std::nullopt;
        terms.push_back(std::move(*term));
        skipSpace();
        if (peek() == '+') {
          ++pos_;
          continue;
        }
        if (peek() == '}') {
          ++pos_;
          break;
        }
        return std::nullopt;
      }
    } else {
      auto term = parseTerm(false);
      if (!term) return std::nullopt;
      terms.push_back(std::move(*term));
    }
    skipSpace();
    if (pos_ != text_.size()) return std::nullopt;
    return terms;
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skipSpace() {
    while (pos_ < text_.size() && isSpace(text_[pos_])) ++pos_;
  }

  std::optional<Term> parseTerm(bool literals_allowed) {
    const char c = peek();
    if ((c == '\'' || c == '"') && literals_allowed) {
      const size_t end = text_.find(c, pos_ + 1);
      if (end == std::string_view::npos) return std::nullopt;
      Term term{Term::Kind::kLiteral, std::string(text_.substr(pos_ + 1, end - pos_ - 1)), 0};
      pos_ = end + 1;
      return term;
    }
    Term term;
    switch (c) {
      case '$': term.kind = Term::Kind::kValue; break;
      case '.': term.kind = Term::Kind::kEllipsis; break;
      case '%': term.kind = Term::Kind::kUri; break;
      case '#': term.kind = Term::Kind::kNumber; break;
      default: return std::nullopt;
    }
    ++pos_;
    if (peek() != '(') return std::nullopt;
    ++pos_;
    skipSpace();
    const size_t name_start = pos_;
    while (pos_ < text_.size() && isNameChar(text_[pos_])) ++pos_;
    if (pos_ == name_start) return std::nullopt;
    term.text = lowercase(text_.substr(name_start, pos_ - name_start));
    skipSpace();
    bool has_limit = false;
    if (peek() == ',') {
      ++pos_;
      skipSpace();
      const size_t digits = pos_;
      size_t limit = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        limit = std::min<size_t>(limit * 10 + static_cast<size_t>(text_[pos_] - '0'), 1 << 20);
        ++pos_;
      }
      if (pos_ == digits) return std::nullopt;
      term.limit = limit;
      has_limit = true;
      skipSpace();
    }
    if (peek() != ')') return std::nullopt;
    ++pos_;
    // $(p, n) clips; .(p, n) needs its n; %() and #() take none.
    if (term.kind == Term::Kind::kValue && has_limit) term.kind = Term::Kind::kClip;
    if (term.kind == Term::Kind::kEllipsis && !has_limit) return std::nullopt;
    if ((term.kind == Term::Kind::kUri || term.kind == Term::Kind::kNumber) && has_limit) {
      return std::nullopt;
    }
    return term;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// A value that starts like an expression but is not one is a mistake worth naming.
bool looksLikeExpression(std::string_view value) {
  value = trim(value);
  for (std::string_view opener : {"$(", ".(", "%(", "#("}) {
    if (value.starts_with(opener)) return true;
    if (value.starts_with('{') && value.ends_with('}') &&
        value.find(opener) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string xmlUnescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    static constexpr std::pair<std::string_view, char> kEntities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool matched = false;
    for (const auto& [entity, c] : kEntities) {
      if (text.substr(i).starts_with(entity)) {
        out.push_back(c);
        i += entity.size() - 1;
        matched = true;
        break;
      }
    }
    if (!matched) out.push_back('&');
  }
  return out;
}

// The first `n` code points (a clipped UTF-8 sequence is never split).
std::string_view firstCodePoints(std::string_view text, size_t n) {
  size_t i = 0;
  size_t count = 0;
  while (i < text.size() && count < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 1;
    i = std::min(text.size(), i + length);
    ++count;
  }
  return text.substr(0, i);
}

size_t codePoints(std::string_view text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// JavaScript's number syntax, as Azure matches #() values.
bool isJsonNumber(std::string_view v) {
  size_t i = 0;
  const auto digits = [&] {
    const size_t start = i;
    while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) ++i;
    return i > start;
  };
  if (i < v.size() && v[i] == '0') {
    ++i;
  } else if (i < v.size() && v[i] >= '1' && v[i] <= '9') {
    digits();
  } else {
    return false;
  }
  if (i < v.size() && v[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == v.size();
}

}  // namespace

void TemplateProperties::set(std::string_view name, std::string value) {
  values_[lowercase(name)] = std::move(value);
}

std::string_view TemplateProperties::get(std::string_view name) const {
  auto it = values_.find(std::string(name));
  return it == values_.end() ? std::string_view() : std::string_view(it->second);
}

// Walks a body and splits it into literal runs and expression segments.
class TemplateCompiler {
 public:
  TemplateCompiler(std::string_view body, Template& out, bool expressions = true)
      : body_(body), out_(out), expressions_(expressions) {}

  std::optional<TemplateError> json() {
    skipSpace();
    if (auto e = jsonValue(0)) return e;
    skipSpace();
    if (pos_ != body_.size()) return error("unexpected content after the JSON value");
    flush(body_.size());
    return std::nullopt;
  }

  std::optional<TemplateError> xml() {
    std::vector<std::string_view> open;
    while (pos_ < body_.size()) {
      if (body_[pos_] != '<') {
        const size_t end = std::min(body_.find('<', pos_), body_.size());
        if (auto e = candidate(pos_, end, Template::Context::kXml, true)) return e;
        pos_ = end;
        continue;
      }
      const std::string_view rest = body_.substr(pos_);
      if (rest.starts_with("<!--")) {
        if (auto e = skipPast("-->", "an unterminated comment")) return e;
      } else if (rest.starts_with("<![CDATA[")) {
        if (auto e = skipPast("]]>", "an unterminated CDATA section")) return e;
      } else if (rest.starts_with("<?") || rest.starts_with("<!")) {
        if (auto e = skipPast(">", "an unterminated declaration")) return e;
      } else if (rest.starts_with("</")) {
        pos_ += 2;
        const std::string_view name = xmlName();
        skipSpace();
        if (name.empty() || peek() != '>') return error("a malformed closing tag");
        if (open.empty() || open.back() != name) {
          return error("a closing tag </" + std::string(name) + "> that matches no open element");
        }
        open.pop_back();
        ++pos_;
      } else {
        ++pos_;
        const std::string_view name = xmlName();
        if (name.empty()) return error("a tag without a name");
        for (;;) {
          skipSpace();
          if (peek() == '/' && pos_ + 1 < body_.size() && body_[pos_ + 1] == '>') {
            pos_ += 2;
            break;
          }
          if (peek() == '>') {
            ++pos_;
            open.push_back(name);
            break;
          }
          const std::string_view attribute = xmlName();
          if (attribute.empty()) return error("a malformed attribute");
          skipSpace();
          if (peek() != '=') return error("an attribute without a value");
          ++pos_;
          skipSpace();
          const char quote = peek();
          if (quote != '"' && quote != '\'') return error("an unquoted attribute value");
          const size_t end = body_.find(quote, pos_ + 1);
          if (end == std::string_view::npos) return error("an unterminated attribute value");
          if (auto e = candidate(pos_ + 1, end, Template::Context::kXml, false)) return e;
          pos_ = end + 1;
        }
      }
      if (open.size() > kMaxDepth) return error("elements nested too deeply");
    }
    if (!open.empty()) return error("<" + std::string(open.back()) + "> is never closed");
    flush(body_.size());
    return std::nullopt;
  }

  std::optional<TemplateError> text() {
    if (auto e = candidate(0, body_.size(), Template::Context::kText, true)) return e;
    flush(body_.size());
    return std::nullopt;
  }

 private:
  char peek() const { return pos_ < body_.size() ? body_[pos_] : '\0'; }
  void skipSpace() {
    while (pos_ < body_.size() && isSpace(body_[pos_])) ++pos_;
  }
  TemplateError error(std::string message) const {
    return TemplateError{std::min(pos_, body_.size()) + 1, std::move(message)};
  }
  std::optional<TemplateError> skipPast(std::string_view end, const char* what) {
    const size_t at = body_.find(end, pos_);
    if (at == std::string_view::npos) return error(std::string(what));
    pos_ = at + end.size();
    return std::nullopt;
  }
  std::string_view xmlName() {
    const size_t start = pos_;
    while (pos_ < body_.size() && (isNameChar(body_[pos_]) || body_[pos_] == ':')) ++pos_;
    return body_.substr(start, pos_ - start);
  }

  // Literal bytes up to `end` go into the current literal segment.
  void flush(size_t end) {
    if (end <= literal_from_) return;
    if (out_.segments_.empty() || !out_.segments_.back().terms.empty()) {
      out_.segments_.push_back({});
    }
    out_.segments_.back().literal.append(body_.substr(literal_from_, end - literal_from_));
    literal_from_ = end;
  }

  void addExpression(size_t from, size_t to, std::vector<Term> terms, Template::Context context) {
    flush(from);
    Template::Segment segment;
    segment.terms = std::move(terms);
    segment.context = context;
    out_.segments_.push_back(std::move(segment));
    ++out_.expressions_;
    literal_from_ = to;
  }

  // body_[from, to) is a value (XML: raw, escaped); an expression replaces it (keeping the
  // surrounding whitespace of a text node).
  std::optional<TemplateError> candidate(size_t from, size_t to, Template::Context context,
                                         bool trim_space) {
    size_t a = from, b = to;
    if (trim_space) {
      while (a < b && isSpace(body_[a])) ++a;
      while (b > a && isSpace(body_[b - 1])) --b;
    }
    const std::string_view raw = body_.substr(a, b - a);
    if (raw.empty() || !expressions_) return std::nullopt;
    const std::string value =
        context == Template::Context::kXml ? xmlUnescape(raw) : std::string(raw);
    auto terms = ExpressionParser(value).parse();
    if (!terms) {
      if (looksLikeExpression(value)) {
        return TemplateError{a + 1, "a malformed expression: " + value.substr(0, 80)};
      }
      return std::nullopt;
    }
    addExpression(a, b, std::move(*terms), context);
    return std::nullopt;
  }

  // ---- JSON ----
  std::optional<TemplateError> jsonValue(size_t depth) {
    if (depth > kMaxDepth) return error("JSON nested too deeply");
    skipSpace();
    const char c = peek();
    if (c == '{') return jsonObject(depth);
    if (c == '[') return jsonArray(depth);
    if (c == '"') return jsonString(true);
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return jsonNumber();
    for (std::string_view word : {"true", "false", "null"}) {
      if (body_.substr(pos_).starts_with(word)) {
        pos_ += word.size();
        return std::nullopt;
      }
    }
    return error(pos_ >= body_.size() ? "the JSON ends early" : "not a JSON value");
  }
  std::optional<TemplateError> jsonObject(size_t depth) {
    ++pos_;
    skipSpace();
    if (peek() == '}') {
      ++pos_;
      return std::nullopt;
    }
    for (;;) {
      skipSpace();
      if (peek() != '"') return error("an object key must be a string");
      if (auto e = jsonString(false)) return e;
      skipSpace();
      if (peek() != ':') return error("':' expected after an object key");
      ++pos_;
      if (auto e = jsonValue(depth + 1)) return e;
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return std::nullopt;
      }
      return error("',' or '}' expected in an object");
    }
  }
  std::optional<TemplateError> jsonArray(size_t depth) {
    ++pos_;
    skipSpace();
    if (peek() == ']') {
      ++pos_;
      return std::nullopt;
    }
    for (;;) {
      if (auto e = jsonValue(depth + 1)) return e;
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return std::nullopt;
      }
      return error("',' or ']' expected in an array");
    }
  }
  std::optional<TemplateError> jsonNumber() {
    const size_t start = pos_;
    if (peek() == '-') ++pos_;
    while (pos_ < body_.size() &&
           (std::isdigit(static_cast<unsigned char>(body_[pos_])) || body_[pos_] == '.' ||
            body_[pos_] == 'e' || body_[pos_] == 'E' || body_[pos_] == '+' || body_[pos_] == '-')) {
      ++pos_;
    }
    const std::string_view number = body_.substr(start, pos_ - start);
    if (!isJsonNumber(number.starts_with('-') ? number.substr(1) : number)) {
      pos_ = start;
      return error("a malformed number");
    }
    return std::nullopt;
  }
  // A string; a value string (not a key) may be an expression.
  std::optional<TemplateError> jsonString(bool is_value) {
    const size_t start = pos_;
    ++pos_;
    std::string value;
    for (;;) {
      if (pos_ >= body_.size()) return error("an unterminated string");
      const char c = body_[pos_];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) return error("a control character in a string");
      if (c != '\\') {
        value.push_back(c);
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= body_.size()) return error("an unterminated string");
      const char e = body_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '"': value.push_back('"'); break;
        case '\\': value.push_back('\\'); break;
        case '/': value.push_back('/'); break;
        case 'b': value.push_back('\b'); break;
        case 'f': value.push_back('\f'); break;
        case 'n': value.push_back('\n'); break;
        case 'r': value.push_back('\r'); break;
        case 't': value.push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          for (int i = 0; i < 4; ++i) {
            const char h = pos_ < body_.size() ? body_[pos_] : '\0';
            if (!std::isxdigit(static_cast<unsigned char>(h)))
              return error("a malformed \\u escape");
            cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                     ? h - '0'
                                                     : std::tolower(h) - 'a' + 10);
            ++pos_;
          }
          appendUtf8(value, cp);
          break;
        }
        default: return error("an unknown escape in a string");
      }
    }
    ++pos_;  // the closing quote
    if (!is_value || !expressions_) return std::nullopt;
    auto terms = ExpressionParser(value).parse();
    if (!terms) {
      if (looksLikeExpression(value)) {
        return TemplateError{start + 1, "a malformed expression: " + value.substr(0, 80)};
      }
      return std::nullopt;
    }
    addExpression(start, pos_, std::move(*terms), Template::Context::kJsonString);
    return std::nullopt;
  }

  std::string_view body_;
  Template& out_;
  bool expressions_;
  size_t pos_ = 0;
  size_t literal_from_ = 0;
};

std::expected<Template, TemplateError> Template::compile(std::string_view body,
                                                         TemplateFormat format) {
  Template compiled;
  TemplateCompiler compiler(body, compiled);
  std::optional<TemplateError> error;
  switch (format) {
    case TemplateFormat::kJson: error = compiler.json(); break;
    case TemplateFormat::kXml: error = compiler.xml(); break;
    case TemplateFormat::kText: error = compiler.text(); break;
  }
  if (error) return std::unexpected(std::move(*error));
  return compiled;
}

std::optional<TemplateError> Template::checkWellFormed(std::string_view text,
                                                       TemplateFormat format) {
  Template scratch;
  TemplateCompiler compiler(text, scratch, false);
  switch (format) {
    case TemplateFormat::kJson: return compiler.json();
    case TemplateFormat::kXml: return compiler.xml();
    case TemplateFormat::kText: return std::nullopt;
  }
  return std::nullopt;
}

std::string Template::render(const TemplateProperties& properties) const {
  std::string out;
  renderTo(properties, out);
  return out;
}

void Template::renderTo(const TemplateProperties& properties, std::string& out) const {
  std::string value;
  for (const auto& segment : segments_) {
    if (segment.terms.empty()) {
      out += segment.literal;
      continue;
    }
    value.clear();
    for (const auto& term : segment.terms) {
      const std::string_view v = term.kind == Term::Kind::kLiteral ? std::string_view(term.text)
                                                                   : properties.get(term.text);
      switch (term.kind) {
        case Term::Kind::kLiteral:
        case Term::Kind::kValue:
        case Term::Kind::kNumber: value += v; break;
        case Term::Kind::kClip: value += firstCodePoints(v, term.limit); break;
        case Term::Kind::kEllipsis:
          if (codePoints(v) <= term.limit) {
            value += v;
          } else if (term.limit >= 3) {
            value += firstCodePoints(v, term.limit - 3);
            value += "...";
          } else {
            value += std::string_view("...").substr(0, term.limit);
          }
          break;
        case Term::Kind::kUri: value += percentEncode(v); break;
      }
    }
    switch (segment.context) {
      case Context::kJsonString:
        if (segment.terms.size() == 1 && segment.terms[0].kind == Term::Kind::kNumber &&
            isJsonNumber(value)) {
          out += value;  // #(): a number stays a number
        } else {
          out.push_back('"');
          appendJsonEscaped(out, value);
          out.push_back('"');
        }
        break;
      case Context::kXml: appendXmlEscaped(out, value); break;
      case Context::kText: out += value; break;
    }
  }
}

}  // namespace pushhub::hub
