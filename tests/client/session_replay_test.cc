// ClientSession's side of durable streams: a Subscribe with a replay is
// encoded as the protocol says, deliveries carry their stream sequence and
// time, and a broker's UNKNOWN_STREAM reaches the caller with its words. The
// test plays the broker by hand, frame by frame, so it needs no broker that
// stores streams.

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "client/errors.h"
#include "client/session.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

class SessionReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The Hello, then the broker's Welcome.
    ASSERT_THAT(Sent(), SizeIs(1));
    wire::ServerMessage welcome;
    welcome.mutable_welcome()->set_session_id(7);
    Answer(welcome);
    std::vector<session::Event> events = Events();
    ASSERT_THAT(events, SizeIs(1));
    ASSERT_TRUE(std::holds_alternative<session::Welcomed>(events[0]));
  }

  // Every frame the session sent since the last call.
  std::vector<wire::ClientMessage> Sent() {
    FrameDecoder decoder(FrameDecoder::Options{});
    decoder.Append(session_.TakeOutput());
    std::vector<wire::ClientMessage> frames;
    wire::ClientMessage m;
    while (true) {
      absl::StatusOr<bool> got = decoder.Next(m);
      EXPECT_TRUE(got.ok()) << got.status();
      if (!got.ok() || !*got) break;
      frames.push_back(m);
    }
    return frames;
  }

  // The one Subscribe the session sent since the last call.
  wire::Subscribe SentSubscribe() {
    std::vector<wire::ClientMessage> frames = Sent();
    EXPECT_THAT(frames, SizeIs(1));
    if (frames.empty() || !frames[0].has_subscribe()) {
      ADD_FAILURE() << "no Subscribe was sent";
      return wire::Subscribe();
    }
    return frames[0].subscribe();
  }

  void Answer(const wire::ServerMessage& m) {
    session_.Receive(EncodeFrame(m));
  }

  void Ack(uint64_t op_id, uint64_t subscription_id) {
    wire::ServerMessage m;
    m.mutable_ack()->set_op_id(op_id);
    m.mutable_ack()->set_subscription_id(subscription_id);
    Answer(m);
  }

  void Deliver(uint64_t subscription_id, const std::string& payload,
               uint64_t seq, int64_t time_ms) {
    wire::ServerMessage m;
    wire::Deliver* d = m.mutable_deliver();
    d->set_subscription_id(subscription_id);
    d->set_topic("orders/1");
    d->set_payload(payload);
    d->set_stream_seq(seq);
    d->set_stream_time_unix_ms(time_ms);
    Answer(m);
  }

  std::vector<session::Event> Events() {
    std::vector<session::Event> events;
    while (std::optional<session::Event> e = session_.PollEvent()) {
      events.push_back(std::move(*e));
    }
    return events;
  }

  ClientSession session_{ClientSessionOptions{}};
};

TEST_F(SessionReplayTest, SubscribeWithoutReplaySendsNone) {
  ASSERT_TRUE(session_.Subscribe("orders/*", "", 1).ok());
  const wire::Subscribe sub = SentSubscribe();
  EXPECT_EQ(sub.pattern(), "orders/*");
  EXPECT_FALSE(sub.has_replay());
}

TEST_F(SessionReplayTest, EachStartIsEncodedInTheReplayOneof) {
  SubscribeOptions options;
  options.queue_group = "workers";
  options.replay = Replay{.stream = "orders", .start = Replay::FromSeq{42}};
  ASSERT_TRUE(session_.Subscribe("orders/**", options, 1).ok());
  wire::Subscribe sub = SentSubscribe();
  EXPECT_EQ(sub.queue_group(), "workers");
  EXPECT_EQ(sub.replay().stream(), "orders");
  EXPECT_EQ(sub.replay().start_case(), wire::Replay::kFromSeq);
  EXPECT_EQ(sub.replay().from_seq(), 42u);

  options = SubscribeOptions();
  options.replay =
      Replay{.start = Replay::Since{absl::FromUnixMillis(1764768300123)}};
  ASSERT_TRUE(session_.Subscribe("orders/**", options, 2).ok());
  sub = SentSubscribe();
  EXPECT_EQ(sub.replay().stream(), "");
  EXPECT_EQ(sub.replay().start_case(), wire::Replay::kSinceUnixMs);
  EXPECT_EQ(sub.replay().since_unix_ms(), 1764768300123);

  options.replay = Replay{.stream = "s", .start = Replay::Last{2}};
  ASSERT_TRUE(session_.Subscribe("orders/**", options, 3).ok());
  sub = SentSubscribe();
  EXPECT_EQ(sub.replay().start_case(), wire::Replay::kLast);
  EXPECT_EQ(sub.replay().last(), 2u);

  options.replay = Replay{.stream = "s", .start = Replay::LastPerTopic{}};
  ASSERT_TRUE(session_.Subscribe("orders/**", options, 4).ok());
  sub = SentSubscribe();
  EXPECT_EQ(sub.replay().start_case(), wire::Replay::kLastPerTopic);
  EXPECT_TRUE(sub.replay().last_per_topic());

  // New messages only: a replay with no start.
  options.replay = Replay{.stream = "s"};
  ASSERT_TRUE(session_.Subscribe("orders/**", options, 5).ok());
  sub = SentSubscribe();
  EXPECT_TRUE(sub.has_replay());
  EXPECT_EQ(sub.replay().stream(), "s");
  EXPECT_EQ(sub.replay().start_case(), wire::Replay::START_NOT_SET);
}

TEST_F(SessionReplayTest, AnErrorThatEndsASubscriptionSaysWhich) {
  SubscribeOptions options;
  options.replay = Replay{.stream = "orders", .start = Replay::FromSeq{1}};
  absl::StatusOr<uint64_t> op = session_.Subscribe("orders/*", options, 9);
  ASSERT_TRUE(op.ok());
  Ack(*op, 100);
  wire::ServerMessage error;
  error.mutable_error()->set_code(wire::UNKNOWN_STREAM);
  error.mutable_error()->set_message("the stream 'orders' was removed");
  error.mutable_error()->set_subscription_id(100);
  error.mutable_error()->set_pattern("orders/*");
  Answer(error);
  Deliver(100, "stale", 7, 1);  // sent before the broker ended it
  std::vector<session::Event> events = Events();
  ASSERT_THAT(events, SizeIs(2));
  auto* ended = std::get_if<session::AsyncError>(&events[1]);
  ASSERT_NE(ended, nullptr);
  EXPECT_EQ(ended->subscription_id, 100u);
  EXPECT_EQ(ended->handle, 9u);
  EXPECT_EQ(ended->status.message(),
            "UNKNOWN_STREAM: the stream 'orders' was removed");
  EXPECT_EQ(session_.FindSubscription(100), nullptr);
  EXPECT_EQ(session_.dropped_deliveries(), 1u);
  EXPECT_TRUE(session_.open());
}

TEST_F(SessionReplayTest, AReplayWithNoStartIsRefusedBeforeSending) {
  SubscribeOptions options;
  options.replay = Replay{.start = Replay::Last{0}};
  absl::StatusOr<uint64_t> op = session_.Subscribe("orders/*", options, 1);
  EXPECT_EQ(op.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(op.status().message(), HasSubstr("last 0 messages"));

  options.replay = Replay{.start = Replay::Since{absl::InfinitePast()}};
  op = session_.Subscribe("orders/*", options, 1);
  EXPECT_EQ(op.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(session_.TakeOutput().empty());
  EXPECT_EQ(session_.pending_operations(), 0u);
}

TEST_F(SessionReplayTest, DeliveriesCarryTheirStreamSequenceAndTime) {
  SubscribeOptions options;
  options.replay = Replay{.stream = "orders", .start = Replay::Last{2}};
  absl::StatusOr<uint64_t> op = session_.Subscribe("orders/*", options, 9);
  ASSERT_TRUE(op.ok());
  Ack(*op, 100);
  Deliver(100, "first", 4, 1764768300123);
  Deliver(100, "second", 5, 1764768301000);
  std::vector<session::Event> events = Events();
  ASSERT_THAT(events, SizeIs(3));
  auto* done = std::get_if<session::OperationDone>(&events[0]);
  ASSERT_NE(done, nullptr);
  EXPECT_TRUE(done->status.ok());
  auto* first = std::get_if<session::Delivered>(&events[1]);
  auto* second = std::get_if<session::Delivered>(&events[2]);
  ASSERT_TRUE(first != nullptr && second != nullptr);
  EXPECT_EQ(first->handle, 9u);
  EXPECT_EQ(first->message.payload, "first");
  EXPECT_EQ(first->message.stream_seq, 4u);
  EXPECT_EQ(first->message.stream_time, absl::FromUnixMillis(1764768300123));
  EXPECT_EQ(second->message.stream_seq, 5u);

  const SubscriptionInfo* info = session_.FindSubscription(100);
  ASSERT_NE(info, nullptr);
  ASSERT_TRUE(info->replay.has_value());
  EXPECT_EQ(info->replay->stream, "orders");
  EXPECT_EQ(info->last_stream_seq, 5u);
}

TEST_F(SessionReplayTest, AnOrdinaryDeliveryHasNoStreamSequence) {
  absl::StatusOr<uint64_t> op = session_.Subscribe("orders/*", "", 1);
  ASSERT_TRUE(op.ok());
  Ack(*op, 3);
  Deliver(3, "live", 0, 0);
  std::vector<session::Event> events = Events();
  ASSERT_THAT(events, SizeIs(2));
  auto* d = std::get_if<session::Delivered>(&events[1]);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->message.stream_seq, 0u);
  EXPECT_EQ(d->message.stream_time, absl::UnixEpoch());
  EXPECT_EQ(session_.FindSubscription(3)->last_stream_seq, 0u);
}

TEST_F(SessionReplayTest, UnknownStreamFailsTheSubscribeWithTheBrokersWords) {
  SubscribeOptions options;
  options.replay = Replay{.stream = "nope", .start = Replay::FromSeq{1}};
  absl::StatusOr<uint64_t> op = session_.Subscribe("orders/*", options, 1);
  ASSERT_TRUE(op.ok());
  wire::ServerMessage error;
  error.mutable_error()->set_op_id(*op);
  error.mutable_error()->set_code(wire::UNKNOWN_STREAM);
  error.mutable_error()->set_message("no stream named 'nope'");
  Answer(error);
  std::vector<session::Event> events = Events();
  ASSERT_THAT(events, SizeIs(1));
  auto* done = std::get_if<session::OperationDone>(&events[0]);
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->kind, OperationKind::kSubscribe);
  EXPECT_EQ(WireCode(done->status), wire::UNKNOWN_STREAM);
  EXPECT_EQ(done->status.message(), "UNKNOWN_STREAM: no stream named 'nope'");
  EXPECT_EQ(session_.subscription_count(), 0u);
  EXPECT_TRUE(session_.open());
}

}  // namespace
}  // namespace manifold
