#include "connectors/http2/server_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "connectors/http2/nv.h"

namespace pushhub::connectors::http2 {
namespace {

constexpr size_t kFrameHeaderBytes = 9;
constexpr uint8_t kFrameHeaders = 0x1;
constexpr uint8_t kFrameSettings = 0x4;
constexpr uint8_t kFlagAck = 0x1;

}  // namespace

const std::string* Request::find(std::string_view name) const { return findHeader(headers, name); }

struct ServerSession::Callbacks {
  static ServerSession& self(void* user_data) { return *static_cast<ServerSession*>(user_data); }

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto& s = self(user_data);
    auto stream = std::make_unique<Stream>();
    stream->request.stream_id = frame->hd.stream_id;
    stream->request.headers.reserve(12);
    s.receiving_ = stream.get();
    s.streams_[frame->hd.stream_id] = std::move(stream);
    ++s.open_streams_;
    return 0;
  }

  // The stream a frame belongs to: most frames continue the stream whose headers just began, so
  // that one is remembered instead of looked up.
  static Stream* streamOf(ServerSession& s, int32_t stream_id) {
    if (s.receiving_ != nullptr && s.receiving_->request.stream_id == stream_id) {
      return s.receiving_;
    }
    auto it = s.streams_.find(stream_id);
    if (it == s.streams_.end()) return nullptr;
    s.receiving_ = it->second.get();
    return s.receiving_;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                      void* user_data) {
    Stream* stream = streamOf(self(user_data), frame->hd.stream_id);
    if (stream == nullptr) return 0;
    stream->request.headers.push_back(
        Header{std::string(reinterpret_cast<const char*>(name), name_length),
               std::string(reinterpret_cast<const char*>(value), value_length)});
    return 0;
  }

  static int onDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t length, void* user_data) {
    auto& s = self(user_data);
    Stream* stream = streamOf(s, stream_id);
    if (stream == nullptr) return 0;
    Request& request = stream->request;
    if (request.body.size() + length > s.options_.max_body_bytes) {
      request.body_too_large = true;
      return 0;
    }
    request.body.append(reinterpret_cast<const char*>(data), length);
    return 0;
  }

  static int onFrameReceived(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto& s = self(user_data);
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
      return 0;
    }
    Stream* stream = streamOf(s, frame->hd.stream_id);
    if (stream == nullptr) return 0;
    if (s.going_away_ && frame->hd.stream_id > s.goaway_last_stream_id_) {
      // The GOAWAY already queued tells the client this stream was not processed (it will send
      // it again elsewhere); processing it anyway would make that a duplicate.
      nghttp2_submit_rst_stream(s.session_, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    s.on_request_(std::move(stream->request));
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t, void* user_data) {
    auto& s = self(user_data);
    if (s.receiving_ != nullptr && s.receiving_->request.stream_id == stream_id) {
      s.receiving_ = nullptr;
    }
    if (s.streams_.erase(stream_id) > 0) --s.open_streams_;
    return 0;
  }

  static ssize_t readBody(nghttp2_session*, int32_t stream_id, uint8_t* buffer, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user_data) {
    auto& s = self(user_data);
    auto it = s.streams_.find(stream_id);
    if (it == s.streams_.end()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    Stream& stream = *it->second;
    const size_t n = std::min(length, stream.response_body.size() - stream.sent);
    std::memcpy(buffer, stream.response_body.data() + stream.sent, n);
    stream.sent += n;
    if (stream.sent == stream.response_body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
};

ServerSession::ServerSession(const Options& options, RequestHandler on_request,
                             LimitHandler on_limit)
    : options_(options), on_request_(std::move(on_request)), on_limit_(std::move(on_limit)) {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, Callbacks::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, Callbacks::onHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, Callbacks::onDataChunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Callbacks::onFrameReceived);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Callbacks::onStreamClose);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  nghttp2_option_set_max_send_header_block_length(option, 64 << 10);
  // Push services schedule nothing by RFC 7540 priority: without the dependency tree (and the
  // closed streams kept for it) nghttp2 does far less work per stream.
  nghttp2_option_set_no_closed_streams(option, 1);
  nghttp2_session_server_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options_.max_header_list_size},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  unacknowledged_limits_.push_back(options_.max_concurrent_streams);
  advertised_limit_ = options_.max_concurrent_streams;
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(options_.connection_window_size));
}

ServerSession::~ServerSession() { nghttp2_session_del(session_); }

bool ServerSession::receive(std::string_view bytes) {
  if (!reading_ || failed_) return false;
  return feedFrames(bytes);
}

bool ServerSession::feedNghttp2(std::string_view bytes) {
  const auto consumed = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (consumed < 0) {
    failed_ = true;
    return false;
  }
  return true;
}

bool ServerSession::feedFrames(std::string_view bytes) {
  // Frame headers are only peeked at: runs of frames go to nghttp2 in one call, split only where
  // a SETTINGS ACK or a new stream changes what the limit check must see.
  partial_.append(bytes);
  size_t offset = 0;
  if (preface_remaining_ > 0) {
    const size_t n = std::min(preface_remaining_, partial_.size());
    preface_remaining_ -= n;
    offset = n;
  }
  size_t feed_from = 0;
  while (reading_ && preface_remaining_ == 0 && partial_.size() - offset >= kFrameHeaderBytes) {
    const auto* h = reinterpret_cast<const uint8_t*>(partial_.data() + offset);
    const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
    const uint8_t type = h[3];
    const uint8_t flags = h[4];
    const int32_t stream_id = static_cast<int32_t>(
        ((uint32_t{h[5]} << 24) | (uint32_t{h[6]} << 16) | (uint32_t{h[7]} << 8) | h[8]) &
        0x7FFFFFFFu);
    if (partial_.size() - offset < kFrameHeaderBytes + length) break;
    if (type == kFrameSettings && (flags & kFlagAck) != 0 && !unacknowledged_limits_.empty()) {
      // Feed what precedes, so that nghttp2 and this gate agree on the streams open.
      if (!feedNghttp2(std::string_view(partial_).substr(feed_from, offset - feed_from)))
        return false;
      feed_from = offset;
      acknowledged_limit_ = unacknowledged_limits_.front();
      unacknowledged_limits_.pop_front();
    } else if (type == kFrameHeaders && (stream_id & 1) == 1 && stream_id > last_stream_opened_) {
      if (!feedNghttp2(std::string_view(partial_).substr(feed_from, offset - feed_from)))
        return false;
      feed_from = offset;
      last_stream_opened_ = stream_id;
      if (open_streams_ >= acknowledged_limit_) {
        reading_ = false;
        partial_.clear();
        on_limit_();
        return false;
      }
    }
    offset += kFrameHeaderBytes + length;
  }
  if (preface_remaining_ == 0 || feed_from < offset) {
    if (!feedNghttp2(std::string_view(partial_).substr(feed_from, offset - feed_from)))
      return false;
  }
  partial_.erase(0, offset);
  return reading_;
}

void ServerSession::collectOutput(std::string& out) {
  for (;;) {
    const uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) {
      if (n < 0) failed_ = true;
      return;
    }
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
}

bool ServerSession::finished() const {
  if (failed_) return true;
  const bool writing = nghttp2_session_want_write(session_) != 0;
  if (!reading_) return !writing;
  if (going_away_) return open_streams_ == 0 && !writing;
  return nghttp2_session_want_read(session_) == 0 && !writing;
}

void ServerSession::respond(int32_t stream_id, Response response) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;  // reset by the client meanwhile
  Stream& stream = *it->second;
  static const std::string kStatus = ":status";
  // Three digits; nghttp2 copies the header block before submit returns.
  const std::string status{static_cast<char>('0' + response.status / 100 % 10),
                           static_cast<char>('0' + response.status / 10 % 10),
                           static_cast<char>('0' + response.status % 10)};
  constexpr size_t kInline = 16;
  std::array<nghttp2_nv, kInline> inline_nva;
  std::vector<nghttp2_nv> heap_nva;
  nghttp2_nv* nva = inline_nva.data();
  if (response.headers.size() + 1 > kInline) {
    heap_nva.resize(response.headers.size() + 1);
    nva = heap_nva.data();
  }
  size_t count = 0;
  nva[count++] = makeNv(kStatus, status);
  // Response header values are mostly unique (apns-id, message ids): indexing them would only
  // churn both HPACK tables and make every lookup compare against a table full of ids.
  for (const auto& h : response.headers) {
    nva[count++] = makeNv(h.name, h.value, NGHTTP2_NV_FLAG_NO_INDEX);
  }
  stream.response_body = std::move(response.body);
  if (stream.response_body.empty()) {
    nghttp2_submit_response(session_, stream_id, nva, count, nullptr);
  } else {
    nghttp2_data_provider provider{};
    provider.read_callback = Callbacks::readBody;
    nghttp2_submit_response(session_, stream_id, nva, count, &provider);
  }
}

void ServerSession::setMaxConcurrentStreams(uint32_t limit) {
  if (limit == advertised_limit_) return;
  const nghttp2_settings_entry entry{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limit};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, &entry, 1);
  unacknowledged_limits_.push_back(limit);
  advertised_limit_ = limit;
}

void ServerSession::goAway(uint32_t error_code, std::string_view debug) {
  if (going_away_) return;
  going_away_ = true;
  goaway_last_stream_id_ = nghttp2_session_get_last_proc_stream_id(session_);
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, goaway_last_stream_id_, error_code,
                        reinterpret_cast<const uint8_t*>(debug.data()), debug.size());
}

}  // namespace pushhub::connectors::http2
