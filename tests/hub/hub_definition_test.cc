// APNs certificate credentials in hub definitions: PEM (key beside or apart, inline or by file)
// and PKCS#12 (base64 inline or a file, with its password), the bundle id taken from the
// certificate's UID, and each wrong combination refused naming the field.
#include "hub/hub_definition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include <fstream>
#include <sstream>

#include "connectors/jwt.h"
#include "connectors/sim/keygen.h"
#include "connectors/tls.h"
#include "tests/support/temp_dir.h"

namespace pushhub::hub {
namespace {

using ::testing::HasSubstr;
namespace sim = connectors::sim;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A JSON string literal of `text` (PEM has newlines).
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

class HubDefinitionCertificate : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new pushhub::testing::TempDir();
    const auto d = dir_->path();
    ASSERT_TRUE(sim::writeCertificateAuthority(d / "ca.crt", d / "ca.key").has_value());
    sim::CertificateRequest request{
        "Apple Push Services: com.example.certapp", "com.example.certapp", {}, {}, true};
    ASSERT_TRUE(sim::writeSignedCertificate(d / "ca.crt", d / "ca.key", request, d / "push.crt",
                                            d / "push.key")
                    .has_value());
    sim::CertificateRequest other{"someone else", "", {}, {}, true};
    ASSERT_TRUE(sim::writeSignedCertificate(d / "ca.crt", d / "ca.key", other, d / "other.crt",
                                            d / "other.key")
                    .has_value());
    // push.p12 with the password "secret", as Keychain would export it.
    auto cert_bio = slurp(d / "push.crt");
    auto key_bio = slurp(d / "push.key");
    BIO* cb = BIO_new_mem_buf(cert_bio.data(), static_cast<int>(cert_bio.size()));
    BIO* kb = BIO_new_mem_buf(key_bio.data(), static_cast<int>(key_bio.size()));
    X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    ASSERT_NE(cert, nullptr);
    ASSERT_NE(key, nullptr);
    PKCS12* p12 = PKCS12_create("secret", "push", key, cert, nullptr, 0, 0, 0, 0, 0);
    ASSERT_NE(p12, nullptr);
    unsigned char* der = nullptr;
    const int length = i2d_PKCS12(p12, &der);
    std::ofstream(d / "push.p12", std::ios::binary)
        .write(reinterpret_cast<const char*>(der), length);
    OPENSSL_free(der);
    PKCS12_free(p12);
    X509_free(cert);
    EVP_PKEY_free(key);
    BIO_free(cb);
    BIO_free(kb);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::filesystem::path path() { return dir_->path(); }
  std::expected<HubDefinition, std::string> parse(const std::string& apns_fields) {
    return parseHubDefinition("demo", "{\"apns\":{" + apns_fields + "}}", path());
  }
  static pushhub::testing::TempDir* dir_;
};
pushhub::testing::TempDir* HubDefinitionCertificate::dir_ = nullptr;

TEST_F(HubDefinitionCertificate, ReadsAPemCertificateWithItsKeyApartOrBeside) {
  auto apart = parse(R"("certificate_file":"push.crt","certificate_key_file":"push.key")");
  ASSERT_TRUE(apart.has_value()) << apart.error();
  EXPECT_TRUE(apart->apns->usesCertificate());
  EXPECT_EQ(apart->apns->bundle_id, "com.example.certapp") << "the certificate's UID";
  EXPECT_TRUE(apart->apns->key_id.empty());
  EXPECT_THAT(apart->apns->certificate_key_pem, HasSubstr("PRIVATE KEY"));

  const std::string both = slurp(path() / "push.crt") + slurp(path() / "push.key");
  auto beside = parse("\"certificate\":" + quoted(both) + R"(,"bundle_id":"com.example.given")");
  ASSERT_TRUE(beside.has_value()) << beside.error();
  EXPECT_EQ(beside->apns->bundle_id, "com.example.given") << "a given bundle id wins";
  EXPECT_EQ(beside->apns->certificate_chain_pem, apart->apns->certificate_chain_pem);

  auto info = connectors::describeClientCertificate(
      {apart->apns->certificate_chain_pem, apart->apns->certificate_key_pem});
  ASSERT_TRUE(info.has_value()) << info.error();
  EXPECT_THAT(info->subject, HasSubstr("CN=Apple Push Services: com.example.certapp"));
  EXPECT_GT(info->not_after, std::chrono::system_clock::now());
}

TEST_F(HubDefinitionCertificate, ReadsAPkcs12ArchiveInlineOrByFile) {
  auto by_file = parse(R"("certificate_p12_file":"push.p12","certificate_password":"secret")");
  ASSERT_TRUE(by_file.has_value()) << by_file.error();
  EXPECT_EQ(by_file->apns->bundle_id, "com.example.certapp");
  const std::string base64 = connectors::base64Encode(slurp(path() / "push.p12"));
  auto inline_p12 =
      parse("\"certificate_p12\":\"" + base64 + R"(","certificate_password":"secret")");
  ASSERT_TRUE(inline_p12.has_value()) << inline_p12.error();
  EXPECT_EQ(inline_p12->apns->certificate_chain_pem, by_file->apns->certificate_chain_pem);
}

TEST_F(HubDefinitionCertificate, RefusesWrongCombinationsNamingTheField) {
  const std::string both = slurp(path() / "push.crt") + slurp(path() / "push.key");
  const std::pair<std::string, const char*> cases[] = {
      {R"("certificate_file":"push.crt")", "no unencrypted PEM private key"},
      {R"("certificate_file":"push.crt","certificate_key_file":"other.key")",
       "does not match the certificate"},
      {R"("certificate_file":"push.key","certificate_key_file":"push.key")", "no PEM certificate"},
      {R"("certificate_file":"missing.crt")", "missing.crt: cannot be read"},
      {R"("certificate_p12_file":"push.p12","certificate_password":"wrong")", "wrong password"},
      {R"("certificate_p12":"not base64!")", "certificate_p12: not base64"},
      {R"("certificate_p12_file":"push.crt")", "not a PKCS#12 archive"},
      {R"("certificate_file":"push.crt","certificate_p12_file":"push.p12")",
       "as PEM or as PKCS#12, not both"},
      {"\"certificate\":" + quoted(both) + R"(,"key_id":"K")", "apns.key_id: a hub uses token"},
      {R"("certificate_key_file":"push.key","key_id":"K","team_id":"T","bundle_id":"b")",
       "apns.certificate_key_file: given without a certificate"},
  };
  for (const auto& [fields, expected] : cases) {
    auto bad = parse(fields);
    ASSERT_FALSE(bad.has_value()) << fields;
    EXPECT_THAT(bad.error(), HasSubstr(expected)) << fields;
  }
  // A certificate without a UID leaves the bundle id empty: APNs takes the certificate's own.
  auto no_uid = parse(R"("certificate_file":"other.crt","certificate_key_file":"other.key")");
  ASSERT_TRUE(no_uid.has_value()) << no_uid.error();
  EXPECT_EQ(no_uid->apns->bundle_id, "");
}

TEST(HubName, FollowsAzuresAlphabetAndIsNeverADotSegment) {
  EXPECT_TRUE(validateHubName("my-hub_1.prod").has_value());
  EXPECT_TRUE(validateHubName("...").has_value());
  EXPECT_THAT(validateHubName(".").error(), HasSubstr("'.' and '..' are not hub names"));
  EXPECT_THAT(validateHubName("..").error(), HasSubstr("'.' and '..' are not hub names"));
  EXPECT_THAT(validateHubName("a/b").error(), HasSubstr("only letters"));
  EXPECT_THAT(validateHubName("").error(), HasSubstr("1 to 260"));
}

}  // namespace
}  // namespace pushhub::hub
