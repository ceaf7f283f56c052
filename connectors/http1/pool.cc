#include "connectors/http1/pool.h"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace pushhub::connectors::http1 {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

Pool::Pool(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls, Options options,
           Done done)
    : PoolBase(io, options.queue_capacity, options.backoff_initial, options.backoff_max,
               options.breaker_failures, options.metrics, options.labels, options.rate_limiter),
      tls_(std::move(tls)),
      options_(std::move(options)),
      done_(std::move(done)),
      wake_timer_(io) {
  options_.max_connections = std::max<size_t>(1, options_.max_connections);
}

Pool::~Pool() {
  *alive_ = false;
  wake_timer_.cancel();
  for (auto& c : connections_) c->close();
  PoolMetrics::add(metrics_.connections, -static_cast<int64_t>(connections_.size()));
}

bool Pool::enqueue(Request&& request, uint64_t tag, bool front) {
  Queued item{std::move(request), tag, options_.connection.host, options_.connection.port};
  if (!item.request.authority.empty()) {
    // host[:port]; [v6]:port
    const std::string& a = item.request.authority;
    const size_t colon = a.rfind(':');
    if (colon != std::string::npos && a.find(']', colon) == std::string::npos) {
      item.host = a.substr(0, colon);
      item.port = static_cast<uint16_t>(std::strtoul(a.c_str() + colon + 1, nullptr, 10));
    } else {
      item.host = a;
      item.port = 443;
    }
    if (item.host.size() > 2 && item.host.front() == '[') {
      item.host = item.host.substr(1, item.host.size() - 2);
    }
  }
  return push(std::move(item), front);
}

namespace {

std::string hostKey(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

}  // namespace

void Pool::start(const std::shared_ptr<Connection>& connection, Queued&& item) {
  ++stats_.submitted;
  PoolMetrics::inc(metrics_.requests);
  const bool fresh = !connection->reusable();
  std::string key = hostKey(item.host, item.port);
  connection->send(std::move(item.request), [this, alive = alive_, connection, tag = item.tag,
                                             fresh,
                                             key = std::move(key)](Connection::Result&& result) {
    if (!*alive) return;
    bool connect_failed = false;
    if (fresh) {
      if (result || result.error().end != StreamEnd::kRefused) {
        ++stats_.connects;
        PoolMetrics::inc(metrics_.connects);
        health_.erase(key);
        if (connection->tlsSession()) tls_session_ = connection->tlsSession();
      } else {
        ++stats_.connect_failures;
        PoolMetrics::inc(metrics_.connect_failures);
        connect_failed = true;
        HostHealth& health = health_[key];
        ++health.failures;
        health.connecting = false;
        health.retry_at = Clock::now() + jitteredBackoff(health.failures, options_.backoff_initial,
                                                         options_.backoff_max, rng_);
        wakeAt(health.retry_at);
      }
    }
    if (connection->closed()) {
      auto it = std::find(connections_.begin(), connections_.end(), connection);
      if (it != connections_.end()) {
        connections_.erase(it);
        PoolMetrics::add(metrics_.connections, -1);
      }
    }
    if (result) {
      done_(tag, StreamEnd::kResponse, std::move(*result));
    } else {
      done_(tag, connect_failed ? StreamEnd::kConnectFailed : result.error().end,
            Response{0, {}, result.error().why});
    }
    scheduleDispatch();
  });
}

void Pool::wakeAt(Clock::time_point when) {
  if (when >= wake_at_) return;
  wake_at_ = when;
  wake_timer_.expires_at(when);
  wake_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive) return;
    wake_at_ = Clock::time_point::max();
    dispatch();
  });
}

void Pool::dispatch() {
  // In queue order: an idle connection to the request's host, else a new one while allowed. A
  // host whose connects fail gets one attempt at a time after its back-off; once its breaker is
  // open, its requests end at once.
  const auto now = Clock::now();
  // Started after the walk: a start may call back (and enqueue) before it returns.
  std::vector<std::pair<std::shared_ptr<Connection>, Queued>> starts;
  std::vector<uint64_t> unreachable;
  for (auto it = queue_.begin(); it != queue_.end();) {
    auto idle = std::find_if(connections_.begin(), connections_.end(), [&](auto& c) {
      return !c->busy() && c->reusable() && c->host() == it->host && c->port() == it->port &&
             std::none_of(starts.begin(), starts.end(),
                          [&](auto& taken) { return taken.first == c; });
    });
    HostHealth* health = nullptr;
    if (idle == connections_.end() && !health_.empty()) {
      auto h = health_.find(hostKey(it->host, it->port));
      if (h != health_.end()) health = &h->second;
    }
    if (health != nullptr && (health->connecting || now < health->retry_at)) {
      if (health->failures >= breaker_failures_) {
        unreachable.push_back(it->tag);
        it = queue_.erase(it);
      } else {
        if (!health->connecting) wakeAt(health->retry_at);
        ++it;
      }
      continue;
    }
    if (idle == connections_.end() && connections_.size() >= options_.max_connections) {
      ++it;
      continue;
    }
    if (!takeRate()) break;
    std::shared_ptr<Connection> connection;
    if (idle != connections_.end()) {
      connection = *idle;
    } else {
      if (health != nullptr) health->connecting = true;  // the probe
      Connection::Options connection_options = options_.connection;
      connection_options.host = it->host;
      connection_options.port = it->port;
      connection =
          Connection::create(io_, tls_, connection_options,
                             it->host == options_.connection.host ? tls_session_ : nullptr);
      connections_.push_back(connection);
      PoolMetrics::add(metrics_.connections, 1);
    }
    starts.emplace_back(connection, std::move(*it));
    it = queue_.erase(it);
  }
  for (auto& [connection, item] : starts) start(connection, std::move(item));
  for (const uint64_t tag : unreachable) {
    PoolMetrics::inc(metrics_.unreachable);
    done_(tag, StreamEnd::kUnreachable, Response{0, {}, {}});
  }
  // Close what has been idle too long.
  for (auto& connection : connections_) {
    if (!connection->busy() && connection->reusable() && queue_.empty() &&
        now - connection->lastActive() > options_.idle_close) {
      connection->close();
    }
  }
  std::erase_if(connections_, [&](auto& c) {
    const bool gone = c->closed() && !c->busy();
    if (gone) PoolMetrics::add(metrics_.connections, -1);
    return gone;
  });
  signalSpace();
}

}  // namespace pushhub::connectors::http1
