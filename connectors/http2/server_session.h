#pragma once

// The server side of one HTTP/2 connection, driven by nghttp2 and independent of any socket: the
// owner feeds received bytes in and writes out what the session produces (see README.md). Used
// by pushhub-sim; the client side (connector pools) sits beside it.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct nghttp2_session;

namespace pushhub::connectors::http2 {

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  int32_t stream_id = 0;
  std::vector<Header> headers;  // as received, in order, pseudo-headers included, repeats kept
  std::string body;
  bool body_too_large = false;  // more than the session's max_body_bytes arrived (body truncated)

  // The first value of a header (lowercase name), or nullptr.
  const std::string* find(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::vector<Header> headers;
  std::string body;
};

class ServerSession {
 public:
  struct Options {
    uint32_t max_concurrent_streams = 100;  // advertised in the first SETTINGS
    uint32_t initial_window_size = 1 << 20;
    uint32_t connection_window_size = 16 << 20;
    uint32_t max_header_list_size = 8000;
    size_t max_body_bytes = 1 << 20;
  };
  // Called for every complete request (END_STREAM received); answer with respond(), now or later.
  using RequestHandler = std::function<void(Request&&)>;
  // Called when the client opens a stream although the acknowledged SETTINGS_MAX_CONCURRENT_STREAMS
  // are all in use (before nghttp2 would see it). The session has stopped reading; the handler
  // typically calls goAway().
  using LimitHandler = std::function<void()>;

  ServerSession(const Options& options, RequestHandler on_request, LimitHandler on_limit);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // Bytes from the peer. False when the connection is finished with (protocol error, or reading
  // stopped after a limit violation or GOAWAY): flush output, then close.
  bool receive(std::string_view bytes);
  // Appends everything the session has to send.
  void collectOutput(std::string& out);
  // Neither side has anything more to say: close the connection.
  bool finished() const;

  void respond(int32_t stream_id, Response response);
  // Sends a SETTINGS frame with a new MAX_CONCURRENT_STREAMS; it applies once acknowledged.
  void setMaxConcurrentStreams(uint32_t limit);
  uint32_t advertisedMaxConcurrentStreams() const { return advertised_limit_; }
  // GOAWAY naming the last stream received, with `debug` as its opaque data: streams already open
  // are answered, newer ones ignored, and the connection is finished once they are done.
  void goAway(uint32_t error_code, std::string_view debug);
  bool goingAway() const { return going_away_; }

  size_t openStreams() const { return open_streams_; }

 private:
  struct Stream {
    Request request;
    std::string response_body;
    size_t sent = 0;
  };
  struct Callbacks;

  // Splits input into frames so stream openings can be checked against the acknowledged limit.
  bool feedFrames(std::string_view bytes);
  bool feedNghttp2(std::string_view bytes);

  Options options_;
  RequestHandler on_request_;
  LimitHandler on_limit_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  Stream* receiving_ = nullptr;  // the stream frames were last received for
  size_t open_streams_ = 0;

  std::string partial_;            // an incomplete frame (or preface) awaiting more bytes
  size_t preface_remaining_ = 24;  // the client connection preface precedes the first frame
  std::deque<uint32_t> unacknowledged_limits_;  // SETTINGS sent with MAX_CONCURRENT_STREAMS
  uint32_t acknowledged_limit_ = UINT32_MAX;    // RFC 9113: unlimited until acknowledged
  uint32_t advertised_limit_ = 0;
  int32_t last_stream_opened_ = 0;
  bool reading_ = true;
  bool going_away_ = false;
  int32_t goaway_last_stream_id_ = 0;  // streams above it are refused once going away
  bool failed_ = false;
};

}  // namespace pushhub::connectors::http2
