#include "bench/tool/kafka_send.h"

#include <librdkafka/rdkafka.h>
#include <rapidjson/document.h>

#include <fmt/format.h>

#include <stdexcept>
#include <vector>

#include "common/json.h"

namespace pushhub::bench {

struct KafkaSender::Impl {
  rd_kafka_t* producer = nullptr;
  rd_kafka_t* consumer = nullptr;
  std::string sends_topic;
  std::string outcomes_topic;
  ~Impl() {
    if (producer != nullptr) {
      rd_kafka_flush(producer, 2000);
      rd_kafka_destroy(producer);
    }
    if (consumer != nullptr) rd_kafka_destroy(consumer);
  }
};

namespace {

// What a produced message's delivery report says (its opaque).
struct Ack {
  bool done = false;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
};

rd_kafka_t* makeClient(rd_kafka_type_t type, const std::string& bootstrap) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const auto set = [&](const char* name, const std::string& value) {
    if (rd_kafka_conf_set(conf, name, value.c_str(), error, sizeof error) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(fmt::format("kafka {}: {}", name, error));
    }
  };
  set("bootstrap.servers", bootstrap);
  if (type == RD_KAFKA_PRODUCER) {
    set("linger.ms", "0");
    set("acks", "all");
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
      auto* ack = static_cast<Ack*>(m->_private);
      ack->done = true;
      ack->error = m->err;
    });
  } else {
    set("group.id", "pushhub-bench");  // assign() is used: the group coordinates nothing
    set("enable.auto.commit", "false");
  }
  rd_kafka_t* client = rd_kafka_new(type, conf, error, sizeof error);
  if (client == nullptr) throw std::runtime_error(fmt::format("kafka: {}", error));
  return client;
}

}  // namespace

KafkaSender::KafkaSender(const std::string& bootstrap, std::string sends_topic,
                         std::string outcomes_topic)
    : impl_(std::make_unique<Impl>()) {
  impl_->sends_topic = std::move(sends_topic);
  impl_->outcomes_topic = std::move(outcomes_topic);
  impl_->producer = makeClient(RD_KAFKA_PRODUCER, bootstrap);
  impl_->consumer = makeClient(RD_KAFKA_CONSUMER, bootstrap);
  // Every partition of the outcomes topic, from its current end.
  rd_kafka_topic_t* topic =
      rd_kafka_topic_new(impl_->consumer, impl_->outcomes_topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  const auto status = rd_kafka_metadata(impl_->consumer, 0, topic, &metadata, 10000);
  rd_kafka_topic_destroy(topic);
  if (status != RD_KAFKA_RESP_ERR_NO_ERROR || metadata->topic_cnt != 1 ||
      metadata->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (metadata != nullptr) rd_kafka_metadata_destroy(metadata);
    throw std::runtime_error(fmt::format("kafka {}: topic {} cannot be read: {}", bootstrap,
                                         impl_->outcomes_topic, rd_kafka_err2str(status)));
  }
  rd_kafka_topic_partition_list_t* partitions = rd_kafka_topic_partition_list_new(1);
  for (int i = 0; i < metadata->topics[0].partition_cnt; ++i) {
    const int32_t p = metadata->topics[0].partitions[i].id;
    int64_t low = 0, high = 0;
    rd_kafka_query_watermark_offsets(impl_->consumer, impl_->outcomes_topic.c_str(), p, &low, &high,
                                     10000);
    rd_kafka_topic_partition_list_add(partitions, impl_->outcomes_topic.c_str(), p)->offset = high;
  }
  rd_kafka_metadata_destroy(metadata);
  rd_kafka_assign(impl_->consumer, partitions);
  rd_kafka_topic_partition_list_destroy(partitions);
}

KafkaSender::~KafkaSender() = default;

void KafkaSender::produce(const std::string& key, const std::string& json) {
  Ack ack;
  rd_kafka_headers_t* headers = rd_kafka_headers_new(1);
  rd_kafka_header_add(headers, "content-type", -1, "application/json", -1);
  const auto err =
      rd_kafka_producev(impl_->producer, RD_KAFKA_V_TOPIC(impl_->sends_topic.c_str()),
                        RD_KAFKA_V_KEY(key.data(), key.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(json.data()), json.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                        RD_KAFKA_V_OPAQUE(&ack), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);
    throw std::runtime_error(
        fmt::format("kafka: producing to {}: {}", impl_->sends_topic, rd_kafka_err2str(err)));
  }
  // The delivery report arrives through rd_kafka_poll; flush waits for it.
  if (rd_kafka_flush(impl_->producer, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || !ack.done) {
    throw std::runtime_error("kafka: the send request was not acknowledged within 10 s");
  }
  if (ack.error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(
        fmt::format("kafka: the send request was refused: {}", rd_kafka_err2str(ack.error)));
  }
}

std::optional<KafkaCompleted> KafkaSender::poll(const std::string& key,
                                                std::chrono::milliseconds wait) {
  rd_kafka_message_t* message =
      rd_kafka_consumer_poll(impl_->consumer, static_cast<int>(wait.count()));
  if (message == nullptr) return std::nullopt;
  std::optional<KafkaCompleted> out;
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    out =
        parseCompleted(std::string(static_cast<const char*>(message->payload), message->len), key);
  }
  rd_kafka_message_destroy(message);
  return out;
}

std::string kafkaSendRequest(const std::string& hub, const std::string& format,
                             const std::string& tags, const std::string& body,
                             const std::string& idempotency_key) {
  std::string out = fmt::format(R"({{"hub":{},"format":{})", jsonQuoted(hub), jsonQuoted(format));
  if (!tags.empty()) out += fmt::format(R"(,"tags":{})", jsonQuoted(tags));
  // Template properties are an object; a native body goes as its text.
  out += format == "template" ? fmt::format(R"(,"properties":{})", body)
                              : fmt::format(R"(,"body":{})", jsonQuoted(body));
  out += fmt::format(R"(,"idempotency_key":{}}})", jsonQuoted(idempotency_key));
  return out;
}

OutcomeCounts readOutcomeCounts(const rapidjson::Value& counts) {
  OutcomeCounts out;
  if (!counts.IsObject()) return out;
  for (const auto& platform : counts.GetObject()) {
    if (!platform.value.IsObject()) continue;
    for (const auto& outcome : platform.value.GetObject()) {
      if (outcome.value.IsUint64()) {
        out[platform.name.GetString()][outcome.name.GetString()] = outcome.value.GetUint64();
      }
    }
  }
  return out;
}

std::optional<KafkaCompleted> parseCompleted(const std::string& json, const std::string& key) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  const auto str = [&](const char* name) -> std::string {
    auto it = doc.FindMember(name);
    return it != doc.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
  };
  if (str("type") != "completed" || str("idempotency_key") != key) return std::nullopt;
  KafkaCompleted c;
  c.id = str("id");
  c.state = str("state");
  if (auto counts = doc.FindMember("counts"); counts != doc.MemberEnd()) {
    c.counts = readOutcomeCounts(counts->value);
  }
  return c;
}

}  // namespace pushhub::bench
