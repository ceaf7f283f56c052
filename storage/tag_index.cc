#include "storage/tag_index.h"

#include <algorithm>
#include <mutex>

namespace pushhub::storage {
namespace {
const Roaring& emptyBitmap() {
  static const Roaring empty;
  return empty;
}
}  // namespace

// --- TagDictionary ---------------------------------------------------------------------------

uint32_t TagDictionary::intern(std::string_view tag) {
  {
    std::shared_lock lock(mutex_);
    if (auto it = ids_.find(tag); it != ids_.end()) return it->second;
  }
  std::unique_lock lock(mutex_);
  const auto [it, inserted] = ids_.emplace(std::string(tag), static_cast<uint32_t>(ids_.size()));
  return it->second;
}

std::vector<uint32_t> TagDictionary::internAll(std::span<const std::string_view> tags) {
  std::vector<uint32_t> ids(tags.size(), kMissing);
  bool missing = false;
  {
    std::shared_lock lock(mutex_);
    for (size_t i = 0; i < tags.size(); ++i) {
      if (auto it = ids_.find(tags[i]); it != ids_.end()) {
        ids[i] = it->second;
      } else {
        missing = true;
      }
    }
  }
  if (missing) {
    for (size_t i = 0; i < tags.size(); ++i) {
      if (ids[i] == kMissing) ids[i] = intern(tags[i]);
    }
  }
  return ids;
}

uint32_t TagDictionary::find(std::string_view tag) const {
  std::shared_lock lock(mutex_);
  auto it = ids_.find(tag);
  return it == ids_.end() ? kMissing : it->second;
}

size_t TagDictionary::size() const {
  std::shared_lock lock(mutex_);
  return ids_.size();
}

IndexEntry indexEntryOf(const Installation& installation, TagDictionary& dictionary) {
  IndexEntry entry;
  entry.platform = installation.platform;
  entry.active = !installation.expired_push_channel;
  std::vector<std::string_view> names;
  names.reserve(installation.tags.size() + installation.templates.size());
  for (const auto& tag : installation.tags) names.emplace_back(tag);
  for (const auto& [name, t] : installation.templates) {
    names.emplace_back(name);
    for (const auto& tag : t.tags) names.emplace_back(tag);
  }
  entry.tag_ids = dictionary.internAll(names);
  std::sort(entry.tag_ids.begin(), entry.tag_ids.end());
  entry.tag_ids.erase(std::unique(entry.tag_ids.begin(), entry.tag_ids.end()), entry.tag_ids.end());
  return entry;
}

// --- PartitionIndex --------------------------------------------------------------------------

uint32_t PartitionIndex::allocateOrdinal() {
  if (free_ordinals_.empty()) return next_ordinal_++;
  std::pop_heap(free_ordinals_.begin(), free_ordinals_.end(), std::greater<>());
  const uint32_t ordinal = free_ordinals_.back();
  free_ordinals_.pop_back();
  return ordinal;
}

void PartitionIndex::releaseOrdinal(uint32_t ordinal) {
  free_ordinals_.push_back(ordinal);
  std::push_heap(free_ordinals_.begin(), free_ordinals_.end(), std::greater<>());
}

void PartitionIndex::add(uint32_t ordinal, const IndexEntry& entry) {
  all_.add(ordinal);
  if (entry.active) active_.add(ordinal);
  platforms_[static_cast<size_t>(entry.platform)].add(ordinal);
  for (const uint32_t id : entry.tag_ids) tags_[id].add(ordinal);
}

void PartitionIndex::remove(uint32_t ordinal, const IndexEntry& entry) {
  all_.remove(ordinal);
  active_.remove(ordinal);
  platforms_[static_cast<size_t>(entry.platform)].remove(ordinal);
  for (const uint32_t id : entry.tag_ids) {
    auto it = tags_.find(id);
    if (it == tags_.end()) continue;
    it->second.remove(ordinal);
    if (it->second.isEmpty()) tags_.erase(it);
  }
}

void PartitionIndex::setActive(uint32_t ordinal, bool active) {
  if (!all_.contains(ordinal)) return;
  if (active) {
    active_.add(ordinal);
  } else {
    active_.remove(ordinal);
  }
}

const Roaring* PartitionIndex::tag(uint32_t tag_id) const {
  auto it = tags_.find(tag_id);
  return it == tags_.end() ? nullptr : &it->second;
}

void PartitionIndex::finishRebuild() {
  free_ordinals_.clear();
  next_ordinal_ = all_.isEmpty() ? 0 : all_.maximum() + 1;
  // Every ordinal below the highest one in use that is not in use is free.
  uint32_t expected = 0;
  for (const uint32_t ordinal : all_) {
    for (; expected < ordinal; ++expected) free_ordinals_.push_back(expected);
    expected = ordinal + 1;
  }
  std::make_heap(free_ordinals_.begin(), free_ordinals_.end(), std::greater<>());
  auto compact = [](Roaring& r) {
    r.runOptimize();
    r.shrinkToFit();
  };
  compact(all_);
  compact(active_);
  for (auto& p : platforms_) compact(p);
  for (auto& [id, bitmap] : tags_) compact(bitmap);
}

size_t PartitionIndex::memoryBytes() const {
  size_t bytes = all_.getSizeInBytes(false) + active_.getSizeInBytes(false) +
                 free_ordinals_.capacity() * sizeof(uint32_t);
  for (const auto& p : platforms_) bytes += p.getSizeInBytes(false);
  // Per tag: the map node (key, bitmap header, next pointer, allocator overhead) and a bucket.
  bytes += tags_.bucket_count() * sizeof(void*);
  for (const auto& [id, bitmap] : tags_) {
    bytes += sizeof(void*) * 2 + sizeof(uint32_t) + sizeof(Roaring) + bitmap.getSizeInBytes(false);
  }
  return bytes;
}

// --- CompiledExpression ----------------------------------------------------------------------

// A bitmap either borrowed from the index (no copy) or owned (computed).
class CompiledExpression::Value {
 public:
  explicit Value(const Roaring* borrowed) : borrowed_(borrowed) {}
  explicit Value(Roaring owned) : owned_(std::move(owned)), borrowed_(nullptr) {}
  const Roaring& get() const { return borrowed_ != nullptr ? *borrowed_ : owned_; }
  Roaring take() { return borrowed_ != nullptr ? Roaring(*borrowed_) : std::move(owned_); }

 private:
  Roaring owned_;
  const Roaring* borrowed_;
};

CompiledExpression CompiledExpression::compile(const TagExpression& expression,
                                               const TagDictionary& dictionary,
                                               const BuiltinResolver& resolve_builtin) {
  CompiledExpression compiled;
  compiled.root_ = compiled.compileNode(expression.root(), dictionary, resolve_builtin);
  return compiled;
}

CompiledExpression::Node CompiledExpression::compileNode(const TagExpressionNode& node,
                                                         const TagDictionary& dictionary,
                                                         const BuiltinResolver& resolve_builtin) {
  using Kind = TagExpressionNode::Kind;
  Node out{node.kind, 0, {}};
  switch (node.kind) {
    case Kind::kTag: out.id = dictionary.find(node.value); break;
    case Kind::kInstallationId:
    case Kind::kUserId: {
      out.id = static_cast<uint32_t>(builtins_.size());
      auto& by_partition = builtins_.emplace_back();
      for (const auto& [partition, ordinal] : resolve_builtin(node)) {
        by_partition[partition].add(ordinal);
      }
      break;
    }
    case Kind::kAnd:
    case Kind::kOr:
    case Kind::kNot:
      for (const auto& child : node.children) {
        out.children.push_back(compileNode(child, dictionary, resolve_builtin));
      }
      break;
  }
  return out;
}

CompiledExpression::Value CompiledExpression::evaluateNode(const Node& node,
                                                           const PartitionIndex& index,
                                                           uint32_t partition) const {
  using Kind = TagExpressionNode::Kind;
  switch (node.kind) {
    case Kind::kTag: {
      const Roaring* bitmap = node.id == TagDictionary::kMissing ? nullptr : index.tag(node.id);
      return Value(bitmap != nullptr ? bitmap : &emptyBitmap());
    }
    case Kind::kInstallationId:
    case Kind::kUserId: {
      const auto& by_partition = builtins_[node.id];
      auto it = by_partition.find(partition);
      return Value(it == by_partition.end() ? &emptyBitmap() : &it->second);
    }
    case Kind::kNot:
      return Value(index.all() - evaluateNode(node.children.front(), index, partition).get());
    case Kind::kOr: {
      std::vector<Value> values;
      values.reserve(node.children.size());
      std::vector<const Roaring*> inputs;
      inputs.reserve(node.children.size());
      for (const auto& child : node.children) {
        values.push_back(evaluateNode(child, index, partition));
        if (!values.back().get().isEmpty()) inputs.push_back(&values.back().get());
      }
      if (inputs.empty()) return Value(&emptyBitmap());
      if (inputs.size() == 1) return Value(*inputs.front());
      return Value(Roaring::fastunion(inputs.size(), inputs.data()));
    }
    case Kind::kAnd: {
      // Intersect the positive terms smallest first, then subtract the negated ones: a && !b
      // never materialises !b.
      std::vector<Value> positives;
      std::vector<const Node*> negatives;
      for (const auto& child : node.children) {
        if (child.kind == Kind::kNot) {
          negatives.push_back(&child.children.front());
        } else {
          positives.push_back(evaluateNode(child, index, partition));
          if (positives.back().get().isEmpty()) return Value(&emptyBitmap());
        }
      }
      std::sort(positives.begin(), positives.end(), [](const Value& a, const Value& b) {
        return a.get().cardinality() < b.get().cardinality();
      });
      Roaring result = positives.empty() ? Roaring(index.all()) : positives.front().take();
      for (size_t i = 1; i < positives.size() && !result.isEmpty(); ++i)
        result &= positives[i].get();
      for (const Node* negative : negatives) {
        if (result.isEmpty()) break;
        result -= evaluateNode(*negative, index, partition).get();
      }
      return Value(std::move(result));
    }
  }
  return Value(&emptyBitmap());
}

Roaring CompiledExpression::evaluate(const PartitionIndex& index, uint32_t partition) const {
  return evaluateNode(root_, index, partition).take();
}

}  // namespace pushhub::storage
