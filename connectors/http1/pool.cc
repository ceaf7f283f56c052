#include "connectors/http1/pool.h"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace pushhub::connectors::http1 {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

Pool::Pool(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls, Options options,
           Done done)
    : io_(io),
      tls_(std::move(tls)),
      options_(std::move(options)),
      done_(std::move(done)),
      backoff_timer_(io) {
  options_.max_connections = std::max<size_t>(1, options_.max_connections);
  if (options_.metrics != nullptr) {
    MetricsRegistry& m = *options_.metrics;
    const MetricLabels& l = options_.labels;
    metric_requests_ = &m.counter("pushhub_connector_requests_total",
                                  "Requests sent to a push service (streams opened)", l);
    metric_connect_failures_ =
        &m.counter("pushhub_connector_connect_failures_total",
                   "Connections to a push service that failed before becoming ready", l);
    metric_queue_full_ =
        &m.counter("pushhub_connector_queue_full_total",
                   "Requests refused because a connection pool's queue was full", l);
    metric_connections_ =
        &m.gauge("pushhub_connector_connections", "Open connections to push services", l);
  }
}

Pool::~Pool() {
  *alive_ = false;
  backoff_timer_.cancel();
  for (auto& c : connections_) c->close();
  if (metric_connections_ != nullptr) {
    metric_connections_->add(-static_cast<int64_t>(connections_.size()));
  }
}

bool Pool::enqueue(Request&& request, uint64_t tag, bool front) {
  if (!front && queue_.size() >= options_.queue_capacity) {
    wants_space_ = true;
    if (metric_queue_full_ != nullptr) metric_queue_full_->inc();
    return false;
  }
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
  if (front) {
    queue_.push_front(std::move(item));
  } else {
    queue_.push_back(std::move(item));
  }
  if (!dispatch_posted_) {
    dispatch_posted_ = true;
    asio::post(io_, [this, alive = alive_] {
      if (*alive) dispatch();
    });
  }
  return true;
}

std::chrono::milliseconds Pool::backoff() {
  const unsigned shift = std::min(failures_in_a_row_ - 1, 20u);
  const auto ceiling =
      std::min<int64_t>(options_.backoff_max.count(), options_.backoff_initial.count() << shift);
  return std::chrono::milliseconds(
      std::uniform_int_distribution<int64_t>(ceiling / 2, std::max<int64_t>(ceiling, 1))(rng_));
}

void Pool::start(const std::shared_ptr<Connection>& connection, Queued&& item) {
  ++stats_.submitted;
  if (metric_requests_ != nullptr) metric_requests_->inc();
  const bool fresh = !connection->reusable();
  connection->send(std::move(item.request), [this, alive = alive_, connection, tag = item.tag,
                                             fresh](Connection::Result&& result) {
    if (!*alive) return;
    if (fresh) {
      if (result || result.error().end != StreamEnd::kRefused) {
        ++stats_.connects;
        failures_in_a_row_ = 0;
        if (connection->tlsSession()) tls_session_ = connection->tlsSession();
      } else {
        ++stats_.connect_failures;
        ++failures_in_a_row_;
        if (metric_connect_failures_ != nullptr) metric_connect_failures_->inc();
        backing_off_ = true;
        backoff_timer_.expires_after(backoff());
        backoff_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
          if (ec || !*alive) return;
          backing_off_ = false;
          dispatch();
        });
      }
    }
    if (connection->closed()) {
      auto it = std::find(connections_.begin(), connections_.end(), connection);
      if (it != connections_.end()) {
        connections_.erase(it);
        if (metric_connections_ != nullptr) metric_connections_->add(-1);
      }
    }
    if (result) {
      done_(tag, StreamEnd::kResponse, std::move(*result));
    } else {
      done_(tag, result.error().end, Response{0, {}, result.error().why});
    }
    if (!dispatch_posted_) {
      dispatch_posted_ = true;
      asio::post(io_, [this, alive = alive_] {
        if (*alive) dispatch();
      });
    }
  });
}

void Pool::dispatch() {
  dispatch_posted_ = false;
  // In queue order: an idle connection to the request's host, else a new one while allowed
  // (after a failed connect, one at a time after the back-off).
  bool may_open = !backing_off_;
  // Started after the walk: a start may call back (and enqueue) before it returns.
  std::vector<std::pair<std::shared_ptr<Connection>, Queued>> starts;
  for (auto it = queue_.begin(); it != queue_.end();) {
    auto idle = std::find_if(connections_.begin(), connections_.end(), [&](auto& c) {
      return !c->busy() && c->reusable() && c->host() == it->host && c->port() == it->port &&
             std::none_of(starts.begin(), starts.end(),
                          [&](auto& taken) { return taken.first == c; });
    });
    std::shared_ptr<Connection> connection;
    if (idle != connections_.end()) {
      connection = *idle;
    } else if (may_open && connections_.size() < options_.max_connections) {
      Connection::Options connection_options = options_.connection;
      connection_options.host = it->host;
      connection_options.port = it->port;
      connection =
          Connection::create(io_, tls_, connection_options,
                             it->host == options_.connection.host ? tls_session_ : nullptr);
      connections_.push_back(connection);
      if (metric_connections_ != nullptr) metric_connections_->add(1);
      if (failures_in_a_row_ > 0) may_open = false;
    } else {
      ++it;
      continue;
    }
    starts.emplace_back(connection, std::move(*it));
    it = queue_.erase(it);
  }
  for (auto& [connection, item] : starts) start(connection, std::move(item));
  // Close what has been idle too long.
  const auto now = Clock::now();
  for (auto& connection : connections_) {
    if (!connection->busy() && connection->reusable() && queue_.empty() &&
        now - connection->lastActive() > options_.idle_close) {
      connection->close();
    }
  }
  std::erase_if(connections_, [&](auto& c) {
    const bool gone = c->closed() && !c->busy();
    if (gone && metric_connections_ != nullptr) metric_connections_->add(-1);
    return gone;
  });
  if (wants_space_ && queue_.size() < options_.queue_capacity) {
    wants_space_ = false;
    if (on_space_) on_space_();
  }
}

}  // namespace pushhub::connectors::http1
