#include "broker/internal/native_codec.h"

#include <random>
#include <string>

#include "core/framing.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/message_filler.h"

namespace manifold {
namespace {

using ::manifold::internal::DecodePublishBody;
using ::manifold::internal::NativeCodec;

using ::google::protobuf::util::MessageDifferencer;

// Converts what the fast path decoded back into a message for comparison.
wire::Publish ToMessage(const PublishOp& op) {
  wire::Publish p;
  p.set_op_id(op.op_id);
  p.set_topic(std::string(op.topic));
  p.set_payload(std::string(op.payload));
  p.set_reply_to(std::string(op.reply_to));
  p.set_ack(op.ack);
  p.set_no_responders(op.no_responders);
  for (const HeaderView& h : op.headers) {
    wire::Header* header = p.add_headers();
    header->set_key(std::string(h.key));
    header->set_value(std::string(h.value));
  }
  return p;
}

wire::Publish RandomPublish(std::mt19937& rng) {
  wire::Publish p;
  if (rng() % 2) p.set_op_id(rng());
  p.set_topic(absl::StrCat("t/", rng() % 100));
  if (rng() % 4) p.set_payload(std::string(rng() % 300, 'p'));
  for (int i = rng() % 3; i > 0; --i) {
    wire::Header* h = p.add_headers();
    h->set_key(absl::StrCat("k", i));
    h->set_value(std::string(rng() % 5, 'v'));
  }
  if (rng() % 3 == 0) p.set_reply_to("inbox/1");
  p.set_ack(rng() % 2);
  p.set_no_responders(rng() % 2);
  return p;
}

TEST(NativeCodecTest, FastPublishPathAgreesWithTheGeneratedParser) {
  std::mt19937 rng(11);
  NativeCodec codec;
  for (int i = 0; i < 500; ++i) {
    wire::ClientMessage m;
    *m.mutable_publish() = RandomPublish(rng);
    const std::string frame = EncodeFrame(m);
    Operation op;
    absl::StatusOr<size_t> used = codec.Decode(frame, 1 << 20, op);
    ASSERT_TRUE(used.ok());
    ASSERT_EQ(*used, frame.size());
    ASSERT_EQ(op.kind, Operation::Kind::kPublish);
    EXPECT_TRUE(MessageDifferencer::Equals(ToMessage(op.publish), m.publish()))
        << m.DebugString();
  }
}

TEST(NativeCodecTest, UnknownFieldsInAPublishAreSkipped) {
  wire::ClientMessage m;
  m.mutable_publish()->set_topic("t");
  std::string body = m.publish().SerializeAsString();
  body += std::string("\xa8\x06\x05", 3);  // field 101, varint 5
  PublishOp op;
  ASSERT_TRUE(DecodePublishBody(body, op));
  EXPECT_EQ(op.topic, "t");
}

// The code NativeCodec::Decode gives a frame of a ClientMessage whose
// publish field holds `body` (under 128 bytes).
wire::Code DecodeCode(const std::string& body) {
  std::string message = "\x22";
  message += static_cast<char>(body.size());
  message += body;
  std::string frame(1, static_cast<char>(message.size()));
  frame += message;
  NativeCodec codec;
  Operation decoded;
  return WireCode(codec.Decode(frame, 1 << 20, decoded).status());
}

TEST(NativeCodecTest, InvalidUtf8TopicFallsBackAndIsMalformed) {
  std::string body = std::string("\x12\x02\xc3\x28", 4);
  PublishOp op;
  EXPECT_FALSE(DecodePublishBody(body, op));
  EXPECT_EQ(DecodeCode(body), wire::MALFORMED_MESSAGE);
}

// A header whose bytes end inside a field's tag is malformed, as the
// generated parser says: a tag cut short reads as 0, like a clean end.
TEST(NativeCodecTest, HeaderEndingInsideATagIsMalformed) {
  const std::string body("\x22\x02\xff\xff", 4);  // headers: {ff ff}
  wire::Publish parsed;
  EXPECT_FALSE(parsed.ParseFromString(body));
  PublishOp op;
  EXPECT_FALSE(DecodePublishBody(body, op));
  EXPECT_EQ(DecodeCode(body), wire::MALFORMED_MESSAGE);
}

TEST(NativeCodecTest, OtherOperationsUseTheGeneratedParser) {
  NativeCodec codec;
  for (const wire::ClientMessage& m :
       testing::OneOfEachKind<wire::ClientMessage>()) {
    const std::string frame = EncodeFrame(m);
    Operation op;
    absl::StatusOr<size_t> used = codec.Decode(frame + "x", 1 << 20, op);
    ASSERT_TRUE(used.ok()) << used.status();
    EXPECT_EQ(*used, frame.size());
    if (m.has_publish()) {
      EXPECT_EQ(op.kind, Operation::Kind::kPublish);
    } else {
      EXPECT_EQ(op.kind, Operation::Kind::kMessage);
      EXPECT_TRUE(MessageDifferencer::Equals(op.message, m));
    }
  }
}

TEST(NativeCodecTest, PartialFrameNeedsMoreInput) {
  wire::ClientMessage m;
  m.mutable_publish()->set_topic("t");
  const std::string frame = EncodeFrame(m);
  NativeCodec codec;
  Operation op;
  for (size_t n = 0; n < frame.size(); ++n) {
    absl::StatusOr<size_t> used = codec.Decode(frame.substr(0, n), 1 << 20, op);
    ASSERT_TRUE(used.ok());
    EXPECT_EQ(*used, 0u);
  }
}

TEST(NativeCodecTest, DeliveryFrameParsesAsTheEquivalentMessage) {
  std::mt19937 rng(5);
  NativeCodec codec;
  for (int i = 0; i < 200; ++i) {
    const wire::Publish p = RandomPublish(rng);
    const std::string body = p.SerializeAsString();  // op's views point here
    PublishOp op;
    ASSERT_TRUE(DecodePublishBody(body, op));
    SharedMessage::Scratch scratch;
    SharedMessage shared(op, scratch);
    OutboundBuffer out;
    const uint64_t subscription = 1 + rng() % 1000000;
    codec.EncodeDelivery(shared, SubscriptionId(subscription), out);
    codec.EncodeDelivery(shared, SubscriptionId(7), out);  // reuses encoding
    std::string bytes;
    absl::string_view chunks[8];
    const size_t n = out.Peek(absl::MakeSpan(chunks));
    for (size_t k = 0; k < n; ++k)
      bytes.append(chunks[k].data(), chunks[k].size());

    wire::ServerMessage expected;
    wire::Deliver* d = expected.mutable_deliver();
    d->set_subscription_id(subscription);
    d->set_topic(p.topic());
    d->set_payload(p.payload());
    *d->mutable_headers() = p.headers();
    d->set_reply_to(p.reply_to());
    // Byte for byte what protobuf itself would write.
    std::string canonical = EncodeFrame(expected);
    expected.mutable_deliver()->set_subscription_id(7);
    canonical += EncodeFrame(expected);
    ASSERT_EQ(bytes, canonical) << p.DebugString();
  }
}

TEST(NativeCodecTest, EncodeWritesOneDelimitedFrame) {
  NativeCodec codec;
  OutboundBuffer out;
  wire::ServerMessage m;
  m.mutable_ack()->set_op_id(3);
  codec.Encode(m, out);
  absl::string_view chunk[1];
  out.Peek(absl::MakeSpan(chunk));
  EXPECT_EQ(chunk[0], EncodeFrame(m));
}

}  // namespace
}  // namespace manifold
