#include "common/shard_set.h"

#include <gtest/gtest.h>
#include <boost/asio/post.hpp>

#include <atomic>
#include <future>

namespace pushhub {
namespace {

TEST(ShardSet, RunsPostedWorkOnTheShardsOwnThread) {
  ShardSet shards(3);
  shards.start();
  EXPECT_FALSE(ShardSet::currentShard().has_value());
  for (unsigned i = 0; i < shards.size(); ++i) {
    std::promise<std::optional<unsigned>> seen;
    boost::asio::post(shards.context(i), [&] { seen.set_value(ShardSet::currentShard()); });
    EXPECT_EQ(seen.get_future().get(), i);
  }
  shards.stop();
}

TEST(ShardSet, StopRunsQueuedWorkBeforeReturningAndIsIdempotent) {
  ShardSet shards(2);
  shards.start();
  std::atomic<int> ran{0};
  for (int i = 0; i < 1000; ++i) {
    boost::asio::post(shards.context(static_cast<unsigned>(i % 2)), [&] { ran.fetch_add(1); });
  }
  shards.stop();
  EXPECT_EQ(ran.load(), 1000);
  shards.stop();
}

}  // namespace
}  // namespace pushhub
