// Limits under attack: peers that send slowly or never finish a line. A
// client that sends one byte at a time is served like any other (and many of
// them at once hold nobody up); one that dribbles its handshake past the
// handshake timeout is cut with HANDSHAKE_TIMEOUT; a NATS control line that
// never ends is cut at the control-line limit without being buffered.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
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

class SlowSenderTest : public AttackedBrokerTest {};

void DisableNagle(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::string HelloFrame(absl::string_view name) {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
  m.mutable_hello()->set_client_name(std::string(name));
  return EncodeFrame(m);
}

// Sends `bytes` one byte per write, `gap` apart.
absl::Status Dribble(WireClient& client, absl::string_view bytes,
                     absl::Duration gap = absl::Milliseconds(1)) {
  for (char c : bytes) {
    if (absl::Status s = client.SendRaw(absl::string_view(&c, 1)); !s.ok()) {
      return s;
    }
    absl::SleepFor(gap);
  }
  return absl::OkStatus();
}

TEST_P(SlowSenderTest, ByteAtATimeClientIsServedLikeAnyOther) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({}));
  absl::StatusOr<WireClient> slow = WireClient::Connect(broker().tcp());
  ASSERT_TRUE(slow.ok());
  DisableNagle(slow->fd());

  ASSERT_TRUE(Dribble(*slow, HelloFrame("dribbler")).ok());
  absl::StatusOr<wire::ServerMessage> welcome = slow->Receive();
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  EXPECT_TRUE(welcome->has_welcome()) << welcome->ShortDebugString();

  wire::ClientMessage subscribe;
  subscribe.mutable_subscribe()->set_op_id(1);
  subscribe.mutable_subscribe()->set_pattern("slow/*");
  wire::ClientMessage publish;
  publish.mutable_publish()->set_op_id(2);
  publish.mutable_publish()->set_topic("slow/lane");
  publish.mutable_publish()->set_payload("one byte at a time");
  ASSERT_TRUE(
      Dribble(*slow, EncodeFrame(subscribe) + EncodeFrame(publish)).ok());
  absl::StatusOr<wire::ServerMessage> ack = slow->Receive();
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->ack().op_id(), 1u) << ack->ShortDebugString();
  absl::StatusOr<wire::ServerMessage> delivered = slow->Receive();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(delivered->deliver().payload(), "one byte at a time");
  ExpectHealthyTrafficFlows();
}

TEST_P(SlowSenderTest, ManyByteAtATimeClientsAtOnceHoldNobodyUp) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({}));
  constexpr int kClients = 50;
  std::vector<WireClient> slow;
  std::vector<std::string> frames;
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<WireClient> c = WireClient::Connect(broker().tcp());
    ASSERT_TRUE(c.ok());
    DisableNagle(c->fd());
    slow.push_back(*std::move(c));
    frames.push_back(HelloFrame(absl::StrCat("dribbler-", i)));
  }
  // Round robin: one byte to each client, then the next byte to each.
  for (size_t at = 0;; ++at) {
    bool sent = false;
    for (int i = 0; i < kClients; ++i) {
      if (at >= frames[i].size()) continue;
      ASSERT_TRUE(slow[i].SendRaw(frames[i].substr(at, 1)).ok());
      sent = true;
    }
    if (!sent) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  for (WireClient& c : slow) {
    absl::StatusOr<wire::ServerMessage> welcome = c.Receive();
    ASSERT_TRUE(welcome.ok()) << welcome.status();
    EXPECT_TRUE(welcome->has_welcome()) << welcome->ShortDebugString();
  }
  ExpectHealthyTrafficFlows();
}

TEST_P(SlowSenderTest, HandshakeDribbledPastTheTimeoutIsHandshakeTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({"--handshake_timeout=500ms"}));
  absl::StatusOr<WireClient> slowloris = WireClient::Connect(broker().tcp());
  ASSERT_TRUE(slowloris.ok());
  DisableNagle(slowloris->fd());
  // About 17 bytes at 100 ms each: well past 500 ms. The broker closes in
  // the middle, so a later write may fail; that is the point.
  Dribble(*slowloris, HelloFrame("slowloris"), absl::Milliseconds(100))
      .IgnoreError();
  absl::StatusOr<std::vector<wire::ServerMessage>> messages =
      slowloris->ReadUntilClosed();
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 1u);
  EXPECT_EQ(messages->front().error().code(), wire::HANDSHAKE_TIMEOUT);
  EXPECT_EQ(messages->front().error().message(), "no Hello within 500ms");
  EXPECT_TRUE(messages->front().error().fatal());

  // A connection that never said Hello is not announced on $sys (it never
  // joined); the statistics count it, and it holds nothing any more.
  absl::StatusOr<wire::Statistics> stats = Statistics();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->protocol_errors(), 1u);
  EXPECT_EQ(stats->connections(), 4u);  // the fixture's three, and this one
  ExpectHealthyTrafficFlows();
}

TEST_P(SlowSenderTest, NatsByteAtATimeClientIsServed) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({}, {.nats = true}));
  absl::StatusOr<NatsLineClient> nats =
      NatsLineClient::Connect(broker().nats());
  ASSERT_TRUE(nats.ok()) << nats.status();
  const std::string commands =
      "CONNECT {\"verbose\":false}\r\nSUB slow.* 1\r\n"
      "PUB slow.lane 5\r\nhello\r\nPING\r\n";
  for (char c : commands) {
    ASSERT_TRUE(nats->Send(absl::string_view(&c, 1)).ok());
    absl::SleepFor(absl::Milliseconds(1));
  }
  std::vector<std::string> lines;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::string> line = nats->ReadLine();
    ASSERT_TRUE(line.ok()) << line.status();
    lines.push_back(*line);
  }
  EXPECT_EQ(lines,
            (std::vector<std::string>{"MSG slow.lane 1 5", "hello", "PONG"}));
  ExpectHealthyTrafficFlows();
}

TEST_P(SlowSenderTest, NatsControlLineWithoutAnEndIsCutAtItsLimit) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({}, {.nats = true}));
  absl::StatusOr<NatsLineClient> nats =
      NatsLineClient::Connect(broker().nats());
  ASSERT_TRUE(nats.ok()) << nats.status();
  ASSERT_TRUE(
      nats->Send("CONNECT {\"name\":\"endless\",\"verbose\":false}\r\n").ok());
  // Up to 256 MiB of one line: the broker gives up after 4 KiB (NATS's
  // max_control_line) and closes, so sending fails once the kernel buffers
  // between the two (a few MiB on loopback) are full, long before the end.
  ASSERT_TRUE(nats->Send("PUB healthy.stream ").ok());
  const std::string chunk(64 * 1024, 'a');
  constexpr int kChunks = 4096;
  int chunks_sent = 0;
  while (chunks_sent < kChunks && nats->Send(chunk).ok()) ++chunks_sent;
  EXPECT_LT(chunks_sent, kChunks) << "the broker kept reading an endless line";
  EXPECT_LT(chunks_sent, 1024) << "the broker read 64 MiB of an endless line";

  absl::StatusOr<std::vector<std::string>> lines = nats->ReadUntilClosed();
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_FALSE(lines->empty());
  EXPECT_EQ(lines->back(), "-ERR 'Maximum Control Line Exceeded'");

  absl::StatusOr<wire::ConnectionRemoved> removed =
      removals().WaitForClient("endless", absl::Seconds(5));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->code(), wire::FRAME_TOO_LARGE);
  EXPECT_TRUE(absl::StartsWith(removed->reason(), "NATS control line "))
      << removed->reason();
  EXPECT_TRUE(
      absl::EndsWith(removed->reason(), " has no end within 4096 bytes"))
      << removed->reason();
  ExpectHealthyTrafficFlows();
}

INSTANTIATE_TEST_SUITE_P(Loops, SlowSenderTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
