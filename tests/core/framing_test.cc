#include "core/framing.h"

#include <random>
#include <string>
#include <vector>

#include "core/manifold.pb.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/message_filler.h"

namespace manifold {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::manifold::testing::OneOfEachKind;
using ::testing::HasSubstr;

// Feeds `pieces` to a decoder and returns every message it yields, or the
// first error.
template <typename Message>
absl::StatusOr<std::vector<Message>> DecodePieces(
    const std::vector<std::string>& pieces, size_t max_frame_bytes = 1 << 20) {
  FrameDecoder decoder(
      FrameDecoder::Options{.max_frame_bytes = max_frame_bytes});
  std::vector<Message> out;
  for (const std::string& piece : pieces) {
    decoder.Append(piece);
    while (true) {
      Message message;
      absl::StatusOr<bool> got = decoder.Next(message);
      if (!got.ok()) return got.status();
      if (!*got) break;
      out.push_back(std::move(message));
    }
  }
  if (absl::Status end = decoder.CheckEndOfStream(); !end.ok()) return end;
  return out;
}

template <typename Message>
std::string EncodeAll(const std::vector<Message>& messages) {
  std::string wire;
  for (const Message& m : messages) AppendFrame(m, &wire);
  return wire;
}

template <typename Message>
void ExpectSameMessages(const std::vector<Message>& actual,
                        const std::vector<Message>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(actual[i], expected[i]))
        << "message " << i << "\nactual:\n"
        << actual[i].DebugString() << "expected:\n"
        << expected[i].DebugString();
  }
}

TEST(FramingTest, EveryClientMessageKindRoundTrips) {
  const auto messages = OneOfEachKind<wire::ClientMessage>();
  ASSERT_EQ(messages.size(), 11u);
  auto decoded = DecodePieces<wire::ClientMessage>({EncodeAll(messages)});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameMessages(*decoded, messages);
}

TEST(FramingTest, EveryServerMessageKindRoundTrips) {
  const auto messages = OneOfEachKind<wire::ServerMessage>();
  ASSERT_EQ(messages.size(), 9u);
  auto decoded = DecodePieces<wire::ServerMessage>({EncodeAll(messages)});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameMessages(*decoded, messages);
}

TEST(FramingTest, EveryBrokerEventKindRoundTrips) {
  const auto messages = OneOfEachKind<wire::BrokerEvent>();
  auto decoded = DecodePieces<wire::BrokerEvent>({EncodeAll(messages)});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameMessages(*decoded, messages);
}

TEST(FramingTest, SplittingTheStreamAtEveryPointYieldsTheSameMessages) {
  const auto messages = OneOfEachKind<wire::ClientMessage>();
  const std::string wire = EncodeAll(messages);
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    auto decoded = DecodePieces<wire::ClientMessage>(
        {wire.substr(0, cut), wire.substr(cut)});
    ASSERT_TRUE(decoded.ok()) << "cut at " << cut << ": " << decoded.status();
    ExpectSameMessages(*decoded, messages);
  }
}

TEST(FramingTest, OneByteAtATimeYieldsTheSameMessages) {
  const auto messages = OneOfEachKind<wire::ServerMessage>();
  const std::string wire = EncodeAll(messages);
  std::vector<std::string> bytes;
  for (char c : wire) bytes.emplace_back(1, c);
  auto decoded = DecodePieces<wire::ServerMessage>(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameMessages(*decoded, messages);
}

TEST(FramingTest, RandomSplitsYieldTheSameMessages) {
  const uint32_t seed = 7;
  std::mt19937 rng(seed);
  const auto messages = OneOfEachKind<wire::ClientMessage>();
  const std::string wire = EncodeAll(messages);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> pieces;
    size_t at = 0;
    while (at < wire.size()) {
      size_t n = std::uniform_int_distribution<size_t>(0, 40)(rng);
      pieces.push_back(wire.substr(at, n));
      at += n;
    }
    auto decoded = DecodePieces<wire::ClientMessage>(pieces);
    ASSERT_TRUE(decoded.ok()) << "seed " << seed << " round " << round;
    ExpectSameMessages(*decoded, messages);
  }
}

TEST(FramingTest, EmptyMessageIsAZeroLengthFrame) {
  wire::ClientMessage empty;
  EXPECT_EQ(EncodeFrame(empty), std::string(1, '\0'));
  auto decoded = DecodePieces<wire::ClientMessage>({std::string(1, '\0')});
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->size(), 1u);
}

TEST(FramingTest, StreamCutInsideAFrameIsTruncated) {
  const std::string wire = EncodeAll(OneOfEachKind<wire::ClientMessage>());
  auto decoded =
      DecodePieces<wire::ClientMessage>({wire.substr(0, wire.size() - 3)});
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(WireCode(decoded.status()), wire::TRUNCATED_FRAME);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr("stream ended inside a frame"));
}

TEST(FramingTest, StreamCutInsideALengthPrefixIsTruncated) {
  auto decoded =
      DecodePieces<wire::ClientMessage>({std::string("\x80\x80", 2)});
  EXPECT_EQ(WireCode(decoded.status()), wire::TRUNCATED_FRAME);
}

TEST(FramingTest, OversizedFrameIsRejectedAsSoonAsThePrefixArrives) {
  wire::ClientMessage big;
  big.mutable_publish()->set_payload(std::string(2000, 'p'));
  const std::string wire = EncodeFrame(big);
  FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1000});
  decoder.Append(wire.substr(0, 2));  // just the two-byte length prefix
  wire::ClientMessage message;
  absl::StatusOr<bool> got = decoder.Next(message);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(WireCode(got.status()), wire::FRAME_TOO_LARGE);
  EXPECT_THAT(got.status().message(),
              HasSubstr("exceeds the limit of 1000 bytes"));
  // The error sticks.
  decoder.Append(wire.substr(2));
  EXPECT_EQ(WireCode(decoder.Next(message).status()), wire::FRAME_TOO_LARGE);
}

TEST(FramingTest, OverlongLengthPrefixIsABadPrefix) {
  auto decoded = DecodePieces<wire::ClientMessage>({std::string(11, '\xff')});
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(WireCode(decoded.status()), wire::BAD_LENGTH_PREFIX);
}

TEST(FramingTest, GarbageBodyIsMalformed) {
  // A 4-byte frame whose body starts a field with wire type 7 (invalid).
  auto decoded = DecodePieces<wire::ClientMessage>(
      {std::string("\x04\xff\xff\xff\xff", 5)});
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(WireCode(decoded.status()), wire::MALFORMED_MESSAGE);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr("does not parse as manifold.wire.ClientMessage"));
}

TEST(FramingTest, BodyWithTruncatedFieldIsMalformed) {
  // Frame of 3 bytes: field 4 (publish), length 10, but only 1 byte follows.
  auto decoded =
      DecodePieces<wire::ClientMessage>({std::string("\x03\x22\x0a\x08", 4)});
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(WireCode(decoded.status()), wire::MALFORMED_MESSAGE);
}

TEST(FramingTest, InvalidUtf8InAStringFieldIsMalformed) {
  std::string body = "\x22";  // ClientMessage.publish
  std::string inner = std::string("\x12\x02\xc3\x28", 4);  // topic: bad UTF-8
  body += static_cast<char>(inner.size());
  body += inner;
  std::string frame(1, static_cast<char>(body.size()));
  frame += body;
  auto decoded = DecodePieces<wire::ClientMessage>({frame});
  EXPECT_EQ(WireCode(decoded.status()), wire::MALFORMED_MESSAGE);
}

TEST(FramingTest, LocateFrameDoesNotConsumePartialFrames) {
  const std::string frame =
      EncodeFrame(OneOfEachKind<wire::ClientMessage>()[3]);
  for (size_t n = 0; n < frame.size(); ++n) {
    auto located = LocateFrame(absl::string_view(frame).substr(0, n), 1 << 20);
    ASSERT_TRUE(located.ok());
    EXPECT_FALSE(located->has_value()) << n;
  }
  auto located = LocateFrame(frame + "trailing", 1 << 20);
  ASSERT_TRUE(located.ok() && located->has_value());
  EXPECT_EQ((*located)->size, frame.size());
}

TEST(FramingTest, DecoderBufferStaysBounded) {
  const std::string frame =
      EncodeFrame(OneOfEachKind<wire::ClientMessage>()[3]);
  FrameDecoder decoder(FrameDecoder::Options{});
  wire::ClientMessage message;
  for (int i = 0; i < 10000; ++i) {
    decoder.Append(frame);
    ASSERT_TRUE(*decoder.Next(message));
  }
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

}  // namespace
}  // namespace manifold
