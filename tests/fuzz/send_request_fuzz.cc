// libFuzzer target for Kafka send requests (hub/send_request.*) and the rules an accepted send
// meets (hub::validateNotification): the first byte picks JSON or msgpack. Any input is a
// notification or refused with a reason; nothing crashes, however deep or large it claims to be.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hub/notification.h"
#include "hub/send_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto n = pushhub::hub::parseSendRequest(
      data[0] % 2 == 0 ? "application/json" : "application/msgpack", bytes);
  if (!n) {
    if (n.error().empty()) std::abort();
    return 0;
  }
  (void)pushhub::hub::validateNotification(*n);
  return 0;
}
