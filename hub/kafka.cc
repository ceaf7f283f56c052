#include "hub/kafka.h"

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include <deque>
#include <future>

#include "common/json.h"
#include "common/log.h"
#include "hub/send_request.h"

namespace pushhub::hub {

namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = moduleLogger("kafka");
  return logger;
}

std::expected<rd_kafka_conf_t*, std::string> makeConf(
    const std::vector<std::pair<std::string, std::string>>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (const auto& [name, value] : settings) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return std::unexpected(fmt::format("kafka {}: {}", name, error));
    }
  }
  return conf;
}

struct PartitionList {
  rd_kafka_topic_partition_list_t* list = nullptr;
  ~PartitionList() {
    if (list != nullptr) rd_kafka_topic_partition_list_destroy(list);
  }
};

}  // namespace

KafkaIngest::KafkaIngest(Engine& engine, KafkaOptions options, MetricsRegistry& metrics)
    : engine_(engine), options_(std::move(options)) {
  const auto messages = [&](const char* result) {
    return &metrics.counter("pushhub_kafka_messages_total",
                            "Send requests read from Kafka, by what became of them",
                            {{"result", result}});
  };
  accepted_ = messages("accepted");
  repeated_ = messages("repeated");
  malformed_ = messages("malformed");
  published_ = &metrics.counter("pushhub_kafka_outcomes_published_total",
                                "Messages published on the outcomes topic");
  paused_partitions_ = &metrics.gauge("pushhub_kafka_paused_partitions",
                                      "Sends-topic partitions paused because the engine is full");
  lag_ = &metrics.gauge("pushhub_kafka_lag",
                        "Send requests in the assigned partitions not yet read (high watermark "
                        "minus position, summed)");
}

std::expected<std::unique_ptr<KafkaIngest>, std::string> KafkaIngest::create(
    Engine& engine, KafkaOptions options, MetricsRegistry& metrics) {
  if (options.brokers.empty()) return std::unexpected("kafka: no brokers configured");
  std::unique_ptr<KafkaIngest> ingest(new KafkaIngest(engine, options, metrics));
  char error[512];
  auto consumer_conf = makeConf({{"bootstrap.servers", options.brokers},
                                 {"group.id", options.group_id},
                                 {"client.id", "pushhub"},
                                 {"enable.auto.commit", "true"},
                                 {"enable.auto.offset.store", "false"},
                                 {"auto.commit.interval.ms", "500"},
                                 {"auto.offset.reset", "earliest"}});
  if (!consumer_conf) return std::unexpected(consumer_conf.error());
  ingest->consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, *consumer_conf, error, sizeof error);
  if (ingest->consumer_ == nullptr) {
    rd_kafka_conf_destroy(*consumer_conf);
    return std::unexpected(fmt::format("kafka consumer: {}", error));
  }
  rd_kafka_poll_set_consumer(ingest->consumer_);
  auto producer_conf = makeConf(
      {{"bootstrap.servers", options.brokers}, {"client.id", "pushhub"}, {"linger.ms", "5"}});
  if (!producer_conf) return std::unexpected(producer_conf.error());
  ingest->producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, *producer_conf, error, sizeof error);
  if (ingest->producer_ == nullptr) {
    rd_kafka_conf_destroy(*producer_conf);
    return std::unexpected(fmt::format("kafka producer: {}", error));
  }
  PartitionList topics{rd_kafka_topic_partition_list_new(1)};
  rd_kafka_topic_partition_list_add(topics.list, options.sends_topic.c_str(),
                                    RD_KAFKA_PARTITION_UA);
  if (auto err = rd_kafka_subscribe(ingest->consumer_, topics.list)) {
    return std::unexpected(
        fmt::format("kafka: subscribing to {}: {}", options.sends_topic, rd_kafka_err2str(err)));
  }
  return ingest;
}

KafkaIngest::~KafkaIngest() {
  stop();
  if (consumer_ != nullptr) rd_kafka_destroy(consumer_);
  if (producer_ != nullptr) rd_kafka_destroy(producer_);
}

void KafkaIngest::start() {
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { run(); });
}

void KafkaIngest::stop() {
  if (closed_) return;
  closed_ = true;
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (producer_ != nullptr && rd_kafka_flush(producer_, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log()->warn("{} outcome message(s) not delivered at shutdown", rd_kafka_outq_len(producer_));
  }
  if (consumer_ != nullptr) {
    // Commits what was stored, then leaves the group — which waits for the broker. A broker
    // that is gone must not hold the shutdown: after 10 s the offsets not committed are left to
    // be redelivered (harmless: the idempotency keys) and the handle is abandoned.
    auto closed = std::make_shared<std::promise<void>>();
    auto future = closed->get_future();
    std::thread([consumer = consumer_, closed] {
      rd_kafka_commit(consumer, nullptr, 0);
      rd_kafka_consumer_close(consumer);
      closed->set_value();
    }).detach();
    if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      log()->warn(
          "the Kafka broker did not answer at shutdown: offsets not committed will be "
          "read again (idempotency keys make that harmless)");
      consumer_ = nullptr;  // still in use by the closing thread: not destroyed
    }
  }
}

void KafkaIngest::setPaused(bool paused) {
  if (paused_ == paused) return;
  PartitionList assigned;
  if (rd_kafka_assignment(consumer_, &assigned.list) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  if (paused) {
    rd_kafka_pause_partitions(consumer_, assigned.list);
    paused_partitions_->set(assigned.list->cnt);
    log()->info("engine full ({} notifications running): {} partition(s) paused", engine_.running(),
                assigned.list->cnt);
  } else {
    rd_kafka_resume_partitions(consumer_, assigned.list);
    paused_partitions_->set(0);
    log()->info("partitions resumed");
  }
  paused_ = paused;
}

void KafkaIngest::updateLag() {
  PartitionList assigned;
  if (rd_kafka_assignment(consumer_, &assigned.list) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  if (rd_kafka_position(consumer_, assigned.list) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  int64_t lag = 0;
  for (int i = 0; i < assigned.list->cnt; ++i) {
    const auto& p = assigned.list->elems[i];
    int64_t low = 0, high = 0;
    if (rd_kafka_get_watermark_offsets(consumer_, p.topic, p.partition, &low, &high) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      continue;
    }
    const int64_t position = p.offset >= 0 ? p.offset : low;
    if (high > position) lag += high - position;
  }
  lag_->set(lag);
}

void KafkaIngest::run() {
  // Messages read while the engine was full, in order: nothing read is dropped.
  std::deque<rd_kafka_message_t*> held;
  auto last_lag = std::chrono::steady_clock::now();
  while (!stopping_) {
    rd_kafka_poll(producer_, 0);
    if (std::chrono::steady_clock::now() - last_lag > std::chrono::seconds(1)) {
      updateLag();
      last_lag = std::chrono::steady_clock::now();
    }
    const bool full = engine_.running() >= options_.max_running;
    if (full != paused_) setPaused(full);
    if (full || held.empty()) {
      rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer_, 100);
      if (message != nullptr) held.push_back(message);
      if (full) continue;
    }
    if (held.empty()) continue;
    rd_kafka_message_t* message = held.front();
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        log()->warn("consuming {}: {}", options_.sends_topic, rd_kafka_message_errstr(message));
      }
    } else if (!handle(*message)) {
      // Not persisted: the same message again shortly, never skipped.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    held.pop_front();
    rd_kafka_message_destroy(message);
  }
  for (auto* message : held) rd_kafka_message_destroy(message);
}

bool KafkaIngest::handle(const rd_kafka_message_t& message) {
  std::string content_type;
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const void* value = nullptr;
    size_t size = 0;
    if (rd_kafka_header_get_last(headers, "content-type", &value, &size) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        value != nullptr) {
      content_type.assign(static_cast<const char*>(value), size);
    }
  }
  auto request = parseSendRequest(
      content_type, std::string_view(static_cast<const char*>(message.payload), message.len));
  const auto done = [&] {
    rd_kafka_offset_store(message.rkt, message.partition, message.offset);
    return true;
  };
  if (!request) {
    report(message, request.error());
    return done();
  }
  if (request->idempotency_key.empty()) {
    // The same message read twice is the same notification.
    request->idempotency_key =
        message.key_len > 0 ? std::string(static_cast<const char*>(message.key), message.key_len)
                            : fmt::format("kafka:{}/{}/{}", rd_kafka_topic_name(message.rkt),
                                          message.partition, message.offset);
  }
  auto accepted = engine_.send(std::move(*request));
  if (!accepted) {
    switch (accepted.error().code) {
      case SendError::Code::kInvalid:
      case SendError::Code::kUnknownHub: report(message, accepted.error().message); return done();
      case SendError::Code::kStorage:
        log()->error("could not persist a send request (offset {}): {}", message.offset,
                     accepted.error().message);
        return false;
      case SendError::Code::kStopped: return false;
    }
  }
  (accepted->repeated ? repeated_ : accepted_)->inc();
  return done();
}

void KafkaIngest::report(const rd_kafka_message_t& message, const std::string& reason) {
  malformed_->inc();
  const std::string topic = rd_kafka_topic_name(message.rkt);
  log()->warn("{}[{}] offset {}: skipped: {}", topic, message.partition, message.offset, reason);
  publish(fmt::format("{}/{}/{}", topic, message.partition, message.offset),
          fmt::format(R"({{"type":"malformed","topic":{},"partition":{},"offset":{},"reason":{}}})",
                      jsonQuoted(topic), message.partition, message.offset, jsonQuoted(reason)));
}

void KafkaIngest::publish(const std::string& key, const std::string& value) {
  const auto err =
      rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(options_.outcomes_topic.c_str()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_HEADER("content-type", "application/json", -1), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log()->warn("publishing on {}: {}", options_.outcomes_topic, rd_kafka_err2str(err));
    return;
  }
  published_->inc();
}

void KafkaIngest::publishDeadHandle(const DeadHandle& dead) {
  publish(dead.handle,
          fmt::format(R"({{"type":"dead_handle","hub":{},"notification_id":{},"platform":{},)"
                      R"("handle":{},"installation_id":{},"outcome":{}}})",
                      jsonQuoted(dead.hub), jsonQuoted(dead.notification_id),
                      jsonQuoted(storage::platformName(dead.platform)), jsonQuoted(dead.handle),
                      jsonQuoted(dead.installation_id),
                      jsonQuoted(connectors::outcomeName(dead.outcome))));
}

void KafkaIngest::publishFinished(const NotificationView& view) {
  OutcomeTally tally;
  for (const auto& c : view.status.counts) tally.add(c.platform, c.outcome, c.n);
  const Notification& n = view.notification;
  // The idempotency key (the request's, or the message's key) lets a backend match the outcome
  // to what it produced.
  const std::string key = n.idempotency_key.empty() ? std::string()
                                                    : fmt::format(R"("idempotency_key":{},)",
                                                                  jsonQuoted(n.idempotency_key));
  publish(n.id,
          fmt::format(R"({{"type":"completed","hub":{},"id":{},{}"state":{},"enqueue_time":{},)"
                      R"("start_time":{},"end_time":{},"counts":{}}})",
                      jsonQuoted(n.hub), jsonQuoted(n.id), key,
                      jsonQuoted(stateName(view.status.state)),
                      jsonQuoted(formatIso8601(n.enqueue_time)),
                      jsonQuoted(formatIso8601(view.status.start_time)),
                      jsonQuoted(formatIso8601(view.status.end_time)), outcomeCountsJson(tally)));
}

}  // namespace pushhub::hub
