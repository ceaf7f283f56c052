#include "connectors/http2/client_pool.h"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace pushhub::connectors::http2 {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

ClientPool::ClientPool(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls,
                       Options options, Done done)
    : io_(io),
      tls_(std::move(tls)),
      options_(std::move(options)),
      done_(std::move(done)),
      backoff_timer_(io) {
  options_.max_connections = std::max<size_t>(1, options_.max_connections);
  options_.min_connections = std::min(options_.min_connections, options_.max_connections);
  if (options_.metrics != nullptr) {
    MetricsRegistry& m = *options_.metrics;
    const MetricLabels& l = options_.labels;
    metric_requests_ = &m.counter("pushhub_connector_requests_total",
                                  "Requests sent to a push service (streams opened)", l);
    metric_connects_ = &m.counter("pushhub_connector_connects_total",
                                  "Connections to a push service that became ready", l);
    metric_connect_failures_ =
        &m.counter("pushhub_connector_connect_failures_total",
                   "Connections to a push service that failed before becoming ready", l);
    metric_goaways_ = &m.counter("pushhub_connector_goaways_total",
                                 "Connections a push service closed with GOAWAY", l);
    metric_queue_full_ =
        &m.counter("pushhub_connector_queue_full_total",
                   "Requests refused because a connection pool's queue was full", l);
    metric_connections_ =
        &m.gauge("pushhub_connector_connections", "Open connections to push services", l);
  }
}

ClientPool::~ClientPool() {
  *alive_ = false;
  backoff_timer_.cancel();
  for (auto& c : connections_) c->close("pool closed");
  if (metric_connections_ != nullptr) {
    metric_connections_->add(-static_cast<int64_t>(connections_.size()));
  }
}

size_t ClientPool::inFlight() const {
  size_t n = 0;
  for (const auto& c : connections_) n += c->openStreams();
  return n;
}

bool ClientPool::enqueue(ClientRequest&& request, uint64_t tag, bool front) {
  if (closing_) return false;
  if (!front && queue_.size() >= options_.queue_capacity) {
    wants_space_ = true;
    if (metric_queue_full_ != nullptr) metric_queue_full_->inc();
    return false;
  }
  // A resend goes first and is never refused: it was already admitted once.
  if (front) {
    queue_.push_front(Queued{std::move(request), tag});
  } else {
    queue_.push_back(Queued{std::move(request), tag});
  }
  if (!dispatch_posted_) {
    dispatch_posted_ = true;
    asio::post(io_, [this, alive = alive_] {
      if (*alive) dispatch();
    });
  }
  return true;
}

void ClientPool::dispatch() {
  dispatch_posted_ = false;
  const auto deadline = Clock::now() + options_.request_timeout;
  for (auto& connection : connections_) {
    while (!queue_.empty() && connection->canSubmit()) {
      Queued& next = queue_.front();
      if (!connection->submit(std::move(next.request), next.tag, deadline)) break;
      queue_.pop_front();
      ++stats_.submitted;
      if (metric_requests_ != nullptr) metric_requests_->inc();
    }
    if (queue_.empty()) break;
  }
  maybeConnect();
  if (wants_space_ && queue_.size() < options_.queue_capacity) {
    wants_space_ = false;
    if (on_space_) on_space_();
  }
}

void ClientPool::maybeConnect() {
  if (closing_ || backing_off_) return;
  const bool connecting = std::any_of(connections_.begin(), connections_.end(), [](auto& c) {
    return c->state() == ClientConnection::State::kConnecting;
  });
  if (connecting || connections_.size() >= options_.max_connections) return;
  const size_t usable =
      static_cast<size_t>(std::count_if(connections_.begin(), connections_.end(), [](auto& c) {
        return c->state() == ClientConnection::State::kReady;
      }));
  // More connections only when every usable one is full (or below the minimum).
  if (queue_.empty() && usable >= options_.min_connections) return;
  if (!queue_.empty() && usable > 0 && usable >= options_.min_connections) {
    const bool room = std::any_of(connections_.begin(), connections_.end(),
                                  [](auto& c) { return c->canSubmit(); });
    if (room) return;
  }
  ClientConnection::Events events;
  events.done = [this, alive = alive_](uint64_t tag, StreamEnd end, ClientResponse&& response) {
    if (*alive) done_(tag, end, std::move(response));
  };
  events.changed = [this, alive = alive_](ClientConnection& connection) {
    if (*alive) onChanged(connection);
  };
  connections_.push_back(
      ClientConnection::start(io_, tls_, options_.connection, std::move(events), tls_session_));
  if (metric_connections_ != nullptr) metric_connections_->add(1);
}

std::chrono::milliseconds ClientPool::backoff() {
  const unsigned shift = std::min(failures_in_a_row_ - 1, 20u);
  const auto ceiling =
      std::min<int64_t>(options_.backoff_max.count(), options_.backoff_initial.count() << shift);
  // Full jitter over the upper half: pools of all shards do not reconnect in step.
  return std::chrono::milliseconds(
      std::uniform_int_distribution<int64_t>(ceiling / 2, std::max<int64_t>(ceiling, 1))(rng_));
}

void ClientPool::onChanged(ClientConnection& connection) {
  using State = ClientConnection::State;
  if (connection.state() == State::kClosed) {
    auto it = std::find_if(connections_.begin(), connections_.end(),
                           [&](auto& c) { return c.get() == &connection; });
    if (it == connections_.end()) return;
    auto keep = *it;  // the connection outlives its removal until this returns
    connections_.erase(it);
    if (metric_connections_ != nullptr) metric_connections_->add(-1);
    if (connection.reason().starts_with("GOAWAY")) {
      ++stats_.goaways;
      if (metric_goaways_ != nullptr) metric_goaways_->inc();
    }
    if (!connection.everReady()) {
      ++failures_in_a_row_;
      ++stats_.connect_failures;
      if (metric_connect_failures_ != nullptr) metric_connect_failures_->inc();
      backing_off_ = true;
      backoff_timer_.expires_after(backoff());
      backoff_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
        if (ec || !*alive) return;
        backing_off_ = false;
        dispatch();
      });
    }
    std::erase(counted_, &connection);
  } else if (connection.state() == State::kReady &&
             std::find(counted_.begin(), counted_.end(), &connection) == counted_.end()) {
    counted_.push_back(&connection);
    failures_in_a_row_ = 0;
    ++stats_.connects;
    if (connection.resumedTls()) ++stats_.resumed_tls;
    if (metric_connects_ != nullptr) metric_connects_->inc();
  }
  if (connection.tlsSession()) tls_session_ = connection.tlsSession();
  // Close what has been idle too long, above the minimum.
  const auto now = Clock::now();
  size_t open = connections_.size();
  for (auto& c : connections_) {
    if (open <= options_.min_connections) break;
    if (c->state() == State::kReady && c->openStreams() == 0 && queue_.empty() &&
        now - c->lastActive() > options_.idle_close) {
      c->shutdown();
      --open;
    }
  }
  if (!dispatch_posted_) {
    dispatch_posted_ = true;
    asio::post(io_, [this, alive = alive_] {
      if (*alive) dispatch();
    });
  }
}

void ClientPool::close() {
  closing_ = true;
  backoff_timer_.cancel();
  auto connections = connections_;
  for (auto& c : connections) c->close("pool closed");
  auto queue = std::move(queue_);
  queue_.clear();
  for (auto& q : queue) done_(q.tag, StreamEnd::kConnectionLost, ClientResponse{});
}

}  // namespace pushhub::connectors::http2
