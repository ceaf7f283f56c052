#include "api/server.h"

#include <boost/asio/awaitable.hpp>

#include "common/build_info.h"
#include "common/log.h"

namespace pushhub::api {

namespace {
const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = moduleLogger("server");
  return logger;
}
}  // namespace

Server::Server(Config config)
    : config_(std::move(config)), started_at_(std::chrono::steady_clock::now()) {
  const auto& build = buildInfo();
  metrics_
      .gauge("pushhub_build_info", "Always 1; the labels say which build this is",
             {{"version", std::string(build.version)},
              {"commit", std::string(build.git_commit)},
              {"build_type", std::string(build.build_type)},
              {"compiler", std::string(build.compiler)}})
      .set(1);
  metrics_.callbackGauge(
      "pushhub_uptime_seconds", "Seconds since the process started", {}, [started = started_at_] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      });
  metrics_.gauge("pushhub_shards", "Shards (event loops) this process runs")
      .set(config_.shardCount());
  metrics_.callbackGauge("pushhub_ready",
                         "1 when the server accepts work, 0 while starting or "
                         "stopping",
                         {}, [this] { return ready_.load() ? 1.0 : 0.0; });
  addRoutes();
}

Server::~Server() {
  shutdown();
  // The loops go first: coroutine frames they still hold reference the HTTP server's state.
  shards_.reset();
  http_.reset();
  installations_.reset();
  database_.reset();
}

void Server::addRoutes() {
  router_.add(http::verb::get, "/healthz",
              [this](const HttpRequest&) -> boost::asio::awaitable<HttpResponse> {
                if (!ready_.load()) {
                  co_return errorResponse(http::status::service_unavailable, "not ready");
                }
                co_return textResponse("ok\n", "text/plain; charset=utf-8");
              });
  router_.add(http::verb::get, "/metrics",
              [this](const HttpRequest&) -> boost::asio::awaitable<HttpResponse> {
                co_return textResponse(metrics_.renderPrometheus(),
                                       "text/plain; version=0.0.4; charset=utf-8");
              });
}

std::expected<void, std::string> Server::start() {
  auto database = storage::Database::open(config_.storage);
  if (!database) return std::unexpected(database.error());
  database_ = std::move(*database);
  storage::StoreOptions store_options;
  store_options.partitions = config_.installations.partitions;
  store_options.limits = config_.installations.limits;
  store_options.rebuild_threads = config_.shardCount();
  auto installations = storage::InstallationStore::open(*database_, store_options);
  if (!installations) return std::unexpected(installations.error());
  installations_ = std::move(*installations);
  metrics_.callbackGauge(
      "pushhub_installations", "Installations stored, all hubs", {},
      [store = installations_.get()] { return static_cast<double>(store->installationCount()); });
  metrics_
      .gauge("pushhub_storage_unreadable_records",
             "Installation records found unreadable at start-up (kept on disk, not indexed)")
      .set(static_cast<int64_t>(installations_->unreadableRecords()));

  shards_ = std::make_unique<ShardSet>(config_.shardCount());
  const HttpLimits limits{
      .max_header_bytes = config_.http.max_header_bytes,
      .max_body_bytes = config_.http.max_body_bytes,
      .idle_timeout = config_.http.idle_timeout,
      .max_connections = config_.http.max_connections,
  };
  http_ = std::make_unique<HttpServer>(*shards_, router_, limits, metrics_);
  if (auto listening = http_->listen(config_.server.listen); !listening) {
    return std::unexpected(listening.error());
  }
  shards_->start();
  http_->start();
  running_ = true;
  ready_.store(true);
  log()->info("pushhub {} ({}) ready: {} shards, data in {}", buildInfo().version,
              buildInfo().git_commit, shards_->size(), config_.storage.data_dir.string());
  return {};
}

void Server::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  ready_.store(false);
  if (running_) {
    const size_t cut = http_->stop(config_.server.shutdown_timeout);
    log()->info("HTTP stopped ({} connections cut)", cut);
  }
  if (shards_) shards_->stop();
  installations_.reset();
  database_.reset();
  log()->info("storage closed");
}

ListenAddress Server::listenAddress() const {
  return ListenAddress{config_.server.listen.host,
                       http_ ? http_->port() : config_.server.listen.port};
}

}  // namespace pushhub::api
