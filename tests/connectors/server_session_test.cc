// The HTTP/2 server session without a socket, driven by hand-made client frames (HPACK from
// nghttp2's deflater, everything else written here byte by byte): requests arrive whole, and a
// client that opens more streams than the acknowledged SETTINGS_MAX_CONCURRENT_STREAMS gets
// GOAWAY(REFUSED_STREAM) with a JSON reason, while one that has not acknowledged them yet only
// has the extra stream refused (RFC 9113 §6.5.3).
#include "connectors/http2/server_session.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <string>
#include <vector>

namespace pushhub::connectors::http2 {
namespace {

constexpr uint8_t kData = 0x0, kHeaders = 0x1, kRstStream = 0x3, kSettings = 0x4, kGoaway = 0x7;
constexpr uint8_t kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4;
const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string frame(uint8_t type, uint8_t flags, int32_t stream_id, const std::string& payload) {
  std::string out;
  const size_t n = payload.size();
  out.push_back(static_cast<char>((n >> 16) & 0xFF));
  out.push_back(static_cast<char>((n >> 8) & 0xFF));
  out.push_back(static_cast<char>(n & 0xFF));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((stream_id >> shift) & 0xFF));
  return out + payload;
}

// A request's header block, HPACK-encoded.
std::string headerBlock(const std::string& path) {
  nghttp2_hd_deflater* deflater = nullptr;
  EXPECT_EQ(nghttp2_hd_deflate_new(&deflater, 4096), 0);
  const auto nv = [](const char* name, const std::string& value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), strlen(name),
                      value.size(), NGHTTP2_NV_FLAG_NONE};
  };
  const std::string post = "POST", https = "https", authority = "localhost";
  std::vector<nghttp2_nv> headers = {nv(":method", post), nv(":scheme", https),
                                     nv(":authority", authority), nv(":path", path)};
  std::string block(nghttp2_hd_deflate_bound(deflater, headers.data(), headers.size()), '\0');
  const auto n = nghttp2_hd_deflate_hd(deflater, reinterpret_cast<uint8_t*>(block.data()),
                                       block.size(), headers.data(), headers.size());
  nghttp2_hd_deflate_del(deflater);
  EXPECT_GT(n, 0);
  block.resize(static_cast<size_t>(n));
  return block;
}

struct Frame {
  uint8_t type;
  uint8_t flags;
  int32_t stream_id;
  std::string payload;
};

std::vector<Frame> parseFrames(const std::string& bytes) {
  std::vector<Frame> frames;
  size_t p = 0;
  while (bytes.size() - p >= 9) {
    const auto* h = reinterpret_cast<const uint8_t*>(bytes.data() + p);
    const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
    if (bytes.size() - p < 9 + length) break;
    const int32_t stream_id = static_cast<int32_t>(
        ((uint32_t{h[5]} << 24) | (uint32_t{h[6]} << 16) | (uint32_t{h[7]} << 8) | h[8]) &
        0x7FFFFFFFu);
    frames.push_back({h[3], h[4], stream_id, bytes.substr(p + 9, length)});
    p += 9 + length;
  }
  return frames;
}

uint32_t be32(const std::string& s, size_t at) {
  const auto* b = reinterpret_cast<const uint8_t*>(s.data() + at);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

class ServerSessionTest : public ::testing::Test {
 protected:
  void open(uint32_t max_streams) {
    ServerSession::Options options;
    options.max_concurrent_streams = max_streams;
    session_ = std::make_unique<ServerSession>(
        options, [this](Request&& request) { requests_.push_back(std::move(request)); },
        [this] {
          ++limit_violations_;
          session_->goAway(7, R"({"reason":"Maximum active streams violated for this endpoint."})");
        });
  }
  std::vector<Frame> output() {
    std::string out;
    session_->collectOutput(out);
    return parseFrames(out);
  }

  std::unique_ptr<ServerSession> session_;
  std::vector<Request> requests_;
  int limit_violations_ = 0;
};

TEST_F(ServerSessionTest, DeliversAWholeRequestAndSendsTheResponse) {
  open(100);
  auto first = output();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first[0].type, kSettings);
  ASSERT_TRUE(
      session_->receive(kPreface + frame(kSettings, 0, 0, "") + frame(kSettings, kAck, 0, "") +
                        frame(kHeaders, kEndHeaders, 1, headerBlock("/3/device/ab")) +
                        frame(kData, 0, 1, "hello ") + frame(kData, kEndStream, 1, "world")));
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0].stream_id, 1);
  EXPECT_EQ(*requests_[0].find(":path"), "/3/device/ab");
  EXPECT_EQ(requests_[0].body, "hello world");
  session_->respond(1, Response{200, {{"apns-id", "x"}}, ""});
  bool answered = false;
  for (const auto& f : output()) answered |= f.type == kHeaders && f.stream_id == 1;
  EXPECT_TRUE(answered);
}

TEST_F(ServerSessionTest, AfterGoawayAStreamAboveItsLastIdIsRefusedNotProcessed) {
  // Two complete requests arrive in one read; the handler of the first sends GOAWAY (as the
  // simulator's goaway-every fault does). The second must not be processed: the GOAWAY names
  // stream 1 as the last, so the client will send the second again elsewhere.
  ServerSession::Options options;
  options.max_concurrent_streams = 100;
  session_ = std::make_unique<ServerSession>(
      options,
      [this](Request&& request) {
        requests_.push_back(std::move(request));
        session_->goAway(0, "");
      },
      [] {});
  output();
  EXPECT_TRUE(session_->receive(
      kPreface + frame(kSettings, 0, 0, "") + frame(kSettings, kAck, 0, "") +
      frame(kHeaders, kEndHeaders, 1, headerBlock("/a")) + frame(kData, kEndStream, 1, "") +
      frame(kHeaders, kEndHeaders, 3, headerBlock("/b")) + frame(kData, kEndStream, 3, "")));
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0].stream_id, 1);
  bool goaway_names_1 = false, refused_3 = false;
  for (const auto& f : output()) {
    if (f.type == kGoaway) goaway_names_1 = be32(f.payload, 0) == 1;
    if (f.type == kRstStream && f.stream_id == 3) refused_3 = be32(f.payload, 0) == 7;
  }
  EXPECT_TRUE(goaway_names_1);
  EXPECT_TRUE(refused_3);
}

TEST_F(ServerSessionTest, AStreamBeyondTheAcknowledgedLimitGetsGoawayRefusedStream) {
  open(1);
  output();
  ASSERT_TRUE(session_->receive(kPreface + frame(kSettings, 0, 0, "") +
                                frame(kSettings, kAck, 0, "") +
                                frame(kHeaders, kEndHeaders, 1, headerBlock("/3/device/a"))));
  EXPECT_EQ(limit_violations_, 0);
  // Stream 1 is still open (no END_STREAM): stream 3 is one too many.
  EXPECT_FALSE(session_->receive(frame(kHeaders, kEndHeaders, 3, headerBlock("/3/device/b"))));
  EXPECT_EQ(limit_violations_, 1);
  const Frame* goaway = nullptr;
  auto frames = output();
  for (const auto& f : frames) {
    if (f.type == kGoaway) goaway = &f;
  }
  ASSERT_NE(goaway, nullptr);
  EXPECT_EQ(be32(goaway->payload, 0) & 0x7FFFFFFFu, 1u) << "last stream id: the one accepted";
  EXPECT_EQ(be32(goaway->payload, 4), 7u) << "REFUSED_STREAM";
  EXPECT_EQ(goaway->payload.substr(8),
            R"({"reason":"Maximum active streams violated for this endpoint."})");
  EXPECT_TRUE(requests_.empty());
}

TEST_F(ServerSessionTest, BeforeTheAcknowledgementAnExtraStreamIsRefusedAlone) {
  open(1);
  output();
  // No SETTINGS ACK from the client yet: the connection is not at fault (RFC 9113 §6.5.3), so
  // the extra stream alone is refused with RST_STREAM(REFUSED_STREAM), which a client retries.
  EXPECT_TRUE(session_->receive(kPreface + frame(kSettings, 0, 0, "") +
                                frame(kHeaders, kEndHeaders, 1, headerBlock("/a")) +
                                frame(kHeaders, kEndHeaders, 3, headerBlock("/b"))));
  EXPECT_EQ(limit_violations_, 0);
  bool refused = false;
  for (const auto& f : output()) {
    if (f.type == 0x3 /* RST_STREAM */ && f.stream_id == 3) refused = be32(f.payload, 0) == 7;
    EXPECT_NE(f.type, kGoaway);
  }
  EXPECT_TRUE(refused);
  // Stream 1 completes; after the acknowledgement the limit is enforced on the connection.
  EXPECT_TRUE(session_->receive(frame(kData, kEndStream, 1, "") + frame(kSettings, kAck, 0, "")));
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(*requests_[0].find(":path"), "/a");
  session_->respond(1, Response{200, {}, ""});
  output();
  EXPECT_TRUE(session_->receive(frame(kHeaders, kEndHeaders, 5, headerBlock("/c"))));
  EXPECT_FALSE(session_->receive(frame(kHeaders, kEndHeaders, 7, headerBlock("/d"))));
  EXPECT_EQ(limit_violations_, 1);
}

TEST_F(ServerSessionTest, ARaisedLimitAppliesOnceAcknowledged) {
  open(1);
  output();
  ASSERT_TRUE(session_->receive(kPreface + frame(kSettings, 0, 0, "") +
                                frame(kSettings, kAck, 0, "") +
                                frame(kHeaders, kEndHeaders, 1, headerBlock("/a"))));
  session_->setMaxConcurrentStreams(2);
  auto frames = output();
  bool settings = false;
  for (const auto& f : frames) {
    // SETTINGS_MAX_CONCURRENT_STREAMS (0x3) = 2
    if (f.type == kSettings && f.payload.size() == 6 && f.payload[1] == 0x3) {
      settings = be32(f.payload, 2) == 2;
    }
  }
  EXPECT_TRUE(settings);
  EXPECT_TRUE(session_->receive(frame(kSettings, kAck, 0, "") +
                                frame(kHeaders, kEndHeaders, 3, headerBlock("/b"))));
  EXPECT_EQ(limit_violations_, 0);
  EXPECT_FALSE(session_->receive(frame(kHeaders, kEndHeaders, 5, headerBlock("/c"))));
  EXPECT_EQ(limit_violations_, 1);
}

}  // namespace
}  // namespace pushhub::connectors::http2
