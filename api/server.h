#pragma once

#include <atomic>
#include <chrono>
#include <expected>
#include <memory>
#include <string>

#include "api/admin_api.h"
#include "api/azure_api.h"
#include "api/http_server.h"
#include "api/sas.h"
#include "common/metrics.h"
#include "common/shard_set.h"
#include "hub/config.h"
#include "hub/engine.h"
#include "hub/kafka.h"
#include "storage/database.h"
#include "storage/installation_store.h"

namespace pushhub::api {

// The whole pushhub process, assembled from its configuration: storage (database, then the
// installation store with its index rebuilt), shards, the HTTP API. start() brings it up in that
// order; shutdown() takes it down in reverse: stop accepting,
// finish in-flight requests, stop the shards, close storage.
class Server {
 public:
  explicit Server(Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Fails with one line saying what could not be done (data directory locked, port taken, …).
  std::expected<void, std::string> start();
  void shutdown();

  // The address actually listened on (the real port when the configuration said 0).
  ListenAddress listenAddress() const;
  bool tls() const { return http_ != nullptr && http_->tls(); }
  bool ready() const { return ready_.load(); }
  MetricsRegistry& metrics() { return metrics_; }
  hub::Engine* engine() { return engine_.get(); }

 private:
  void addRoutes();

  const Config config_;
  const std::chrono::steady_clock::time_point started_at_;
  MetricsRegistry metrics_;
  Router router_;
  std::unique_ptr<storage::Database> database_;
  std::unique_ptr<storage::InstallationStore> installations_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<ShardSet> shards_;
  std::unique_ptr<hub::Engine> engine_;
  std::unique_ptr<hub::KafkaIngest> kafka_;
  std::unique_ptr<SasAuthenticator> auth_;
  std::unique_ptr<AzureApi> azure_;
  std::unique_ptr<AdminApi> admin_;
  std::atomic<bool> ready_{false};
  bool running_ = false;  // the shards and the HTTP server were started
  bool stopped_ = false;
};

}  // namespace pushhub::api
