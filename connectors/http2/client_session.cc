#include "connectors/http2/client_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "connectors/http2/nv.h"

namespace pushhub::connectors::http2 {
const std::string* ClientResponse::find(std::string_view name) const {
  return findHeader(headers, name);
}

std::string_view streamEndName(StreamEnd end) {
  switch (end) {
    case StreamEnd::kResponse: return "response";
    case StreamEnd::kRefused: return "refused";
    case StreamEnd::kReset: return "reset";
    case StreamEnd::kConnectionLost: return "connection lost";
    case StreamEnd::kConnectFailed: return "connect failed";
    case StreamEnd::kUnreachable: return "unreachable (connects keep failing)";
  }
  return "?";
}

struct ClientSession::Callbacks {
  static ClientSession& self(void* user_data) { return *static_cast<ClientSession*>(user_data); }

  static Stream* streamOf(ClientSession& s, int32_t stream_id) {
    if (s.receiving_ != nullptr && s.receiving_id_ == stream_id) return s.receiving_;
    auto it = s.streams_.find(stream_id);
    if (it == s.streams_.end()) return nullptr;
    s.receiving_ = it->second.get();
    s.receiving_id_ = stream_id;
    return s.receiving_;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                      void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* stream = streamOf(self(user_data), frame->hd.stream_id);
    if (stream == nullptr) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), name_length);
    const std::string_view v(reinterpret_cast<const char*>(value), value_length);
    if (n == ":status") {
      int status = 0;
      for (const char c : v) status = status * 10 + (c - '0');
      // 1xx informational answers precede the real one.
      if (status >= 200) stream->response.status = status;
      return 0;
    }
    stream->response.headers.push_back(Header{std::string(n), std::string(v)});
    return 0;
  }

  static int onDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t length, void* user_data) {
    auto& s = self(user_data);
    Stream* stream = streamOf(s, stream_id);
    if (stream == nullptr) return 0;
    if (stream->response.body.size() + length > s.options_.max_response_body) {
      stream->too_large = true;
      return 0;
    }
    stream->response.body.append(reinterpret_cast<const char*>(data), length);
    return 0;
  }

  static int onFrameReceived(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto& s = self(user_data);
    switch (frame->hd.type) {
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) s.settings_received_ = true;
        break;
      case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) s.ping_outstanding_ = false;
        break;
      case NGHTTP2_GOAWAY:
        s.going_away_ = true;
        s.goaway_error_code_ = frame->goaway.error_code;
        break;
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
          if (Stream* stream = streamOf(s, frame->hd.stream_id)) {
            stream->complete = stream->response.status != 0;
          }
        }
        break;
      default: break;
    }
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data) {
    auto& s = self(user_data);
    auto it = s.streams_.find(stream_id);
    if (it == s.streams_.end()) return 0;
    std::unique_ptr<Stream> stream = std::move(it->second);
    s.streams_.erase(it);
    if (s.receiving_ == stream.get()) s.receiving_ = nullptr;
    StreamEnd end = StreamEnd::kReset;
    if (stream->complete && error_code == NGHTTP2_NO_ERROR) {
      end = StreamEnd::kResponse;
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
      end = StreamEnd::kRefused;
    }
    s.done_(stream->tag, end, std::move(stream->response));
    return 0;
  }

  static ssize_t readBody(nghttp2_session*, int32_t, uint8_t* buffer, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* stream = static_cast<Stream*>(source->ptr);
    const size_t n = std::min(length, stream->request_body.size() - stream->sent);
    std::memcpy(buffer, stream->request_body.data() + stream->sent, n);
    stream->sent += n;
    if (stream->sent == stream->request_body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
};

ClientSession::ClientSession(Options options, Done done)
    : options_(std::move(options)), done_(std::move(done)) {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, Callbacks::onHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, Callbacks::onDataChunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Callbacks::onFrameReceived);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Callbacks::onStreamClose);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_closed_streams(option, 1);
  // Until the server's SETTINGS say otherwise, assume one stream (APNs starts there).
  nghttp2_option_set_peer_max_concurrent_streams(option, 1);
  nghttp2_session_client_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_window_size},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(options_.connection_window_size));
}

ClientSession::~ClientSession() {
  // Callbacks must not run into a half-destroyed owner: forget the streams first.
  streams_.clear();
  nghttp2_session_del(session_);
}

uint32_t ClientSession::remoteMaxStreams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

bool ClientSession::canSubmit() const {
  const uint32_t limit = options_.max_concurrent_streams == 0
                             ? remoteMaxStreams()
                             : std::min(remoteMaxStreams(), options_.max_concurrent_streams);
  return settings_received_ && !going_away_ && !failed_ && streams_.size() < limit &&
         nghttp2_session_check_request_allowed(session_) != 0;
}

bool ClientSession::submit(ClientRequest&& request, uint64_t tag,
                           std::chrono::steady_clock::time_point deadline) {
  if (!canSubmit()) return false;
  auto stream = std::make_unique<Stream>();
  stream->tag = tag;
  stream->deadline = deadline;
  stream->request_body = std::move(request.body);
  constexpr size_t kInline = 24;
  std::array<nghttp2_nv, kInline> inline_nva;
  std::vector<nghttp2_nv> heap_nva;
  nghttp2_nv* nva = inline_nva.data();
  if (request.headers.size() + 4 > kInline) {
    heap_nva.resize(request.headers.size() + 4);
    nva = heap_nva.data();
  }
  const auto flagsFor = [&](std::string_view name) -> uint8_t {
    return std::find(options_.never_index.begin(), options_.never_index.end(), name) !=
                   options_.never_index.end()
               ? NGHTTP2_NV_FLAG_NO_INDEX
               : NGHTTP2_NV_FLAG_NONE;
  };
  size_t count = 0;
  nva[count++] = makeNv(":method", request.method, NGHTTP2_NV_FLAG_NONE);
  nva[count++] = makeNv(":scheme", "https", NGHTTP2_NV_FLAG_NONE);
  nva[count++] = makeNv(":authority", options_.authority, NGHTTP2_NV_FLAG_NONE);
  nva[count++] = makeNv(":path", request.path, flagsFor(":path"));
  for (const auto& h : request.headers) nva[count++] = makeNv(h.name, h.value, flagsFor(h.name));
  nghttp2_data_provider provider{};
  provider.source.ptr = stream.get();
  provider.read_callback = Callbacks::readBody;
  const int32_t stream_id = nghttp2_submit_request(
      session_, nullptr, nva, count, stream->request_body.empty() ? nullptr : &provider, nullptr);
  if (stream_id < 0) return false;
  streams_.emplace(stream_id, std::move(stream));
  return true;
}

size_t ClientSession::cancelExpired(std::chrono::steady_clock::time_point now) {
  if (failed_) return 0;
  size_t cancelled = 0;
  for (auto& [id, stream] : streams_) {
    if (stream->cancelled || stream->deadline == std::chrono::steady_clock::time_point{} ||
        stream->deadline > now) {
      continue;
    }
    stream->cancelled = true;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    ++cancelled;
  }
  return cancelled;
}

bool ClientSession::receive(std::string_view bytes) {
  if (failed_) return false;
  const auto rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                           bytes.size());
  if (rv < 0) {
    failed_ = true;
    return false;
  }
  return true;
}

void ClientSession::collectOutput(std::string& out) {
  if (failed_) return;
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

bool ClientSession::wantsWrite() const {
  return !failed_ && nghttp2_session_want_write(session_) != 0;
}

void ClientSession::ping() {
  if (ping_outstanding_ || failed_) return;
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
  ping_outstanding_ = true;
}

void ClientSession::shutdown() {
  if (failed_) return;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  going_away_ = true;
}

bool ClientSession::finished() const {
  if (failed_) return true;
  const bool writing = nghttp2_session_want_write(session_) != 0;
  if (going_away_) return streams_.empty() && !writing;
  return nghttp2_session_want_read(session_) == 0 && !writing;
}

void ClientSession::failAll() {
  failed_ = true;
  auto streams = std::move(streams_);
  streams_.clear();
  receiving_ = nullptr;
  for (auto& [id, stream] : streams) {
    done_(stream->tag, StreamEnd::kConnectionLost, std::move(stream->response));
  }
}

}  // namespace pushhub::connectors::http2
