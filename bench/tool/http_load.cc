#include "bench/tool/http_load.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common/text.h"

namespace pushhub::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

uint64_t HttpLoadResult::non2xx() const {
  uint64_t n = 0;
  for (const auto& [status, count] : statuses) {
    if (status < 200 || status >= 300) n += count;
  }
  return n;
}

namespace {

constexpr size_t kMaxErrorSamples = 5;

// What all threads share.
struct Shared {
  Shared(const HttpLoadOptions& o, Clock::time_point now)
      : options(o), start(now), deadline(now + o.duration) {}
  const HttpLoadOptions& options;
  Clock::time_point start;
  Clock::time_point deadline;
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> answered{0};
  std::atomic<uint64_t> finished{0};  // answered, or lost with a failed connection
  std::atomic<bool> stop{false};
  std::atomic<unsigned> alive{0};  // connections not given up
  std::mutex samples_mutex;
  std::vector<std::string> samples;

  // Claims the next request's index, or false when the run is over.
  bool claim(uint64_t& index) {
    if (stop.load(std::memory_order_relaxed)) return false;
    if (options.duration.count() > 0 && Clock::now() >= deadline) return false;
    index = next.fetch_add(1, std::memory_order_relaxed);
    return options.requests == 0 || index < options.requests;
  }
  void sample(std::string text) {
    std::lock_guard lock(samples_mutex);
    if (samples.size() < kMaxErrorSamples) samples.push_back(std::move(text));
  }
};

// One thread's share of the results (merged at the end).
struct ThreadResult {
  std::map<unsigned, uint64_t> statuses;
  uint64_t errors = 0;
  Histogram latency_us;
  TimeSeries per_second{0.1};
};

template <class Stream>
class Connection : public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(asio::io_context& io, Shared& shared, ThreadResult& result, asio::ssl::context* tls,
             tcp::endpoint endpoint)
      : io_(io), shared_(shared), result_(result), tls_(tls), endpoint_(endpoint), pacing_(io) {
    shared_.alive.fetch_add(1);
  }
  ~Connection() { shared_.alive.fetch_sub(1); }

  void start() { connect(); }

 private:
  Stream makeStream() {
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      return tcp::socket(io_);
    } else {
      return Stream(io_, *tls_);
    }
  }
  tcp::socket& socket() {
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      return *stream_;
    } else {
      return stream_->next_layer();
    }
  }

  void connect() {
    stream_.emplace(makeStream());
    auto self = this->shared_from_this();
    socket().async_connect(endpoint_, [this, self](boost::system::error_code ec) {
      if (ec) return failed("connect: " + ec.message());
      socket().set_option(tcp::no_delay(true), ec);
      if constexpr (std::is_same_v<Stream, tcp::socket>) {
        next();
      } else {
        SSL_set_tlsext_host_name(stream_->native_handle(), "localhost");
        stream_->async_handshake(asio::ssl::stream_base::client,
                                 [this, self](boost::system::error_code ec) {
                                   if (ec) return failed("TLS handshake: " + ec.message());
                                   next();
                                 });
      }
    });
  }

  void next() {
    uint64_t index = 0;
    if (!shared_.claim(index)) return;  // done: the connection closes with this object
    in_flight_ = true;
    request_.clear();
    shared_.options.make_request(index, request_);
    if (shared_.options.rate_per_s > 0) {
      const auto due =
          shared_.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                              static_cast<double>(index) / shared_.options.rate_per_s));
      if (due > Clock::now()) {
        auto self = this->shared_from_this();
        pacing_.expires_at(due);
        pacing_.async_wait([this, self](boost::system::error_code) { write(); });
        return;
      }
    }
    write();
  }

  void write() {
    sent_at_ = Clock::now();
    auto self = this->shared_from_this();
    asio::async_write(*stream_, asio::buffer(request_),
                      [this, self](boost::system::error_code ec, size_t) {
                        if (ec) return failed("write: " + ec.message());
                        read();
                      });
  }

  void read() {
    if (buffer_.size() - used_ < 4096) buffer_.resize(used_ + 16384);
    auto self = this->shared_from_this();
    stream_->async_read_some(asio::buffer(buffer_.data() + used_, buffer_.size() - used_),
                             [this, self](boost::system::error_code ec, size_t n) {
                               if (ec) return failed("read: " + ec.message());
                               used_ += n;
                               parse();
                             });
  }

  void parse() {
    const std::string_view data(buffer_.data(), used_);
    if (!head_) {
      const size_t end = data.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (used_ > 65536) return failed("answer head larger than 64 KiB");
        return read();
      }
      std::string error;
      head_ = parseHttpHead(data.substr(0, end), error);
      if (!head_) return failed("malformed answer: " + error);
      head_length_ = end + 4;
    }
    if (used_ < head_length_ + head_->body_length) return read();
    const auto now = Clock::now();
    result_.latency_us.record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now - sent_at_).count()));
    result_.per_second.add(std::chrono::duration<double>(now - shared_.start).count());
    ++result_.statuses[head_->status];
    if (head_->status < 200 || head_->status >= 300) {  // sample() keeps the first few
      shared_.sample(
          fmt::format("{}: {}", head_->status,
                      data.substr(head_length_, std::min<size_t>(head_->body_length, 300))));
    }
    shared_.answered.fetch_add(1, std::memory_order_relaxed);
    shared_.finished.fetch_add(1, std::memory_order_relaxed);
    in_flight_ = false;
    failures_ = 0;
    const size_t consumed = head_length_ + head_->body_length;
    std::memmove(buffer_.data(), buffer_.data() + consumed, used_ - consumed);
    used_ -= consumed;
    const bool close = head_->close;
    head_.reset();
    if (close) {
      connect();
    } else {
      next();
    }
  }

  void failed(const std::string& what) {
    ++result_.errors;
    shared_.sample(what);
    if (in_flight_) {
      // The claimed request is lost (counted as an error, not retried).
      in_flight_ = false;
      shared_.finished.fetch_add(1, std::memory_order_relaxed);
    }
    if (shared_.stop.load()) return;
    // Reconnect after a pause (a server restarting); give up after 5 s of failures in a row.
    if (++failures_ > 50) return;
    head_.reset();
    used_ = 0;
    auto self = this->shared_from_this();
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
    timer->async_wait([this, self, timer](boost::system::error_code) {
      if (shared_.stop.load()) return;
      if (shared_.options.duration.count() > 0 && Clock::now() >= shared_.deadline) return;
      connect();
    });
  }

  asio::io_context& io_;
  Shared& shared_;
  ThreadResult& result_;
  asio::ssl::context* tls_;
  tcp::endpoint endpoint_;
  std::optional<Stream> stream_;
  asio::steady_timer pacing_;
  std::string request_;
  std::vector<char> buffer_;
  size_t used_ = 0;
  std::optional<HttpHead> head_;
  size_t head_length_ = 0;
  Clock::time_point sent_at_;
  bool in_flight_ = false;
  unsigned failures_ = 0;
};

}  // namespace

std::optional<HttpHead> parseHttpHead(std::string_view head, std::string& error,
                                      bool keep_headers) {
  HttpHead h;
  if (head.size() < 12 || !head.starts_with("HTTP/1.")) {
    error = "not an HTTP/1.x status line";
    return std::nullopt;
  }
  const auto digit = [&](size_t i) { return static_cast<unsigned>(head[i] - '0'); };
  h.status = digit(9) * 100 + digit(10) * 10 + digit(11);
  if (h.status < 100 || h.status > 599) {
    error = "bad status code";
    return std::nullopt;
  }
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const size_t begin = pos + 2;
    const size_t end = head.find("\r\n", begin);
    const std::string_view line =
        head.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin);
    pos = end;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (equalsIgnoreCase(name, "content-length")) {
      h.body_length = std::strtoull(std::string(value).c_str(), nullptr, 10);
    } else if (equalsIgnoreCase(name, "transfer-encoding")) {
      error = "chunked answers are not supported";
      return std::nullopt;
    } else if (equalsIgnoreCase(name, "connection") && equalsIgnoreCase(value, "close")) {
      h.close = true;
    }
    if (keep_headers) {
      std::string lower(name);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      h.headers[lower] = std::string(value);
    }
  }
  return h;
}

HttpLoadResult runHttpLoad(const HttpLoadOptions& options) {
  if (!options.make_request) throw std::invalid_argument("runHttpLoad: no make_request");
  if (options.requests == 0 && options.duration.count() == 0) {
    throw std::invalid_argument("runHttpLoad: give a request count or a duration");
  }
  boost::system::error_code ec;
  const auto address =
      asio::ip::make_address(options.host == "localhost" ? "127.0.0.1" : options.host, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: not an IP address", options.host));
  const tcp::endpoint endpoint(address, options.port);
  {
    // Fail early and clearly when nothing listens there.
    asio::io_context probe_io;
    tcp::socket probe(probe_io);
    probe.connect(endpoint, ec);
    if (ec) {
      throw std::runtime_error(
          fmt::format("cannot connect to {}:{}: {}", options.host, options.port, ec.message()));
    }
  }
  std::unique_ptr<asio::ssl::context> tls;
  if (!options.ca_file.empty()) {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    tls->load_verify_file(options.ca_file, ec);
    if (ec) throw std::runtime_error(fmt::format("{}: {}", options.ca_file, ec.message()));
    tls->set_verify_mode(asio::ssl::verify_peer);
  }

  Shared shared(options, Clock::now());
  const unsigned threads = std::max(1u, options.threads);
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<ThreadResult> results(threads);
  for (unsigned t = 0; t < threads; ++t) contexts.push_back(std::make_unique<asio::io_context>());
  for (unsigned c = 0; c < std::max(1u, options.connections); ++c) {
    const unsigned t = c % threads;
    if (tls) {
      std::make_shared<Connection<asio::ssl::stream<tcp::socket>>>(*contexts[t], shared, results[t],
                                                                   tls.get(), endpoint)
          ->start();
    } else {
      std::make_shared<Connection<tcp::socket>>(*contexts[t], shared, results[t], nullptr, endpoint)
          ->start();
    }
  }
  // Progress, and the end of a timed run, on the first thread.
  asio::steady_timer tick(*contexts[0]);
  std::function<void()> arm = [&] {
    tick.expires_after(std::chrono::seconds(1));
    tick.async_wait([&](boost::system::error_code e) {
      if (e) return;
      if (options.progress) options.progress(shared.answered.load());
      const bool over = (options.requests > 0 && shared.finished.load() >= options.requests) ||
                        (options.duration.count() > 0 && Clock::now() >= shared.deadline);
      if (!over && shared.alive.load() > 0) arm();
    });
  };
  arm();
  std::vector<std::thread> workers;
  for (unsigned t = 1; t < threads; ++t) workers.emplace_back([&, t] { contexts[t]->run(); });
  // The first thread's loop ends when its connections and the ticker are done; the ticker stops
  // once every request has been answered (or the deadline passed and connections wound down).
  std::thread watchdog([&] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      bool over = options.requests > 0 && shared.finished.load() >= options.requests;
      if (options.duration.count() > 0 &&
          Clock::now() >= shared.deadline + std::chrono::seconds(5)) {
        over = true;  // answers still missing 5 s after the deadline: stop waiting for them
      }
      if (over) {
        shared.stop = true;
        for (auto& io : contexts) io->stop();
        return;
      }
      bool idle = true;
      for (auto& io : contexts) idle = idle && io->stopped();
      if (idle) return;
    }
  });
  contexts[0]->run();
  tick.cancel();
  for (auto& w : workers) w.join();
  shared.stop = true;
  for (auto& io : contexts) io->stop();
  watchdog.join();

  HttpLoadResult out;
  out.seconds = std::chrono::duration<double>(Clock::now() - shared.start).count();
  for (auto& r : results) {
    for (const auto& [status, count] : r.statuses) out.statuses[status] += count;
    out.errors += r.errors;
    out.latency_us.merge(r.latency_us);
    out.per_second.merge(r.per_second);
  }
  for (const auto& [status, count] : out.statuses) out.answered += count;
  out.error_samples = std::move(shared.samples);
  return out;
}

}  // namespace pushhub::bench
