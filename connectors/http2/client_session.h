#pragma once

// The client side of one HTTP/2 connection, driven by nghttp2 and independent of any socket (like
// ServerSession): the owner feeds received bytes in, writes out what the session produces, and
// learns each stream's end through one callback. It never queues a request beyond what the server
// allows: canSubmit() says whether another stream may open now, following
// SETTINGS_MAX_CONCURRENT_STREAMS as the server changes it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "connectors/http2/server_session.h"  // Header

struct nghttp2_session;

namespace pushhub::connectors::http2 {

struct ClientRequest {
  std::string method = "POST";
  std::string path;
  // host[:port] for the HTTP/1.1 pool, which reaches several hosts (WNS channels live on many
  // *.notify.windows.com clusters); empty: the pool's own. HTTP/2 sessions ignore it.
  std::string authority;
  std::vector<Header> headers;  // lowercase names, pseudo-headers excluded
  std::string body;
};

struct ClientResponse {
  int status = 0;
  std::vector<Header> headers;
  std::string body;
  const std::string* find(std::string_view name) const;
};

// How a stream ended.
enum class StreamEnd : uint8_t {
  kResponse,        // a complete response arrived
  kRefused,         // never processed (REFUSED_STREAM, or above a GOAWAY's last stream id): resend
  kReset,           // reset by the server after it began (it may or may not have acted)
  kConnectionLost,  // the connection ended first
  // Set by pools, not sessions:
  kConnectFailed,  // the connection made for it failed before it was usable: never sent
  kUnreachable,    // the endpoint's circuit is open (connects keep failing): never sent
};
std::string_view streamEndName(StreamEnd end);

class ClientSession {
 public:
  struct Options {
    std::string authority;  // :authority, host[:port]
    uint32_t initial_window_size = 1 << 20;
    uint32_t connection_window_size = 32 << 20;
    size_t max_response_body = 64 << 10;
    // Streams this client opens at once at most, below the server's own limit (0: the server's
    // limit alone). Every stream in flight on a connection that is lost is sent again, so this
    // bounds the duplicates one lost connection can cause (bench/RESULTS.md, "resets").
    uint32_t max_concurrent_streams = 0;
    // Header names whose values are never entered in the HPACK table (Apple asks this for :path,
    // authorization and the per-notification apns-* headers): they differ per request.
    std::vector<std::string> never_index = {":path", "authorization"};
  };
  // Called once per submitted request, with the tag it was submitted with.
  using Done = std::function<void(uint64_t tag, StreamEnd end, ClientResponse&& response)>;

  ClientSession(Options options, Done done);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // True once the server's first SETTINGS arrived (before it, the stream limit is unknown).
  bool ready() const { return settings_received_; }
  // Whether a new stream may open now: ready, not going away, below the server's limit.
  bool canSubmit() const;
  uint32_t remoteMaxStreams() const;
  size_t openStreams() const { return streams_.size(); }

  // Opens a stream; false if it cannot (then `done` is not called). A stream still open at
  // `deadline` is cancelled by cancelExpired() and ends kReset.
  bool submit(ClientRequest&& request, uint64_t tag,
              std::chrono::steady_clock::time_point deadline = {});
  // RST_STREAM(CANCEL) for every stream past its deadline; how many.
  size_t cancelExpired(std::chrono::steady_clock::time_point now);

  // Bytes from the server; false when the session is broken (protocol error).
  bool receive(std::string_view bytes);
  void collectOutput(std::string& out);
  bool wantsWrite() const;

  // PING; pingOutstanding() until the server's ACK arrives.
  void ping();
  bool pingOutstanding() const { return ping_outstanding_; }
  // The server sent GOAWAY: streams up to its last stream id finish, the others end kRefused.
  bool goingAway() const { return going_away_; }
  uint32_t goAwayErrorCode() const { return goaway_error_code_; }
  // Sends GOAWAY(NO_ERROR) ourselves: no new streams, open ones finish.
  void shutdown();
  // Nothing more will happen on this session (no open stream and nothing to write, or broken).
  bool finished() const;
  // The connection is gone: every open stream ends kConnectionLost, at once.
  void failAll();

 private:
  struct Stream {
    uint64_t tag = 0;
    std::chrono::steady_clock::time_point deadline{};
    bool cancelled = false;
    std::string request_body;
    size_t sent = 0;
    ClientResponse response;
    bool complete = false;
    bool too_large = false;
  };
  struct Callbacks;

  Options options_;
  Done done_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  Stream* receiving_ = nullptr;
  int32_t receiving_id_ = 0;
  bool settings_received_ = false;
  bool ping_outstanding_ = false;
  bool going_away_ = false;
  uint32_t goaway_error_code_ = 0;
  bool failed_ = false;
};

}  // namespace pushhub::connectors::http2
