// Flow control under the backpressure policy: a subscriber over its
// high-water mark stalls the connections whose messages wait on it, nothing is
// lost or reordered, and one that stays stuck past max_stall is cut (or loses
// deliveries) so that it cannot freeze the bus.

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "broker/sys_topics.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold::testing {
namespace {

using ::testing::HasSubstr;

constexpr size_t kLimit = 1000;
// Each delivery of a 100-byte payload on a short topic is a little over
// 100 bytes, so about ten fit under the limit.
const std::string kPayload(100, 'x');

BrokerOptions BackpressureOptions() {
  BrokerOptions options;
  options.set_slow_consumer_policy(BrokerOptions::BACKPRESSURE);
  options.set_max_outbound_bytes(kLimit);
  options.set_max_stall_ms(2000);
  options.set_statistics_interval_ms(0);
  return options;
}

bool Reading(BrokerHarness& h, const TestClient& c) {
  Connection* connection = h.broker().FindConnection(c.id());
  return connection != nullptr && connection->WantsRead();
}

// Publishes `count` numbered messages ("0", "1", ...) to `topic`, each padded
// to 100 bytes, as one burst of frames.
void Burst(TestClient& pub, absl::string_view topic, int first, int count) {
  std::string frames;
  for (int i = first; i < first + count; ++i) {
    wire::ClientMessage m;
    m.mutable_publish()->set_topic(std::string(topic));
    m.mutable_publish()->set_payload(
        absl::StrCat(i, std::string(100 - absl::StrCat(i).size(), '.')));
    AppendFrame(m, &frames);
  }
  pub.SendRaw(frames);
}

// The numbers of the deliveries in `messages`, in order.
std::vector<int> Numbers(const std::vector<wire::ServerMessage>& messages) {
  std::vector<int> numbers;
  for (const wire::ServerMessage& m : messages) {
    if (!m.has_deliver()) continue;
    numbers.push_back(std::stoi(m.deliver().payload()));
  }
  return numbers;
}

std::vector<int> Range(int first, int count) {
  std::vector<int> range;
  for (int i = first; i < first + count; ++i) range.push_back(i);
  return range;
}

TEST(FlowControlTest, BackpressureIsTheDefaultPolicy) {
  EXPECT_EQ(BrokerOptions().slow_consumer_policy(),
            BrokerOptions::BACKPRESSURE);
}

TEST(FlowControlTest, SlowSubscriberStallsItsPublisherAndLosesNothing) {
  BrokerHarness h(BackpressureOptions());
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("t");
  sub.set_reading(false);

  Burst(pub, "t", 0, 50);
  EXPECT_FALSE(Reading(h, pub)) << "the publisher must stop being read";
  EXPECT_EQ(h.broker().statistics().publisher_stalls, 1u);
  EXPECT_EQ(h.broker().statistics().stalled_publishers, 1u);
  // About ten messages fit, plus the one that crossed the mark.
  EXPECT_LT(h.broker().statistics().deliveries, 20u);

  sub.set_reading(true);
  h.Pump();
  EXPECT_EQ(Numbers(sub.TakeAll()), Range(0, 50));
  EXPECT_TRUE(Reading(h, pub));
  EXPECT_EQ(h.broker().statistics().stalled_publishers, 0u);
  EXPECT_EQ(h.broker().statistics().dropped_deliveries, 0u);
  EXPECT_FALSE(sub.closed());
}

TEST(FlowControlTest,
     SeveralPublishersStallOnOneSubscriberAndAllResumeInOrder) {
  BrokerHarness h(BackpressureOptions());
  TestClient& a = h.Connect("a");
  TestClient& b = h.Connect("b");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("a");
  sub.Subscribe("b");
  sub.set_reading(false);

  Burst(a, "a", 0, 30);
  Burst(b, "b", 100, 30);
  EXPECT_FALSE(Reading(h, a));
  EXPECT_FALSE(Reading(h, b));
  EXPECT_EQ(h.broker().statistics().stalled_publishers, 2u);

  sub.set_reading(true);
  h.Pump();
  std::vector<int> from_a, from_b;
  for (int n : Numbers(sub.TakeAll())) (n < 100 ? from_a : from_b).push_back(n);
  EXPECT_EQ(from_a, Range(0, 30));
  EXPECT_EQ(from_b, Range(100, 30));
  EXPECT_TRUE(Reading(h, a));
  EXPECT_TRUE(Reading(h, b));
}

TEST(FlowControlTest, StallEndsOnlyBelowTheLowWaterMark) {
  BrokerOptions options = BackpressureOptions();
  options.set_resume_outbound_percent(50);
  Broker broker(options);
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(kProtocolVersion);
  Connection& pub = broker.Accept(PeerInfo{"pub"}, now);
  Connection& sub = broker.Accept(PeerInfo{"sub"}, now);
  wire::ClientMessage subscribe;
  subscribe.mutable_subscribe()->set_pattern("t");
  pub.Receive(EncodeFrame(hello), now);
  sub.Receive(EncodeFrame(hello) + EncodeFrame(subscribe), now);
  broker.Process(now);
  pub.Consume(pub.PendingOutputBytes());
  sub.Consume(sub.PendingOutputBytes());

  std::string frames;
  wire::ClientMessage publish;
  publish.mutable_publish()->set_topic("t");
  publish.mutable_publish()->set_payload(kPayload);
  for (int i = 0; i < 30; ++i) AppendFrame(publish, &frames);
  pub.Receive(frames, now);
  broker.Process(now);
  ASSERT_FALSE(pub.WantsRead());
  ASSERT_GE(sub.PendingOutputBytes(), kLimit);

  // Down to just above half the limit: still stalled.
  sub.Consume(sub.PendingOutputBytes() - kLimit / 2);
  EXPECT_FALSE(pub.WantsRead());
  // Below it: the publisher goes on, and the broker says so.
  sub.Consume(1);
  EXPECT_TRUE(pub.WantsRead());
  std::vector<ConnectionId> changed;
  broker.TakeChanged(changed);
  EXPECT_THAT(changed, ::testing::Contains(pub.id()));
}

TEST(FlowControlTest,
     StallPastMaxStallDisconnectsTheSubscriberAndFreesItsPublisher) {
  BrokerHarness h(BackpressureOptions());
  TestClient& watcher = h.Connect("watcher");
  watcher.Subscribe(sys_topics::kSlowConsumer);
  TestClient& pub = h.Connect("pub");
  TestClient& stuck = h.Connect("stuck");
  TestClient& other = h.Connect("other");
  stuck.Subscribe("t");
  other.Subscribe("t");
  stuck.set_reading(false);

  Burst(pub, "t", 0, 40);
  EXPECT_FALSE(Reading(h, pub));
  h.Advance(absl::Milliseconds(1999));
  EXPECT_FALSE(stuck.closed());
  EXPECT_FALSE(Reading(h, pub));

  h.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(Reading(h, pub)) << "the publisher goes on without it";
  stuck.set_reading(true);
  h.Pump();
  EXPECT_TRUE(stuck.closed());
  EXPECT_EQ(WireCode(stuck.close_reason()), wire::SLOW_CONSUMER);
  EXPECT_THAT(stuck.close_reason().message(),
              HasSubstr("kept 1 connection(s) waiting for 2s"));
  // The subscriber that kept up got every message.
  EXPECT_EQ(Numbers(other.TakeAll()), Range(0, 40));
  EXPECT_EQ(h.broker().statistics().stall_timeouts, 1u);
  EXPECT_EQ(h.broker().statistics().slow_consumer_disconnects, 1u);
  EXPECT_EQ(h.broker().statistics().stalled_ms, 2000u);

  std::vector<wire::ServerMessage> seen = watcher.TakeAll();
  ASSERT_EQ(seen.size(), 1u);
  wire::BrokerEvent event;
  ASSERT_TRUE(event.ParseFromString(seen[0].deliver().payload()));
  EXPECT_EQ(event.slow_consumer().session_id(), stuck.id().value());
  EXPECT_EQ(event.slow_consumer().client_name(), "stuck");
  EXPECT_EQ(event.slow_consumer().stalled_publishers(), 1u);
  EXPECT_EQ(event.slow_consumer().stalled_ms(), 2000u);
  EXPECT_EQ(event.slow_consumer().action(), wire::SlowConsumer::DISCONNECTED);
}

TEST(FlowControlTest,
     DropAfterMaxStallKeepsTheSubscriberAndCountsWhatItMisses) {
  BrokerOptions options = BackpressureOptions();
  options.set_drop_after_max_stall(true);
  BrokerHarness h(options);
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("t");
  sub.set_reading(false);

  Burst(pub, "t", 0, 40);
  h.Advance(absl::Seconds(2));
  EXPECT_TRUE(Reading(h, pub));
  EXPECT_FALSE(sub.closed());
  const uint64_t dropped = h.broker().statistics().dropped_deliveries;
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(h.broker().statistics().stall_timeouts, 1u);

  // Once it catches up it gets new messages again, and stalls again if it
  // falls behind.
  sub.set_reading(true);
  h.Pump();
  const std::vector<int> before = Numbers(sub.TakeAll());
  EXPECT_EQ(before.size() + dropped, 40u);
  Burst(pub, "t", 1000, 3);
  EXPECT_EQ(Numbers(sub.TakeAll()), Range(1000, 3));
}

TEST(FlowControlTest, OnlyPublishersThatReachTheSlowSubscriberStall) {
  BrokerHarness h(BackpressureOptions());
  TestClient& fanout_pub = h.Connect("fanout-pub");
  TestClient& unrelated_pub = h.Connect("unrelated-pub");
  std::vector<TestClient*> subs;
  for (int i = 0; i < 8; ++i) {
    TestClient& s = h.Connect(absl::StrCat("sub", i));
    s.Subscribe("fan");
    subs.push_back(&s);
  }
  TestClient& unrelated_sub = h.Connect("unrelated-sub");
  unrelated_sub.Subscribe("other");
  subs[3]->set_reading(false);

  Burst(fanout_pub, "fan", 0, 30);
  EXPECT_FALSE(Reading(h, fanout_pub));
  Burst(unrelated_pub, "other", 0, 30);
  EXPECT_TRUE(Reading(h, unrelated_pub));
  EXPECT_EQ(Numbers(unrelated_sub.TakeAll()), Range(0, 30));
  // The fast subscribers have what the publisher sent before it stalled.
  const std::vector<int> early = Numbers(subs[0]->TakeAll());
  EXPECT_LT(early.size(), 30u);

  subs[3]->set_reading(true);
  h.Pump();
  for (int i = 0; i < 8; ++i) {
    std::vector<int> got = i == 0 ? early : std::vector<int>();
    for (int n : Numbers(subs[i]->TakeAll())) got.push_back(n);
    EXPECT_EQ(got, Range(0, 30)) << "subscriber " << i;
  }
}

TEST(FlowControlTest, QueueGroupPassesOverAFullMemberBeforeStallingAnyone) {
  BrokerHarness h(BackpressureOptions());
  TestClient& filler = h.Connect("filler");
  TestClient& pub = h.Connect("pub");
  TestClient& full = h.Connect("full");
  TestClient& free = h.Connect("free");
  full.Subscribe("jobs", "workers");
  free.Subscribe("jobs", "workers");
  full.Subscribe("news");
  full.set_reading(false);
  Burst(filler, "news", 0, 15);  // `full` is now over its mark
  ASSERT_EQ(h.broker().statistics().publisher_stalls, 1u);

  Burst(pub, "jobs", 100, 8);
  EXPECT_TRUE(Reading(h, pub)) << "the member with room takes every job";
  EXPECT_EQ(h.broker().statistics().publisher_stalls, 1u);
  EXPECT_EQ(Numbers(free.TakeAll()), Range(100, 8));
  full.set_reading(true);
  h.Pump();
  EXPECT_EQ(Numbers(full.TakeAll()), Range(0, 15));
}

TEST(FlowControlTest, QueueGroupWhoseMembersAreAllFullStallsThePublisher) {
  BrokerHarness h(BackpressureOptions());
  TestClient& pub = h.Connect("pub");
  TestClient& a = h.Connect("a");
  TestClient& b = h.Connect("b");
  a.Subscribe("jobs", "workers");
  b.Subscribe("jobs", "workers");
  a.set_reading(false);
  b.set_reading(false);

  Burst(pub, "jobs", 0, 60);
  EXPECT_FALSE(Reading(h, pub));
  a.set_reading(true);
  h.Pump();
  b.set_reading(true);
  h.Pump();
  std::vector<int> all = Numbers(a.TakeAll());
  for (int n : Numbers(b.TakeAll())) all.push_back(n);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, Range(0, 60)) << "each message to exactly one member";
}

TEST(FlowControlTest, NothingIsReorderedAcrossAStall) {
  BrokerHarness h(BackpressureOptions());
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("t/*");
  sub.set_reading(false);
  // Interleaved topics and acknowledged publishes: the acks come back in the
  // order the publishes were sent, after the stall as before it.
  std::string frames;
  for (int i = 0; i < 40; ++i) {
    wire::ClientMessage m;
    m.mutable_publish()->set_op_id(i + 1);
    m.mutable_publish()->set_ack(true);
    m.mutable_publish()->set_topic(absl::StrCat("t/", i % 3));
    m.mutable_publish()->set_payload(absl::StrCat(i, kPayload));
    AppendFrame(m, &frames);
  }
  pub.SendRaw(frames);
  EXPECT_FALSE(Reading(h, pub));
  sub.set_reading(true);
  h.Pump();
  EXPECT_EQ(Numbers(sub.TakeAll()), Range(0, 40));
  std::vector<uint64_t> acks;
  for (const wire::ServerMessage& m : pub.TakeAll()) {
    if (m.has_ack()) acks.push_back(m.ack().op_id());
  }
  std::vector<uint64_t> expected;
  for (uint64_t i = 1; i <= 40; ++i) expected.push_back(i);
  EXPECT_EQ(acks, expected);
}

TEST(FlowControlTest, AServiceWhoseServerIsFullStallsItsRequesters) {
  BrokerHarness h(BackpressureOptions());
  TestClient& server = h.Connect("server");
  TestClient& client = h.Connect("client");
  ASSERT_TRUE(server.Serve("svc").has_ack());
  server.set_reading(false);
  for (int i = 0; i < 20; ++i) client.Request("svc", kPayload, 60000);
  EXPECT_FALSE(Reading(h, client));
  EXPECT_EQ(h.broker().statistics().publisher_stalls, 1u);
  server.set_reading(true);
  h.Pump();
  int requests = 0;
  for (const wire::ServerMessage& m : server.TakeAll()) {
    if (!m.has_request()) continue;
    ++requests;
    server.Respond(m.request().request_id(), "ok");
  }
  EXPECT_EQ(requests, 20);
  int responses = 0;
  for (const wire::ServerMessage& m : client.TakeAll()) {
    responses += m.has_response() && m.response().status() == wire::REQUEST_OK;
  }
  EXPECT_EQ(responses, 20);
}

TEST(FlowControlTest, AClientThatNeverReadsItsRepliesIsCutAfterMaxStall) {
  BrokerHarness h(BackpressureOptions());
  TestClient& deaf = h.Connect("deaf");
  deaf.set_reading(false);
  // Pings whose Pongs it never reads: it stalls on its own output.
  std::string pings;
  for (int i = 0; i < 400; ++i) {
    wire::ClientMessage m;
    m.mutable_ping()->set_op_id(i + 1);
    AppendFrame(m, &pings);
  }
  deaf.SendRaw(pings);
  EXPECT_FALSE(Reading(h, deaf));
  h.Advance(absl::Seconds(2));
  deaf.set_reading(true);
  h.Pump();
  EXPECT_TRUE(deaf.closed());
  EXPECT_EQ(WireCode(deaf.close_reason()), wire::SLOW_CONSUMER);
}

TEST(FlowControlTest, APublisherThatLeavesWhileStalledIsForgotten) {
  BrokerHarness h(BackpressureOptions());
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("t");
  sub.set_reading(false);
  Burst(pub, "t", 0, 30);
  ASSERT_EQ(h.broker().statistics().stalled_publishers, 1u);
  pub.Disconnect();
  EXPECT_EQ(h.broker().statistics().stalled_publishers, 0u);
  sub.set_reading(true);
  h.Pump();
  EXPECT_FALSE(sub.closed());
  h.Advance(absl::Seconds(5));
  EXPECT_FALSE(sub.closed()) << "nobody waits on it any more";
}

TEST(FlowControlTest, ASubscriberThatLeavesFreesItsPublishers) {
  BrokerHarness h(BackpressureOptions());
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("t");
  sub.set_reading(false);
  Burst(pub, "t", 0, 30);
  ASSERT_FALSE(Reading(h, pub));
  sub.Disconnect();
  EXPECT_TRUE(Reading(h, pub));
  EXPECT_EQ(h.broker().statistics().stalled_publishers, 0u);
}

TEST(FlowControlTest, DisconnectAndDropPoliciesStillActAtTheLimit) {
  BrokerOptions options = BackpressureOptions();
  options.set_slow_consumer_policy(BrokerOptions::DROP);
  BrokerHarness h(options);
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("t");
  sub.set_reading(false);
  Burst(pub, "t", 0, 30);
  EXPECT_TRUE(Reading(h, pub));
  EXPECT_GT(h.broker().statistics().dropped_deliveries, 0u);
  EXPECT_EQ(h.broker().statistics().publisher_stalls, 0u);
}

}  // namespace
}  // namespace manifold::testing
