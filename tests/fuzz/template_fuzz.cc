// libFuzzer target for the template compiler (hub/template.*): the first byte picks JSON, XML
// or text, the rest is the body. Any input must compile or fail with a position inside it, never
// crash; a compiled template must render, and what a JSON or XML template renders must be
// well-formed JSON or XML (the renderer escapes for where values land).
//   make fuzz                     (clang + libFuzzer, see tests/fuzz/README.md)
//   ctest -R TemplateFuzzSeeds    (the seed corpus, under the project's compiler)
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "hub/template.h"

using pushhub::hub::Template;
using pushhub::hub::TemplateFormat;
using pushhub::hub::TemplateProperties;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const TemplateFormat format = data[0] % 3 == 0   ? TemplateFormat::kJson
                                : data[0] % 3 == 1 ? TemplateFormat::kXml
                                                   : TemplateFormat::kText;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto compiled = Template::compile(body, format);
  if (!compiled) {
    const auto& error = compiled.error();
    if (error.position == 0 || error.position > body.size() + 1 || error.message.empty()) {
      std::abort();
    }
    return 0;
  }
  TemplateProperties properties;
  properties.set("message", "say \"hi\" <b> & 'you'\n\x01\xff");
  properties.set("count", "40");
  properties.set("title", "This is the title line");
  const std::string rendered = compiled->render(properties);
  // The output is well-formed whatever the values were (it may contain "$(" as text).
  if (Template::checkWellFormed(rendered, format)) std::abort();
  return 0;
}
