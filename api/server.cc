#include "api/server.h"

#include <boost/asio/awaitable.hpp>

#include "common/build_info.h"
#include "common/log.h"
#include "hub/render.h"

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
  // The engine's timers belong to the loops' io_contexts: it goes before them (stopped, the loops
  // no longer run its handlers). Then the loops, before the HTTP server whose state their
  // coroutine frames reference.
  engine_.reset();
  kafka_.reset();
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
  store_options.check_templates = hub::checkTemplates;
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
      .header_timeout = config_.http.header_timeout,
      .max_connections = config_.http.max_connections,
      .max_connections_per_client = config_.http.max_connections_per_client,
  };
  // Clients are Azure SDKs: errors before any handler runs (404, 405, 413, 431, 503) in Azure's
  // XML form too.
  router_.setErrorFormat(azureError);
  http_ = std::make_unique<HttpServer>(*shards_, router_, limits, metrics_);
  if (config_.http.tls_cert_file.empty() != config_.http.tls_key_file.empty()) {
    return std::unexpected(
        "http.tls_cert_file and http.tls_key_file: set both for HTTPS, or neither for HTTP");
  }
  if (!config_.http.tls_cert_file.empty()) {
    if (auto tls = http_->useTls(config_.http.tls_cert_file, config_.http.tls_key_file); !tls) {
      return std::unexpected("http.tls_cert_file: " + tls.error());
    }
  }
  if (auto listening = http_->listen(config_.server.listen); !listening) {
    return std::unexpected(listening.error());
  }
  hub::EngineOptions engine_options;
  engine_options.in_flight_per_shard = config_.engine.in_flight_per_shard;
  engine_options.in_flight_per_service = config_.engine.in_flight_per_service;
  engine_options.connectors.streams_per_connection = config_.engine.streams_per_connection;
  engine_options.checkpoint_every = config_.engine.checkpoint_every;
  engine_options.checkpoint_interval = config_.engine.checkpoint_interval;
  engine_options.time_to_live = config_.engine.time_to_live;
  engine_options.connectors.fcm_per_minute = config_.engine.fcm_per_minute;
  engine_options.connectors.metrics = &metrics_;
  engine_ = std::make_unique<hub::Engine>(*shards_, *database_, *installations_, metrics_,
                                          engine_options);
  auto hubs = hub::loadHubDefinitions(config_.engine.hubs);
  if (!hubs) return std::unexpected("engine.hubs: " + hubs.error());
  for (auto& definition : *hubs) {
    const std::string name = definition.name;
    if (auto added = engine_->addHub(std::move(definition)); !added) {
      return std::unexpected("engine.hubs: " + added.error());
    }
    log()->info("hub {} ready", name);
  }
  if (!config_.kafka.brokers.empty()) {
    hub::KafkaOptions kafka_options;
    kafka_options.brokers = config_.kafka.brokers;
    kafka_options.group_id = config_.kafka.group_id;
    kafka_options.sends_topic = config_.kafka.sends_topic;
    kafka_options.outcomes_topic = config_.kafka.outcomes_topic;
    kafka_options.max_running = config_.kafka.max_running;
    auto kafka = hub::KafkaIngest::create(*engine_, kafka_options, metrics_);
    if (!kafka) return std::unexpected(kafka.error());
    kafka_ = std::move(*kafka);
    hub::KafkaIngest* kafka_ptr = kafka_.get();
    engine_->setEvents(hub::EngineEvents{
        [kafka_ptr](const hub::DeadHandle& dead) { kafka_ptr->publishDeadHandle(dead); },
        [kafka_ptr](const hub::NotificationView& view) { kafka_ptr->publishFinished(view); }});
  }
  auto rules = parseSasRules(config_.auth.rules);
  if (!rules) return std::unexpected("auth.rules: " + rules.error());
  auth_ = std::make_unique<SasAuthenticator>(std::move(*rules), config_.auth.public_url);
  AzureApi::Options azure_options;
  azure_options.scheme = http_->tls() ? "https" : "http";
  azure_ = std::make_unique<AzureApi>(*engine_, *installations_, *auth_, azure_options);
  azure_->addRoutes(router_);
  AdminApi::Options admin_options;
  for (const auto& name : engine_->hubNames()) admin_options.configured_hubs.insert(name);
  admin_ = std::make_unique<AdminApi>(*engine_, *database_, *auth_, std::move(admin_options));
  auto stored = admin_->loadStored();
  if (!stored) return std::unexpected(stored.error());
  if (*stored > 0) log()->info("{} hubs from the admin API loaded", *stored);
  admin_->addRoutes(router_);
  shards_->start();
  if (auto started = engine_->start(); !started) return std::unexpected(started.error());
  if (kafka_) {
    kafka_->start();
    log()->info("reading send requests from Kafka {} topic {}", config_.kafka.brokers,
                config_.kafka.sends_topic);
  }
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
  // Intake first (Kafka), then the fan-out (its progress written), then the loops; the Kafka
  // producer outlives the engine, which may still publish while it stops.
  if (kafka_) kafka_->stop();
  if (engine_) engine_->stop();
  if (shards_) shards_->stop();
  engine_.reset();
  kafka_.reset();
  installations_.reset();
  database_.reset();
  log()->info("storage closed");
}

ListenAddress Server::listenAddress() const {
  return ListenAddress{config_.server.listen.host,
                       http_ ? http_->port() : config_.server.listen.port};
}

}  // namespace pushhub::api
