// pushhub-kafka-dev: a local Kafka-protocol broker for development, tests and benchmarks —
// librdkafka's mock cluster, with pushhub's topics created. Kafka itself (the JVM broker) is not
// needed: point pushhub (kafka.brokers) and any Kafka client at the address it prints.
//
//   pushhub-kafka-dev [--brokers N] [--partitions N] [--bootstrap-file FILE] [--exit-with-parent]
//
// Prints "pushhub-kafka-dev ready bootstrap=HOST:PORT,…" and runs until SIGINT or SIGTERM.
#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <CLI/CLI.hpp>

#include <sys/prctl.h>
#include <unistd.h>
#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>

namespace {
volatile std::sig_atomic_t g_signal = 0;
}

int main(int argc, char** argv) {
  CLI::App app{"A local Kafka-protocol broker (librdkafka's mock cluster) with pushhub's topics"};
  int brokers = 1;
  int partitions = 8;
  std::string bootstrap_file;
  std::string sends_topic = "pushhub.sends";
  std::string outcomes_topic = "pushhub.outcomes";
  app.add_option("--brokers", brokers, "Brokers in the cluster")->check(CLI::Range(1, 9));
  app.add_option("--partitions", partitions, "Partitions of each topic")->check(CLI::Range(1, 256));
  app.add_option("--sends-topic", sends_topic, "The send requests topic");
  app.add_option("--outcomes-topic", outcomes_topic, "The outcomes topic");
  app.add_option("--bootstrap-file", bootstrap_file, "Also write the bootstrap address here");
  bool exit_with_parent = false;
  app.add_flag("--exit-with-parent", exit_with_parent,
               "Stop when the process that started this one dies (scripts, tests)");
  CLI11_PARSE(app, argc, argv);

  if (exit_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) return 0;  // the parent is already gone
  }
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "log_level", "3", error, sizeof error) != RD_KAFKA_CONF_OK) {
    fmt::print(stderr, "pushhub-kafka-dev: {}\n", error);
    return 1;
  }
  // A client handle owns the mock cluster; it is otherwise unused.
  rd_kafka_t* owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (owner == nullptr) {
    fmt::print(stderr, "pushhub-kafka-dev: {}\n", error);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(owner, brokers);
  if (cluster == nullptr) {
    fmt::print(stderr, "pushhub-kafka-dev: could not start the mock cluster\n");
    return 1;
  }
  for (const auto& topic : {sends_topic, outcomes_topic}) {
    if (auto err = rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, 1)) {
      fmt::print(stderr, "pushhub-kafka-dev: creating {}: {}\n", topic, rd_kafka_err2str(err));
      return 1;
    }
  }
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);
  if (!bootstrap_file.empty()) {
    std::ofstream out(bootstrap_file);
    out << bootstrap << '\n';
    if (!out) {
      fmt::print(stderr, "pushhub-kafka-dev: cannot write {}\n", bootstrap_file);
      return 1;
    }
  }
  std::signal(SIGINT, [](int s) { g_signal = s; });
  std::signal(SIGTERM, [](int s) { g_signal = s; });
  fmt::print("pushhub-kafka-dev ready bootstrap={} topics={},{} partitions={}\n", bootstrap,
             sends_topic, outcomes_topic, partitions);
  std::fflush(stdout);
  while (g_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(owner);
  return 0;
}
