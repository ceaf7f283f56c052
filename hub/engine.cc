#include "hub/engine.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <future>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"

namespace pushhub::hub {

namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = moduleLogger("engine");
  return logger;
}

using connectors::DeliveryResult;
using connectors::PnsOutcome;
using storage::Platform;
using Clock = std::chrono::steady_clock;

std::string runKey(std::string_view hub, std::string_view id) {
  std::string k(hub);
  k.push_back('\0');
  k.append(id);
  return k;
}

storage::Platform platformOf(const Delivery& d) {
  switch (d.index()) {
    case 0: return Platform::kApns;
    case 1: return Platform::kFcmV1;
    default: return Platform::kWns;
  }
}

void addCount(std::vector<NotificationStatus::Count>& counts, Platform platform, PnsOutcome outcome,
              uint64_t n) {
  for (auto& c : counts) {
    if (c.platform == platform && c.outcome == outcome) {
      c.n += n;
      return;
    }
  }
  counts.push_back({platform, outcome, n});
}

}  // namespace

// One notification while it runs: shared by the shards working on it.
struct Engine::Run {
  Notification n;
  std::string key;
  OutcomeTally tally;
  Clock::time_point deadline;
  Clock::time_point accepted_at;  // for the accept-to-answer latency
  std::atomic<unsigned> shards_left{0};
  std::atomic<UnixMillis> start_time{0};
  std::atomic<bool> expired{false};  // the time-to-live ran out before every target was reached
  std::atomic<uint64_t> resends{0};  // NotificationStatus::resends
  // Test sends (n.max_targets): devices handed over so far, and their answers.
  std::atomic<uint32_t> handed_out{0};
  std::mutex test_mutex;
  std::vector<TestResult> test_results;
};

// One shard's part of a notification: the partitions it owns (or the direct-send list).
struct Engine::Job {
  struct Slot {
    uint32_t id = 0;  // partition, or kDirectSlot
    bool evaluated = false;
    bool finished = false;          // every target answered (or restored finished)
    bool dirty = false;             // progress not yet checkpointed
    std::vector<uint32_t> targets;  // ordinals (or list positions), ascending
    size_t pos = 0;                 // next in `targets`
    uint32_t next = 0;              // every target below it has been handed over
    std::deque<uint32_t> resend;    // pending at the last checkpoint: go first
    std::unique_ptr<storage::PartitionReader> reader;  // while its targets are walked
    std::unordered_map<uint32_t, uint32_t> pending;    // target -> deliveries unanswered
    std::vector<NotificationStatus::Count> counts;
  };

  std::shared_ptr<Run> run;
  ShardConnectors* out = nullptr;
  std::optional<Renderer> renderer;
  std::optional<storage::TagExpression> expression;
  std::optional<storage::CompiledExpression> compiled;
  std::vector<Slot> slots;
  size_t current = 0;  // the slot being walked
  bool finished = false;
  // Targets whose push service had no room when they were reached (slot index, target), by
  // platform: handed over as that service answers, while the walk goes on for the others.
  std::array<std::deque<std::pair<size_t, uint32_t>>, storage::kPlatformCount> deferred;
  size_t deferred_count = 0;
  std::vector<Delivery> scratch;
  std::vector<RenderFailure> failures;
};

struct Engine::Shard {
  explicit Shard(boost::asio::io_context& io) : io(io), checkpoint_timer(io), stall_timer(io) {}
  unsigned index = 0;
  boost::asio::io_context& io;
  std::map<std::string, std::unique_ptr<ShardConnectors>, std::less<>> connectors;
  std::vector<std::unique_ptr<ShardConnectors>> retired;  // still used by running jobs
  std::vector<std::unique_ptr<Job>> jobs;
  size_t next_job = 0;  // round-robin position
  std::atomic<uint64_t> in_flight{0};
  bool pump_posted = false;
  size_t answers_since_checkpoint = 0;
  bool checkpoint_timer_armed = false;
  boost::asio::steady_timer checkpoint_timer;
  // A walk paused on a busy service looks again once that service could count as stalled: its
  // answers would wake the pump, but a service that stops answering wakes nothing.
  bool stall_timer_armed = false;
  boost::asio::steady_timer stall_timer;
  bool stopping = false;
  Gauge* in_flight_gauge = nullptr;
  // Upserts queued this loop turn, by hub: written together by flushUpserts().
  struct Upsert {
    storage::Installation installation;
    WriteDone done;
  };
  std::map<std::string, std::vector<Upsert>, std::less<>> upserts;
  bool flush_posted = false;
};

Engine::Engine(ShardSet& shards, storage::Database& database,
               storage::InstallationStore& installations, MetricsRegistry& metrics,
               EngineOptions options)
    : shard_set_(shards),
      installations_(installations),
      metrics_(metrics),
      options_(std::move(options)),
      notifications_(database) {
  for (unsigned i = 0; i < shards.size(); ++i) {
    auto shard = std::make_unique<Shard>(shards.context(i));
    shard->index = i;
    shard->in_flight_gauge =
        &metrics.gauge("pushhub_engine_in_flight",
                       "Deliveries handed to push services and not yet answered, per shard",
                       {{"shard", std::to_string(i)}});
    shards_.push_back(std::move(shard));
  }
  for (size_t p = 0; p < storage::kPlatformCount; ++p) {
    const auto platform = static_cast<Platform>(p);
    if (platform != Platform::kApns && platform != Platform::kFcmV1 && platform != Platform::kWns) {
      continue;
    }
    for (size_t o = 0; o < connectors::kPnsOutcomeCount; ++o) {
      deliveries_[p][o] = &metrics.counter(
          "pushhub_deliveries_total", "Deliveries to push services by platform and outcome",
          {{"platform", std::string(storage::platformName(platform))},
           {"outcome", std::string(connectors::outcomeName(static_cast<PnsOutcome>(o)))}});
    }
  }
  const auto latency = [&](const char* target) {
    return &metrics.histogram(
        "pushhub_delivery_latency_seconds",
        "From a notification's acceptance (or due time) to the push service's answer, per delivery",
        latencyBuckets(), {{"target", target}});
  };
  latency_direct_ = latency("direct");
  latency_tags_ = latency("tags");
  latency_broadcast_ = latency("broadcast");
  accepted_ = &metrics.counter("pushhub_notifications_accepted_total",
                               "Notifications accepted (persisted and acknowledged)");
  repeated_ = &metrics.counter(
      "pushhub_notifications_repeated_total",
      "Send requests whose idempotency key named an accepted notification (not sent again)");
  for (size_t s = 0; s < finished_by_state_.size(); ++s) {
    finished_by_state_[s] = &metrics.counter(
        "pushhub_notifications_finished_total", "Notifications that ended, by state",
        {{"state", std::string(stateName(static_cast<NotificationState>(s)))}});
  }
  metrics.callbackGauge("pushhub_notifications_running",
                        "Notifications accepted and not finished (in this process)", {},
                        [this] { return static_cast<double>(running()); });
}

Engine::~Engine() { stop(); }

std::expected<void, std::string> Engine::addHub(HubDefinition definition) {
  const std::string name = definition.name;
  ConnectorOptions connector_options = options_.connectors;
  connector_options.in_flight_per_service = options_.in_flight_per_service;
  // The engine never has more in flight than a client's queue holds (ShardConnectors::send).
  connector_options.queue_capacity =
      std::max(connector_options.queue_capacity, 2 * options_.in_flight_per_shard + 1024);
  if (connector_options.metrics == nullptr) connector_options.metrics = &metrics_;
  auto credentials = HubCredentials::create(std::move(definition), connector_options);
  if (!credentials) return std::unexpected(fmt::format("hub {}: {}", name, credentials.error()));
  bool replaced = false;
  {
    std::lock_guard lock(hubs_mutex_);
    auto& slot = hubs_[name];
    replaced = slot != nullptr;
    slot = std::move(*credentials);
  }
  if (replaced) {
    for (auto& shard : shards_) {
      boost::asio::post(shard->io,
                        [this, &shard = *shard, name] { retireConnectors(shard, name); });
    }
  }
  return {};
}

std::optional<HubDefinition> Engine::hubDefinition(std::string_view hub) const {
  std::lock_guard lock(hubs_mutex_);
  auto it = hubs_.find(hub);
  if (it == hubs_.end()) return std::nullopt;
  return it->second->definition();
}

std::vector<std::string> Engine::hubNames() const {
  std::lock_guard lock(hubs_mutex_);
  std::vector<std::string> names;
  for (const auto& [name, unused] : hubs_) names.push_back(name);
  return names;
}

void Engine::removeHub(std::string hub,
                       std::function<void(std::expected<uint64_t, std::string>&&)> done) {
  {
    std::lock_guard lock(hubs_mutex_);
    if (hubs_.erase(hub) == 0) return done(std::unexpected("hub " + hub + " does not exist"));
  }
  struct State {
    std::atomic<size_t> shards_left;
    std::atomic<uint64_t> removed{0};
    std::mutex mutex;
    std::string error;
  };
  auto state = std::make_shared<State>();
  state->shards_left = shards_.size();
  auto shared_done = std::make_shared<decltype(done)>(std::move(done));
  const uint32_t partitions = installations_.partitionCount();
  for (size_t i = 0; i < shards_.size(); ++i) {
    Shard& shard = *shards_[i];
    boost::asio::post(shard.io, [this, &shard, i, hub, partitions, state, shared_done] {
      if (shard.flush_posted) flushUpserts(shard);
      retireConnectors(shard, hub);
      for (uint32_t p = static_cast<uint32_t>(i); p < partitions;
           p += static_cast<uint32_t>(shards_.size())) {
        auto cleared = installations_.clearPartition(hub, p);
        if (cleared) {
          state->removed += *cleared;
        } else {
          std::lock_guard lock(state->mutex);
          state->error = cleared.error().message;
        }
      }
      if (state->shards_left.fetch_sub(1) != 1) return;
      if (auto dropped = installations_.dropHubEntries(hub); !dropped) {
        state->error = dropped.error().message;
      }
      if (!state->error.empty()) return (*shared_done)(std::unexpected(state->error));
      log()->info("hub {} removed with its {} devices", hub, state->removed.load());
      (*shared_done)(state->removed.load());
    });
  }
}

void Engine::retireConnectors(Shard& shard, const std::string& hub) {
  auto it = shard.connectors.find(hub);
  if (it == shard.connectors.end()) return;
  shard.retired.push_back(std::move(it->second));
  shard.connectors.erase(it);
  sweepRetired(shard);
}

void Engine::sweepRetired(Shard& shard) {
  std::erase_if(shard.retired, [&](const std::unique_ptr<ShardConnectors>& c) {
    if (c->pending() != 0) return false;
    return std::none_of(shard.jobs.begin(), shard.jobs.end(),
                        [&](const auto& job) { return job->out == c.get(); });
  });
}

bool Engine::hasHub(std::string_view hub) const {
  std::lock_guard lock(hubs_mutex_);
  return hubs_.find(hub) != hubs_.end();
}

void Engine::setEvents(EngineEvents events) { events_ = std::move(events); }

std::expected<void, std::string> Engine::start() {
  started_ = true;
  auto active = notifications_.active();
  if (!active) return std::unexpected(active.error());
  size_t resumed = 0;
  for (const auto& [hub, id] : *active) {
    auto n = notifications_.notification(hub, id);
    if (!n) return std::unexpected(n.error());
    if (!*n) continue;
    auto checkpoints = notifications_.checkpoints(hub, id);
    if (!checkpoints) return std::unexpected(checkpoints.error());
    auto run = std::make_shared<Run>();
    run->n = std::move(**n);
    auto status = notifications_.status(hub, id);
    if (status && *status) run->start_time = (*status)->start_time;
    launch(std::move(run), std::move(*checkpoints));
    ++resumed;
  }
  if (resumed > 0) log()->info("resumed {} unfinished notification(s)", resumed);
  accepting_ = true;
  schedule_timer_ = std::make_unique<boost::asio::steady_timer>(shard_set_.context(0));
  boost::asio::post(shard_set_.context(0), [this] { pollSchedule(); });
  return {};
}

void Engine::stop() {
  if (stopped_.exchange(true)) return;
  accepting_ = false;
  if (!started_) return;  // nothing was posted to the shards
  // Each shard writes its progress and closes its pools, on its own loop.
  std::vector<std::future<void>> done;
  for (auto& shard_ptr : shards_) {
    Shard& shard = *shard_ptr;
    auto promise = std::make_shared<std::promise<void>>();
    done.push_back(promise->get_future());
    boost::asio::post(shard.io, [this, &shard, promise] {
      shard.stopping = true;
      checkpoint(shard);
      shard.checkpoint_timer.cancel();
      shard.stall_timer.cancel();
      shard.connectors.clear();  // pending callbacks are dropped with the clients
      shard.retired.clear();
      shard.jobs.clear();
      if (&shard == shards_.front().get() && schedule_timer_) schedule_timer_->cancel();
      promise->set_value();
    });
  }
  for (auto& f : done) {
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      log()->warn("a shard did not stop its fan-out work within 10 s");
    }
  }
}

std::expected<NotificationStore::Accepted, SendError> Engine::send(Notification n) {
  const auto received = Clock::now();
  if (!accepting_) return std::unexpected(SendError{SendError::Code::kStopped, "not accepting"});
  if (!hasHub(n.hub)) {
    return std::unexpected(
        SendError{SendError::Code::kUnknownHub, fmt::format("hub \"{}\" is not known", n.hub)});
  }
  n.id = newNotificationId();
  n.enqueue_time = options_.clock();
  if (n.expires_at == 0) {
    n.expires_at = std::max(n.enqueue_time, n.scheduled_for) +
                   (n.ttl_ms > 0 ? n.ttl_ms : options_.time_to_live.count());
  }
  if (auto ok = validateNotification(n, installations_.limits().max_tag_length); !ok) {
    return std::unexpected(SendError{SendError::Code::kInvalid, ok.error()});
  }
  auto accepted = notifications_.accept(std::move(n));
  if (!accepted) return std::unexpected(SendError{SendError::Code::kStorage, accepted.error()});
  if (accepted->repeated) {
    repeated_->inc();
    return std::move(*accepted);
  }
  accepted_->inc();
  if (accepted->notification.scheduled_for == 0) {
    auto run = std::make_shared<Run>();
    run->n = accepted->notification;
    run->accepted_at = received;
    launch(std::move(run), {});
  }
  return std::move(*accepted);
}

void Engine::launch(std::shared_ptr<Run> run, std::map<uint32_t, Checkpoint> checkpoints) {
  run->key = runKey(run->n.hub, run->n.id);
  const auto now_unix = options_.clock();
  const auto now = Clock::now();
  run->deadline = now + std::chrono::milliseconds(run->n.expires_at - now_unix);
  if (run->accepted_at == Clock::time_point{}) {
    // Resumed or scheduled: from the time it was accepted (or due), to the millisecond.
    run->accepted_at = now - std::chrono::milliseconds(
                                 now_unix - std::max(run->n.enqueue_time, run->n.scheduled_for));
  }
  for (const auto& [slot, c] : checkpoints) {
    for (const auto& count : c.counts) run->tally.add(count.platform, count.outcome, count.n);
  }
  const unsigned shard_count = static_cast<unsigned>(shards_.size());
  std::vector<unsigned> shards;
  if (run->n.target == TargetKind::kHandles) {
    shards.push_back(static_cast<unsigned>(std::hash<std::string>{}(run->n.id) % shard_count));
  } else {
    shards.resize(shard_count);
    std::iota(shards.begin(), shards.end(), 0u);
  }
  run->shards_left = static_cast<unsigned>(shards.size());
  {
    std::lock_guard lock(runs_mutex_);
    runs_[run->key] = run;
  }
  for (unsigned s : shards) {
    std::map<uint32_t, Checkpoint> mine;
    for (auto it = checkpoints.begin(); it != checkpoints.end();) {
      const bool ours = it->first == kDirectSlot || it->first % shard_count == s;
      if (ours) {
        mine.insert(checkpoints.extract(it++));
      } else {
        ++it;
      }
    }
    boost::asio::post(shards_[s]->io, [this, s, run, mine = std::move(mine)]() mutable {
      startJob(*shards_[s], std::move(run), std::move(mine));
    });
  }
}

ShardConnectors& Engine::connectorsFor(Shard& shard, const std::string& hub) {
  auto it = shard.connectors.find(hub);
  if (it != shard.connectors.end()) return *it->second;
  std::shared_ptr<const HubCredentials> credentials;
  {
    std::lock_guard lock(hubs_mutex_);
    credentials = hubs_.at(hub);
  }
  auto connectors = std::make_unique<ShardConnectors>(shard.io, std::move(credentials));
  return *shard.connectors.emplace(hub, std::move(connectors)).first->second;
}

void Engine::startJob(Shard& shard, std::shared_ptr<Run> run,
                      std::map<uint32_t, Checkpoint> checkpoints) {
  if (shard.stopping) return;
  auto job = std::make_unique<Job>();
  job->run = run;
  const Notification& n = run->n;
  UnixMillis expected_start = 0;
  run->start_time.compare_exchange_strong(expected_start, options_.clock());
  if (!hasHub(n.hub)) {
    log()->error("notification {}: hub {} is gone; nothing sent", n.id, n.hub);
  } else {
    job->out = &connectorsFor(shard, n.hub);
    RenderOptions render_options;
    {
      std::lock_guard lock(hubs_mutex_);
      const auto& def = hubs_.at(n.hub)->definition();
      if (def.apns) render_options.apns_topic = def.apns->bundle_id;
    }
    auto renderer = Renderer::create(n.content, std::move(render_options));
    if (!renderer) {
      log()->error("notification {}: {}", n.id, renderer.error());
    } else {
      job->renderer.emplace(std::move(*renderer));
    }
  }
  if (job->renderer && n.target == TargetKind::kExpression) {
    auto parsed = storage::TagExpression::parse(n.expression);
    std::string problem;
    if (!parsed) {
      problem = parsed.error().message;
    } else if (auto compiled = installations_.compile(n.hub, *parsed); !compiled) {
      problem = compiled.error().message;
    } else {
      job->expression.emplace(std::move(*parsed));
      job->compiled.emplace(std::move(*compiled));
    }
    if (!problem.empty()) {
      log()->error("notification {}: its tag expression cannot be evaluated: {}", n.id, problem);
      job->renderer.reset();
    }
  }
  if (job->renderer) {
    if (n.target == TargetKind::kHandles) {
      Job::Slot slot;
      slot.id = kDirectSlot;
      job->slots.push_back(std::move(slot));
    } else {
      const unsigned shard_count = static_cast<unsigned>(shards_.size());
      for (uint32_t p = shard.index; p < installations_.partitionCount(); p += shard_count) {
        Job::Slot slot;
        slot.id = p;
        job->slots.push_back(std::move(slot));
      }
    }
    for (auto& slot : job->slots) {
      auto it = checkpoints.find(slot.id);
      if (it == checkpoints.end()) continue;
      slot.next = it->second.next;
      slot.finished = it->second.finished;
      slot.counts = std::move(it->second.counts);
      slot.resend.assign(it->second.pending.begin(), it->second.pending.end());
    }
  }
  shard.jobs.push_back(std::move(job));
  schedulePump(shard);
}

void Engine::schedulePump(Shard& shard) {
  if (shard.pump_posted || shard.stopping) return;
  shard.pump_posted = true;
  boost::asio::post(shard.io, [this, &shard] {
    shard.pump_posted = false;
    pump(shard);
  });
}

void Engine::pump(Shard& shard) {
  if (shard.stopping) return;
  // Installations rendered per loop turn at most, so that answers and I/O are not starved.
  constexpr size_t kTurnBudget = 256;
  constexpr size_t kJobBudget = 32;
  size_t spent = 0;
  bool progress = true;
  while (progress && spent < kTurnBudget && shard.in_flight < options_.in_flight_per_shard) {
    progress = false;
    for (size_t visited = 0; visited < shard.jobs.size(); ++visited) {
      if (shard.in_flight >= options_.in_flight_per_shard) break;
      if (shard.next_job >= shard.jobs.size()) shard.next_job = 0;
      Job& job = *shard.jobs[shard.next_job++];
      const size_t n = dispatch(shard, job, kJobBudget);
      spent += n;
      progress = progress || n > 0;
    }
  }
  // Jobs whose every target is answered leave.
  for (size_t i = 0; i < shard.jobs.size();) {
    maybeFinishJob(shard, *shard.jobs[i]);
    if (shard.jobs[i]->finished) {
      shard.jobs.erase(shard.jobs.begin() + static_cast<ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  shard.in_flight_gauge->set(static_cast<int64_t>(shard.in_flight.load()));
  if (spent >= kTurnBudget && shard.in_flight < options_.in_flight_per_shard) schedulePump(shard);
}

bool Engine::prepareSlot(Job& job, size_t slot_index) {
  Job::Slot& slot = job.slots[slot_index];
  const Notification& n = job.run->n;
  if (slot.id == kDirectSlot) {
    // Each handle once: a repeated one is Skipped.
    std::unordered_set<std::string_view> seen;
    for (uint32_t i = 0; i < n.handles.size(); ++i) {
      if (i < slot.next) {
        seen.insert(n.handles[i]);
        continue;
      }
      if (seen.insert(n.handles[i]).second) {
        slot.targets.push_back(i);
      } else {
        count(job, slot_index, n.content.platform, PnsOutcome::kSkipped);
      }
    }
  } else {
    const Roaring matching = installations_.select(
        n.hub, slot.id, job.compiled ? &*job.compiled : nullptr, storage::Audience::kDeliverable,
        n.content.kind == NotificationContent::Kind::kNative
            ? std::optional<Platform>(n.content.platform)
            : std::nullopt);
    slot.targets.resize(matching.cardinality());
    matching.toUint32Array(slot.targets.data());
  }
  slot.pos = static_cast<size_t>(
      std::lower_bound(slot.targets.begin(), slot.targets.end(), slot.next) - slot.targets.begin());
  slot.evaluated = true;
  return true;
}

bool Engine::serviceHasRoom(const Job& job, Platform platform) const {
  return job.out == nullptr || job.out->inFlight(platform) < options_.in_flight_per_service;
}

bool Engine::takeDeferred(Job& job, size_t& slot_index, uint32_t& target) {
  if (job.deferred_count == 0) return false;
  for (size_t p = 0; p < job.deferred.size(); ++p) {
    auto& waiting = job.deferred[p];
    if (waiting.empty() || !serviceHasRoom(job, static_cast<Platform>(p))) continue;
    std::tie(slot_index, target) = waiting.front();
    waiting.pop_front();
    --job.deferred_count;
    return true;
  }
  return false;
}

size_t Engine::dispatch(Shard& shard, Job& job, size_t budget) {
  if (job.finished) return 0;
  if (!job.renderer) {
    for (auto& slot : job.slots) slot.finished = true;
    return 0;
  }
  if (Clock::now() >= job.run->deadline) {
    abandonRest(job);
    return 0;
  }
  // Deferred targets wait aside; past this many the walk waits too (memory stays bounded).
  constexpr size_t kMaxDeferred = 1 << 16;
  size_t done = 0;
  while (done < budget && shard.in_flight < options_.in_flight_per_shard) {
    size_t deferred_slot = 0;
    uint32_t deferred_target = 0;
    if (takeDeferred(job, deferred_slot, deferred_target)) {
      deliver(shard, job, deferred_slot, deferred_target);
      ++done;
      continue;
    }
    if (job.current >= job.slots.size()) break;
    Job::Slot& slot = job.slots[job.current];
    if (slot.finished && slot.resend.empty()) {
      ++job.current;
      continue;
    }
    if (!slot.evaluated) prepareSlot(job, job.current);
    uint32_t target;
    if (!slot.resend.empty()) {
      target = slot.resend.front();
      slot.resend.pop_front();
    } else if (job.deferred_count >= kMaxDeferred) {
      break;
    } else if (slot.pos < slot.targets.size()) {
      target = slot.targets[slot.pos++];
      slot.next = target + 1;
    } else {
      // Walked: let RocksDB release what the iterator pinned, and free the target list.
      slot.reader.reset();
      std::vector<uint32_t>().swap(slot.targets);
      slot.pos = 0;
      ++job.current;
      continue;
    }
    slot.dirty = true;
    if (!deliver(shard, job, job.current, target)) break;
    ++done;
  }
  return done;
}

bool Engine::deliver(Shard& shard, Job& job, size_t slot_index, uint32_t target) {
  Job::Slot& slot = job.slots[slot_index];
  const Notification& n = job.run->n;
  storage::Installation installation;
  if (slot.id == kDirectSlot) {
    if (target >= n.handles.size()) return true;
    installation.platform = n.content.platform;
    installation.push_channel = n.handles[target];
  } else {
    if (!slot.reader) slot.reader = installations_.reader(n.hub, slot.id);
    auto stored = slot.reader->read(target);
    if (!stored) {
      log()->error("notification {}: reading an installation: {}", n.id, stored.error().message);
      count(job, slot_index, Platform::kApns, PnsOutcome::kUnknownError);
      return true;
    }
    if (!*stored) return true;  // deleted since the expression was evaluated
    installation = std::move(**stored);
    // Azure's registrations: a template registration receives template notifications only.
    if (n.content.kind != NotificationContent::Kind::kTemplate &&
        installation.kind == storage::DeviceKind::kRegistration &&
        !installation.templates.empty()) {
      return true;
    }
  }
  if (!installation.expired_push_channel && !serviceHasRoom(job, installation.platform)) {
    if (job.out->stalled(installation.platform, Clock::now(), options_.stalled_after)) {
      // Its service is at its share and not answering: this device waits aside, the walk goes
      // on with the other services' devices.
      job.deferred[static_cast<size_t>(installation.platform)].emplace_back(slot_index, target);
      ++job.deferred_count;
      slot.dirty = true;
      return true;
    }
    // Busy but answering: the walk waits for it here (the backpressure), this target first.
    slot.resend.push_front(target);
    if (!shard.stall_timer_armed && !shard.stopping) {
      shard.stall_timer_armed = true;
      shard.stall_timer.expires_after(options_.stalled_after + std::chrono::milliseconds(1));
      shard.stall_timer.async_wait([this, &shard](boost::system::error_code ec) {
        shard.stall_timer_armed = false;
        if (!ec) schedulePump(shard);
      });
    }
    return false;
  }
  if (n.max_targets != 0 && !installation.expired_push_channel &&
      job.run->handed_out.fetch_add(1) >= n.max_targets) {
    return true;  // a test send's devices are all chosen
  }
  job.scratch.clear();
  job.failures.clear();
  if (job.expression && n.content.kind == NotificationContent::Kind::kTemplate) {
    // A template is addressed when the expression matches the installation's tags together
    // with the template's own tags and name.
    const storage::TagExpression& expression = *job.expression;
    const Renderer::TemplateFilter filter = [&](std::string_view name,
                                                const storage::InstallationTemplate& t) {
      return expression.matches(
          [&](std::string_view tag) {
            return tag == name ||
                   std::binary_search(installation.tags.begin(), installation.tags.end(), tag) ||
                   std::binary_search(t.tags.begin(), t.tags.end(), tag);
          },
          installation.id, installation.user_id);
    };
    job.renderer->render(installation, &filter, job.scratch, job.failures);
  } else {
    job.renderer->render(installation, nullptr, job.scratch, job.failures);
  }
  for (const RenderFailure& failure : job.failures) {
    count(job, slot_index, installation.platform, PnsOutcome::kInvalidNotificationFormat);
    if (n.max_targets != 0) {
      // A test send lists every device it chose, those it could not send to as well.
      std::lock_guard lock(job.run->test_mutex);
      job.run->test_results.push_back(
          TestResult{installation.platform, installation.push_channel, installation.id,
                     PnsOutcome::kInvalidNotificationFormat,
                     failure.template_name.empty()
                         ? failure.reason
                         : "template " + failure.template_name + ": " + failure.reason});
    }
  }
  if (job.scratch.empty()) return true;
  slot.pending[target] += static_cast<uint32_t>(job.scratch.size());
  for (auto& delivery : job.scratch) {
    const Platform platform = platformOf(delivery);
    Job* job_ptr = &job;
    ++shard.in_flight;
    std::string test_id = n.max_targets != 0 ? installation.id : std::string();
    const bool taken = job.out->send(
        std::move(delivery), job.run->deadline,
        [this, &shard, job_ptr, slot_index, target, platform, handle = installation.push_channel,
         test_id = std::move(test_id)](DeliveryResult&& result) {
          if (job_ptr->run->n.max_targets != 0) {
            std::lock_guard lock(job_ptr->run->test_mutex);
            job_ptr->run->test_results.push_back(
                TestResult{platform, handle, test_id, result.outcome, result.reason});
          }
          onResult(shard, *job_ptr, slot_index, target, platform, handle, std::move(result));
        });
    if (!taken) {
      // Cannot happen while in_flight_per_shard is below the queues' capacity.
      log()->error("notification {}: a connector queue was full", n.id);
      onResult(shard, job, slot_index, target, platform, installation.push_channel,
               DeliveryResult{PnsOutcome::kPnsUnreachable, false, 0, "connector queue full", 0});
    }
  }
  return true;
}

void Engine::count(Job& job, size_t slot_index, Platform platform, PnsOutcome outcome, uint64_t n) {
  job.run->tally.add(platform, outcome, n);
  addCount(job.slots[slot_index].counts, platform, outcome, n);
  job.slots[slot_index].dirty = true;
  if (Counter* c = deliveries_[static_cast<size_t>(platform)][static_cast<size_t>(outcome)]) {
    c->inc(n);
  }
}

void Engine::onResult(Shard& shard, Job& job, size_t slot_index, uint32_t target, Platform platform,
                      const std::string& handle, DeliveryResult&& result) {
  --shard.in_flight;
  Job::Slot& slot = job.slots[slot_index];
  count(job, slot_index, platform, result.outcome);
  if (result.resends > 0) job.run->resends.fetch_add(result.resends, std::memory_order_relaxed);
  const Notification& n = job.run->n;
  Histogram* latency = n.target == TargetKind::kHandles      ? latency_direct_
                       : n.target == TargetKind::kExpression ? latency_tags_
                                                             : latency_broadcast_;
  latency->observe(std::chrono::duration<double>(Clock::now() - job.run->accepted_at).count());
  auto it = slot.pending.find(target);
  if (it != slot.pending.end() && --it->second == 0) slot.pending.erase(it);
  if (result.dead_handle) {
    DeadHandle dead{n.hub, n.id, platform, handle, {}, result.outcome};
    if (slot.id != kDirectSlot) {
      auto expired = installations_.expireChannel(n.hub, slot.id, target, platform, handle);
      if (!expired) {
        log()->error("notification {}: marking a channel expired: {}", n.id,
                     expired.error().message);
      } else if (*expired) {
        dead.installation_id = std::move(**expired);
      }
    }
    if (events_.dead_handle) events_.dead_handle(dead);
  }
  if (++shard.answers_since_checkpoint >= options_.checkpoint_every) {
    checkpoint(shard);
  } else {
    armCheckpointTimer(shard);
  }
  schedulePump(shard);
}

void Engine::abandonRest(Job& job) {
  job.run->expired = true;
  const Notification& n = job.run->n;
  for (size_t p = 0; p < job.deferred.size(); ++p) {
    for (const auto& [slot_index, target] : job.deferred[p]) {
      count(job, slot_index, static_cast<Platform>(p), PnsOutcome::kAbandoned);
    }
    job.deferred[p].clear();
  }
  job.deferred_count = 0;
  for (size_t i = job.current; i < job.slots.size(); ++i) {
    Job::Slot& slot = job.slots[i];
    if (slot.finished && slot.resend.empty()) continue;
    if (!slot.evaluated) prepareSlot(job, i);
    std::vector<uint32_t> rest(slot.resend.begin(), slot.resend.end());
    rest.insert(rest.end(), slot.targets.begin() + static_cast<ptrdiff_t>(slot.pos),
                slot.targets.end());
    slot.resend.clear();
    slot.pos = slot.targets.size();
    if (!slot.targets.empty()) slot.next = slot.targets.back() + 1;
    for (uint32_t target : rest) {
      Platform platform = n.content.platform;
      if (slot.id != kDirectSlot) {
        platform = installations_.platformAt(n.hub, slot.id, target).value_or(platform);
      }
      count(job, i, platform, PnsOutcome::kAbandoned);
    }
    slot.dirty = true;
  }
  job.current = job.slots.size();
}

void Engine::maybeFinishJob(Shard& shard, Job& job) {
  if (job.finished || job.current < job.slots.size() || job.deferred_count > 0) return;
  for (auto& slot : job.slots) {
    if (!slot.pending.empty()) return;
  }
  for (auto& slot : job.slots) {
    if (!slot.finished) {
      slot.finished = true;
      slot.dirty = true;
    }
  }
  job.finished = true;
  if (!shard.retired.empty()) {
    job.out = nullptr;
    sweepRetired(shard);
  }
  // The run's record is finished (and its checkpoints deleted) by the last shard; until then
  // this shard's slots are recorded as finished so that a restart does not redo them.
  checkpoint(shard);
  if (job.run->shards_left.fetch_sub(1) == 1) finishRun(*job.run);
}

void Engine::armCheckpointTimer(Shard& shard) {
  if (shard.checkpoint_timer_armed || shard.stopping) return;
  shard.checkpoint_timer_armed = true;
  shard.checkpoint_timer.expires_after(options_.checkpoint_interval);
  shard.checkpoint_timer.async_wait([this, &shard](boost::system::error_code ec) {
    shard.checkpoint_timer_armed = false;
    if (ec || shard.stopping) return;
    checkpoint(shard);
  });
}

void Engine::checkpoint(Shard& shard) {
  shard.answers_since_checkpoint = 0;
  std::vector<NotificationStore::SlotCheckpoint> out;
  for (auto& job_ptr : shard.jobs) {
    Job& job = *job_ptr;
    for (auto& slot : job.slots) {
      if (!slot.dirty) continue;
      slot.dirty = false;
      NotificationStore::SlotCheckpoint c;
      c.hub = job.run->n.hub;
      c.id = job.run->n.id;
      c.slot = slot.id;
      c.checkpoint.next = slot.next;
      c.checkpoint.finished = slot.finished;
      c.checkpoint.counts = slot.counts;
      c.checkpoint.pending.reserve(slot.pending.size() + slot.resend.size());
      for (const auto& [target, left] : slot.pending) c.checkpoint.pending.push_back(target);
      c.checkpoint.pending.insert(c.checkpoint.pending.end(), slot.resend.begin(),
                                  slot.resend.end());
      if (job.deferred_count > 0) {
        const size_t slot_index = static_cast<size_t>(&slot - job.slots.data());
        for (const auto& waiting : job.deferred) {
          for (const auto& [index, target] : waiting) {
            if (index == slot_index) c.checkpoint.pending.push_back(target);
          }
        }
      }
      std::sort(c.checkpoint.pending.begin(), c.checkpoint.pending.end());
      out.push_back(std::move(c));
    }
  }
  if (auto ok = notifications_.saveCheckpoints(out); !ok) {
    log()->error("writing progress: {}", ok.error());
  }
}

void Engine::finishRun(Run& run) {
  NotificationView view;
  view.notification = run.n;
  NotificationStatus& status = view.status;
  status.start_time = run.start_time.load();
  status.end_time = options_.clock();
  status.resends = run.resends.load();
  for (size_t p = 0; p < storage::kPlatformCount; ++p) {
    for (size_t o = 0; o < connectors::kPnsOutcomeCount; ++o) {
      const uint64_t c = run.tally.count(static_cast<Platform>(p), static_cast<PnsOutcome>(o));
      if (c > 0) status.counts.push_back({static_cast<Platform>(p), static_cast<PnsOutcome>(o), c});
    }
  }
  if (run.expired) {
    status.state = NotificationState::kAbandoned;
  } else if (run.tally.total() == 0) {
    status.state = NotificationState::kNoTargetFound;
  } else {
    status.state = NotificationState::kCompleted;
  }
  if (auto ok = notifications_.finish(run.n.hub, run.n.id, status); !ok) {
    log()->error("notification {}: recording its end: {}", run.n.id, ok.error());
  }
  finished_by_state_[static_cast<size_t>(status.state)]->inc();
  {
    std::lock_guard lock(runs_mutex_);
    runs_.erase(run.key);
    if (run.n.max_targets != 0) {
      std::lock_guard test_lock(run.test_mutex);
      test_results_[run.key] = std::move(run.test_results);
      test_results_order_.push_back(run.key);
      if (test_results_order_.size() > 256) {
        test_results_.erase(test_results_order_.front());
        test_results_order_.pop_front();
      }
    }
  }
  if (events_.finished) events_.finished(view);
}

std::expected<std::optional<NotificationView>, std::string> Engine::details(
    std::string_view hub, std::string_view id) const {
  std::shared_ptr<Run> run;
  {
    std::lock_guard lock(runs_mutex_);
    auto it = runs_.find(runKey(hub, id));
    if (it != runs_.end()) run = it->second;
  }
  if (run) {
    NotificationView view;
    view.notification = run->n;
    view.status.state = NotificationState::kProcessing;
    view.status.start_time = run->start_time.load();
    view.status.resends = run->resends.load();
    if (view.status.start_time == 0) view.status.state = NotificationState::kEnqueued;
    for (size_t p = 0; p < storage::kPlatformCount; ++p) {
      for (size_t o = 0; o < connectors::kPnsOutcomeCount; ++o) {
        const uint64_t c = run->tally.count(static_cast<Platform>(p), static_cast<PnsOutcome>(o));
        if (c > 0) {
          view.status.counts.push_back({static_cast<Platform>(p), static_cast<PnsOutcome>(o), c});
        }
      }
    }
    return view;
  }
  auto n = notifications_.notification(hub, id);
  if (!n) return std::unexpected(n.error());
  if (!*n) return std::optional<NotificationView>();
  auto status = notifications_.status(hub, id);
  if (!status) return std::unexpected(status.error());
  NotificationView view;
  view.notification = std::move(**n);
  if (*status) view.status = std::move(**status);
  return view;
}

std::expected<bool, std::string> Engine::cancel(std::string_view hub, std::string_view id) {
  auto cancelled = notifications_.cancel(hub, id);
  if (cancelled && *cancelled)
    finished_by_state_[static_cast<size_t>(NotificationState::kCanceled)]->inc();
  return cancelled;
}

void Engine::pollSchedule() {
  if (stopped_) return;
  auto due = notifications_.due(options_.clock(), 256);
  if (!due) {
    log()->error("reading the schedule: {}", due.error());
  } else {
    for (const auto& [hub, id] : *due) {
      auto activated = notifications_.activate(hub, id);
      if (!activated) {
        log()->error("starting scheduled notification {}: {}", id, activated.error());
        continue;
      }
      if (!*activated) continue;
      auto n = notifications_.notification(hub, id);
      if (!n || !*n) continue;
      auto run = std::make_shared<Run>();
      run->n = std::move(**n);
      launch(std::move(run), {});
    }
  }
  schedule_timer_->expires_after(options_.schedule_poll);
  schedule_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) pollSchedule();
  });
}

unsigned Engine::shardOf(std::string_view hub, std::string_view installation_id) const {
  return installations_.partitionOf(hub, installation_id) % static_cast<unsigned>(shards_.size());
}

void Engine::upsertInstallation(std::string hub, storage::Installation installation,
                                WriteDone done) {
  // On the shard that received it (the store locks the partition), batched with the other
  // upserts of this loop turn: no hop to the owning shard and back. From outside the shards, on
  // the owning one.
  const auto current = ShardSet::currentShard();
  Shard& shard =
      *shards_[current && *current < shards_.size() ? *current : shardOf(hub, installation.id)];
  boost::asio::post(shard.io,
                    [this, &shard, hub = std::move(hub), installation = std::move(installation),
                     done = std::move(done)]() mutable {
                      shard.upserts[hub].push_back({std::move(installation), std::move(done)});
                      if (shard.flush_posted) return;
                      shard.flush_posted = true;
                      // After the handlers already queued this turn: they may add to the batch.
                      boost::asio::post(shard.io, [this, &shard] { flushUpserts(shard); });
                    });
}

void Engine::flushUpserts(Shard& shard) {
  shard.flush_posted = false;
  auto upserts = std::move(shard.upserts);
  shard.upserts.clear();
  for (auto& [hub, list] : upserts) {
    std::vector<storage::Installation> batch;
    batch.reserve(list.size());
    for (auto& u : list) batch.push_back(std::move(u.installation));
    auto results = installations_.upsertBatch(hub, std::move(batch));
    for (size_t i = 0; i < list.size(); ++i) {
      if (results[i]) released(hub, results[i]->released);
      list[i].done(std::move(results[i]));
    }
  }
}

void Engine::released(const std::string& hub,
                      const std::optional<storage::HandleRelease>& release) {
  if (!release) return;
  const unsigned shard_count = static_cast<unsigned>(shards_.size());
  boost::asio::post(shards_[release->partition % shard_count]->io, [this, hub, r = *release] {
    if (auto ok = installations_.applyHandleRelease(hub, r); !ok) {
      // It stays pending in the database and is finished at the next start.
      log()->error("releasing a handle of {}: {}", r.installation_id, ok.error().message);
    }
  });
}

void Engine::patchInstallation(std::string hub, std::string installation_id,
                               std::vector<storage::PatchOperation> operations, WriteDone done) {
  Shard& shard = *shards_[shardOf(hub, installation_id)];
  boost::asio::post(shard.io, [this, hub = std::move(hub), id = std::move(installation_id),
                               operations = std::move(operations), done = std::move(done)] {
    auto result = installations_.patch(hub, id, operations);
    if (result) released(hub, result->released);
    done(std::move(result));
  });
}

void Engine::upsertInstallationIf(std::string hub, storage::Installation installation,
                                  Precondition check, WriteDone done) {
  Shard& shard = *shards_[shardOf(hub, installation.id)];
  boost::asio::post(shard.io, [this, hub = std::move(hub), installation = std::move(installation),
                               check = std::move(check), done = std::move(done)]() mutable {
    auto result = installations_.upsert(hub, std::move(installation), check);
    if (result) released(hub, result->released);
    done(std::move(result));
  });
}

void Engine::removeInstallationIf(
    std::string hub, std::string installation_id, Precondition check,
    std::function<void(std::expected<bool, storage::StoreError>&&)> done) {
  Shard& shard = *shards_[shardOf(hub, installation_id)];
  boost::asio::post(shard.io, [this, hub = std::move(hub), id = std::move(installation_id),
                               check = std::move(check), done = std::move(done)] {
    done(installations_.remove(hub, id, check));
  });
}

void Engine::readInstallation(
    std::string hub, std::string installation_id,
    std::function<void(std::expected<std::optional<storage::Installation>, storage::StoreError>&&)>
        done) {
  Shard& shard = *shards_[shardOf(hub, installation_id)];
  boost::asio::post(shard.io, [this, hub = std::move(hub), id = std::move(installation_id),
                               done = std::move(done)] { done(installations_.get(hub, id)); });
}

void Engine::removeInstallation(
    std::string hub, std::string installation_id,
    std::function<void(std::expected<bool, storage::StoreError>&&)> done) {
  Shard& shard = *shards_[shardOf(hub, installation_id)];
  boost::asio::post(shard.io, [this, hub = std::move(hub), id = std::move(installation_id),
                               done = std::move(done)] { done(installations_.remove(hub, id)); });
}

void Engine::queryInstallations(InstallationQuery query, QueryDone done) {
  struct State {
    InstallationQuery query;
    std::optional<storage::CompiledExpression> compiled;
    storage::InstallationStore::Page page;
    uint32_t partition = 0;
    std::optional<uint32_t> after;
    QueryDone done;
  };
  auto state = std::make_shared<State>();
  auto start = installations_.parseContinuation(query.continuation);
  if (!start) return done(std::unexpected(start.error()));
  if (query.expression) {
    auto compiled = installations_.compile(query.hub, *query.expression);
    if (!compiled) return done(std::unexpected(compiled.error()));
    state->compiled.emplace(std::move(*compiled));
  }
  state->partition = start->first;
  state->after = start->second;
  state->query = std::move(query);
  state->done = std::move(done);
  // One partition per hop, on the shard that owns it.
  auto step = std::make_shared<std::function<void()>>();
  *step = [this, state, weak = std::weak_ptr<std::function<void()>>(step)] {
    const size_t limit = state->query.limit;
    if (state->partition >= installations_.partitionCount() ||
        state->page.installations.size() >= limit) {
      if (state->page.installations.size() < limit) state->page.continuation.clear();
      return state->done(std::move(state->page));
    }
    auto last = installations_.queryPartition(
        state->query.hub, state->partition, state->compiled ? &*state->compiled : nullptr,
        state->after, limit - state->page.installations.size(), state->query.keep,
        state->page.installations);
    if (!last) return state->done(std::unexpected(last.error()));
    if (*last) {
      state->page.continuation =
          storage::InstallationStore::continuationAt(state->partition, **last);
    }
    ++state->partition;
    state->after.reset();
    auto next = weak.lock();
    if (!next) return;
    const uint32_t p = std::min(state->partition, installations_.partitionCount() - 1);
    boost::asio::post(shards_[p % shards_.size()]->io, [next] { (*next)(); });
  };
  // The hops keep the step alive through the handler that holds `next`; the first hop here.
  boost::asio::post(shards_[state->partition % shards_.size()]->io, [step] { (*step)(); });
}

std::optional<std::vector<TestResult>> Engine::testResults(std::string_view hub,
                                                           std::string_view id) const {
  std::lock_guard lock(runs_mutex_);
  auto it = test_results_.find(runKey(hub, id));
  if (it == test_results_.end()) return std::nullopt;
  return it->second;
}

size_t Engine::running() const {
  std::lock_guard lock(runs_mutex_);
  return runs_.size();
}

uint64_t Engine::inFlight() const {
  uint64_t n = 0;
  for (const auto& shard : shards_) n += shard->in_flight.load();
  return n;
}

}  // namespace pushhub::hub
