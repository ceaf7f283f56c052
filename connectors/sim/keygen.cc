#include "connectors/sim/keygen.h"

#include <fmt/format.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <random>

#include "common/json.h"
#include "connectors/jwt.h"

namespace pushhub::connectors::sim {
namespace {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

std::expected<void, std::string> writeFile(const std::filesystem::path& path, std::string_view text,
                                           bool secret = false) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return std::unexpected(fmt::format("cannot write {}", path.string()));
  out << text;
  out.close();
  if (secret) {
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  return {};
}

std::expected<std::string, std::string> readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::unexpected(fmt::format("cannot read {}", path.string()));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string pemOf(X509* certificate) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, certificate);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(size));
  BIO_free(bio);
  return out;
}

void addExtension(X509* certificate, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, certificate, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext != nullptr) {
    X509_add_ext(certificate, ext, -1);
    X509_EXTENSION_free(ext);
  }
}

X509Ptr newCertificate(EVP_PKEY* key, const std::string& common_name, const std::string& uid,
                       int days) {
  X509Ptr certificate(X509_new());
  X509_set_version(certificate.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7F;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(certificate.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 60L * 60 * 24 * days);
  X509_set_pubkey(certificate.get(), key);
  X509_NAME* name = X509_get_subject_name(certificate.get());
  if (!uid.empty()) {
    X509_NAME_add_entry_by_NID(name, NID_userId, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(uid.c_str()), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  return certificate;
}

std::string randomId(std::mt19937_64& rng, size_t length, std::string_view alphabet) {
  std::string out;
  for (size_t i = 0; i < length; ++i) out += alphabet[rng() % alphabet.size()];
  return out;
}

}  // namespace

std::expected<void, std::string> writeCertificateAuthority(const std::filesystem::path& cert,
                                                           const std::filesystem::path& key) {
  auto ca_key = generateEcP256Key();
  if (!ca_key) return std::unexpected(ca_key.error());
  X509Ptr ca = newCertificate(ca_key->get(), "pushhub-sim development CA", "", 3650);
  X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get()));
  addExtension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE");
  addExtension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  addExtension(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
  if (X509_sign(ca.get(), ca_key->get(), EVP_sha256()) == 0) {
    return std::unexpected("signing the CA certificate failed");
  }
  if (auto ok = writeFile(cert, pemOf(ca.get())); !ok) return ok;
  return writeFile(key, privateKeyPem(ca_key->get()), true);
}

std::expected<void, std::string> writeSignedCertificate(const std::filesystem::path& ca_cert,
                                                        const std::filesystem::path& ca_key_path,
                                                        const CertificateRequest& request,
                                                        const std::filesystem::path& cert,
                                                        const std::filesystem::path& key) {
  auto ca_pem = readFile(ca_cert);
  auto ca_key_pem = readFile(ca_key_path);
  if (!ca_pem) return std::unexpected(ca_pem.error());
  if (!ca_key_pem) return std::unexpected(ca_key_pem.error());
  auto ca_key = loadPrivateKeyPem(*ca_key_pem);
  if (!ca_key) return std::unexpected(ca_key.error());
  BIO* bio = BIO_new_mem_buf(ca_pem->data(), static_cast<int>(ca_pem->size()));
  X509Ptr ca(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!ca) return std::unexpected(fmt::format("{} is not a PEM certificate", ca_cert.string()));

  auto leaf_key = generateEcP256Key();
  if (!leaf_key) return std::unexpected(leaf_key.error());
  X509Ptr leaf = newCertificate(leaf_key->get(), request.common_name, request.uid, 825);
  X509_set_issuer_name(leaf.get(), X509_get_subject_name(ca.get()));
  addExtension(leaf.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE");
  addExtension(leaf.get(), ca.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment");
  addExtension(leaf.get(), ca.get(), NID_ext_key_usage,
               request.client ? "clientAuth" : "serverAuth");
  addExtension(leaf.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
  std::string san;
  for (const auto& dns : request.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  for (const auto& ip : request.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) addExtension(leaf.get(), ca.get(), NID_subject_alt_name, san);
  if (X509_sign(leaf.get(), ca_key->get(), EVP_sha256()) == 0) {
    return std::unexpected("signing a certificate failed");
  }
  if (auto ok = writeFile(cert, pemOf(leaf.get())); !ok) return ok;
  return writeFile(key, privateKeyPem(leaf_key->get()), true);
}

std::expected<KeygenResult, std::string> generateDevelopmentCredentials(
    const std::filesystem::path& dir, const KeygenOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  const auto abs = std::filesystem::absolute(dir);
  std::mt19937_64 rng(std::random_device{}());
  constexpr std::string_view kUpperDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

  if (auto ok = writeCertificateAuthority(abs / "ca.crt", abs / "ca.key"); !ok) {
    return std::unexpected(ok.error());
  }
  CertificateRequest server{"localhost", "", {"localhost"}, {"127.0.0.1", "::1"}, false};
  if (auto ok = writeSignedCertificate(abs / "ca.crt", abs / "ca.key", server, abs / "server.crt",
                                       abs / "server.key");
      !ok) {
    return std::unexpected(ok.error());
  }

  // APNs: a token-auth key as Apple hands it out (AuthKey_<KEYID>.p8).
  const std::string key_id = randomId(rng, 10, kUpperDigits);
  const std::string team_id = randomId(rng, 10, kUpperDigits);
  const std::string bundle_id = "com.example.pushhub";
  auto apns_key = generateEcP256Key();
  if (!apns_key) return std::unexpected(apns_key.error());
  const auto p8 = abs / fmt::format("AuthKey_{}.p8", key_id);
  if (auto ok = writeFile(p8, privateKeyPem(apns_key->get()), true); !ok) {
    return std::unexpected(ok.error());
  }
  // FCM: a service account as the Firebase console downloads it, with token_uri pointing at the
  // simulator's token endpoint.
  const std::string project_id = "pushhub-dev";
  const std::string client_email =
      fmt::format("pushhub-sim@{}.iam.gserviceaccount.com", project_id);
  auto fcm_key = generateRsaKey(2048);
  if (!fcm_key) return std::unexpected(fcm_key.error());
  const std::string private_key_id = randomId(rng, 40, "0123456789abcdef");
  const std::string fcm_base = fmt::format("https://localhost:{}", options.fcm_port);
  const auto service_account_file = abs / "fcm-service-account.json";
  const std::string service_account = fmt::format(
      "{{\n  \"type\": \"service_account\",\n  \"project_id\": {},\n  \"private_key_id\": {},\n"
      "  \"private_key\": {},\n  \"client_email\": {},\n  \"client_id\": {},\n"
      "  \"auth_uri\": \"https://accounts.google.com/o/oauth2/auth\",\n  \"token_uri\": {},\n"
      "  \"universe_domain\": \"googleapis.com\"\n}}\n",
      jsonQuoted(project_id), jsonQuoted(private_key_id), jsonQuoted(privateKeyPem(fcm_key->get())),
      jsonQuoted(client_email), jsonQuoted(randomId(rng, 21, "0123456789")),
      jsonQuoted(fcm_base + "/token"));
  if (auto ok = writeFile(service_account_file, service_account, true); !ok) {
    return std::unexpected(ok.error());
  }

  // WNS: a Store app's package SID and secret, and an Entra tenant for the v2.0 endpoint.
  const std::string package_sid = fmt::format("ms-app://s-1-15-2-{}-{}-{}", rng() % 4000000000u,
                                              rng() % 4000000000u, rng() % 4000000000u);
  const std::string wns_secret =
      randomId(rng, 32, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
  const std::string tenant =
      fmt::format("{}-{}-4{}-a{}-{}", randomId(rng, 8, "0123456789abcdef"),
                  randomId(rng, 4, "0123456789abcdef"), randomId(rng, 3, "0123456789abcdef"),
                  randomId(rng, 3, "0123456789abcdef"), randomId(rng, 12, "0123456789abcdef"));
  const std::string wns_base = fmt::format("https://localhost:{}", options.wns_port);

  const std::string sim_conf = fmt::format(
      "# pushhub-sim configuration, written by `pushhub-sim keygen`: pushhub-sim --config {}\n"
      "apns-listen = \"127.0.0.1:{}\"\n"
      "fcm-listen = \"127.0.0.1:{}\"\n"
      "wns-listen = \"127.0.0.1:{}\"\n"
      "admin-listen = \"127.0.0.1:{}\"\n"
      "tls-cert = {}\n"
      "tls-key = {}\n"
      "apns-key = [{}]\n"
      "fcm-service-account = [{}]\n"
      "wns-app = [{}]\n"
      "wns-tenant = [{}]\n",
      (abs / "sim.conf").string(), options.apns_port, options.fcm_port, options.wns_port,
      options.admin_port, jsonQuoted((abs / "server.crt").string()),
      jsonQuoted((abs / "server.key").string()),
      jsonQuoted(fmt::format("{}:{}:{}:{}", key_id, team_id, p8.string(), bundle_id)),
      jsonQuoted(service_account_file.string()),
      jsonQuoted(fmt::format("{}={}", package_sid, wns_secret)), jsonQuoted(tenant));
  if (auto ok = writeFile(abs / "sim.conf", sim_conf); !ok) return std::unexpected(ok.error());
  // The pushhub side: a hub's push-service credentials and endpoints, all pointing at the
  // simulator, in the shape of the hub definition pushhub's configuration and admin API take.
  const std::string credentials = fmt::format(
      "{{\n"
      "  \"ca_file\": {},\n"
      "  \"apns\": {{\"key_id\": {}, \"team_id\": {}, \"bundle_id\": {}, "
      "\"private_key_file\": {}, \"endpoint\": {}}},\n"
      "  \"fcm\": {{\"project_id\": {}, \"service_account_file\": {}, \"endpoint\": {}}},\n"
      "  \"wns\": {{\"package_sid\": {}, \"secret\": {}, \"tenant_id\": {}, "
      "\"token_endpoint\": {}, \"channel_base\": {}, \"channel_host_suffix\": \"localhost\"}},\n"
      "  \"sim_admin\": {}\n"
      "}}\n",
      jsonQuoted((abs / "ca.crt").string()), jsonQuoted(key_id), jsonQuoted(team_id),
      jsonQuoted(bundle_id), jsonQuoted(p8.string()),
      jsonQuoted(fmt::format("https://localhost:{}", options.apns_port)), jsonQuoted(project_id),
      jsonQuoted(service_account_file.string()), jsonQuoted(fcm_base), jsonQuoted(package_sid),
      jsonQuoted(wns_secret), jsonQuoted(tenant), jsonQuoted(wns_base + "/accesstoken.srf"),
      jsonQuoted(wns_base + "/?token="),
      jsonQuoted(fmt::format("http://127.0.0.1:{}", options.admin_port)));
  if (auto ok = writeFile(abs / "credentials.json", credentials, true); !ok) {
    return std::unexpected(ok.error());
  }
  return KeygenResult{abs / "sim.conf", abs / "credentials.json"};
}

}  // namespace pushhub::connectors::sim
