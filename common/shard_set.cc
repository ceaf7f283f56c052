#include "common/shard_set.h"

#include <pthread.h>

#include <string>

#include "common/log.h"

namespace pushhub {
namespace {
thread_local std::optional<unsigned> t_current_shard;
}  // namespace

ShardSet::ShardSet(unsigned count) {
  shards_.reserve(count);
  for (unsigned i = 0; i < count; ++i) shards_.push_back(std::make_unique<Shard>());
}

ShardSet::~ShardSet() { stop(); }

void ShardSet::start() {
  if (started_) return;
  started_ = true;
  for (unsigned i = 0; i < shards_.size(); ++i) {
    Shard& shard = *shards_[i];
    shard.work.emplace(shard.context.get_executor());
    std::promise<void> finished;
    shard.finished = finished.get_future();
    shard.thread = std::thread([&shard, i, finished = std::move(finished)]() mutable {
      const std::string name = "shard-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      t_current_shard = i;
      try {
        shard.context.run();
      } catch (const std::exception& e) {
        // Handlers must not throw; one that does is a bug, and the shard cannot go on safely.
        moduleLogger("hub")->critical("shard {} stopped by an exception: {}", i, e.what());
        std::terminate();
      }
      finished.set_value();
    });
  }
}

void ShardSet::stop(std::chrono::milliseconds drain) {
  for (auto& shard : shards_) shard->work.reset();
  const auto deadline = std::chrono::steady_clock::now() + drain;
  for (unsigned i = 0; i < shards_.size(); ++i) {
    Shard& shard = *shards_[i];
    if (!shard.thread.joinable()) continue;
    if (shard.finished.wait_until(deadline) != std::future_status::ready) {
      moduleLogger("hub")->warn("shard {} still had work after {} ms; stopping it anyway", i,
                                drain.count());
      shard.context.stop();
    }
    shard.thread.join();
  }
}

std::optional<unsigned> ShardSet::currentShard() { return t_current_shard; }

}  // namespace pushhub
