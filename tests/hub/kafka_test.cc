// Kafka intake and feedback against librdkafka's mock cluster (a real Kafka-protocol broker)
// and the real pushhub-sim: send requests produced to pushhub.sends are delivered, a
// redelivered message is not sent twice, a malformed one is reported and skipped, a full engine
// pauses the partitions and resumes them, outcomes and dead handles come back on
// pushhub.outcomes.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <msgpack.hpp>

#include "hub/kafka.h"
#include "tests/hub/engine_fixture.h"

namespace pushhub::hub {
namespace {

using namespace engine_testing;

class KafkaTest : public EngineTest {
 protected:
  void SetUp() override {
#ifdef PUSHHUB_TSAN
    GTEST_SKIP() << "librdkafka's C11 threads crash under GCC 12's TSan (see tests/CMakeLists.txt)";
#endif
    EngineTest::SetUp();
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", error, sizeof error);
    owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    ASSERT_NE(owner_, nullptr) << error;
    cluster_ = rd_kafka_mock_cluster_new(owner_, 1);
    ASSERT_NE(cluster_, nullptr);
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, "pushhub.sends", 2, 1), 0);
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, "pushhub.outcomes", 1, 1), 0);
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
    producer_ = client(RD_KAFKA_PRODUCER, {});
    reader_ =
        client(RD_KAFKA_CONSUMER, {{"group.id", "test-reader"}, {"auto.offset.reset", "earliest"}});
    rd_kafka_poll_set_consumer(reader_);
    auto* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, "pushhub.outcomes", RD_KAFKA_PARTITION_UA);
    ASSERT_EQ(rd_kafka_subscribe(reader_, topics), 0);
    rd_kafka_topic_partition_list_destroy(topics);
  }

  void TearDown() override {
    // Intake stops first; the engine may still publish while it stops; then the producer goes.
    if (ingest_) ingest_->stop();
    EngineTest::TearDown();
    ingest_.reset();
    if (reader_ != nullptr) {
      rd_kafka_consumer_close(reader_);
      rd_kafka_destroy(reader_);
    }
    if (producer_ != nullptr) rd_kafka_destroy(producer_);
    if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
    if (owner_ != nullptr) rd_kafka_destroy(owner_);
  }

  rd_kafka_t* client(rd_kafka_type_t type,
                     std::vector<std::pair<std::string, std::string>> settings) {
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    settings.emplace_back("bootstrap.servers", bootstrap_);
    settings.emplace_back("log_level", "3");
    for (const auto& [k, v] : settings) {
      EXPECT_EQ(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), error, sizeof error),
                RD_KAFKA_CONF_OK)
          << error;
    }
    rd_kafka_t* rk = rd_kafka_new(type, conf, error, sizeof error);
    EXPECT_NE(rk, nullptr) << error;
    return rk;
  }

  // The engine with Kafka intake and feedback wired as the server does it.
  void openWithKafka(size_t max_running = 256) {
    before_start_ = [this, max_running](Engine& engine) {
      KafkaOptions options;
      options.brokers = bootstrap_;
      options.max_running = max_running;
      auto ingest = KafkaIngest::create(engine, options, *metrics_);
      ASSERT_TRUE(ingest.has_value()) << ingest.error();
      ingest_ = std::move(*ingest);
      KafkaIngest* ingest_ptr = ingest_.get();
      engine.setEvents(EngineEvents{
          [ingest_ptr](const DeadHandle& dead) { ingest_ptr->publishDeadHandle(dead); },
          [ingest_ptr](const NotificationView& view) { ingest_ptr->publishFinished(view); }});
    };
    open();
    ingest_->start();
  }

  void produce(const std::string& value, const std::string& content_type = "application/json",
               const std::string& key = "") {
    const auto err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC("pushhub.sends"), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_HEADER("content-type", content_type.c_str(), -1), RD_KAFKA_V_END);
    ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
    ASSERT_EQ(rd_kafka_flush(producer_, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // Reads the outcomes topic until `done` says enough (or the timeout).
  std::vector<std::string> readOutcomes(
      const std::function<bool(const std::vector<std::string>&)>& done,
      std::chrono::seconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done(outcomes_) && std::chrono::steady_clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(reader_, 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        outcomes_.emplace_back(static_cast<const char*>(m->payload), m->len);
      }
      rd_kafka_message_destroy(m);
    }
    EXPECT_TRUE(done(outcomes_)) << "outcomes so far: " << outcomes_.size();
    return outcomes_;
  }
  static size_t countWith(const std::vector<std::string>& lines, std::string_view needle) {
    return static_cast<size_t>(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find(needle) != std::string::npos;
    }));
  }

  rd_kafka_t* owner_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_;
  rd_kafka_t* producer_ = nullptr;
  rd_kafka_t* reader_ = nullptr;
  std::unique_ptr<KafkaIngest> ingest_;
  std::vector<std::string> outcomes_;
};

TEST_F(KafkaTest, JsonAndMsgpackSendRequestsAreDeliveredAndTheirSummariesPublished) {
  openWithKafka();
  store({device(0, {"news"}), device(1, {"news"}), device(10, {"news"}), device(17, {"sport"})});
  produce(R"({"hub":"demo","format":"template","tags":"news","properties":{"msg":"from kafka"}})");
  // msgpack: a native APNs direct send.
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(4);
  pk.pack("hub");
  pk.pack("demo");
  pk.pack("format");
  pk.pack("apple");
  pk.pack("handles");
  pk.pack(std::vector<std::string>{std::string(64, 'e')});
  pk.pack("body");
  pk.pack(R"({"aps":{"alert":"msgpack"}})");
  produce(std::string(buffer.data(), buffer.size()), "application/msgpack");

  const auto lines =
      readOutcomes([](const auto& l) { return countWith(l, R"("type":"completed")") >= 2; });
  EXPECT_EQ(countWith(lines, R"("state":"Completed")"), 2u);
  EXPECT_EQ(countWith(lines, R"("apns":{"Success":2})"), 1u) << ::testing::PrintToString(lines);
  EXPECT_EQ(countWith(lines, R"("fcmv1":{"Success":1})"), 1u);
  EXPECT_EQ(countWith(lines, R"("apns":{"Success":1})"), 1u);
  size_t kafka_bodies = 0, msgpack_bodies = 0;
  for (const auto& r : records()) {
    if (r.body.find("from kafka") != std::string::npos) ++kafka_bodies;
    if (r.body == R"({"aps":{"alert":"msgpack"}})" && r.handle == std::string(64, 'e')) {
      ++msgpack_bodies;
    }
  }
  EXPECT_EQ(kafka_bodies, 3u);
  EXPECT_EQ(msgpack_bodies, 1u);
  EXPECT_EQ(ingest_->accepted(), 2u);
}

TEST_F(KafkaTest, ARedeliveredMessageIsNotSentTwice) {
  openWithKafka();
  store({device(0, {"a"}), device(1, {"a"})});
  const std::string request =
      R"({"hub":"demo","format":"template","tags":"a","properties":{"msg":"once"}})";
  produce(request, "application/json", "order-7");
  produce(request, "application/json", "order-7");  // as a consumer would see a redelivery
  readOutcomes([](const auto& l) { return countWith(l, R"("type":"completed")") >= 1; });
  // The second is read and recognised as the first.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (metrics_->renderPrometheus().find(
             R"(pushhub_kafka_messages_total{result="repeated"} 1)") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_THAT(metrics_->renderPrometheus(),
              HasSubstr(R"(pushhub_kafka_messages_total{result="repeated"} 1)"));
  EXPECT_EQ(records().size(), 2u);
}

TEST_F(KafkaTest, AMalformedMessageIsReportedWithItsOffsetAndDoesNotStopThePartition) {
  openWithKafka();
  store({device(0, {"a"})});
  produce("this is not json", "application/json", "k1");
  produce(R"({"hub":"demo","format":"template","tags":"a","properties":{"msg":1}})",
          "application/json", "k1");
  produce(R"({"hub":"nohub","format":"apple","body":"{}"})", "application/json", "k1");
  produce("\x81\xa3hub", "application/msgpack", "k1");
  produce(R"({"hub":"demo","format":"template","tags":"a","properties":{"msg":"fine"}})",
          "application/json", "k1-valid");
  const auto lines = readOutcomes([](const auto& l) {
    return countWith(l, R"("type":"completed")") >= 1 && countWith(l, R"("type":"malformed")") >= 4;
  });
  // Same key, same partition: offsets 0..3 in order.
  EXPECT_EQ(countWith(lines, R"("offset":0,"reason":"not JSON)"), 1u)
      << ::testing::PrintToString(lines);
  EXPECT_EQ(countWith(lines, R"("offset":1,"reason":"properties.msg: not a string")"), 1u);
  EXPECT_EQ(countWith(lines, R"("offset":2,"reason":"hub \"nohub\" is not known")"), 1u);
  EXPECT_EQ(countWith(lines, R"("offset":3,"reason":"not msgpack)"), 1u);
  EXPECT_EQ(ingest_->malformed(), 4u);
  EXPECT_EQ(records().size(), 1u);
}

TEST_F(KafkaTest, AFullEnginePausesThePartitionsAndResumesThem) {
  close();
  start({"--record", record_, "--fault", "all:latency-us=300000"});  // answers take 300 ms
  openWithKafka(1);                                                  // one notification at a time
  store({device(0, {"a"})});
  for (int i = 0; i < 4; ++i) {
    produce(
        fmt::format(
            R"({{"hub":"demo","format":"template","tags":"a","properties":{{"msg":"m{}"}}}})", i),
        "application/json", fmt::format("key-{}", i));
  }
  bool saw_paused = false;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!saw_paused && std::chrono::steady_clock::now() < deadline) {
    saw_paused = ingest_->paused();
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(saw_paused);
  readOutcomes([](const auto& l) { return countWith(l, R"("type":"completed")") >= 4; });
  EXPECT_EQ(records().size(), 4u);
  EXPECT_EQ(ingest_->accepted(), 4u);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(ingest_->paused());
}

TEST_F(KafkaTest, DeadHandlesArePublished) {
  openWithKafka();
  store({device(0, {"a"}, "dead"), device(1, {"a"})});
  produce(R"({"hub":"demo","format":"template","tags":"a","properties":{"msg":"x"}})");
  const auto lines = readOutcomes([](const auto& l) {
    return countWith(l, R"("type":"completed")") >= 1 &&
           countWith(l, R"("type":"dead_handle")") >= 1;
  });
  EXPECT_EQ(countWith(lines, R"("installation_id":"dev-0","outcome":"ExpiredChannel")"), 1u)
      << ::testing::PrintToString(lines);
}

}  // namespace
}  // namespace pushhub::hub
