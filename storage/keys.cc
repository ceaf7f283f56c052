#include "storage/keys.h"

namespace pushhub::storage {

uint32_t partitionOf(std::string_view hub, std::string_view installation_id,
                     uint32_t partition_count) {
  uint64_t h = 0xcbf29ce484222325ull;
  const auto mix = [&h](std::string_view bytes) {
    for (const char c : bytes) {
      h ^= static_cast<uint8_t>(c);
      h *= 0x100000001b3ull;
    }
  };
  mix(hub);
  mix(std::string_view("\0", 1));
  mix(installation_id);
  return static_cast<uint32_t>(h % partition_count);
}

void appendBigEndian16(std::string& out, uint32_t v) {
  out += static_cast<char>((v >> 8) & 0xFF);
  out += static_cast<char>(v & 0xFF);
}

void appendBigEndian32(std::string& out, uint32_t v) {
  out += static_cast<char>((v >> 24) & 0xFF);
  out += static_cast<char>((v >> 16) & 0xFF);
  out += static_cast<char>((v >> 8) & 0xFF);
  out += static_cast<char>(v & 0xFF);
}

uint32_t readBigEndian16(std::string_view b) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(b[0])) << 8) | static_cast<uint8_t>(b[1]);
}

uint32_t readBigEndian32(std::string_view b) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(b[0])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[2])) << 8) | static_cast<uint8_t>(b[3]);
}

std::string partitionPrefix(std::string_view hub, uint32_t partition) {
  std::string key;
  key.reserve(hub.size() + 3);
  key.append(hub);
  key += '\0';
  appendBigEndian16(key, partition);
  return key;
}

std::string recordKey(std::string_view hub, uint32_t partition, uint32_t ordinal) {
  std::string key = partitionPrefix(hub, partition);
  appendBigEndian32(key, ordinal);
  return key;
}

std::string idKey(std::string_view hub, uint32_t partition, std::string_view installation_id) {
  std::string key = partitionPrefix(hub, partition);
  key.append(installation_id);
  return key;
}

std::string handleKey(std::string_view hub, Platform platform, std::string_view handle) {
  std::string key;
  key.reserve(hub.size() + handle.size() + 2);
  key.append(hub);
  key += '\0';
  key += static_cast<char>(platform);
  key.append(handle);
  return key;
}

std::string registrationHandlePrefix(std::string_view hub, Platform platform,
                                     std::string_view handle) {
  std::string key =
      handleKey(hub, static_cast<Platform>(static_cast<uint8_t>(platform) | 0x80), handle);
  key += '\0';
  return key;
}

std::string registrationHandleKey(std::string_view hub, Platform platform, std::string_view handle,
                                  std::string_view registration_id) {
  std::string key = registrationHandlePrefix(hub, platform, handle);
  key.append(registration_id);
  return key;
}

std::string userPrefix(std::string_view hub, std::string_view user_id) {
  std::string key;
  key.append(hub);
  key += '\0';
  key.append(user_id);
  key += '\0';
  return key;
}

std::string userKey(std::string_view hub, std::string_view user_id, uint32_t partition,
                    uint32_t ordinal) {
  std::string key = userPrefix(hub, user_id);
  appendBigEndian16(key, partition);
  appendBigEndian32(key, ordinal);
  return key;
}

std::string encodeHandleOwner(const HandleOwner& owner) {
  std::string value;
  appendBigEndian16(value, owner.partition);
  appendBigEndian32(value, owner.ordinal);
  value.append(owner.installation_id);
  return value;
}

std::optional<HandleOwner> decodeHandleOwner(std::string_view value) {
  if (value.size() < 6) return std::nullopt;
  return HandleOwner{readBigEndian16(value), readBigEndian32(value.substr(2)),
                     std::string(value.substr(6))};
}

std::string_view hubOfKey(std::string_view key) { return key.substr(0, key.find('\0')); }

}  // namespace pushhub::storage
