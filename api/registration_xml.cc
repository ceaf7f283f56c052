#include "api/registration_xml.h"

#include <fmt/format.h>
#include <pugixml.hpp>

#include <algorithm>
#include <cstring>

#include "common/time.h"
#include "common/xml.h"

namespace pushhub::api {

namespace {

using storage::Installation;
using storage::InstallationTemplate;
using storage::Platform;

constexpr std::string_view kServiceBusNs =
    "http://schemas.microsoft.com/netservices/2010/10/servicebus/connect";

// The element name without a namespace prefix.
std::string_view localName(const pugi::xml_node& node) {
  std::string_view name = node.name();
  const size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

pugi::xml_node childNamed(const pugi::xml_node& parent, std::string_view name) {
  for (pugi::xml_node child : parent.children()) {
    if (child.type() == pugi::node_element && localName(child) == name) return child;
  }
  return {};
}

// Text of an element: its text and CDATA children joined, surrounding whitespace kept as sent
// except for the simple fields, which the caller trims.
std::string textOf(const pugi::xml_node& node) {
  std::string text;
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
      text += child.value();
    }
  }
  return text;
}

std::string trimmed(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1));
}

struct Family {
  std::string_view prefix;  // "Apple" in AppleRegistrationDescription
  Platform platform;
  std::string_view handle_element;
};
constexpr Family kFamilies[] = {
    {"Apple", Platform::kApns, "DeviceToken"},
    {"Gcm", Platform::kFcmV1, "GcmRegistrationId"},
    {"FcmV1", Platform::kFcmV1, "FcmV1RegistrationId"},
    {"Windows", Platform::kWns, "ChannelUri"},
};

const Family* familyOf(Platform platform) {
  switch (platform) {
    case Platform::kApns: return &kFamilies[0];
    case Platform::kFcmV1: return &kFamilies[2];
    case Platform::kWns: return &kFamilies[3];
    default: return nullptr;
  }
}

std::expected<void, std::string> readHeaders(const pugi::xml_node& list, std::string_view item,
                                             InstallationTemplate& t) {
  for (pugi::xml_node header : list.children()) {
    if (header.type() != pugi::node_element) continue;
    if (localName(header) != item) {
      return std::unexpected(
          fmt::format("{} holds <{}>, expected <{}>", localName(list), localName(header), item));
    }
    const std::string name = trimmed(textOf(childNamed(header, "Header")));
    if (name.empty()) {
      return std::unexpected(fmt::format("{}/{}: <Header> is missing", localName(list), item));
    }
    t.headers[name] = trimmed(textOf(childNamed(header, "Value")));
  }
  return {};
}

void appendElement(std::string& out, std::string_view name, std::string_view text) {
  out += '<';
  out += name;
  out += '>';
  appendXmlEscaped(out, text);
  out += "</";
  out += name;
  out += '>';
}

std::string joinTags(const std::vector<std::string>& tags) {
  std::string out;
  for (const auto& tag : tags) {
    if (!out.empty()) out += ',';
    out += tag;
  }
  return out;
}

void appendEntry(std::string& out, const Installation& r, std::string_view base_url) {
  const std::string url = fmt::format("{}/registrations/{}?api-version=2015-01", base_url, r.id);
  out += "<entry xmlns=\"http://www.w3.org/2005/Atom\"><id>";
  appendXmlEscaped(out, url);
  out += "</id><title type=\"text\">";
  appendXmlEscaped(out, r.id);
  out += "</title><updated>";
  out += formatIso8601(r.last_update);
  out += "</updated><link rel=\"self\" href=\"";
  appendXmlEscaped(out, url);
  out += "\"/><content type=\"application/xml\">";

  const Family* family = familyOf(r.platform);
  const bool is_template = !r.templates.empty();
  const std::string element = fmt::format("{}{}RegistrationDescription",
                                          family != nullptr ? family->prefix : std::string_view(),
                                          is_template ? "Template" : "");
  out += fmt::format("<{} xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns=\"{}\">",
                     element, kServiceBusNs);
  // DataContract order: the base description's members alphabetically, then the derived ones.
  appendElement(out, "ETag", std::to_string(r.version));
  appendElement(out, "ExpirationTime", formatIso8601(r.expiration_time));
  appendElement(out, "RegistrationId", r.id);
  if (!r.tags.empty()) appendElement(out, "Tags", joinTags(r.tags));
  if (family != nullptr) appendElement(out, family->handle_element, r.push_channel);
  if (is_template) {
    const auto& [name, t] = *r.templates.begin();
    out += "<BodyTemplate><![CDATA[";
    // "]]>" cannot appear inside one CDATA section: split it across two.
    std::string_view body = t.body;
    for (size_t at; (at = body.find("]]>")) != std::string_view::npos; body = body.substr(at + 2)) {
      out.append(body.substr(0, at + 2));
      out += "]]><![CDATA[";
    }
    out.append(body);
    out += "]]></BodyTemplate>";
    if (r.platform == Platform::kApns) {
      if (!t.expiry.empty()) appendElement(out, "Expiry", t.expiry);
      std::string headers;
      for (const auto& [header, value] : t.headers) {
        if (header == "apns-priority") continue;
        headers += "<ApnsHeader>";
        appendElement(headers, "Header", header);
        appendElement(headers, "Value", value);
        headers += "</ApnsHeader>";
      }
      if (!headers.empty()) out += "<ApnsHeaders>" + headers + "</ApnsHeaders>";
      if (auto p = t.headers.find("apns-priority"); p != t.headers.end()) {
        appendElement(out, "Priority", p->second);
      }
    }
    if (name != r.id) appendElement(out, "TemplateName", name);
    if (r.platform == Platform::kWns && !t.headers.empty()) {
      out += "<WnsHeaders>";
      for (const auto& [header, value] : t.headers) {
        out += "<WnsHeader>";
        appendElement(out, "Header", header);
        appendElement(out, "Value", value);
        out += "</WnsHeader>";
      }
      out += "</WnsHeaders>";
    }
  }
  out += fmt::format("</{}></content></entry>", element);
}

}  // namespace

std::expected<Installation, std::string> parseRegistrationXml(std::string_view xml) {
  pugi::xml_document document;
  const auto parsed =
      document.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) {
    return std::unexpected(
        fmt::format("not well-formed XML at offset {}: {}", parsed.offset, parsed.description()));
  }
  pugi::xml_node description = document.document_element();
  if (localName(description) == "entry") {
    pugi::xml_node content = childNamed(description, "content");
    if (!content) return std::unexpected("the Atom entry has no <content>");
    description = {};
    for (pugi::xml_node child : content.children()) {
      if (child.type() == pugi::node_element) {
        description = child;
        break;
      }
    }
    if (!description) return std::unexpected("the Atom entry's <content> holds no description");
  }
  std::string_view name = localName(description);
  constexpr std::string_view kSuffix = "RegistrationDescription";
  if (!name.ends_with(kSuffix)) {
    return std::unexpected(fmt::format("<{}> is not a registration description", name));
  }
  name.remove_suffix(kSuffix.size());
  const bool is_template = name.ends_with("Template");
  if (is_template) name.remove_suffix(std::strlen("Template"));
  const auto family = std::find_if(std::begin(kFamilies), std::end(kFamilies),
                                   [&](const Family& f) { return f.prefix == name; });
  if (family == std::end(kFamilies)) {
    return std::unexpected(
        fmt::format("{} registrations are not supported (Apple, Gcm, FcmV1 and Windows are)",
                    name.empty() ? std::string_view("unnamed") : name));
  }

  Installation r;
  r.kind = storage::DeviceKind::kRegistration;
  r.platform = family->platform;
  InstallationTemplate t;
  std::string template_name;
  bool has_body = false;
  for (pugi::xml_node field : description.children()) {
    if (field.type() != pugi::node_element) continue;
    const std::string_view f = localName(field);
    const std::string text = textOf(field);
    if (f == family->handle_element) {
      r.push_channel = trimmed(text);
    } else if (f == "Tags") {
      std::string_view rest = text;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        std::string tag = trimmed(rest.substr(0, comma));
        if (!tag.empty()) r.tags.push_back(std::move(tag));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    } else if (f == "RegistrationId") {
      r.id = trimmed(text);
    } else if (f == "ExpirationTime") {
      const std::string when = trimmed(text);
      if (!when.empty()) {
        auto at = parseIso8601(when);
        if (!at)
          return std::unexpected(fmt::format("ExpirationTime: '{}' is not a W3C time", when));
        r.expiration_time = *at;
      }
    } else if (f == "ETag" || f == "PushVariables") {
      // Read-only, and pushhub's templates take their values from the notification.
    } else if (is_template && f == "BodyTemplate") {
      t.body = text;
      has_body = true;
    } else if (is_template && f == "TemplateName") {
      template_name = trimmed(text);
    } else if (is_template && family->platform == Platform::kApns && f == "Expiry") {
      t.expiry = trimmed(text);
    } else if (is_template && family->platform == Platform::kApns && f == "Priority") {
      const std::string priority = trimmed(text);
      if (!priority.empty()) t.headers["apns-priority"] = priority;
    } else if (is_template && family->platform == Platform::kApns && f == "ApnsHeaders") {
      if (auto ok = readHeaders(field, "ApnsHeader", t); !ok) return std::unexpected(ok.error());
    } else if (is_template && family->platform == Platform::kWns && f == "WnsHeaders") {
      if (auto ok = readHeaders(field, "WnsHeader", t); !ok) return std::unexpected(ok.error());
    } else {
      return std::unexpected(fmt::format("<{}> is not a field of {}", f, localName(description)));
    }
  }
  if (r.push_channel.empty()) {
    return std::unexpected(
        fmt::format("{}: <{}> is required", localName(description), family->handle_element));
  }
  if (is_template) {
    if (!has_body || t.body.empty()) {
      return std::unexpected(fmt::format("{}: <BodyTemplate> is required", localName(description)));
    }
    // Named after the registration when unnamed: set by the caller once the id is known.
    r.templates.emplace(template_name, std::move(t));
  }
  return r;
}

std::string registrationEntryXml(const Installation& registration, std::string_view base_url) {
  std::string out = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";
  appendEntry(out, registration, base_url);
  return out;
}

std::string registrationFeedXml(const std::vector<Installation>& registrations,
                                std::string_view base_url, std::string_view self) {
  std::string out =
      "<?xml version=\"1.0\" encoding=\"utf-8\"?><feed xmlns=\"http://www.w3.org/2005/Atom\">"
      "<title type=\"text\">Registrations</title><id>";
  appendXmlEscaped(out, self);
  out += "</id><updated>";
  out += formatIso8601(nowMillis());
  out += "</updated><link rel=\"self\" href=\"";
  appendXmlEscaped(out, self);
  out += "\"/>";
  for (const auto& r : registrations) appendEntry(out, r, base_url);
  out += "</feed>";
  return out;
}

std::expected<ChannelFilter, std::string> parseChannelFilter(std::string_view filter) {
  const std::string text = trimmed(filter);
  std::string_view rest = text;
  const size_t space = rest.find(' ');
  if (space == std::string_view::npos) {
    return std::unexpected(fmt::format("$filter '{}' is not \"<Field> eq '<value>'\"", text));
  }
  const std::string_view field = rest.substr(0, space);
  rest = rest.substr(space);
  const size_t first = rest.find_first_not_of(' ');
  rest = first == std::string_view::npos ? std::string_view() : rest.substr(first);
  if (!rest.starts_with("eq ") && !rest.starts_with("eq'")) {
    return std::unexpected(fmt::format("$filter '{}': only 'eq' is supported", text));
  }
  rest = rest.substr(2);
  rest = rest.substr(std::min(rest.find_first_not_of(' '), rest.size()));
  if (rest.size() < 2 || rest.front() != '\'' || rest.back() != '\'') {
    return std::unexpected(fmt::format("$filter '{}': the value is not a quoted string", text));
  }
  rest = rest.substr(1, rest.size() - 2);
  ChannelFilter out;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '\'') {
      if (i + 1 >= rest.size() || rest[i + 1] != '\'') {
        return std::unexpected(
            fmt::format("$filter '{}': a quote inside the value is doubled", text));
      }
      ++i;
    }
    out.handle += rest[i];
  }
  const auto family = std::find_if(std::begin(kFamilies), std::end(kFamilies),
                                   [&](const Family& f) { return f.handle_element == field; });
  if (family == std::end(kFamilies)) {
    return std::unexpected(
        fmt::format("$filter field '{}' is not ChannelUri, DeviceToken, GcmRegistrationId or "
                    "FcmV1RegistrationId",
                    field));
  }
  out.platform = family->platform;
  return out;
}

}  // namespace pushhub::api
