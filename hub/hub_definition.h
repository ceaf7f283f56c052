#pragma once

// A hub's push-service credentials and endpoints: what pushhub needs to reach APNs, FCM and WNS
// for it. Read from a JSON document (the shape `pushhub-sim keygen` writes to credentials.json
// and the admin API will take):
//
//   {
//     "ca_file": "dev/ca.crt",                       // optional: an extra CA for the endpoints
//     "apns": {"key_id": "…", "team_id": "…", "bundle_id": "com.example.app",
//              "private_key_file": "AuthKey.p8",      // or "private_key": "-----BEGIN…"
//              "endpoint": "https://api.push.apple.com"},
//     -- or, certificate auth instead of a key (bundle_id then defaults to the certificate's UID):
//     "apns": {"certificate_file": "push.pem",        // or "certificate": PEM; the key beside it
//              "certificate_key_file": "push.key",    // or "certificate_key"; when not in the PEM
//              -- or "certificate_p12_file": "push.p12" / "certificate_p12": base64 (Azure's
//              -- ApnsCertificate), with "certificate_password" (Azure's CertificateKey)
//              "endpoint": "…"},
//     "fcm":  {"project_id": "…", "service_account_file": "sa.json",  // or "service_account": {…}
//              "endpoint": "https://fcm.googleapis.com",
//              "token_endpoint": "…"},                 // optional: instead of its token_uri
//     "wns":  {"package_sid": "ms-app://…", "secret": "…", "tenant_id": "…" (optional: Entra),
//              "token_endpoint": "https://login.live.com/accesstoken.srf",
//              "channel_host_suffix": ".notify.windows.com"}
//   }
//
// Every platform is optional; a hub without one cannot send to it (those deliveries end as
// InvalidCredentials). Relative file names are relative to the document's directory.

#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pushhub::hub {

struct Endpoint {
  std::string host;
  uint16_t port = 443;
};

struct HubDefinition {
  std::string name;
  std::string ca_file;
  struct Apns {
    std::string key_id;
    std::string team_id;
    std::string bundle_id;
    std::string private_key_pem;  // token auth: the .p8 key
    // Certificate auth (key_id, team_id and private_key_pem empty): the client certificate's
    // chain and key, PEM.
    std::string certificate_chain_pem;
    std::string certificate_key_pem;
    Endpoint endpoint{"api.push.apple.com", 443};
    bool usesCertificate() const { return !certificate_chain_pem.empty(); }
  };
  struct Fcm {
    std::string project_id;  // empty: the service account's
    std::string service_account_json;
    Endpoint endpoint{"fcm.googleapis.com", 443};
    std::string token_endpoint;  // empty: the service account's token_uri
  };
  struct Wns {
    std::string package_sid;
    std::string secret;
    std::string tenant_id;
    // Default: Entra's v2.0 endpoint for the tenant when tenant_id is set, else the classic
    // https://login.live.com/accesstoken.srf. An …/oauth2/v2.0/token endpoint is asked for the
    // Entra scope, any other for the classic one (usesEntra()).
    std::string token_endpoint;
    std::string channel_host_suffix = ".notify.windows.com";
    bool usesEntra() const {
      return token_endpoint.find("/oauth2/v2.0/token") != std::string::npos;
    }
  };
  std::optional<Apns> apns;
  std::optional<Fcm> fcm;
  std::optional<Wns> wns;
};

// Hub names: what Azure allows (letters, digits, '.', '-', '_', 1–260 characters).
std::expected<void, std::string> validateHubName(std::string_view name);

// Parses a definition; errors name the field ("apns.key_id: missing").
std::expected<HubDefinition, std::string> parseHubDefinition(std::string_view name,
                                                             std::string_view json,
                                                             const std::filesystem::path& base_dir);
// Reads and parses `file`; errors start with the file name.
std::expected<HubDefinition, std::string> loadHubDefinition(std::string_view name,
                                                            const std::filesystem::path& file);

// "name=file,name2=file2" (the engine.hubs configuration value) → definitions.
std::expected<std::vector<HubDefinition>, std::string> loadHubDefinitions(std::string_view list);

}  // namespace pushhub::hub
