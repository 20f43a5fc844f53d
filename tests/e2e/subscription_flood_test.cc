// Limits under attack: one client asking for thousands of subscriptions, past
// --max_subscriptions_per_connection. Those within the limit are made, every
// one past it is refused with TOO_MANY_SUBSCRIPTIONS (a non-fatal error: the
// connection stays), and when the client leaves its subscriptions go with it.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/framing.h"
#include "gtest/gtest.h"
#include "tests/e2e/testing/attacked_broker_test.h"
#include "tests/e2e/testing/nats_line_client.h"

namespace manifold {
namespace {

using testing::AttackedBrokerTest;
using testing::NatsLineClient;
using testing::WireClient;

class SubscriptionFloodTest : public AttackedBrokerTest {};

constexpr int kLimit = 1000;
constexpr int kAsked = 5000;

TEST_P(SubscriptionFloodTest, SubscriptionsPastTheLimitAreRefusedOneByOne) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(
      {absl::StrCat("--max_subscriptions_per_connection=", kLimit)}));
  absl::StatusOr<wire::Statistics> before = Statistics();
  ASSERT_TRUE(before.ok()) << before.status();

  WireClient hoarder = Connect("hoarder");
  // All 5000 in one burst, without waiting for answers.
  std::string burst;
  for (int i = 1; i <= kAsked; ++i) {
    wire::ClientMessage m;
    m.mutable_subscribe()->set_op_id(i);
    m.mutable_subscribe()->set_pattern(absl::StrCat("hoard/", i, "/**"));
    AppendFrame(m, &burst);
  }
  ASSERT_TRUE(hoarder.SendRaw(burst).ok());

  int acks = 0;
  int refusals = 0;
  for (int i = 1; i <= kAsked; ++i) {
    absl::StatusOr<wire::ServerMessage> reply = hoarder.ReceiveSkippingPings();
    ASSERT_TRUE(reply.ok()) << "reply " << i << ": " << reply.status();
    if (reply->has_ack()) {
      EXPECT_EQ(reply->ack().op_id(), uint64_t(i));
      ++acks;
      continue;
    }
    ASSERT_TRUE(reply->has_error()) << reply->ShortDebugString();
    EXPECT_EQ(reply->error().op_id(), uint64_t(i));
    EXPECT_EQ(reply->error().code(), wire::TOO_MANY_SUBSCRIPTIONS);
    EXPECT_EQ(reply->error().message(),
              absl::StrCat("connection has ", kLimit,
                           " subscriptions; the limit is ", kLimit));
    EXPECT_FALSE(reply->error().fatal());
    ++refusals;
  }
  EXPECT_EQ(acks, kLimit);
  EXPECT_EQ(refusals, kAsked - kLimit);

  // The connection carries on, and its subscriptions work.
  EXPECT_TRUE(hoarder.Ping().ok());
  // (The delivery to its own subscription may come before the Ack.)
  wire::ClientMessage publish;
  publish.mutable_publish()->set_op_id(hoarder.next_op_id());
  publish.mutable_publish()->set_topic("hoard/7/x");
  publish.mutable_publish()->set_payload("mine");
  publish.mutable_publish()->set_ack(true);
  ASSERT_TRUE(hoarder.Send(publish).ok());
  int delivered = -1;
  std::string payload;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<wire::ServerMessage> m = hoarder.ReceiveSkippingPings();
    ASSERT_TRUE(m.ok()) << m.status();
    if (m->has_ack()) {
      delivered = static_cast<int>(m->ack().delivered());
    } else {
      payload = m->deliver().payload();
    }
  }
  EXPECT_EQ(delivered, 1);
  EXPECT_EQ(payload, "mine");
  ExpectHealthyTrafficFlows();

  absl::StatusOr<wire::Statistics> during = Statistics();
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->subscriptions(), before->subscriptions() + kLimit);

  // Leaving takes all of them away.
  hoarder.Close();
  ASSERT_TRUE(removals().WaitForClient("hoarder", absl::Seconds(5)).ok());
  absl::StatusOr<wire::Statistics> after = Statistics();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->subscriptions(), before->subscriptions());
}

TEST_P(SubscriptionFloodTest, NatsSubscriptionsPastTheLimitAreRefused) {
  ASSERT_NO_FATAL_FAILURE(
      StartBroker({absl::StrCat("--max_subscriptions_per_connection=", kLimit)},
                  {.nats = true}));
  absl::StatusOr<NatsLineClient> nats =
      NatsLineClient::Connect(broker().nats());
  ASSERT_TRUE(nats.ok()) << nats.status();
  std::string burst = "CONNECT {\"verbose\":false}\r\n";
  for (int i = 1; i <= 2000; ++i) {
    absl::StrAppend(&burst, "SUB hoard.", i, ".> ", i, "\r\n");
  }
  absl::StrAppend(&burst, "PING\r\n");
  ASSERT_TRUE(nats->Send(burst).ok());
  int errors = 0;
  while (true) {
    absl::StatusOr<std::string> line = nats->ReadLine();
    ASSERT_TRUE(line.ok()) << line.status();
    if (*line == "PONG") break;
    EXPECT_EQ(*line, "-ERR 'Maximum Subscriptions Exceeded'");
    ++errors;
  }
  EXPECT_EQ(errors, 2000 - kLimit);
  // Not fatal: the connection still publishes and receives.
  ASSERT_TRUE(nats->Send("PUB hoard.1.x 2\r\nhi\r\n").ok());
  absl::StatusOr<std::string> msg = nats->ReadLine();
  ASSERT_TRUE(msg.ok()) << msg.status();
  EXPECT_EQ(*msg, "MSG hoard.1.x 1 2");
  ExpectHealthyTrafficFlows();
}

INSTANTIATE_TEST_SUITE_P(Loops, SubscriptionFloodTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
