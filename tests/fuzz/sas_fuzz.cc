// libFuzzer target for the Authorization header (api/sas.*): any value is a token or refused
// with 401/403 and a detail that never shows a rule's key; only a correctly signed token for a
// known rule passes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/sas.h"

using namespace pushhub::api;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  static const SasAuthenticator auth({{"Full", "key-secret-full", kListen | kSend | kManage},
                                      {"Listen", "key-secret-listen", kListen}});
  (void)parseSasToken(header);
  auto checked =
      auth.check(header, "ns.example.com", "/demo/messages", "demo", kSend, 1'800'000'000);
  if (checked) {
    // Only a real signature gets here: the fuzzer cannot forge HMAC-SHA256.
    const auto token = parseSasToken(header);
    if (!token) std::abort();
    return 0;
  }
  const auto& failure = checked.error();
  if (failure.status != 401 && failure.status != 403) std::abort();
  // The detail may quote what the client sent (a rule name), never a rule's key it did not send.
  if (failure.detail.find("key-secret") != std::string::npos &&
      header.find("key-secret") == std::string_view::npos) {
    std::abort();
  }
  return 0;
}
