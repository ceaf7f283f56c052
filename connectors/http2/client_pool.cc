#include "connectors/http2/client_pool.h"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace pushhub::connectors::http2 {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

ClientPool::ClientPool(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls,
                       Options options, Done done)
    : PoolBase(io, options.queue_capacity, options.backoff_initial, options.backoff_max,
               options.breaker_failures, options.metrics, options.labels, options.rate_limiter),
      tls_(std::move(tls)),
      options_(std::move(options)),
      done_(std::move(done)) {
  options_.max_connections = std::max<size_t>(1, options_.max_connections);
  options_.min_connections = std::min(options_.min_connections, options_.max_connections);
}

ClientPool::~ClientPool() {
  *alive_ = false;
  for (auto& c : connections_) c->close("pool closed");
  PoolMetrics::add(metrics_.connections, -static_cast<int64_t>(connections_.size()));
}

size_t ClientPool::inFlight() const {
  size_t n = 0;
  for (const auto& c : connections_) n += c->openStreams();
  return n;
}

bool ClientPool::enqueue(ClientRequest&& request, uint64_t tag, bool front) {
  if (closing_) return false;
  return push(Queued{std::move(request), tag}, front);
}

void ClientPool::dispatch() {
  if (breakerOpen()) {
    // Nothing waits for an endpoint that keeps refusing connections; a probe still goes out after
    // each back-off (maybeConnect keeps min_connections).
    failQueued([this](Queued& item) {
      done_(item.tag, StreamEnd::kUnreachable, ClientResponse{0, {}, {}});
    });
    maybeConnect();
    signalSpace();
    return;
  }
  const auto deadline = Clock::now() + options_.request_timeout;
  for (auto& connection : connections_) {
    while (!queue_.empty() && connection->canSubmit()) {
      if (!takeRate()) return;
      Queued& next = queue_.front();
      if (!connection->submit(std::move(next.request), next.tag, deadline)) break;
      queue_.pop_front();
      ++stats_.submitted;
      PoolMetrics::inc(metrics_.requests);
    }
    if (queue_.empty()) break;
  }
  maybeConnect();
  signalSpace();
}

void ClientPool::maybeConnect() {
  if (closing_ || backingOff()) return;
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
  PoolMetrics::add(metrics_.connections, 1);
}

void ClientPool::onChanged(ClientConnection& connection) {
  using State = ClientConnection::State;
  if (connection.state() == State::kClosed) {
    auto it = std::find_if(connections_.begin(), connections_.end(),
                           [&](auto& c) { return c.get() == &connection; });
    if (it == connections_.end()) return;
    auto keep = *it;  // the connection outlives its removal until this returns
    connections_.erase(it);
    PoolMetrics::add(metrics_.connections, -1);
    if (connection.reason().starts_with("GOAWAY")) {
      ++stats_.goaways;
      PoolMetrics::inc(metrics_.goaways);
    }
    if (!connection.everReady()) {
      ++stats_.connect_failures;
      connectFailed();
    }
    std::erase(counted_, &connection);
  } else if (connection.state() == State::kReady &&
             std::find(counted_.begin(), counted_.end(), &connection) == counted_.end()) {
    counted_.push_back(&connection);
    connectSucceeded();
    ++stats_.connects;
    if (connection.resumedTls()) ++stats_.resumed_tls;
    PoolMetrics::inc(metrics_.connects);
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
  scheduleDispatch();
}

void ClientPool::close() {
  closing_ = true;
  cancelBackoff();
  auto connections = connections_;
  for (auto& c : connections) c->close("pool closed");
  auto queue = std::move(queue_);
  queue_.clear();
  for (auto& q : queue) done_(q.tag, StreamEnd::kConnectionLost, ClientResponse{});
}

}  // namespace pushhub::connectors::http2
