// The load tool's protocol layer: what it writes is what the broker's own
// decoders read, and it decodes what servers send, whole or in pieces.

#include "client/load/load_wire.h"

#include <optional>
#include <string>

#include "broker/internal/native_codec.h"
#include "broker/protocol_codec.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/nats/parser.h"
#include "gtest/gtest.h"

namespace manifold::load {
namespace {

using ::manifold::internal::NativeCodec;

std::string NativeFrame(const wire::ServerMessage& m) { return EncodeFrame(m); }

// Parses all of `input` and returns the one event it holds.
ServerEvent ParseOne(const LoadWire& wire, absl::string_view input) {
  ServerEvent event;
  absl::StatusOr<size_t> used = wire.Parse(input, event);
  EXPECT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(used.value_or(0), input.size());
  return event;
}

// Every proper prefix of `input` is incomplete.
void ExpectNeedsAllOf(const LoadWire& wire, absl::string_view input) {
  for (size_t n = 0; n < input.size(); ++n) {
    ServerEvent event;
    absl::StatusOr<size_t> used = wire.Parse(input.substr(0, n), event);
    ASSERT_TRUE(used.ok()) << n << ": " << used.status();
    EXPECT_EQ(*used, 0u) << "prefix of " << n << " bytes";
  }
}

TEST(ProtocolTest, NamesRoundTrip) {
  EXPECT_EQ(*ParseProtocol("native"), Protocol::kNative);
  EXPECT_EQ(*ParseProtocol("nats"), Protocol::kNats);
  EXPECT_EQ(ProtocolName(Protocol::kNats), "nats");
  EXPECT_FALSE(ParseProtocol("mqtt").ok());
}

TEST(NativeWireTest, SpellsSubjectsAsTopics) {
  auto wire = LoadWire::For(Protocol::kNative);
  EXPECT_EQ(wire->Subject("bench.a.data"), "bench/a/data");
  EXPECT_EQ(wire->Subject("bench.*.data"), "bench/*/data");
  EXPECT_EQ(wire->Subject("bench.>"), "bench/*/**");
}

TEST(NativeWireTest, PublishTemplateIsAPublishTheBrokerReads) {
  auto wire = LoadWire::For(Protocol::kNative);
  MessageTemplate t = wire->PublishTemplate("bench.data", "", 300);
  ASSERT_EQ(t.payload_size, 300u);
  std::string bytes = t.bytes;
  for (size_t i = 0; i < 300; ++i) bytes[t.payload_offset + i] = 'a' + i % 26;
  NativeCodec codec;
  Operation op;
  absl::StatusOr<size_t> used = codec.Decode(bytes, 1 << 20, op);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(*used, bytes.size());
  ASSERT_EQ(op.kind, Operation::Kind::kPublish);
  EXPECT_EQ(op.publish.topic, "bench/data");
  EXPECT_EQ(op.publish.payload, bytes.substr(t.payload_offset, 300));
}

TEST(NativeWireTest, DecodesDeliveriesWholeAndInPieces) {
  auto wire = LoadWire::For(Protocol::kNative);
  wire::ServerMessage m;
  m.mutable_deliver()->set_subscription_id(9);
  m.mutable_deliver()->set_topic("bench/data");
  m.mutable_deliver()->set_payload("hello");
  m.mutable_deliver()->set_reply_to("inbox/1");
  const std::string frame = NativeFrame(m);
  const ServerEvent e = ParseOne(*wire, frame);
  EXPECT_EQ(e.kind, ServerEvent::Kind::kMessage);
  EXPECT_EQ(e.id, 9u);
  EXPECT_EQ(e.subject, "bench/data");
  EXPECT_EQ(e.payload, "hello");
  EXPECT_EQ(e.reply_to, "inbox/1");
  ExpectNeedsAllOf(*wire, frame);
}

TEST(NativeWireTest, DecodesServiceTrafficPongsAndErrors) {
  auto wire = LoadWire::For(Protocol::kNative);
  wire::ServerMessage request;
  request.mutable_request()->set_request_id(5);
  request.mutable_request()->set_payload("q");
  const std::string request_frame = NativeFrame(request);
  ServerEvent e = ParseOne(*wire, request_frame);
  EXPECT_EQ(e.kind, ServerEvent::Kind::kRequest);
  EXPECT_EQ(e.id, 5u);
  EXPECT_EQ(e.payload, "q");

  wire::ServerMessage response;
  response.mutable_response()->set_op_id(6);
  response.mutable_response()->set_status(wire::TIMED_OUT);
  e = ParseOne(*wire, NativeFrame(response));
  EXPECT_EQ(e.kind, ServerEvent::Kind::kResponse);
  EXPECT_EQ(e.id, 6u);
  EXPECT_FALSE(e.ok);

  wire::ServerMessage pong;
  pong.mutable_pong()->set_op_id(7);
  e = ParseOne(*wire, NativeFrame(pong));
  EXPECT_EQ(e.kind, ServerEvent::Kind::kPong);
  EXPECT_EQ(e.id, 7u);

  wire::ServerMessage error;
  error.mutable_error()->set_code(wire::SLOW_CONSUMER);
  error.mutable_error()->set_message("too slow");
  error.mutable_error()->set_fatal(true);
  e = ParseOne(*wire, NativeFrame(error));
  EXPECT_EQ(e.kind, ServerEvent::Kind::kError);
  EXPECT_TRUE(e.fatal);
  EXPECT_EQ(e.text, "SLOW_CONSUMER: too slow");
}

// The one ClientMessage framed in `bytes`.
wire::ClientMessage OneClientMessage(absl::string_view bytes) {
  absl::StatusOr<std::optional<FrameView>> frame =
      LocateFrame(bytes, kDefaultMaxFrameBytes);
  wire::ClientMessage m;
  EXPECT_TRUE(frame.ok() && frame->has_value());
  if (!frame.ok() || !frame->has_value()) return m;
  EXPECT_EQ((*frame)->size, bytes.size());
  EXPECT_TRUE(m.ParseFromArray((*frame)->body.data(),
                               static_cast<int>((*frame)->body.size())));
  return m;
}

TEST(NativeWireTest, AckedPublishAsksForAnAckWithItsOpId) {
  auto wire = LoadWire::For(Protocol::kNative);
  std::string out;
  wire->AppendAckedPublish("bench.r1.data", "_INBOX.ignored.1", 77, "payload",
                           out);
  const wire::ClientMessage m = OneClientMessage(out);
  ASSERT_TRUE(m.has_publish());
  EXPECT_EQ(m.publish().op_id(), 77u);
  EXPECT_TRUE(m.publish().ack());
  EXPECT_EQ(m.publish().topic(), "bench/r1/data");
  EXPECT_EQ(m.publish().payload(), "payload");
  // Native acks come by op id, not on a reply topic.
  EXPECT_EQ(m.publish().reply_to(), "");
}

TEST(NativeWireTest, ReplaySubscribeNamesTheStreamAndTheFirstSequence) {
  auto wire = LoadWire::For(Protocol::kNative);
  std::string out;
  ASSERT_TRUE(wire->AppendReplaySubscribe("bench.>", "BENCH", 42, 1, out));
  const wire::ClientMessage m = OneClientMessage(out);
  ASSERT_TRUE(m.has_subscribe());
  EXPECT_EQ(m.subscribe().op_id(), 1u);
  EXPECT_EQ(m.subscribe().pattern(), "bench/*/**");
  ASSERT_TRUE(m.subscribe().has_replay());
  EXPECT_EQ(m.subscribe().replay().stream(), "BENCH");
  EXPECT_EQ(m.subscribe().replay().from_seq(), 42u);
}

TEST(NativeWireTest, DecodesTheStreamSequenceOfReplayedDeliveries) {
  auto wire = LoadWire::For(Protocol::kNative);
  wire::ServerMessage m;
  m.mutable_deliver()->set_subscription_id(3);
  m.mutable_deliver()->set_topic("bench/r1/data");
  m.mutable_deliver()->set_payload("stored");
  m.mutable_deliver()->set_stream_seq(123456789);
  m.mutable_deliver()->set_stream_time_unix_ms(1700000000000);
  // The event's views point into the frame: it outlives them.
  const std::string frame = NativeFrame(m);
  const ServerEvent e = ParseOne(*wire, frame);
  EXPECT_EQ(e.kind, ServerEvent::Kind::kMessage);
  EXPECT_EQ(e.stream_seq, 123456789u);
  EXPECT_EQ(e.payload, "stored");
  // A live delivery has none.
  m.mutable_deliver()->clear_stream_seq();
  EXPECT_EQ(ParseOne(*wire, NativeFrame(m)).stream_seq, 0u);
}

TEST(NativeWireTest, RejectsBytesThatAreNotFrames) {
  auto wire = LoadWire::For(Protocol::kNative);
  ServerEvent event;
  EXPECT_FALSE(wire->Parse(std::string(11, '\xff'), event).ok());
  // A frame whose body is not one ServerMessage field.
  EXPECT_FALSE(wire->Parse(std::string("\x02\x08\x01", 3), event).ok());
}

TEST(NatsWireTest, PublishTemplateIsAPubTheParserReads) {
  auto wire = LoadWire::For(Protocol::kNats);
  MessageTemplate t = wire->PublishTemplate("bench.data", "_INBOX.x", 16);
  EXPECT_EQ(t.bytes.substr(0, t.payload_offset),
            "PUB bench.data _INBOX.x 16\r\n");
  nats::Command command;
  absl::StatusOr<size_t> used =
      nats::ParseCommand(t.bytes, nats::ParseLimits(), command);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(*used, t.bytes.size());
  EXPECT_EQ(command.payload.data(), t.bytes.data() + t.payload_offset);
  EXPECT_EQ(command.payload.size(), 16u);
}

TEST(NatsWireTest, WritesTheCommandsNatsServersExpect) {
  auto wire = LoadWire::For(Protocol::kNats);
  std::string out;
  wire->AppendSubscribe("bench.*", "", 1, out);
  wire->AppendSubscribe("bench.data", "workers", 2, out);
  wire->AppendPublish("a.b", "", "hi", out);
  wire->AppendPing(0, out);
  EXPECT_EQ(out,
            "SUB bench.* 1\r\nSUB bench.data workers 2\r\nPUB a.b 2\r\nhi\r\n"
            "PING\r\n");
  std::string connect;
  wire->AppendConnect("bench-pub-0", connect);
  nats::Command command;
  ASSERT_TRUE(nats::ParseCommand(connect, nats::ParseLimits(), command).ok());
  absl::StatusOr<nats::ConnectOptions> options =
      nats::ParseConnectOptions(command.arguments);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_FALSE(options->verbose);
  EXPECT_EQ(options->name, "bench-pub-0");
  std::string serve;
  EXPECT_FALSE(wire->AppendServe("svc", 1, serve));
}

TEST(NatsWireTest, AckedPublishCarriesTheReplySubject) {
  auto wire = LoadWire::For(Protocol::kNats);
  std::string out;
  wire->AppendAckedPublish("bench.r1.data", "_INBOX.benchr1.0.41", 42, "abc",
                           out);
  EXPECT_EQ(out, "PUB bench.r1.data _INBOX.benchr1.0.41 3\r\nabc\r\n");
  // NATS has no replaying subscription.
  EXPECT_FALSE(wire->AppendReplaySubscribe("bench.>", "", 1, 1, out));
}

TEST(NatsWireTest, DecodesMessagesWholeAndInPieces) {
  auto wire = LoadWire::For(Protocol::kNats);
  const std::string msg = "MSG bench.data 12 _INBOX.a.7 5\r\nhello\r\n";
  ServerEvent e = ParseOne(*wire, msg);
  EXPECT_EQ(e.kind, ServerEvent::Kind::kMessage);
  EXPECT_EQ(e.subject, "bench.data");
  EXPECT_EQ(e.id, 12u);
  EXPECT_EQ(e.reply_to, "_INBOX.a.7");
  EXPECT_EQ(e.payload, "hello");
  ExpectNeedsAllOf(*wire, msg);

  e = ParseOne(*wire, "MSG a 1 0\r\n\r\n");
  EXPECT_EQ(e.kind, ServerEvent::Kind::kMessage);
  EXPECT_EQ(e.payload, "");
  EXPECT_EQ(e.reply_to, "");

  const std::string hmsg = "HMSG a 3 12 17\r\nNATS/1.0\r\n\r\nhello\r\n";
  e = ParseOne(*wire, hmsg);
  EXPECT_EQ(e.kind, ServerEvent::Kind::kMessage);
  EXPECT_EQ(e.payload, "hello");
}

TEST(NatsWireTest, DecodesMsgLinesOffTheCommonShape) {
  auto wire = LoadWire::For(Protocol::kNats);
  // A reply subject of digits only: the count is the last field.
  ServerEvent e = ParseOne(*wire, "MSG a 1 123 5\r\nhello\r\n");
  EXPECT_EQ(e.reply_to, "123");
  EXPECT_EQ(e.payload, "hello");
  ExpectNeedsAllOf(*wire, "MSG a 1 123 5\r\nhello\r\n");
  // Extra spaces, and a line ended by "\n" alone.
  e = ParseOne(*wire, "MSG  a   7  2\r\nhi\r\n");
  EXPECT_EQ(e.subject, "a");
  EXPECT_EQ(e.id, 7u);
  EXPECT_EQ(e.payload, "hi");
  e = ParseOne(*wire, "MSG a 7 2\nhi\r\n");
  EXPECT_EQ(e.payload, "hi");
  // Two messages back to back: the first is taken alone.
  ServerEvent first;
  absl::StatusOr<size_t> used =
      wire->Parse("MSG a 1 1\r\nx\r\nMSG b 2 1\r\ny\r\n", first);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, 14u);
  EXPECT_EQ(first.subject, "a");
  EXPECT_EQ(first.payload, "x");
}

TEST(NatsWireTest, DecodesControlLines) {
  auto wire = LoadWire::For(Protocol::kNats);
  EXPECT_EQ(ParseOne(*wire, "PING\r\n").kind, ServerEvent::Kind::kPing);
  EXPECT_EQ(ParseOne(*wire, "PONG\r\n").kind, ServerEvent::Kind::kPong);
  EXPECT_EQ(ParseOne(*wire, "+OK\r\n").kind, ServerEvent::Kind::kOther);
  EXPECT_EQ(ParseOne(*wire, "INFO {\"server_id\":\"x\"} \r\n").kind,
            ServerEvent::Kind::kOther);
  ServerEvent e = ParseOne(*wire, "-ERR 'Slow Consumer'\r\n");
  EXPECT_EQ(e.kind, ServerEvent::Kind::kError);
  EXPECT_TRUE(e.fatal);
  EXPECT_EQ(e.text, "'Slow Consumer'");
  EXPECT_FALSE(ParseOne(*wire, "-ERR 'Invalid Subject'\r\n").fatal);
}

TEST(NatsWireTest, RejectsWhatNoServerSends) {
  auto wire = LoadWire::For(Protocol::kNats);
  ServerEvent event;
  EXPECT_FALSE(wire->Parse("HELLO\r\n", event).ok());
  EXPECT_FALSE(wire->Parse("MSG a\r\n", event).ok());
  EXPECT_FALSE(wire->Parse("MSG a 1 x\r\n", event).ok());
  EXPECT_FALSE(wire->Parse("MSG 5\r\n", event).ok());
  EXPECT_FALSE(wire->Parse("MSG a 1 r s 5\r\n", event).ok());
  EXPECT_FALSE(wire->Parse("MSG a 1 99999999999999999999\r\n", event).ok());
  EXPECT_FALSE(wire->Parse("HMSG a 1 9 5\r\n", event).ok());
}

}  // namespace
}  // namespace manifold::load
