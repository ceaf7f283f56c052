#include "hub/hub_definition.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>
#include <sstream>

#include "common/json_parse.h"
#include "connectors/http1/client.h"
#include "connectors/jwt.h"
#include "connectors/tls.h"

namespace pushhub::hub {

namespace {

std::expected<std::string, std::string> readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(fmt::format("{}: cannot be read", path.string()));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class Fields {
 public:
  Fields(const rapidjson::Value& object, std::string section, const std::filesystem::path& base)
      : object_(object), section_(std::move(section)), base_(base) {}

  std::expected<std::string, std::string> string(const char* name, bool required) const {
    auto it = object_.FindMember(name);
    if (it == object_.MemberEnd() || it->value.IsNull()) {
      if (required) return std::unexpected(fmt::format("{}.{}: missing", section_, name));
      return std::string();
    }
    if (!it->value.IsString()) {
      return std::unexpected(fmt::format("{}.{}: not a string", section_, name));
    }
    return std::string(it->value.GetString(), it->value.GetStringLength());
  }
  // `inline_name` (text) or `file_name` (a file's contents); one of them.
  std::expected<std::string, std::string> textOrFile(const char* inline_name,
                                                     const char* file_name) const {
    auto text = string(inline_name, false);
    if (!text) return text;
    auto file = string(file_name, false);
    if (!file) return file;
    if (text->empty() == file->empty()) {
      return std::unexpected(
          fmt::format("{}: give either {} or {}", section_, inline_name, file_name));
    }
    if (!text->empty()) return text;
    return readFile(resolve(*file));
  }
  std::expected<Endpoint, std::string> endpoint(Endpoint fallback) const {
    auto text = string("endpoint", false);
    if (!text) return std::unexpected(text.error());
    if (text->empty()) return fallback;
    auto url = connectors::http1::parseHttpsUrl(*text);
    if (!url) return std::unexpected(fmt::format("{}.endpoint: {}", section_, url.error()));
    return Endpoint{url->host, url->port};
  }
  std::filesystem::path resolve(const std::string& file) const {
    std::filesystem::path p(file);
    return p.is_absolute() ? p : base_ / p;
  }
  const rapidjson::Value& object() const { return object_; }

 private:
  const rapidjson::Value& object_;
  std::string section_;
  const std::filesystem::path& base_;
};

// APNs certificate auth, when the section asks for it: PEM (inline or a file, the key beside it or
// apart) or PKCS#12 (base64 inline or a file, with its password). Nullopt: token auth.
std::expected<std::optional<connectors::ClientCertificate>, std::string> apnsCertificate(
    const Fields& f) {
  const auto& v = f.object();
  const bool pem = v.HasMember("certificate") || v.HasMember("certificate_file");
  const bool p12 = v.HasMember("certificate_p12") || v.HasMember("certificate_p12_file");
  if (!pem && !p12) {
    for (const char* stray : {"certificate_key", "certificate_key_file", "certificate_password"}) {
      if (v.HasMember(stray)) {
        return std::unexpected(
            fmt::format("apns.{}: given without a certificate (certificate, certificate_file, "
                        "certificate_p12 or certificate_p12_file)",
                        stray));
      }
    }
    return std::nullopt;
  }
  if (pem && p12) {
    return std::unexpected("apns: give the certificate as PEM or as PKCS#12, not both");
  }
  if (pem) {
    auto chain = f.textOrFile("certificate", "certificate_file");
    if (!chain) return std::unexpected(chain.error());
    std::string key;
    if (v.HasMember("certificate_key") || v.HasMember("certificate_key_file")) {
      auto k = f.textOrFile("certificate_key", "certificate_key_file");
      if (!k) return std::unexpected(k.error());
      key = std::move(*k);
    }
    auto certificate = connectors::clientCertificateFromPem(*chain, key);
    if (!certificate) return std::unexpected("apns.certificate: " + certificate.error());
    return std::optional(std::move(*certificate));
  }
  auto archive = f.textOrFile("certificate_p12", "certificate_p12_file");
  if (!archive) return std::unexpected(archive.error());
  std::string der;
  if (v.HasMember("certificate_p12")) {
    auto decoded = connectors::base64Decode(*archive);
    if (!decoded) return std::unexpected("apns.certificate_p12: not base64");
    der = std::move(*decoded);
  } else {
    der = std::move(*archive);
  }
  auto password = f.string("certificate_password", false);
  if (!password) return std::unexpected(password.error());
  auto certificate = connectors::clientCertificateFromPkcs12(der, *password);
  if (!certificate) return std::unexpected("apns.certificate_p12: " + certificate.error());
  return std::optional(std::move(*certificate));
}

}  // namespace

std::expected<void, std::string> validateHubName(std::string_view name) {
  if (name.empty() || name.size() > 260) {
    return std::unexpected("a hub name has 1 to 260 characters");
  }
  if (name == "." || name == "..") {
    return std::unexpected("'.' and '..' are not hub names (URLs resolve them away)");
  }
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    if (!ok) {
      return std::unexpected(
          fmt::format("hub name \"{}\": only letters, digits, '.', '-' and '_' are allowed", name));
    }
  }
  return {};
}

std::expected<HubDefinition, std::string> parseHubDefinition(std::string_view name,
                                                             std::string_view json,
                                                             const std::filesystem::path& base) {
  if (auto ok = validateHubName(name); !ok) return std::unexpected(ok.error());
  rapidjson::Document doc;
  if (auto ok = parseJson(doc, json); !ok) return std::unexpected("not JSON " + ok.error());
  if (!doc.IsObject()) return std::unexpected("a hub definition is a JSON object");
  HubDefinition def;
  def.name = std::string(name);
  Fields top(doc, "hub", base);
  auto ca = top.string("ca_file", false);
  if (!ca) return std::unexpected(ca.error());
  if (!ca->empty()) def.ca_file = top.resolve(*ca).string();

  const auto section = [&](const char* key) -> const rapidjson::Value* {
    auto it = doc.FindMember(key);
    return it == doc.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
  };
  if (const auto* v = section("apns")) {
    if (!v->IsObject()) return std::unexpected("apns: not an object");
    Fields f(*v, "apns", base);
    HubDefinition::Apns apns;
    auto certificate = apnsCertificate(f);
    if (!certificate) return std::unexpected(certificate.error());
    if (*certificate) {
      for (const char* token_field : {"key_id", "team_id", "private_key", "private_key_file"}) {
        if (v->HasMember(token_field)) {
          return std::unexpected(fmt::format(
              "apns.{}: a hub uses token auth (key_id, team_id, private_key) or certificate "
              "auth, not both",
              token_field));
        }
      }
      auto info = connectors::describeClientCertificate(**certificate);
      if (!info) return std::unexpected("apns.certificate: " + info.error());
      auto bundle = f.string("bundle_id", false);
      if (!bundle) return std::unexpected(bundle.error());
      apns.bundle_id = bundle->empty() ? info->uid : std::move(*bundle);
      apns.certificate_chain_pem = std::move((*certificate)->chain_pem);
      apns.certificate_key_pem = std::move((*certificate)->private_key_pem);
    } else {
      for (auto [field, out] :
           {std::pair{"key_id", &apns.key_id}, std::pair{"team_id", &apns.team_id},
            std::pair{"bundle_id", &apns.bundle_id}}) {
        auto value = f.string(field, true);
        if (!value) return std::unexpected(value.error());
        *out = std::move(*value);
      }
      auto key = f.textOrFile("private_key", "private_key_file");
      if (!key) return std::unexpected(key.error());
      apns.private_key_pem = std::move(*key);
    }
    auto endpoint = f.endpoint(apns.endpoint);
    if (!endpoint) return std::unexpected(endpoint.error());
    apns.endpoint = *endpoint;
    def.apns = std::move(apns);
  }
  if (const auto* v = section("fcm")) {
    if (!v->IsObject()) return std::unexpected("fcm: not an object");
    Fields f(*v, "fcm", base);
    HubDefinition::Fcm fcm;
    auto project = f.string("project_id", false);
    if (!project) return std::unexpected(project.error());
    fcm.project_id = std::move(*project);
    auto inline_account = v->FindMember("service_account");
    if (inline_account != v->MemberEnd() && inline_account->value.IsObject()) {
      rapidjson::StringBuffer buffer;
      rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
      inline_account->value.Accept(writer);
      fcm.service_account_json.assign(buffer.GetString(), buffer.GetSize());
    } else {
      auto account = f.textOrFile("service_account", "service_account_file");
      if (!account) return std::unexpected(account.error());
      fcm.service_account_json = std::move(*account);
    }
    auto endpoint = f.endpoint(fcm.endpoint);
    if (!endpoint) return std::unexpected(endpoint.error());
    fcm.endpoint = *endpoint;
    auto token_endpoint = f.string("token_endpoint", false);
    if (!token_endpoint) return std::unexpected(token_endpoint.error());
    if (!token_endpoint->empty()) {
      if (auto url = connectors::http1::parseHttpsUrl(*token_endpoint); !url) {
        return std::unexpected("fcm.token_endpoint: " + url.error());
      }
    }
    fcm.token_endpoint = std::move(*token_endpoint);
    def.fcm = std::move(fcm);
  }
  if (const auto* v = section("wns")) {
    if (!v->IsObject()) return std::unexpected("wns: not an object");
    Fields f(*v, "wns", base);
    HubDefinition::Wns wns;
    for (auto [field, out, required] :
         {std::tuple{"package_sid", &wns.package_sid, true},
          std::tuple{"secret", &wns.secret, true}, std::tuple{"tenant_id", &wns.tenant_id, false},
          std::tuple{"token_endpoint", &wns.token_endpoint, false},
          std::tuple{"channel_host_suffix", &wns.channel_host_suffix, false}}) {
      auto value = f.string(field, required);
      if (!value) return std::unexpected(value.error());
      if (!value->empty()) *out = std::move(*value);
    }
    if (wns.token_endpoint.empty()) {
      wns.token_endpoint =
          wns.tenant_id.empty()
              ? "https://login.live.com/accesstoken.srf"
              : fmt::format("https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                            wns.tenant_id);
    }
    if (auto url = connectors::http1::parseHttpsUrl(wns.token_endpoint); !url) {
      return std::unexpected("wns.token_endpoint: " + url.error());
    }
    def.wns = std::move(wns);
  }
  if (!def.apns && !def.fcm && !def.wns) {
    return std::unexpected("a hub definition needs at least one of apns, fcm, wns");
  }
  return def;
}

std::expected<HubDefinition, std::string> loadHubDefinition(std::string_view name,
                                                            const std::filesystem::path& file) {
  auto text = readFile(file);
  if (!text) return std::unexpected(text.error());
  auto def = parseHubDefinition(name, *text, file.parent_path());
  if (!def) return std::unexpected(fmt::format("{}: {}", file.string(), def.error()));
  return def;
}

std::expected<std::vector<HubDefinition>, std::string> loadHubDefinitions(std::string_view list) {
  std::vector<HubDefinition> out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == item.size()) {
      return std::unexpected(fmt::format("\"{}\": expected name=file", item));
    }
    for (const auto& seen : out) {
      if (seen.name == item.substr(0, eq)) {
        return std::unexpected(fmt::format("hub \"{}\" is declared twice", seen.name));
      }
    }
    auto def = loadHubDefinition(item.substr(0, eq), std::string(item.substr(eq + 1)));
    if (!def) return std::unexpected(def.error());
    out.push_back(std::move(*def));
  }
  return out;
}

}  // namespace pushhub::hub
