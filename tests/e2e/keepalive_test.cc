// Limits under attack: half-open connections, reaped by keepalive. A client
// that goes on reading but stops answering pings is closed with
// KEEPALIVE_TIMEOUT after --keepalive_max_missed pings; so is a connection
// whose peer vanished altogether, even when the broker cannot write a single
// byte more to it (its close is bounded by --close_linger). Clients that
// answer keep their connections.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/testing/attacked_broker_test.h"
#include "tests/e2e/testing/nats_line_client.h"

namespace manifold {
namespace {

using testing::AttackedBrokerTest;
using testing::NatsLineClient;
using testing::WireClient;

class KeepaliveTest : public AttackedBrokerTest {};

const std::vector<std::string> kQuickKeepalive = {"--keepalive_interval=200ms",
                                                  "--keepalive_max_missed=2"};

TEST_P(KeepaliveTest,
       ClientThatStopsAnsweringPingsIsClosedWithKeepaliveTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(kQuickKeepalive));
  WireClient mute = Connect("mute");
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<wire::ServerMessage>> messages =
      mute.ReadUntilClosed(absl::Seconds(10));
  const absl::Duration elapsed = absl::Now() - start;
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 3u);
  EXPECT_EQ((*messages)[0].ping().op_id(), 1u);
  EXPECT_EQ((*messages)[1].ping().op_id(), 2u);
  const wire::ServerMessage& last = (*messages)[2];
  EXPECT_EQ(last.error().code(), wire::KEEPALIVE_TIMEOUT);
  EXPECT_EQ(last.error().message(), "no answer to 2 keepalive pings in a row");
  EXPECT_TRUE(last.error().fatal());
  // Three intervals: ping, ping, close.
  EXPECT_GE(elapsed, absl::Milliseconds(550));
  EXPECT_LT(elapsed, absl::Seconds(5));

  absl::StatusOr<wire::ConnectionRemoved> removed =
      removals().WaitForClient("mute", absl::Seconds(5));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->code(), wire::KEEPALIVE_TIMEOUT);
  ExpectHealthyTrafficFlows();
}

TEST_P(KeepaliveTest, ClientThatAnswersPingsKeepsItsConnection) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(kQuickKeepalive));
  WireClient polite = Connect("polite");
  int pings = 0;
  for (const absl::Time end = absl::Now() + absl::Seconds(1);
       absl::Now() < end;) {
    absl::StatusOr<wire::ServerMessage> m =
        polite.Receive(absl::Milliseconds(100));
    if (absl::IsDeadlineExceeded(m.status())) continue;
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE(m->has_ping()) << m->ShortDebugString();
    ++pings;
    wire::ClientMessage pong;
    pong.mutable_pong()->set_op_id(m->ping().op_id());
    ASSERT_TRUE(polite.Send(pong).ok());
  }
  EXPECT_GE(pings, 3);
  EXPECT_TRUE(polite.Ping().ok());
  EXPECT_FALSE(removals().WaitForClient("polite", absl::ZeroDuration()).ok());
  ExpectHealthyTrafficFlows();
}

// On loopback a peer cannot vanish for real (its kernel still acknowledges),
// so the nearest thing stands in: a socket whose owner never reads or writes
// again, with a receive window so small that the broker's writes, its pings
// and even its final error frame stay stuck in its own buffers.
TEST_P(KeepaliveTest, ConnectionWhosePeerVanishedIsReaped) {
  std::vector<std::string> flags = kQuickKeepalive;
  flags.push_back("--close_linger=300ms");
  ASSERT_NO_FATAL_FAILURE(StartBroker(flags));
  absl::StatusOr<WireClient> vanished =
      WireClient::Connect(broker().tcp(), /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(vanished.ok()) << vanished.status();
  ASSERT_TRUE(vanished->Hello("vanished").ok());
  ASSERT_TRUE(vanished->Subscribe("bulk/*").ok());
  {
    // 3 MiB for it: more than the kernel buffers between the two ends hold,
    // less than the broker's slow-consumer limit (8 MiB).
    WireClient publisher = Connect("bulk-publisher");
    const std::string payload(512 * 1024, 'b');
    for (int i = 0; i < 6; ++i) {
      ASSERT_TRUE(publisher.Publish("bulk/x", payload).ok());
    }
    ASSERT_TRUE(publisher.Ping().ok());  // all six were routed
  }
  // From here on nobody touches `vanished`.
  absl::StatusOr<wire::ConnectionRemoved> removed =
      removals().WaitForClient("vanished", absl::Seconds(5));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->code(), wire::KEEPALIVE_TIMEOUT);
  EXPECT_EQ(removed->reason(), "no answer to 2 keepalive pings in a row");

  absl::StatusOr<wire::Statistics> stats = Statistics();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->keepalive_disconnects(), 1u);
  EXPECT_EQ(stats->slow_consumer_disconnects(), 0u);
  ExpectHealthyTrafficFlows();

  // The broker let go of the socket: draining it now ends in a close.
  absl::StatusOr<std::vector<wire::ServerMessage>> rest =
      vanished->ReadUntilClosed(absl::Seconds(10));
  EXPECT_TRUE(rest.ok()) << rest.status();
}

TEST_P(KeepaliveTest, NatsClientThatStopsAnsweringIsAStaleConnection) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(kQuickKeepalive, {.nats = true}));
  absl::StatusOr<NatsLineClient> nats =
      NatsLineClient::Connect(broker().nats());
  ASSERT_TRUE(nats.ok()) << nats.status();
  ASSERT_TRUE(
      nats->Send("CONNECT {\"name\":\"stale\",\"verbose\":false}\r\n").ok());
  absl::StatusOr<std::vector<std::string>> lines =
      nats->ReadUntilClosed(absl::Seconds(10));
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(*lines, (std::vector<std::string>{"PING", "PING",
                                              "-ERR 'Stale Connection'"}));
  absl::StatusOr<wire::ConnectionRemoved> removed =
      removals().WaitForClient("stale", absl::Seconds(5));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->code(), wire::KEEPALIVE_TIMEOUT);
  ExpectHealthyTrafficFlows();
}

INSTANTIATE_TEST_SUITE_P(Loops, KeepaliveTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
