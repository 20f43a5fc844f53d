// Broker events (PollEvent and $sys topics), statistics, keepalive, and
// determinism.

#include <random>

#include "broker/broker.h"
#include "broker/sys_topics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;
using ::testing::HasSubstr;

wire::BrokerEvent ParseEvent(const wire::ServerMessage& m) {
  wire::BrokerEvent event;
  EXPECT_TRUE(m.has_deliver()) << m.DebugString();
  EXPECT_TRUE(event.ParseFromString(m.deliver().payload()));
  return event;
}

TEST(BrokerEventsTest, EmbedderSeesTheLifecycleAsTypedEvents) {
  BrokerHarness h;
  TestClient& c = h.Connect("alice");
  const SubscriptionId sub = c.Subscribe("a/*", "g");
  c.Serve("svc");
  c.Unsubscribe(sub);
  c.Disconnect();
  std::vector<wire::BrokerEvent> events = h.TakeEvents();
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].connection_added().client_name(), "alice");
  EXPECT_EQ(events[0].connection_added().protocol(), "native");
  EXPECT_EQ(events[0].connection_added().peer(), "test:alice");
  EXPECT_EQ(events[1].subscription_added().pattern(), "a/*");
  EXPECT_EQ(events[1].subscription_added().queue_group(), "g");
  EXPECT_EQ(events[2].service_added().topic(), "svc");
  EXPECT_EQ(events[3].subscription_removed().subscription_id(), sub.value());
  EXPECT_EQ(events[4].service_removed().topic(), "svc");
  EXPECT_EQ(events[5].connection_removed().session_id(), c.id().value());
  EXPECT_EQ(events[5].connection_removed().reason(),
            "peer closed the connection");
}

TEST(BrokerEventsTest, AnyClientCanWatchTheBusOnSysTopics) {
  BrokerHarness h;
  TestClient& watcher = h.Connect("watcher");
  watcher.Subscribe("$sys/**");
  // Its own subscription is the first thing it sees.
  EXPECT_EQ(ParseEvent(watcher.Next()).subscription_added().pattern(),
            "$sys/**");
  TestClient& bob = h.Connect("bob");
  wire::ServerMessage m = watcher.Next();
  EXPECT_EQ(m.deliver().topic(), sys_topics::kConnectionAdded);
  EXPECT_EQ(ParseEvent(m).connection_added().client_name(), "bob");
  bob.Serve("svc");
  EXPECT_EQ(ParseEvent(watcher.Next()).service_added().topic(), "svc");
  bob.Disconnect();
  EXPECT_EQ(ParseEvent(watcher.Next()).service_removed().topic(), "svc");
  EXPECT_EQ(ParseEvent(watcher.Next()).connection_removed().client_name(),
            "bob");
}

TEST(BrokerEventsTest, WildcardsDoNotSeeSysTopicsUnlessAskedByName) {
  BrokerHarness h;
  TestClient& all = h.Connect("all");
  all.Subscribe("**");
  all.Subscribe("*/connection/added");
  h.Connect("bob");
  EXPECT_TRUE(all.Idle());
}

TEST(BrokerEventsTest, StatisticsArePublishedPeriodicallyToSubscribers) {
  BrokerOptions options;
  options.set_statistics_interval_ms(5000);
  BrokerHarness h(options);
  TestClient& c = h.Connect("c");
  c.Subscribe(std::string(sys_topics::kStatisticsTopic));
  c.Publish("x", "y");
  h.Advance(absl::Seconds(5));
  wire::BrokerEvent event = ParseEvent(c.Next());
  ASSERT_TRUE(event.has_statistics());
  EXPECT_EQ(event.statistics().connections(), 1u);
  EXPECT_EQ(event.statistics().publishes(), 1u);
  h.Advance(absl::Seconds(5));
  EXPECT_TRUE(ParseEvent(c.Next()).has_statistics());
}

TEST(BrokerEventsTest, StatisticsCountTraffic) {
  BrokerHarness h;
  TestClient& a = h.Connect("a");
  TestClient& b = h.Connect("b");
  b.Subscribe("t");
  a.Publish("t", "12345");
  b.Next();
  const BrokerStatistics& s = h.broker().statistics();
  EXPECT_EQ(s.connections, 2u);
  EXPECT_EQ(s.connections_accepted, 2u);
  EXPECT_EQ(s.subscriptions, 1u);
  EXPECT_EQ(s.publishes, 1u);
  EXPECT_EQ(s.deliveries, 1u);
  EXPECT_EQ(s.messages_in, 4u);  // 2 hellos, subscribe, publish
  EXPECT_GT(s.bytes_in, 0u);
  EXPECT_GT(s.bytes_out, 0u);
  EXPECT_EQ(s.messages_out, 4u);  // 2 welcomes, ack, deliver
}

TEST(BrokerEventsTest, KeepalivePingsQuietConnectionsAndClosesDeadOnes) {
  BrokerOptions options;
  options.set_keepalive_interval_ms(10000);
  options.set_keepalive_max_missed(2);
  BrokerHarness h(options);
  TestClient& alive = h.Connect("alive");
  TestClient& dead = h.Connect("dead");
  wire::ClientMessage pong;
  pong.mutable_pong()->set_op_id(1);
  for (int round = 0; round < 2; ++round) {
    h.Advance(absl::Seconds(10));
    EXPECT_TRUE(alive.Next().has_ping());
    EXPECT_TRUE(dead.Next().has_ping());
    alive.Send(pong);
  }
  h.Advance(absl::Seconds(10));
  wire::ServerMessage m = dead.Next();
  EXPECT_EQ(m.error().code(), wire::KEEPALIVE_TIMEOUT);
  EXPECT_THAT(m.error().message(),
              HasSubstr("no answer to 2 keepalive pings in a row"));
  EXPECT_TRUE(dead.closed());
  EXPECT_TRUE(alive.Next().has_ping());
  EXPECT_FALSE(alive.closed());
  EXPECT_EQ(h.broker().statistics().keepalive_disconnects, 1u);
}

TEST(BrokerEventsTest, AnyInputPostponesTheNextPing) {
  BrokerOptions options;
  options.set_keepalive_interval_ms(10000);
  BrokerHarness h(options);
  TestClient& c = h.Connect("c");
  h.Advance(absl::Seconds(5));
  c.Publish("x", "activity");
  h.Advance(absl::Seconds(5));  // quiet for 5s only
  EXPECT_TRUE(c.Idle());
  h.Advance(absl::Seconds(5));  // quiet for 10s
  EXPECT_TRUE(c.Next().has_ping());
}

TEST(BrokerEventsTest, ClientPingIsAnsweredWithItsId) {
  BrokerHarness h;
  TestClient& c = h.Connect("c");
  wire::ClientMessage ping;
  ping.mutable_ping()->set_op_id(77);
  c.Send(ping);
  EXPECT_EQ(c.Next().pong().op_id(), 77u);
}

TEST(BrokerEventsTest, NextDeadlineReportsTheEarliestTimer) {
  BrokerOptions options;
  options.set_statistics_interval_ms(0);
  options.set_keepalive_interval_ms(0);
  options.set_handshake_timeout_ms(4000);
  Broker broker(options);
  EXPECT_FALSE(broker.NextDeadline().has_value());
  const absl::Time now = absl::FromUnixSeconds(50);
  broker.Accept(PeerInfo{"x"}, now);
  EXPECT_EQ(broker.NextDeadline(), now + absl::Seconds(4));
}

// Runs a fixed, busy scenario and returns every byte the broker wrote.
std::string RunScenario() {
  BrokerHarness h;
  TestClient& a = h.Connect("a");
  TestClient& b = h.Connect("b");
  TestClient& c = h.Connect("c");
  b.Subscribe("x/**");
  c.Subscribe("x/*", "g");
  b.Subscribe("x/*", "g");
  a.Subscribe("$sys/**");
  c.Serve("svc");
  std::mt19937 rng(1);
  for (int i = 0; i < 200; ++i) {
    a.Publish(absl::StrCat("x/", rng() % 5), absl::StrCat(i));
    if (i % 17 == 0) b.Request("svc", "q", 100);
    if (i % 31 == 0) h.Advance(absl::Milliseconds(60));
    if (i % 41 == 0) a.Publish("*/2", "wild");
  }
  h.Advance(absl::Seconds(1));
  c.Disconnect();
  h.Advance(absl::Seconds(60));
  return h.transcript();
}

TEST(BrokerDeterminismTest, SameInputsGiveByteIdenticalOutputs) {
  const std::string first = RunScenario();
  const std::string second = RunScenario();
  EXPECT_GT(first.size(), 5000u);
  EXPECT_TRUE(first == second) << "outputs differ";
}

}  // namespace
}  // namespace manifold
