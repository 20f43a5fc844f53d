// Limits, backpressure and malformed input: every violation gets a specific
// error, at worst that one connection closes, and nobody else notices.

#include "broker/broker.h"
#include "core/framing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;
using ::testing::HasSubstr;

// A bystander that must keep working through every test's abuse.
void ExpectBystanderUnaffected(BrokerHarness& h, TestClient& bystander) {
  TestClient& probe = h.Connect("probe");
  bystander.Publish("bystander/check", "still here");
  EXPECT_FALSE(bystander.closed());
  wire::ServerMessage m = bystander.Next();
  EXPECT_EQ(m.deliver().payload(), "still here");
  probe.Disconnect();
}

TEST(BrokerLimitsTest, GarbageFrameClosesOnlyThatConnection) {
  BrokerHarness h;
  TestClient& bystander = h.Connect("bystander");
  bystander.Subscribe("bystander/**");
  TestClient& bad = h.Connect("bad");
  bad.SendRaw(std::string("\x04\xff\xff\xff\xff", 5));
  wire::ServerMessage m = bad.Next();
  EXPECT_EQ(m.error().code(), wire::MALFORMED_MESSAGE);
  EXPECT_TRUE(m.error().fatal());
  EXPECT_TRUE(bad.closed());
  ExpectBystanderUnaffected(h, bystander);
}

TEST(BrokerLimitsTest, BadLengthPrefixIsReported) {
  BrokerHarness h;
  TestClient& bad = h.Connect("bad");
  bad.SendRaw(std::string(11, '\xff'));
  EXPECT_EQ(bad.Next().error().code(), wire::BAD_LENGTH_PREFIX);
  EXPECT_TRUE(bad.closed());
}

TEST(BrokerLimitsTest, EmptyFrameCarriesNoOperation) {
  BrokerHarness h;
  TestClient& bad = h.Connect("bad");
  bad.SendRaw(std::string(1, '\0'));
  wire::ServerMessage m = bad.Next();
  EXPECT_EQ(m.error().code(), wire::MALFORMED_MESSAGE);
  EXPECT_THAT(m.error().message(), HasSubstr("no operation"));
}

TEST(BrokerLimitsTest, OversizedFrameIsRejectedFromItsPrefix) {
  BrokerOptions options;
  options.set_max_frame_bytes(1000);
  BrokerHarness h(options);
  TestClient& bystander = h.Connect("bystander");
  bystander.Subscribe("bystander/**");
  TestClient& big = h.Connect("big");
  big.SendRaw(std::string("\xe8\x07", 2));  // announces 1000 bytes: fine
  EXPECT_FALSE(big.closed());
  TestClient& bigger = h.Connect("bigger");
  bigger.SendRaw(std::string("\xe9\x07", 2));  // 1001 bytes: too large
  wire::ServerMessage m = bigger.Next();
  EXPECT_EQ(m.error().code(), wire::FRAME_TOO_LARGE);
  EXPECT_THAT(m.error().message(),
              HasSubstr("frame of 1001 bytes exceeds the limit of 1000"));
  EXPECT_TRUE(bigger.closed());
  ExpectBystanderUnaffected(h, bystander);
}

TEST(BrokerLimitsTest, OversizedPayloadIsAnOperationErrorNotFatal) {
  BrokerOptions options;
  options.set_max_payload_bytes(100);
  BrokerHarness h(options);
  TestClient& c = h.Connect("c");
  wire::ServerMessage m = c.PublishAcked("t", std::string(101, 'x'));
  EXPECT_EQ(m.error().code(), wire::PAYLOAD_TOO_LARGE);
  EXPECT_THAT(m.error().message(),
              HasSubstr("payload of 101 bytes (headers included) exceeds the "
                        "limit of 100 bytes"));
  EXPECT_FALSE(c.closed());
  EXPECT_TRUE(c.PublishAcked("t", std::string(100, 'x')).has_ack());
}

TEST(BrokerLimitsTest, SubscriptionsPerConnectionAreLimited) {
  BrokerOptions options;
  options.set_max_subscriptions_per_connection(3);
  BrokerHarness h(options);
  TestClient& c = h.Connect("c");
  for (int i = 0; i < 3; ++i) c.Subscribe(absl::StrCat("t", i));
  wire::ServerMessage m = c.TrySubscribe("t3");
  EXPECT_EQ(m.error().code(), wire::TOO_MANY_SUBSCRIPTIONS);
  EXPECT_THAT(m.error().message(),
              HasSubstr("connection has 3 subscriptions; the limit is 3"));
}

TEST(BrokerLimitsTest, TopicLengthAndDepthLimitsApply) {
  BrokerOptions options;
  options.set_max_topic_length(16);
  options.set_max_topic_depth(3);
  BrokerHarness h(options);
  TestClient& c = h.Connect("c");
  EXPECT_THAT(c.TrySubscribe("a/b/c/d").error().message(),
              HasSubstr("the limit is 3"));
  EXPECT_THAT(c.PublishAcked("abcdefghijklmnopq", "").error().message(),
              HasSubstr("17 bytes long; the limit is 16"));
}

TEST(BrokerLimitsTest, SlowConsumerIsDisconnectedWhileOthersContinue) {
  BrokerOptions options;
  options.set_max_outbound_bytes(10000);
  options.set_slow_consumer_policy(BrokerOptions::DISCONNECT);
  BrokerHarness h(options);
  TestClient& pub = h.Connect("pub");
  TestClient& fast = h.Connect("fast");
  TestClient& slow = h.Connect("slow");
  fast.Subscribe("feed");
  slow.Subscribe("feed");
  slow.set_reading(false);
  const std::string payload(1000, 'p');
  for (int i = 0; i < 30; ++i) pub.Publish("feed", payload);
  EXPECT_EQ(fast.TakeAll().size(), 30u);
  EXPECT_EQ(h.broker().statistics().slow_consumer_disconnects, 1u);
  // The slow reader's output is bounded: the limit plus the one delivery that
  // crossed it, plus the error frame.
  Connection* c = h.broker().FindConnection(slow.id());
  ASSERT_NE(c, nullptr);
  EXPECT_LT(c->PendingOutputBytes(), 10000u + 1100u + 200u);
  EXPECT_EQ(c->state(), ConnectionState::kClosing);
  // When it reads at last, it finds its backlog and then the reason.
  slow.set_reading(true);
  auto got = slow.TakeAll();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().error().code(), wire::SLOW_CONSUMER);
  EXPECT_THAT(got.back().error().message(), HasSubstr("the limit is 10000"));
  EXPECT_TRUE(slow.closed());
}

TEST(BrokerLimitsTest, SlowConsumerThatNeverReadsIsDroppedAfterTheLinger) {
  BrokerOptions options;
  options.set_max_outbound_bytes(1000);
  options.set_slow_consumer_policy(BrokerOptions::DISCONNECT);
  options.set_close_linger_ms(2000);
  BrokerHarness h(options);
  TestClient& pub = h.Connect("pub");
  TestClient& slow = h.Connect("slow");
  slow.Subscribe("feed");
  slow.set_reading(false);
  for (int i = 0; i < 5; ++i) pub.Publish("feed", std::string(500, 'p'));
  EXPECT_FALSE(slow.closed());
  h.Advance(absl::Seconds(2));
  EXPECT_TRUE(slow.closed());
  EXPECT_EQ(h.broker().connection_count(), 1u);
}

TEST(BrokerLimitsTest, DropPolicyKeepsTheConnectionAndCountsDrops) {
  BrokerOptions options;
  options.set_max_outbound_bytes(2000);
  options.set_slow_consumer_policy(BrokerOptions::DROP);
  BrokerHarness h(options);
  TestClient& pub = h.Connect("pub");
  TestClient& slow = h.Connect("slow");
  slow.Subscribe("feed");
  slow.set_reading(false);
  for (int i = 0; i < 10; ++i) pub.Publish("feed", std::string(500, 'p'));
  const BrokerStatistics& stats = h.broker().statistics();
  EXPECT_EQ(stats.deliveries + stats.dropped_deliveries, 10u);
  EXPECT_GT(stats.dropped_deliveries, 0u);
  slow.set_reading(true);
  EXPECT_EQ(slow.TakeAll().size(), stats.deliveries);
  EXPECT_FALSE(slow.closed());
}

TEST(BrokerLimitsTest, QueueGroupPassesOverAFullMember) {
  BrokerOptions options;
  options.set_max_outbound_bytes(1500);
  BrokerHarness h(options);
  TestClient& pub = h.Connect("pub");
  TestClient& stuck = h.Connect("stuck");
  TestClient& able = h.Connect("able");
  stuck.Subscribe("jobs", "g");
  able.Subscribe("jobs", "g");
  stuck.set_reading(false);
  for (int i = 0; i < 10; ++i) pub.Publish("jobs", std::string(1000, 'j'));
  // stuck took one or two before filling up; able took the rest, and nobody
  // was disconnected because someone could always take the job.
  const size_t able_got = able.TakeAll().size();
  EXPECT_GE(able_got, 8u);
  EXPECT_EQ(h.broker().statistics().slow_consumer_disconnects, 0u);
  stuck.set_reading(true);
  EXPECT_EQ(stuck.TakeAll().size() + able_got, 10u);
}

TEST(BrokerLimitsTest, InboundChannelStopsReadingWhenFull) {
  BrokerOptions options;
  options.set_max_inbound_bytes(1000);
  Broker broker(options);
  const absl::Time now = absl::FromUnixSeconds(1);
  Connection& c = broker.Accept(PeerInfo{"x"}, now);
  wire::ClientMessage ping;
  ping.mutable_ping()->set_op_id(1);
  std::string hello;
  wire::ClientMessage h;
  h.mutable_hello()->set_protocol_version(1);
  AppendFrame(h, &hello);
  c.Receive(hello, now);
  std::string pings;
  while (pings.size() < 1200) AppendFrame(ping, &pings);
  c.Receive(pings, now);
  EXPECT_FALSE(c.WantsRead());
  broker.Process(now);
  EXPECT_TRUE(c.WantsRead());
  std::vector<ConnectionId> changed;
  broker.TakeChanged(changed);
  EXPECT_THAT(changed, ::testing::Contains(c.id()));
}

TEST(BrokerLimitsTest, OneFrameLargerThanTheInboundLimitStillArrives) {
  BrokerOptions options;
  options.set_max_inbound_bytes(1000);
  BrokerHarness h(options);
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("t");
  wire::ClientMessage m;
  m.mutable_publish()->set_topic("t");
  m.mutable_publish()->set_payload(std::string(5000, 'x'));
  const std::string frame = EncodeFrame(m);
  Connection* c = h.broker().FindConnection(pub.id());
  for (size_t at = 0; at < frame.size(); at += 500) {
    c->Receive(absl::string_view(frame).substr(at, 500), h.now());
    h.Pump();
    if (at + 500 < frame.size()) {
      EXPECT_TRUE(c->WantsRead()) << at;
    }
  }
  EXPECT_EQ(sub.Next().deliver().payload().size(), 5000u);
}

TEST(BrokerLimitsTest, IgnoringWantsReadOverflowsTheInboundChannel) {
  BrokerOptions options;
  options.set_max_inbound_bytes(1000);
  options.set_max_frame_bytes(1000);
  BrokerHarness h(options);
  TestClient& flood = h.Connect("flood");
  Connection* c = h.broker().FindConnection(flood.id());
  wire::ClientMessage ping;
  ping.mutable_ping()->set_op_id(1);
  std::string pings;
  while (pings.size() < 100000) AppendFrame(ping, &pings);
  c->Receive(pings, h.now());  // no Process in between: the transport ignored
                               // WantsRead()
  h.Pump();
  wire::ServerMessage m = flood.Next();
  EXPECT_EQ(m.error().code(), wire::INPUT_OVERFLOW);
  EXPECT_TRUE(flood.closed());
}

TEST(BrokerLimitsTest, EventQueueIsBoundedAndCountsDrops) {
  BrokerOptions options;
  options.set_max_queued_events(3);
  BrokerHarness h(options);
  TestClient& c = h.Connect("c");                                 // 1 event
  for (int i = 0; i < 5; ++i) c.Subscribe(absl::StrCat("t", i));  // 5 more
  EXPECT_EQ(h.TakeEvents().size(), 3u);
  EXPECT_EQ(h.broker().statistics().dropped_events, 3u);
}

TEST(BrokerLimitsTest, ProcessIsFairAcrossBusyConnections) {
  BrokerOptions options;
  options.set_frames_per_turn(2);
  Broker broker(options);
  const absl::Time now = absl::FromUnixSeconds(1);
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  std::vector<Connection*> conns;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(&broker.Accept(PeerInfo{"x"}, now));
    conns.back()->Receive(EncodeFrame(hello), now);
  }
  broker.Process(now);
  std::vector<ConnectionId> changed;
  broker.TakeChanged(changed);
  for (Connection* c : conns) c->Consume(c->PendingOutputBytes());
  // Each sends 5 pings; all 15 are answered in one Process call.
  for (Connection* c : conns) {
    std::string pings;
    for (int i = 0; i < 5; ++i) {
      wire::ClientMessage ping;
      ping.mutable_ping()->set_op_id(i);
      AppendFrame(ping, &pings);
    }
    c->Receive(pings, now);
  }
  broker.Process(now);
  for (Connection* c : conns) EXPECT_GT(c->PendingOutputBytes(), 0u);
  EXPECT_EQ(broker.statistics().messages_in, 3u + 15u);
}

}  // namespace
}  // namespace manifold
