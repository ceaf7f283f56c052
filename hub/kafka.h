#pragma once

// Kafka intake and feedback (librdkafka). A consumer in a consumer group reads send requests
// from the sends topic (hub/send_request.h has the schema), hands each to the engine — which
// persists it — and only then stores the message's offset for the next commit: at-least-once
// intake, with the idempotency key (explicit, else the message key, else topic/partition/
// offset) making a redelivery harmless. While the engine runs `max_running` notifications the
// assigned partitions are paused, not messages dropped. A malformed or refused message is
// counted, reported on the outcomes topic with its offset and the reason, and skipped.
//
// The outcomes topic also carries, as JSON, every finished notification's summary and every dead
// handle, so that backends can clean their own records:
//   {"type":"completed","hub":…,"id":…,"state":"Completed","counts":{"apns":{"Success":9}},…}
//   {"type":"dead_handle","hub":…,"notification_id":…,"platform":"apns","handle":…,
//    "installation_id":…,"outcome":"ExpiredChannel"}
//   {"type":"malformed","topic":…,"partition":0,"offset":12,"reason":"hub: missing"}

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "hub/engine.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_message_s rd_kafka_message_t;

namespace pushhub::hub {

struct KafkaOptions {
  std::string brokers;  // empty: Kafka is off, the REST API is the intake
  std::string group_id = "pushhub";
  std::string sends_topic = "pushhub.sends";
  std::string outcomes_topic = "pushhub.outcomes";
  size_t max_running = 256;  // notifications running at once before partitions pause
};

class KafkaIngest {
 public:
  static std::expected<std::unique_ptr<KafkaIngest>, std::string> create(Engine& engine,
                                                                         KafkaOptions options,
                                                                         MetricsRegistry& metrics);
  ~KafkaIngest();
  KafkaIngest(const KafkaIngest&) = delete;
  KafkaIngest& operator=(const KafkaIngest&) = delete;

  // Starts the consumer thread.
  void start();
  // Stops consuming, commits the stored offsets, flushes what is being published, leaves the
  // group. Idempotent.
  void stop();

  // Engine events, published on the outcomes topic (thread-safe).
  void publishDeadHandle(const DeadHandle& dead);
  void publishFinished(const NotificationView& view);

  uint64_t accepted() const { return accepted_->value(); }
  uint64_t malformed() const { return malformed_->value(); }
  bool paused() const { return paused_.load(); }

 private:
  KafkaIngest(Engine& engine, KafkaOptions options, MetricsRegistry& metrics);
  void run();
  // False when the message must be tried again (the engine could not persist it).
  bool handle(const rd_kafka_message_t& message);
  void report(const rd_kafka_message_t& message, const std::string& reason);
  void publish(const std::string& key, const std::string& value);
  void setPaused(bool paused);
  void updateLag();

  Engine& engine_;
  const KafkaOptions options_;
  rd_kafka_t* consumer_ = nullptr;
  rd_kafka_t* producer_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> paused_{false};
  bool started_ = false;
  bool closed_ = false;

  Counter* accepted_ = nullptr;
  Counter* repeated_ = nullptr;
  Counter* malformed_ = nullptr;
  Counter* published_ = nullptr;
  Gauge* paused_partitions_ = nullptr;
  Gauge* lag_ = nullptr;
};

}  // namespace pushhub::hub
