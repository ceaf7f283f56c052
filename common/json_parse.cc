#include "common/json_parse.h"

#include <fmt/format.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace pushhub {
namespace {

// Forwards SAX events to the document and stops the parse when arrays and objects nest deeper
// than the limit.
class DepthLimitedHandler {
 public:
  DepthLimitedHandler(rapidjson::Document& document, unsigned max_depth)
      : document_(document), max_depth_(max_depth) {}

  bool exceeded() const { return exceeded_; }

  bool Null() { return document_.Null(); }
  bool Bool(bool b) { return document_.Bool(b); }
  bool Int(int i) { return document_.Int(i); }
  bool Uint(unsigned u) { return document_.Uint(u); }
  bool Int64(int64_t i) { return document_.Int64(i); }
  bool Uint64(uint64_t u) { return document_.Uint64(u); }
  bool Double(double d) { return document_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return document_.RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return document_.String(s, n, copy);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return document_.Key(s, n, copy); }
  bool StartObject() { return enter() && document_.StartObject(); }
  bool EndObject(rapidjson::SizeType members) {
    --depth_;
    return document_.EndObject(members);
  }
  bool StartArray() { return enter() && document_.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) {
    --depth_;
    return document_.EndArray(elements);
  }

 private:
  bool enter() {
    if (++depth_ > max_depth_) exceeded_ = true;
    return !exceeded_;
  }

  rapidjson::Document& document_;
  const unsigned max_depth_;
  unsigned depth_ = 0;
  bool exceeded_ = false;
};

}  // namespace

std::expected<void, std::string> parseJson(rapidjson::Document& document, std::string_view json,
                                           unsigned max_depth) {
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  DepthLimitedHandler handler(document, max_depth);
  rapidjson::ParseResult result;
  // Populate hands the document to the generator and keeps the root value only when it says the
  // SAX events completed one.
  auto generate = [&](rapidjson::Document&) {
    rapidjson::MemoryStream memory(json.data(), json.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> input(memory);
    rapidjson::Reader reader;
    result = reader.Parse<kFlags>(input, handler);
    return !result.IsError();
  };
  document.SetNull();
  document.Populate(generate);
  if (handler.exceeded()) {
    document.SetNull();
    return std::unexpected(
        fmt::format("at offset {}: nested deeper than {} levels", result.Offset(), max_depth));
  }
  if (result.IsError()) {
    document.SetNull();
    return std::unexpected(fmt::format("at offset {}: {}", result.Offset(),
                                       rapidjson::GetParseError_En(result.Code())));
  }
  return {};
}

}  // namespace pushhub
