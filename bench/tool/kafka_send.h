#pragma once

// Sending through Kafka as a backend does: a send request produced to pushhub's sends topic,
// and its end read from the outcomes topic (the "completed" message carrying the request's
// idempotency key).

#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace pushhub::bench {

// platform → outcome → n, as pushhub's telemetry JSON and outcomes topic give them.
using OutcomeCounts = std::map<std::string, std::map<std::string, uint64_t>>;
// Reads a {"apns":{"Success":7},…} object; what is not such is skipped.
OutcomeCounts readOutcomeCounts(const rapidjson::Value& counts);

struct KafkaCompleted {
  std::string id;
  std::string state;
  OutcomeCounts counts;
};

class KafkaSender {
 public:
  // Connects a producer and a consumer of the outcomes topic (positioned at its end, so only
  // what follows is read). Throws std::runtime_error naming the broker or topic on failure.
  KafkaSender(const std::string& bootstrap, std::string sends_topic, std::string outcomes_topic);
  ~KafkaSender();
  KafkaSender(const KafkaSender&) = delete;
  KafkaSender& operator=(const KafkaSender&) = delete;

  // Produces `json` with `key` and waits for the broker's acknowledgement.
  void produce(const std::string& key, const std::string& json);
  // Reads the outcomes topic for up to `wait`; the completed outcome of `idempotency_key` once
  // it has been seen.
  std::optional<KafkaCompleted> poll(const std::string& idempotency_key,
                                     std::chrono::milliseconds wait);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The send request as pushhub's Kafka intake reads it (docs/kafka.md).
std::string kafkaSendRequest(const std::string& hub, const std::string& format,
                             const std::string& tags, const std::string& body,
                             const std::string& idempotency_key);

// Reads one outcomes message: the completed outcome it is, when it is one for `key`.
std::optional<KafkaCompleted> parseCompleted(const std::string& json, const std::string& key);

}  // namespace pushhub::bench
