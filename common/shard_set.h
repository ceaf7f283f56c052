#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace pushhub {

// The process's shards: one Asio event loop per shard, each on its own thread. State that belongs
// to a shard is touched only from its loop; other threads post work to it (see DESIGN.md,
// "Partitions and shards"). Components that own async work on a shard stop it before the
// ShardSet stops.
class ShardSet {
 public:
  explicit ShardSet(unsigned count);
  ~ShardSet();
  ShardSet(const ShardSet&) = delete;
  ShardSet& operator=(const ShardSet&) = delete;

  unsigned size() const { return static_cast<unsigned>(shards_.size()); }
  boost::asio::io_context& context(unsigned shard) { return shards_.at(shard)->context; }

  // Starts one thread per shard, named "shard-N", running its loop until stop().
  void start();
  // Lets every loop run out of work and joins its thread. Components stop their own async work
  // first; a loop still busy after `drain` is stopped anyway (logged), abandoning its handlers,
  // which are destroyed with the ShardSet. Idempotent.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(5));

  // The shard whose loop runs the calling thread, or nullopt on any other thread.
  static std::optional<unsigned> currentShard();

 private:
  struct Shard {
    boost::asio::io_context context{1};
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    std::thread thread;
    std::future<void> finished;  // ready when the loop has returned
  };
  std::vector<std::unique_ptr<Shard>> shards_;
  bool started_ = false;
};

}  // namespace pushhub
