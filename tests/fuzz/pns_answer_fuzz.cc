// libFuzzer target for what push services answer (connectors/classify.*, connectors/oauth.*):
// the first byte picks APNs, FCM, WNS or a token endpoint, the second the HTTP status, the rest
// the body (and, for FCM and WNS, the header values before the first newline). Every answer is
// classified into an action and an outcome; a token answer is a token fit for a header or a
// reason; nothing crashes or is retried for lack of a case.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "connectors/classify.h"
#include "connectors/oauth.h"

using namespace pushhub::connectors;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static constexpr int kStatuses[] = {200, 400, 401, 403, 404, 405, 406, 408, 410, 413,
                                      429, 500, 502, 503, 504, 0,   301, 999, -1,  204};
  const int status = kStatuses[data[1] % (sizeof kStatuses / sizeof kStatuses[0])];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t newline = rest.find('\n');
  const std::string_view header = rest.substr(0, newline);
  const std::string_view body =
      newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
  Classification c;
  switch (data[0] % 4) {
    case 0: c = classifyApns(status, rest); break;
    case 1: c = classifyFcm(status, body, header); break;
    case 2: c = classifyWns(status, header, body); break;
    default: {
      auto answer = parseTokenAnswer(status, rest, "https://token.example/");
      if (answer) {
        if (answer->access_token.empty() || answer->expires_in.count() <= 0) std::abort();
        for (const char ch : answer->access_token) {
          if (ch <= 0x20 || ch >= 0x7F) std::abort();
        }
      } else if (answer.error().why.empty()) {
        std::abort();
      }
      return 0;
    }
  }
  if (actionName(c.action).empty() || outcomeName(c.outcome).empty()) std::abort();
  return 0;
}
