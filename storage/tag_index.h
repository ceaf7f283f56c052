#pragma once

#include <roaring/roaring.hh>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storage/installation.h"
#include "storage/tag_expression.h"

namespace pushhub::storage {

// Tag strings interned to dense ids, shared by every hub and partition so each distinct tag is
// stored once. Thread-safe: interning (writes) takes an exclusive lock, lookups a shared one.
class TagDictionary {
 public:
  static constexpr uint32_t kMissing = UINT32_MAX;

  uint32_t intern(std::string_view tag);
  // intern() of each, under one shared lock when all are known (the common case on writes).
  std::vector<uint32_t> internAll(std::span<const std::string_view> tags);
  uint32_t find(std::string_view tag) const;  // kMissing when no installation ever had it
  size_t size() const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> ids_;
};

// What the index keeps of one installation: platform, whether its channel can be delivered to,
// and the ids of every tag it answers to — its tags, its template names and its templates' tags
// (Azure matches all of them; which template then applies is the engine's choice).
struct IndexEntry {
  Platform platform = Platform::kApns;
  bool active = true;
  std::vector<uint32_t> tag_ids;  // sorted, unique
};
IndexEntry indexEntryOf(const Installation& installation, TagDictionary& dictionary);

// The in-memory index of one logical partition: ordinals (dense small integers standing for
// installations), tag -> Roaring bitmap of ordinals, platform bitmaps, all and active sets.
// Not thread-safe: a partition belongs to one shard, and only that shard touches it.
class PartitionIndex {
 public:
  // The lowest free ordinal: ordinals of deleted installations are reused.
  uint32_t allocateOrdinal();
  void releaseOrdinal(uint32_t ordinal);

  void add(uint32_t ordinal, const IndexEntry& entry);
  void remove(uint32_t ordinal, const IndexEntry& entry);
  void setActive(uint32_t ordinal, bool active);

  const Roaring* tag(uint32_t tag_id) const;  // nullptr when no installation here has it
  const Roaring& all() const { return all_; }
  const Roaring& active() const { return active_; }
  const Roaring& platform(Platform p) const { return platforms_[static_cast<size_t>(p)]; }
  uint64_t size() const { return all_.cardinality(); }

  // After a rebuild added every stored installation: free ordinals are the gaps, and bitmaps are
  // compacted (run containers where they pay, no spare capacity).
  void finishRebuild();
  // Heap bytes held by the bitmaps and tables (an estimate for metrics and benchmarks).
  size_t memoryBytes() const;

 private:
  std::unordered_map<uint32_t, Roaring> tags_;
  Roaring all_;
  Roaring active_;
  std::array<Roaring, kPlatformCount> platforms_;
  std::vector<uint32_t> free_ordinals_;  // a min-heap
  uint32_t next_ordinal_ = 0;
};

// A tag expression bound to a dictionary and with its built-ins resolved: compiled once per
// notification (or query), evaluated per partition as bitmap operations without touching any
// installation record.
class CompiledExpression {
 public:
  // For a $InstallationId / $UserId leaf: the (partition, ordinal) pairs it names.
  using BuiltinResolver =
      std::function<std::vector<std::pair<uint32_t, uint32_t>>(const TagExpressionNode& leaf)>;

  static CompiledExpression compile(const TagExpression& expression,
                                    const TagDictionary& dictionary,
                                    const BuiltinResolver& resolve_builtin);

  // Ordinals in `index` (partition `partition`) whose installation matches, whatever the state of
  // its channel; intersect with index.active() for the deliverable ones.
  Roaring evaluate(const PartitionIndex& index, uint32_t partition) const;

 private:
  struct Node {
    TagExpressionNode::Kind kind;
    uint32_t id = 0;  // tag id (kTag) or built-in slot (kInstallationId, kUserId)
    std::vector<Node> children;
  };
  class Value;

  Node compileNode(const TagExpressionNode& node, const TagDictionary& dictionary,
                   const BuiltinResolver& resolve_builtin);
  Value evaluateNode(const Node& node, const PartitionIndex& index, uint32_t partition) const;

  Node root_{};
  std::vector<std::unordered_map<uint32_t, Roaring>> builtins_;  // slot -> partition -> ordinals
};

}  // namespace pushhub::storage
