// libFuzzer target for the tag-expression parser: any input must either parse or fail with a
// position inside the input, never crash; a parsed expression must print to a canonical form
// that parses back to itself, and evaluate without trouble.
//   make fuzz                      (clang + libFuzzer, see tests/fuzz/README.md)
//   ctest -R TagExpressionFuzzSeeds (the seed corpus, under the project's compiler)
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "storage/tag_expression.h"

using pushhub::storage::TagExpression;
using pushhub::storage::TagExpressionError;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto expression = TagExpression::parse(text);
  if (!expression) {
    const auto& error = expression.error();
    if (error.position == 0 || error.position > size + 1 || error.message.empty()) std::abort();
    return 0;
  }
  const std::string canonical = expression->toString();
  auto again = TagExpression::parse(canonical);
  if (!again) {
    // Printing may add one level of parentheses around the top-level operator.
    if (again.error().code != TagExpressionError::Code::kTooDeep) std::abort();
    return 0;
  }
  if (again->toString() != canonical) std::abort();
  if (again->leafCount() != expression->leafCount()) std::abort();
  size_t calls = 0;
  const bool all = expression->matches([&](std::string_view) { return ++calls, true; }, "x", "y");
  const bool none = expression->matches([](std::string_view) { return false; }, "x", "y");
  (void)all;
  (void)none;
  return 0;
}
