#pragma once

// `pushhub-sim keygen DIR`: a matching set of development credentials — a TLS CA and a server
// certificate for localhost/127.0.0.1, an APNs .p8 key with key and team ids, an FCM service
// account, a WNS package SID and secret — plus the simulator's configuration file that trusts
// them and a pushhub configuration fragment that uses them.

#include <cstdint>
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

namespace pushhub::connectors::sim {

struct KeygenResult {
  std::filesystem::path sim_config;  // DIR/sim.conf, for pushhub-sim --config
  std::filesystem::path
      credentials;  // DIR/credentials.json: the hub's side (ids, keys, CA, endpoints)
};

// The ports the simulator will listen on (written to sim.conf, the service account's token_uri
// and the endpoints in credentials.json).
struct KeygenOptions {
  uint16_t apns_port = 2197;
  uint16_t fcm_port = 2198;
  uint16_t wns_port = 2199;
  uint16_t admin_port = 8089;
};

std::expected<KeygenResult, std::string> generateDevelopmentCredentials(
    const std::filesystem::path& dir, const KeygenOptions& options = {});

// A self-signed CA and a certificate it signs, for tests that need other names or client
// certificates. `uid` sets the subject UID (APNs client certificates carry the bundle id there).
struct CertificateRequest {
  std::string common_name;
  std::string uid;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  bool client = false;  // extendedKeyUsage clientAuth instead of serverAuth
};
std::expected<void, std::string> writeCertificateAuthority(const std::filesystem::path& cert,
                                                           const std::filesystem::path& key);
std::expected<void, std::string> writeSignedCertificate(const std::filesystem::path& ca_cert,
                                                        const std::filesystem::path& ca_key,
                                                        const CertificateRequest& request,
                                                        const std::filesystem::path& cert,
                                                        const std::filesystem::path& key);

}  // namespace pushhub::connectors::sim
