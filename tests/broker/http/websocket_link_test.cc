// WebSocketLink's receiving side: whole binary frames that arrive at once
// (its own unmasking) and the same frames fed a byte at a time (wslay's) give
// the same payloads and message ends, and every violation still closes with
// its code.

#include "broker/http/websocket_link.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/outbound_buffer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

using ::testing::ElementsAre;

// A client frame: masked with a fixed key, `length_bytes` 0/2/8 forcing the
// length's form (0: the shortest).
std::string ClientFrame(uint8_t first_byte, absl::string_view payload,
                        int length_bytes = 0) {
  std::string f(1, static_cast<char>(first_byte));
  const uint64_t n = payload.size();
  if (length_bytes == 0) length_bytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  if (length_bytes == 0) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (length_bytes == 2) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      f.push_back(static_cast<char>((n >> shift) & 0xff));
    }
  }
  const char mask[4] = {0x5a, 0x13, static_cast<char>(0xc7), 0x01};
  f.append(mask, 4);
  for (size_t i = 0; i < n; ++i) f.push_back(payload[i] ^ mask[i % 4]);
  return f;
}
std::string Binary(absl::string_view payload) {
  return ClientFrame(0x82, payload);
}

struct Received {
  std::string data;
  std::vector<size_t> ends;
  size_t pongs = 0;
  bool closed = false;
  uint16_t close_code = 0;
  std::string output;  // what the link wrote back (pongs, closes)
};

// Feeds `bytes` to a fresh link `chunk` bytes at a time.
Received Feed(absl::string_view bytes, size_t chunk,
              size_t max_message = 1 << 20) {
  WebSocketLink link(max_message);
  Received r;
  OutboundBuffer out;
  for (size_t at = 0; at < bytes.size(); at += chunk) {
    link.Receive(bytes.substr(at, chunk), r.data);
    for (size_t end : link.message_ends()) r.ends.push_back(end);
    link.clear_message_ends();
    link.Flush(out);
  }
  r.pongs = link.TakePongs();
  r.closed = link.closed();
  r.close_code = link.close_code_sent();
  absl::string_view chunks[64];
  const size_t n = out.Peek(absl::MakeSpan(chunks));
  for (size_t i = 0; i < n; ++i)
    r.output.append(chunks[i].data(), chunks[i].size());
  if (!r.closed) {
    EXPECT_EQ(link.unsettled_bytes(), 0u) << "all input settled";
  }
  return r;
}

TEST(WebSocketLinkTest, WholeFramesAndByteAtATimeGiveTheSameMessages) {
  std::string payloads[] = {"",
                            "a",
                            "0123456",
                            "01234567",
                            "0123456789abcdef",
                            std::string(125, 'x'),
                            std::string(126, 'y'),
                            std::string(70000, 'z')};
  for (int i = 0; i < 8; ++i) payloads[i] += static_cast<char>('A' + i);
  std::string stream;
  std::string expected;
  std::vector<size_t> ends;
  for (const std::string& p : payloads) {
    stream += Binary(p);
    expected += p;
    ends.push_back(expected.size());
  }
  // A ping, then a message in two fragments, then whole frames again.
  stream += ClientFrame(0x89, "hi");
  stream += ClientFrame(0x02, "frag-") + ClientFrame(0x80, "ment");
  expected += "frag-ment";
  ends.push_back(expected.size());
  stream += Binary("after");
  expected += "after";
  ends.push_back(expected.size());

  const Received whole = Feed(stream, stream.size());
  const Received bytewise = Feed(stream, 1);
  const Received odd = Feed(stream, 7);
  for (const Received* r : {&whole, &bytewise, &odd}) {
    EXPECT_EQ(r->data, expected);
    EXPECT_EQ(r->ends, ends);
    EXPECT_FALSE(r->closed);
    EXPECT_EQ(r->output, whole.output);  // the pong to the ping, alike
  }
  EXPECT_EQ(whole.output, std::string("\x8a\x02hi", 4));
}

TEST(WebSocketLinkTest, ViolationsAmongWholeFramesCloseWithTheirCodes) {
  // A data frame inside a fragmented message: 1002.
  const std::string interleaved =
      ClientFrame(0x02, "a") + Binary("b") + ClientFrame(0x80, "c");
  // An unmasked client frame: 1002.
  const std::string unmasked = Binary("ok") + std::string("\x82\x01x", 3);
  // Reserved bits: 1002.
  const std::string reserved = Binary("ok") + ClientFrame(0xc2, "rsv");
  // Over the message limit (100 bytes): 1009.
  const std::string big = Binary("ok") + Binary(std::string(101, 'b'));
  for (size_t chunk : {size_t{1} << 20, size_t{1}}) {
    SCOPED_TRACE(chunk);
    EXPECT_EQ(Feed(interleaved, chunk, 100).close_code, 1002);
    const Received u = Feed(unmasked, chunk, 100);
    EXPECT_EQ(u.data, "ok");
    EXPECT_EQ(u.close_code, 1002);
    EXPECT_EQ(Feed(reserved, chunk, 100).close_code, 1002);
    const Received b = Feed(big, chunk, 100);
    EXPECT_EQ(b.data, "ok");
    EXPECT_THAT(b.ends, ElementsAre(2u));
    EXPECT_EQ(b.close_code, 1009);
  }
}

TEST(WebSocketLinkTest, LengthsInALongerFormThanNeededAreRefusedAlike) {
  for (int form : {2, 8}) {
    const std::string stream = Binary("ok") + ClientFrame(0x82, "short", form);
    const Received whole = Feed(stream, stream.size());
    const Received bytewise = Feed(stream, 1);
    EXPECT_EQ(whole.data, "ok");
    EXPECT_TRUE(whole.closed);
    EXPECT_EQ(bytewise.data, whole.data);
    EXPECT_EQ(bytewise.closed, whole.closed);
    EXPECT_EQ(bytewise.close_code, whole.close_code);
  }
}

TEST(WebSocketLinkTest, NothingIsTakenAfterAClose) {
  const std::string stream = Binary("one") +
                             ClientFrame(0x88, std::string("\x03\xe8", 2)) +
                             Binary("two");
  for (size_t chunk : {size_t{1} << 20, size_t{1}}) {
    const Received r = Feed(stream, chunk);
    EXPECT_EQ(r.data, "one");
    EXPECT_TRUE(r.closed);
    EXPECT_THAT(r.ends, ElementsAre(3u));
  }
}

}  // namespace
}  // namespace manifold
