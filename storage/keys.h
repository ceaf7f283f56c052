#pragma once

// How records are laid out in RocksDB. Part of the on-disk format: changing anything here needs
// a format version bump and a migration.
//
//   installations CF  hub \0 partition:be16 ordinal:be32        -> Installation (msgpack)
//   installation_ids  hub \0 partition:be16 installation-id     -> ordinal:be32
//   handles CF        hub \0 platform:u8 handle                 -> partition:be16 ordinal:be32 id
//   users CF          hub \0 user-id \0 partition:be16 ordinal:be32 -> (empty)
//
// Big-endian numbers make one (hub, partition) a contiguous key range in ordinal order, which is
// the order fan-out walks and the unit the index is rebuilt by.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/installation.h"

namespace pushhub::storage {

// The logical partition of an installation: FNV-1a (64-bit) of hub, a zero byte and the id,
// modulo the partition count. Stable across builds and machines by construction.
uint32_t partitionOf(std::string_view hub, std::string_view installation_id,
                     uint32_t partition_count);

std::string partitionPrefix(std::string_view hub, uint32_t partition);
std::string recordKey(std::string_view hub, uint32_t partition, uint32_t ordinal);
std::string idKey(std::string_view hub, uint32_t partition, std::string_view installation_id);
std::string handleKey(std::string_view hub, Platform platform, std::string_view handle);
// Registrations (Azure's older model) may share a handle — one app makes a native and a template
// registration for the same device token, and each receives its notifications — so theirs is a
// multi-map beside the installations' one-holder index: the platform byte with its high bit set,
// the handle, a zero byte, the registration id. The prefix without the id lists a handle's
// registrations.
//   handles CF        hub \0 (platform|0x80):u8 handle \0 registration-id -> as above
std::string registrationHandlePrefix(std::string_view hub, Platform platform,
                                     std::string_view handle);
std::string registrationHandleKey(std::string_view hub, Platform platform, std::string_view handle,
                                  std::string_view registration_id);
std::string userPrefix(std::string_view hub, std::string_view user_id);
std::string userKey(std::string_view hub, std::string_view user_id, uint32_t partition,
                    uint32_t ordinal);

// What the handle index says about a handle's current holder.
struct HandleOwner {
  uint32_t partition = 0;
  uint32_t ordinal = 0;
  std::string installation_id;
};
std::string encodeHandleOwner(const HandleOwner& owner);
std::optional<HandleOwner> decodeHandleOwner(std::string_view value);

void appendBigEndian16(std::string& out, uint32_t v);
void appendBigEndian32(std::string& out, uint32_t v);
uint32_t readBigEndian16(std::string_view bytes);
uint32_t readBigEndian32(std::string_view bytes);

// The hub a key of any of these column families belongs to (everything before the first \0).
std::string_view hubOfKey(std::string_view key);

}  // namespace pushhub::storage
