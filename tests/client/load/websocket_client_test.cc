// The load tool's WebSocket reading: server frames come out of the input
// buffer in place, whole or split anywhere, with control frames answered or
// refused, and the stream left between them is exactly the data payloads.

#include "client/load/websocket_client.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace manifold::load {
namespace {

// An unmasked server frame.
std::string Frame(uint8_t first_byte, absl::string_view payload) {
  std::string frame(1, static_cast<char>(first_byte));
  if (payload.size() < 126) {
    frame.push_back(static_cast<char>(payload.size()));
  } else if (payload.size() <= 0xffff) {
    frame.push_back(static_cast<char>(126));
    frame.push_back(static_cast<char>(payload.size() >> 8));
    frame.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    frame.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      frame.push_back(static_cast<char>((payload.size() >> shift) & 0xff));
    }
  }
  frame.append(payload.data(), payload.size());
  return frame;
}

constexpr uint8_t kBinary = 0x82;        // final binary frame
constexpr uint8_t kFirstText = 0x01;     // text, more to come
constexpr uint8_t kContinuation = 0x00;  // more to come
constexpr uint8_t kLast = 0x80;          // final continuation
constexpr uint8_t kPing = 0x89;
constexpr uint8_t kPong = 0x8a;
constexpr uint8_t kClose = 0x88;

// A caller of Deframe() as Link is: raw bytes arrive in pieces of `step`
// bytes; the stream is consumed as soon as it is ready.
struct Reader {
  explicit Reader(size_t capacity) : buffer(capacity, '\0') {}

  // Feeds `raw` in pieces of `step` bytes. Returns the first error.
  absl::Status Feed(absl::string_view raw, size_t step) {
    for (size_t at = 0; at < raw.size(); at += step) {
      const absl::string_view piece = raw.substr(at, step);
      if (end + piece.size() > buffer.size()) {
        // Move the unread bytes to the front, as Link::Fill() does.
        buffer.erase(0, start);
        buffer.resize(buffer.size() + start, '\0');
        ready -= start;
        end -= start;
        start = 0;
      }
      buffer.replace(end, piece.size(), piece.data(), piece.size());
      end += piece.size();
      while (true) {
        stream.append(buffer, start, ready - start);  // consume it all
        start = ready;
        absl::StatusOr<size_t> more =
            ws.Deframe(buffer.data(), start, ready, end, replies);
        if (!more.ok()) return more.status();
        if (*more == 0) break;
      }
    }
    return absl::OkStatus();
  }

  WebSocketClient ws;
  std::string buffer;
  size_t start = 0;
  size_t ready = 0;
  size_t end = 0;
  std::string stream;
  std::string replies;
};

TEST(WebSocketClientTest, JoinsDataPayloadsSplitAnywhere) {
  const std::string big(70000, 'x');   // a 64-bit length
  const std::string medium(300, 'y');  // a 16-bit length
  const std::string raw = Frame(kBinary, "MSG a 1 2\r\nhi\r\n") +
                          Frame(kBinary, "") + Frame(kBinary, medium) +
                          Frame(kFirstText, "PI") + Frame(kContinuation, "N") +
                          Frame(kLast, "G\r\n") + Frame(kBinary, big);
  const std::string expected =
      "MSG a 1 2\r\nhi\r\n" + medium + "PING\r\n" + big;
  for (size_t step : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64},
                      size_t{4096}, raw.size()}) {
    SCOPED_TRACE(step);
    Reader reader(128 * 1024);
    ASSERT_TRUE(reader.Feed(raw, step).ok());
    EXPECT_EQ(reader.stream, expected);
    EXPECT_EQ(reader.end, reader.ready);
    EXPECT_EQ(reader.replies, "");
  }
}

TEST(WebSocketClientTest, KeepsUnconsumedStreamInFrontOfTheNextFrame) {
  // The caller could not parse "MSG a" yet: it must stay, joined to the
  // rest. The header between is closed from the shorter side: the five
  // stream bytes move up here, the one raw byte moves down below.
  const std::string head(300, 'h');
  for (const auto& [first, second] :
       {std::pair<std::string, std::string>{"MSG a", " 1 0\r\n\r\n"},
        std::pair<std::string, std::string>{head, "t"}}) {
    std::string buffer = Frame(kBinary, first) + Frame(kBinary, second);
    WebSocketClient ws;
    size_t start = 0;
    size_t ready = 0;
    size_t end = buffer.size();
    std::string replies;
    ASSERT_EQ(*ws.Deframe(buffer.data(), start, ready, end, replies),
              first.size());
    ASSERT_EQ(*ws.Deframe(buffer.data(), start, ready, end, replies),
              second.size());
    EXPECT_EQ(buffer.substr(start, ready - start), first + second);
    EXPECT_EQ(ready, end);
    EXPECT_EQ(*ws.Deframe(buffer.data(), start, ready, end, replies), 0u);
  }
}

TEST(WebSocketClientTest, AnswersPingsWithMaskedPongsAndSkipsPongs) {
  const std::string raw = Frame(kBinary, "PI") + Frame(kPing, "hello") +
                          Frame(kPong, "x") + Frame(kBinary, "NG\r\n");
  for (size_t step : {size_t{1}, size_t{5}, raw.size()}) {
    SCOPED_TRACE(step);
    Reader reader(4096);
    ASSERT_TRUE(reader.Feed(raw, step).ok());
    EXPECT_EQ(reader.stream, "PING\r\n");
    const std::string& pong = reader.replies;
    ASSERT_EQ(pong.size(), 2u + 4u + 5u);
    EXPECT_EQ(static_cast<uint8_t>(pong[0]), 0x8a);       // final pong
    EXPECT_EQ(static_cast<uint8_t>(pong[1]), 0x80 | 5u);  // masked, 5 bytes
    std::string unmasked;
    for (size_t i = 0; i < 5; ++i)
      unmasked.push_back(pong[6 + i] ^ pong[2 + i % 4]);
    EXPECT_EQ(unmasked, "hello");
  }
}

TEST(WebSocketClientTest, ACloseFrameEndsTheStream) {
  Reader reader(4096);
  const absl::Status status = reader.Feed(
      Frame(kBinary, "PONG\r\n") + Frame(kClose, "\x03\xe8"), /*step=*/1);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(reader.stream, "PONG\r\n");
}

TEST(WebSocketClientTest, RefusesFramesThatBreakTheProtocol) {
  std::string masked = Frame(kBinary, "");
  masked[1] = static_cast<char>(0x80);
  masked.append("abcd");
  const std::vector<std::string> bad = {
      masked,
      Frame(0xc2, "x"),                              // reserved bit
      Frame(0x83, "x"),                              // reserved opcode
      Frame(kContinuation, "x"),                     // nothing to continue
      Frame(kFirstText, "a") + Frame(kBinary, "b"),  // message in message
      Frame(0x09, "x"),                              // fragmented ping
      Frame(kPing, std::string(126, 'p')),           // long ping
      std::string("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10),  // 2^63
  };
  for (const std::string& raw : bad) {
    Reader reader(4096);
    EXPECT_EQ(reader.Feed(raw, raw.size()).code(),
              absl::StatusCode::kInvalidArgument)
        << absl::CEscape(raw);
  }
}

}  // namespace
}  // namespace manifold::load
