// Publish/subscribe: wildcards, queue groups, echo, acknowledgements.

#include <map>

#include "broker/broker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;
using ::testing::HasSubstr;

TEST(BrokerPubSubTest, SubscriberReceivesWhatIsPublishedToItsPattern) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  const SubscriptionId id = sub.Subscribe("room/*/status");
  pub.Publish("room/alice/status", "online");
  wire::ServerMessage m = sub.Next();
  ASSERT_TRUE(m.has_deliver()) << m.DebugString();
  EXPECT_EQ(m.deliver().subscription_id(), id.value());
  EXPECT_EQ(m.deliver().topic(), "room/alice/status");
  EXPECT_EQ(m.deliver().payload(), "online");
  pub.Publish("room/alice/other", "x");
  EXPECT_TRUE(sub.Idle());
}

TEST(BrokerPubSubTest, DoubleStarMatchesZeroOrMoreSegments) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("a/**/z");
  for (const char* topic : {"a/z", "a/b/z", "a/b/c/z", "a/b", "b/z"}) {
    pub.Publish(topic, topic);
  }
  std::vector<std::string> got;
  for (const auto& m : sub.TakeAll()) got.push_back(m.deliver().topic());
  EXPECT_THAT(got, ::testing::ElementsAre("a/z", "a/b/z", "a/b/c/z"));
}

TEST(BrokerPubSubTest, HeadersAndReplyToAreCarriedThrough) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("t");
  wire::ClientMessage m;
  wire::Publish* p = m.mutable_publish();
  p->set_topic("t");
  p->set_payload("body");
  p->set_reply_to("inbox/7");
  wire::Header* header = p->add_headers();
  header->set_key("Trace");
  header->set_value("abc");
  header = p->add_headers();
  header->set_key("Trace");
  header->set_value("def");
  pub.Send(m);
  wire::ServerMessage got = sub.Next();
  EXPECT_EQ(got.deliver().reply_to(), "inbox/7");
  ASSERT_EQ(got.deliver().headers_size(), 2);
  EXPECT_EQ(got.deliver().headers(1).key(), "Trace");
  EXPECT_EQ(got.deliver().headers(1).value(), "def");
}

TEST(BrokerPubSubTest, EveryBroadcastSubscriberGetsEveryMessage) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  std::vector<TestClient*> subs;
  for (int i = 0; i < 5; ++i) {
    subs.push_back(&h.Connect(absl::StrCat("s", i)));
    subs.back()->Subscribe("news");
  }
  for (int i = 0; i < 3; ++i) pub.Publish("news", absl::StrCat(i));
  for (TestClient* s : subs) EXPECT_EQ(s->TakeAll().size(), 3u);
  EXPECT_EQ(h.broker().statistics().deliveries, 15u);
}

TEST(BrokerPubSubTest, OverlappingSubscriptionsEachGetADelivery) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  const SubscriptionId a = sub.Subscribe("x/*");
  const SubscriptionId b = sub.Subscribe("x/**");
  const SubscriptionId c = sub.Subscribe("x/y");
  pub.Publish("x/y", "once");
  std::vector<uint64_t> ids;
  for (const auto& m : sub.TakeAll())
    ids.push_back(m.deliver().subscription_id());
  EXPECT_THAT(ids,
              ::testing::UnorderedElementsAre(a.value(), b.value(), c.value()));
}

TEST(BrokerPubSubTest, PublishingToAPatternReachesIntersectingSubscriptions) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& lobby = h.Connect("lobby");
  TestClient& kitchen = h.Connect("kitchen");
  TestClient& everything = h.Connect("everything");
  lobby.Subscribe("lobby/alice");
  kitchen.Subscribe("kitchen/bob");
  everything.Subscribe("**");
  pub.Publish("*/alice", "hello alice");
  wire::ServerMessage m = lobby.Next();
  EXPECT_EQ(m.deliver().topic(), "*/alice");
  EXPECT_EQ(m.deliver().payload(), "hello alice");
  EXPECT_TRUE(kitchen.Idle());
  EXPECT_EQ(everything.TakeAll().size(), 1u);
}

TEST(BrokerPubSubTest, QueueGroupDeliversEachMessageToExactlyOneMember) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  std::vector<TestClient*> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(&h.Connect(absl::StrCat("w", i)));
    workers.back()->Subscribe("jobs", "workers");
  }
  TestClient& auditor = h.Connect("auditor");
  auditor.Subscribe("jobs");  // broadcast alongside the group
  for (int i = 0; i < 9; ++i) pub.Publish("jobs", absl::StrCat(i));
  // Round-robin: each worker gets exactly three, and every job is done once.
  std::map<std::string, int> seen;
  for (TestClient* w : workers) {
    auto got = w->TakeAll();
    EXPECT_EQ(got.size(), 3u) << w->name();
    for (const auto& m : got) ++seen[m.deliver().payload()];
  }
  EXPECT_EQ(seen.size(), 9u);
  for (auto& [payload, count] : seen) EXPECT_EQ(count, 1) << payload;
  EXPECT_EQ(auditor.TakeAll().size(), 9u);
}

TEST(BrokerPubSubTest, DifferentGroupsOnOnePatternEachGetTheMessage) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& a = h.Connect("a");
  TestClient& b = h.Connect("b");
  a.Subscribe("jobs", "g1");
  b.Subscribe("jobs", "g2");
  pub.Publish("jobs", "x");
  EXPECT_EQ(a.TakeAll().size(), 1u);
  EXPECT_EQ(b.TakeAll().size(), 1u);
}

TEST(BrokerPubSubTest, QueueGroupSkipsMembersThatLeft) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& w1 = h.Connect("w1");
  TestClient& w2 = h.Connect("w2");
  w1.Subscribe("jobs", "g");
  w2.Subscribe("jobs", "g");
  w1.Disconnect();
  for (int i = 0; i < 4; ++i) pub.Publish("jobs", "x");
  EXPECT_EQ(w2.TakeAll().size(), 4u);
}

TEST(BrokerPubSubTest, EchoIsOnByDefaultAndCanBeTurnedOff) {
  BrokerHarness h;
  TestClient& loud = h.Connect("loud");
  loud.Subscribe("t");
  loud.Publish("t", "me");
  EXPECT_EQ(loud.TakeAll().size(), 1u);

  TestClient& quiet = h.Connect("quiet", /*hello=*/false);
  quiet.Hello("quiet", /*no_echo=*/true);
  quiet.Subscribe("t");
  quiet.Publish("t", "me");
  // quiet does not hear itself; loud hears quiet.
  EXPECT_TRUE(quiet.Idle());
  EXPECT_EQ(loud.TakeAll().size(), 1u);
}

TEST(BrokerPubSubTest, AcknowledgedPublishReportsTheNumberOfDeliveries) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& s1 = h.Connect("s1");
  TestClient& s2 = h.Connect("s2");
  s1.Subscribe("t");
  s2.Subscribe("t");
  s2.Subscribe("*");
  wire::ServerMessage ack = pub.PublishAcked("t", "x");
  ASSERT_TRUE(ack.has_ack());
  EXPECT_EQ(ack.ack().op_id(), 1u);
  EXPECT_EQ(ack.ack().delivered(), 3u);
  EXPECT_EQ(pub.PublishAcked("nobody/listens", "x").ack().delivered(), 0u);
}

TEST(BrokerPubSubTest, UnsubscribeStopsDeliveries) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  const SubscriptionId id = sub.Subscribe("t");
  pub.Publish("t", "1");
  EXPECT_EQ(sub.Next().deliver().payload(), "1");
  sub.Unsubscribe(id);
  pub.Publish("t", "2");
  EXPECT_TRUE(sub.Idle());
  EXPECT_EQ(h.broker().statistics().subscriptions, 0u);
}

TEST(BrokerPubSubTest, UnsubscribeWithMaxEndsAfterThatManyInAll) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  const SubscriptionId id = sub.Subscribe("t");
  pub.Publish("t", "1");
  EXPECT_EQ(sub.Next().deliver().payload(), "1");
  sub.Unsubscribe(id, /*max_messages=*/3);  // 1 delivered, 2 to go
  for (int i = 2; i <= 5; ++i) pub.Publish("t", absl::StrCat(i));
  std::vector<std::string> got;
  for (const auto& m : sub.TakeAll()) got.push_back(m.deliver().payload());
  EXPECT_THAT(got, ::testing::ElementsAre("2", "3"));
  EXPECT_EQ(h.broker().statistics().subscriptions, 0u);
  // Already past the max: ends at once.
  const SubscriptionId again = sub.Subscribe("t");
  pub.Publish("t", "x");
  sub.TakeAll();
  sub.Unsubscribe(again, /*max_messages=*/1);
  pub.Publish("t", "y");
  EXPECT_TRUE(sub.Idle());
}

TEST(BrokerPubSubTest, UnsubscribingSomeoneElsesSubscriptionIsUnknown) {
  BrokerHarness h;
  TestClient& owner = h.Connect("owner");
  TestClient& other = h.Connect("other");
  const SubscriptionId id = owner.Subscribe("t");
  wire::ClientMessage m;
  m.mutable_unsubscribe()->set_op_id(4);
  m.mutable_unsubscribe()->set_subscription_id(id.value());
  other.Send(m);
  wire::ServerMessage reply = other.Next();
  EXPECT_EQ(reply.error().op_id(), 4u);
  EXPECT_EQ(reply.error().code(), wire::UNKNOWN_SUBSCRIPTION);
  EXPECT_FALSE(reply.error().fatal());
  EXPECT_THAT(reply.error().message(),
              HasSubstr(absl::StrCat("no subscription sub#", id.value())));
  EXPECT_FALSE(other.closed());
}

TEST(BrokerPubSubTest, InvalidPatternsAndTopicsGetSpecificErrors) {
  BrokerHarness h;
  TestClient& c = h.Connect("c");
  wire::ServerMessage reply = c.TrySubscribe("a//b");
  EXPECT_EQ(reply.error().code(), wire::INVALID_PATTERN);
  EXPECT_THAT(reply.error().message(), HasSubstr("segment 2 is empty"));
  reply = c.PublishAcked("a b", "x");
  EXPECT_EQ(reply.error().code(), wire::INVALID_TOPIC);
  EXPECT_THAT(reply.error().message(), HasSubstr("illegal character 0x20"));
  reply = c.TrySubscribe("a", "bad group");
  EXPECT_EQ(reply.error().code(), wire::INVALID_ARGUMENT);
  EXPECT_FALSE(c.closed());
  EXPECT_EQ(h.broker().statistics().operation_errors, 3u);
}

TEST(BrokerPubSubTest, PublishingOnReservedTopicsIsRefused) {
  BrokerHarness h;
  TestClient& c = h.Connect("c");
  wire::ServerMessage reply = c.PublishAcked("$sys/connection/added", "fake");
  EXPECT_EQ(reply.error().code(), wire::RESERVED_TOPIC);
  EXPECT_THAT(reply.error().message(), HasSubstr("reserved for the broker"));
}

TEST(BrokerPubSubTest, InvalidHeadersAndReplyToAreRejected) {
  BrokerHarness h;
  TestClient& c = h.Connect("c");
  wire::ClientMessage m;
  m.mutable_publish()->set_op_id(1);
  m.mutable_publish()->set_topic("t");
  wire::Header* header = m.mutable_publish()->add_headers();
  header->set_key("Bad Key");
  c.Send(m);
  EXPECT_EQ(c.Next().error().code(), wire::INVALID_ARGUMENT);
  m.mutable_publish()->clear_headers();
  m.mutable_publish()->set_reply_to("inbox/*");
  c.Send(m);
  wire::ServerMessage reply = c.Next();
  EXPECT_EQ(reply.error().code(), wire::INVALID_TOPIC);
  EXPECT_THAT(reply.error().message(), HasSubstr("reply_to:"));
}

TEST(BrokerPubSubTest, NoRespondersNoticeGoesToThePublishersInbox) {
  BrokerHarness h;
  TestClient& c = h.Connect("c");
  const SubscriptionId inbox = c.Subscribe("inbox/c");
  wire::ClientMessage m;
  m.mutable_publish()->set_topic("nobody/home");
  m.mutable_publish()->set_reply_to("inbox/c");
  m.mutable_publish()->set_no_responders(true);
  c.Send(m);
  wire::ServerMessage notice = c.Next();
  EXPECT_EQ(notice.deliver().subscription_id(), inbox.value());
  EXPECT_EQ(notice.deliver().topic(), "inbox/c");
  ASSERT_EQ(notice.deliver().headers_size(), 1);
  EXPECT_EQ(notice.deliver().headers(0).key(), "Status");
  EXPECT_EQ(notice.deliver().headers(0).value(), "503");
}

TEST(BrokerPubSubTest, LargePayloadFansOutIntact) {
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  std::vector<TestClient*> subs;
  for (int i = 0; i < 4; ++i) {
    subs.push_back(&h.Connect(absl::StrCat("s", i)));
    subs.back()->Subscribe("big");
  }
  std::string payload(100000, 'x');
  for (size_t i = 0; i < payload.size(); i += 7)
    payload[i] = char('a' + i % 26);
  pub.Publish("big", payload);
  for (TestClient* s : subs) EXPECT_EQ(s->Next().deliver().payload(), payload);
}

TEST(BrokerPubSubTest, PublishWithUnusualFieldOrderTakesTheGeneralPath) {
  // Fields written in reverse order (valid protobuf) and a duplicate topic
  // field (last one wins): the result must equal the canonical encoding's.
  BrokerHarness h;
  TestClient& pub = h.Connect("pub");
  TestClient& sub = h.Connect("sub");
  sub.Subscribe("real");
  std::string body;
  body += std::string("\x1a\x02hi", 4);  // payload = "hi"
  body += std::string(
      "\x12\x04"
      "fake",
      6);  // topic = "fake"
  body += std::string(
      "\x12\x04"
      "real",
      6);  // topic = "real" (wins)
  std::string message = "\x22";
  message += static_cast<char>(body.size());
  message += body;
  message +=
      std::string("\x22\x00", 2);  // a second, empty publish field: merges
  std::string frame(1, static_cast<char>(message.size()));
  frame += message;
  pub.SendRaw(frame);
  wire::ServerMessage m = sub.Next();
  EXPECT_EQ(m.deliver().topic(), "real");
  EXPECT_EQ(m.deliver().payload(), "hi");
}

}  // namespace
}  // namespace manifold
