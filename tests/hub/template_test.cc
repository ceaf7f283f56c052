// Azure's template language: every expression form, case-insensitive properties, escaping for
// JSON strings, JSON numbers and XML, constants left alone, and malformed templates named.
#include "hub/template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pushhub::hub {
namespace {

using ::testing::HasSubstr;

TemplateProperties props(std::initializer_list<std::pair<std::string, std::string>> list) {
  TemplateProperties p;
  for (auto& [k, v] : list) p.set(k, v);
  return p;
}

std::string renderJson(std::string_view body, const TemplateProperties& p) {
  auto t = Template::compile(body, TemplateFormat::kJson);
  EXPECT_TRUE(t.has_value()) << body << ": " << (t ? "" : t.error().message);
  return t ? t->render(p) : "";
}

TEST(TemplateTest, SubstitutesPropertiesCaseInsensitively) {
  const auto p = props({{"Message", "Hello"}, {"user", "Ann"}});
  EXPECT_EQ(renderJson(R"j({"aps":{"alert":"$(message)"}})j", p), R"j({"aps":{"alert":"Hello"}})j");
  EXPECT_EQ(renderJson(R"j({"aps":{"alert":"$(MESSAGE)","sound":"default"}})j", p),
            R"j({"aps":{"alert":"Hello","sound":"default"}})j");
  EXPECT_EQ(renderJson(R"j({"a":"$(missing)"})j", p), R"j({"a":""})j") << "missing → empty";
  // Keys are never expressions; whitespace and layout are kept.
  EXPECT_EQ(renderJson("{ \"$(message)\" : [ \"$(user)\", 1, true ] }", p),
            "{ \"$(message)\" : [ \"Ann\", 1, true ] }");
}

TEST(TemplateTest, ClipsEllipsisUriAndConcatenation) {
  const auto p = props({{"title", "This is the title line"}, {"q", "a b&c/é"}, {"name", "Bo"}});
  EXPECT_EQ(renderJson(R"j({"t":"$(title, 7)"})j", p), R"j({"t":"This is"})j");
  EXPECT_EQ(renderJson(R"j({"t":".(title,20)"})j", p), R"j({"t":"This is the title..."})j");
  EXPECT_EQ(renderJson(R"j({"t":".(title,30)"})j", p), R"j({"t":"This is the title line"})j");
  EXPECT_EQ(renderJson(R"j({"t":".(title,2)"})j", p), R"j({"t":".."})j");
  EXPECT_EQ(renderJson(R"j({"u":"%(q)"})j", p), R"j({"u":"a%20b%26c%2F%C3%A9"})j");
  EXPECT_EQ(renderJson(R"j({"m":"{'Hi, ' + $(name) + \"!\"}"})j", p), R"j({"m":"Hi, Bo!"})j");
  EXPECT_EQ(renderJson(R"j({"m":"{ $(name)+' - '+.(title, 10) }"})j", p),
            R"j({"m":"Bo - This is..."})j");
  // Clipping counts characters, not bytes.
  EXPECT_EQ(renderJson(R"j({"t":"$(s,2)"})j", props({{"s", "ééé"}})), R"j({"t":"éé"})j");
}

TEST(TemplateTest, NumbersStayNumbersOnlyWhenTheyAre) {
  EXPECT_EQ(renderJson(R"j({"badge":"#(count)"})j", props({{"count", "40"}})), R"j({"badge":40})j");
  EXPECT_EQ(renderJson(R"j({"x":"#(v)"})j", props({{"v", "1.5e-3"}})), R"j({"x":1.5e-3})j");
  EXPECT_EQ(renderJson(R"j({"x":"#(v)"})j", props({{"v", "forty"}})), R"j({"x":"forty"})j");
  EXPECT_EQ(renderJson(R"j({"x":"#(v)"})j", props({{"v", "01"}})), R"j({"x":"01"})j");
  EXPECT_EQ(renderJson(R"j({"x":"#(v)"})j", props({})), R"j({"x":""})j");
}

TEST(TemplateTest, ValuesAreEscapedForWhereTheyLand) {
  const auto p = props({{"m", "say \"hi\" \\ <b>&'\n"}});
  EXPECT_EQ(renderJson(R"j({"a":"$(m)"})j", p), R"j({"a":"say \"hi\" \\ <b>&'\n"})j");
  auto xml = Template::compile(R"j(<toast><text id="1" hint='$(m)'>$(m)</text></toast>)j",
                               TemplateFormat::kXml);
  ASSERT_TRUE(xml.has_value()) << xml.error().message;
  EXPECT_EQ(xml->render(p),
            "<toast><text id=\"1\" hint='say &quot;hi&quot; \\ &lt;b&gt;&amp;&apos;\n'>"
            "say &quot;hi&quot; \\ &lt;b&gt;&amp;&apos;\n</text></toast>");
}

TEST(TemplateTest, XmlTemplates) {
  const auto p = props({{"News_English", "Breaking"}, {"n", "3"}});
  auto t = Template::compile(
      "<?xml version=\"1.0\"?>\n<!-- a toast -->\n<toast launch=\"{'app?id=' + %(n)}\">"
      "<visual><binding template=\"ToastText01\">\n  <text id=\"1\">  $(News_English)  </text>"
      "</binding></visual><![CDATA[$(n)]]></toast>",
      TemplateFormat::kXml);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(t->render(p),
            "<?xml version=\"1.0\"?>\n<!-- a toast -->\n<toast launch=\"app?id=3\">"
            "<visual><binding template=\"ToastText01\">\n  <text id=\"1\">  Breaking  </text>"
            "</binding></visual><![CDATA[$(n)]]></toast>");
  // Entities in attribute expressions: &apos; quotes a literal.
  auto quoted =
      Template::compile("<badge value=\"{&apos;#&apos; + $(n)}\"/>", TemplateFormat::kXml);
  ASSERT_TRUE(quoted.has_value());
  EXPECT_EQ(quoted->render(p), "<badge value=\"#3\"/>");
}

TEST(TemplateTest, ConstantsAndLookalikesAreLeftAlone) {
  const auto p = props({{"a", "x"}});
  EXPECT_EQ(renderJson(R"j({"a":"Hello $(a)","b":"{not an expression}","c":"$ (a)"})j", p),
            R"j({"a":"Hello $(a)","b":"{not an expression}","c":"$ (a)"})j");
  auto constant = Template::compile(R"j({"aps":{"alert":"hi"}})j", TemplateFormat::kJson);
  ASSERT_TRUE(constant.has_value());
  EXPECT_FALSE(constant->hasExpressions());
}

TEST(TemplateTest, TextValuesForHeadersAndExpiry) {
  const auto p = props({{"expiry", "2026-12-01T00:00:00Z"}});
  auto expiry = Template::compile("$(expiry)", TemplateFormat::kText);
  ASSERT_TRUE(expiry.has_value());
  EXPECT_EQ(expiry->render(p), "2026-12-01T00:00:00Z");
  auto header = Template::compile("wns/toast", TemplateFormat::kText);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->render(p), "wns/toast");
}

TEST(TemplateTest, MalformedTemplatesAreNamedWithAPosition) {
  struct Case {
    std::string body;
    TemplateFormat format;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"j({"a":"$(x"})j", TemplateFormat::kJson, "malformed expression"},
      {R"j({"a":".(x)"})j", TemplateFormat::kJson, "malformed expression"},
      {R"j({"a":"#(x, 3)"})j", TemplateFormat::kJson, "malformed expression"},
      {R"j({"a":"{$(x) + }"})j", TemplateFormat::kJson, "malformed expression"},
      {R"j({"a":"x")j", TemplateFormat::kJson, "',' or '}' expected"},
      {R"j({"a":"x"} trailing)j", TemplateFormat::kJson, "unexpected content"},
      {R"j({a:1})j", TemplateFormat::kJson, "key must be a string"},
      {R"j(["\q"])j", TemplateFormat::kJson, "unknown escape"},
      {"", TemplateFormat::kJson, "ends early"},
      {std::string(100, '[') + std::string(100, ']'), TemplateFormat::kJson, "too deeply"},
      {"<toast><text>hi</toast>", TemplateFormat::kXml, "matches no open element"},
      {"<toast>", TemplateFormat::kXml, "never closed"},
      {"<toast a=1/>", TemplateFormat::kXml, "unquoted attribute"},
      {"<toast><!-- x </toast>", TemplateFormat::kXml, "unterminated comment"},
      {"<toast>$(</toast>", TemplateFormat::kXml, "malformed expression"},
  };
  for (const auto& c : cases) {
    auto t = Template::compile(c.body, c.format);
    ASSERT_FALSE(t.has_value()) << c.body;
    EXPECT_THAT(t.error().message, HasSubstr(c.message)) << c.body;
    EXPECT_GE(t.error().position, 1u) << c.body;
    EXPECT_LE(t.error().position, c.body.size() + 1) << c.body;
  }
}

TEST(TemplateTest, RenderingAJsonTemplateGivesValidJson) {
  const auto p = props({{"m", "\x01\xff\"quote"}, {"n", "7"}});
  const std::string out =
      renderJson(R"j({"a":"$(m)","b":"#(n)","c":["{'x' + $(m)}", "#(m)"],"d":{"e":"%(m)"}})j", p);
  EXPECT_FALSE(Template::checkWellFormed(out, TemplateFormat::kJson).has_value()) << out;
  // Values that look like expressions are just text in the output.
  const std::string tricky = renderJson(R"j({"a":"$(m)"})j", props({{"m", "$(x"}}));
  EXPECT_EQ(tricky, R"j({"a":"$(x"})j");
  EXPECT_FALSE(Template::checkWellFormed(tricky, TemplateFormat::kJson).has_value());
}

}  // namespace
}  // namespace pushhub::hub
