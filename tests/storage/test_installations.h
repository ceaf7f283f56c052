#pragma once

#include <string>

#include "storage/installation.h"

namespace pushhub::storage::testing {

// A valid APNs installation with a 64-hex-digit token derived from `n`.
inline std::string apnsToken(uint64_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token(64, '0');
  for (size_t i = 0; i < 64; ++i) token[i] = kHex[(n * 2654435761u + i * 40503u) % 16];
  for (size_t i = 0; i < 16; ++i) token[63 - i] = kHex[(n >> (4 * i)) & 0xF];
  return token;
}

inline Installation apnsInstallation(std::string id, std::vector<std::string> tags = {},
                                     uint64_t token_seed = 0) {
  Installation in;
  in.push_channel = apnsToken(token_seed != 0 ? token_seed : std::hash<std::string>{}(id));
  in.id = std::move(id);
  in.platform = Platform::kApns;
  in.tags = std::move(tags);
  return in;
}

}  // namespace pushhub::storage::testing
