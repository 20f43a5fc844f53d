// Limits under attack: frames and payloads larger than the broker allows, and
// length prefixes that announce absurd sizes, sent to a real manifoldd. Each
// gets its specific error; the broker never waits for, or buffers, the bytes
// an oversized frame announces; nobody else notices.

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

class OversizedInputTest : public AttackedBrokerTest {};

// Expects that `client` gets exactly one message, a fatal error with `code`
// and `message`, and then the broker closes the connection.
void ExpectFatalErrorThenClose(WireClient& client, wire::Code code,
                               const std::string& message) {
  absl::StatusOr<std::vector<wire::ServerMessage>> messages =
      client.ReadUntilClosed();
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 1u);
  const wire::ServerMessage& m = messages->front();
  ASSERT_TRUE(m.has_error()) << m.ShortDebugString();
  EXPECT_EQ(m.error().code(), code) << m.ShortDebugString();
  EXPECT_EQ(m.error().message(), message);
  EXPECT_TRUE(m.error().fatal());
}

TEST_P(OversizedInputTest, FrameOverTheLimitIsFrameTooLargeBeforeItsBytesCome) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({"--max_frame_bytes=4096"}));
  WireClient attacker = Connect("oversize");
  // A length prefix announcing 1 MiB, followed by only a few of its bytes:
  // the broker must answer at once rather than wait for (or buffer) the rest.
  ASSERT_TRUE(attacker.SendRaw(std::string("\x80\x80\x40", 3)).ok());
  ASSERT_TRUE(attacker.SendRaw(std::string(100, 'x')).ok());
  ExpectFatalErrorThenClose(attacker, wire::FRAME_TOO_LARGE,
                            "frame of 1048576 bytes exceeds the limit of 4096 "
                            "bytes");

  absl::StatusOr<wire::ConnectionRemoved> removed =
      removals().WaitForClient("oversize", absl::Seconds(5));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->code(), wire::FRAME_TOO_LARGE);
  ExpectHealthyTrafficFlows();
}

TEST_P(OversizedInputTest, LengthPrefixOfAnAbsurdSizeIsRefusedToo) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({}));
  // 2^62 bytes, before Hello: no allocation, no waiting.
  absl::StatusOr<WireClient> attacker = WireClient::Connect(broker().tcp());
  ASSERT_TRUE(attacker.ok());
  ASSERT_TRUE(
      attacker->SendRaw(std::string("\x80\x80\x80\x80\x80\x80\x80\x80\x40", 9))
          .ok());
  ExpectFatalErrorThenClose(
      *attacker, wire::FRAME_TOO_LARGE,
      "frame of 4611686018427387904 bytes exceeds the limit of 1114112 bytes");

  // Ten continuation bytes are no varint at all.
  absl::StatusOr<WireClient> garbage = WireClient::Connect(broker().tcp());
  ASSERT_TRUE(garbage.ok());
  ASSERT_TRUE(garbage->SendRaw(std::string(10, '\xff')).ok());
  ExpectFatalErrorThenClose(*garbage, wire::BAD_LENGTH_PREFIX,
                            "frame length prefix is not a valid varint");
  ExpectHealthyTrafficFlows();
}

TEST_P(OversizedInputTest, StreamOfOversizedFramesCannotGrowTheBroker) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({"--max_frame_bytes=65536"}));
  // Connections in a row, each announcing 64 MiB and sending 256 KiB of it
  // as fast as it can until the broker cuts it off.
  const std::string chunk(256 * 1024, 'z');
  auto attack = [&](int connections) {
    for (int i = 0; i < connections; ++i) {
      absl::StatusOr<WireClient> attacker = WireClient::Connect(broker().tcp());
      ASSERT_TRUE(attacker.ok());
      attacker->SendRaw(std::string("\x80\x80\x80\x20", 4)).IgnoreError();
      attacker->SendRaw(chunk).IgnoreError();  // may fail: the broker closed
      absl::StatusOr<std::vector<wire::ServerMessage>> messages =
          attacker->ReadUntilClosed();
      ASSERT_TRUE(messages.ok()) << messages.status();
      ASSERT_FALSE(messages->empty());
      EXPECT_EQ(messages->front().error().code(), wire::FRAME_TOO_LARGE);
    }
  };
  // A first round touches the loop's fixed pools (io_uring's ring of 8 MiB of
  // receive buffers fills in as the kernel hands them out), so that the
  // measured round sees only what the attack itself could make grow.
  ASSERT_NO_FATAL_FAILURE(attack(20));
  absl::StatusOr<int64_t> before = ResidentKib();
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_NO_FATAL_FAILURE(attack(40));
  absl::StatusOr<int64_t> after = ResidentKib();
  ASSERT_TRUE(after.ok());
  // 40 x 64 MiB announced; a broker that believed the prefixes would hold
  // gigabytes. Allow a few MiB for allocator noise.
  if (!testing::kSanitizedBuild) {
    EXPECT_LT(*after - *before, 8 * 1024)
        << "RSS " << *before << " KiB -> " << *after << " KiB";
  }
  absl::StatusOr<wire::Statistics> stats = Statistics();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(stats->protocol_errors(), 60u);
  ExpectHealthyTrafficFlows();
}

TEST_P(OversizedInputTest, PayloadOverTheLimitIsRefusedAndTheConnectionStays) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({"--max_payload_bytes=1000"}));
  WireClient publisher = Connect("big-publisher");
  absl::StatusOr<wire::ServerMessage> reply =
      publisher.PublishAcked("healthy/stream", std::string(1001, 'p'));
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reply->has_error()) << reply->ShortDebugString();
  EXPECT_EQ(reply->error().code(), wire::PAYLOAD_TOO_LARGE);
  EXPECT_EQ(reply->error().message(),
            "payload of 1001 bytes (headers included) exceeds the limit of "
            "1000 bytes");
  EXPECT_FALSE(reply->error().fatal());
  // Not a protocol violation: the same connection carries on, and a payload
  // at the limit goes through.
  EXPECT_TRUE(publisher.Ping().ok());
  absl::StatusOr<wire::ServerMessage> at_limit =
      publisher.PublishAcked("nobody/listens", std::string(1000, 'p'));
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_TRUE(at_limit->has_ack()) << at_limit->ShortDebugString();
  ExpectHealthyTrafficFlows();
}

TEST_P(OversizedInputTest, NatsPublishOverTheLimitIsMaximumPayloadViolation) {
  ASSERT_NO_FATAL_FAILURE(
      StartBroker({"--max_payload_bytes=1000"}, {.nats = true}));
  absl::StatusOr<NatsLineClient> nats =
      NatsLineClient::Connect(broker().nats());
  ASSERT_TRUE(nats.ok()) << nats.status();
  EXPECT_NE(nats->info().find("\"max_payload\":1000"), std::string::npos)
      << nats->info();
  // Announce 2 MB; the broker refuses on the control line alone.
  ASSERT_TRUE(
      nats->Send("CONNECT {\"name\":\"nats-oversize\",\"verbose\":false}\r\n"
                 "PUB healthy.stream 2000000\r\n")
          .ok());
  absl::StatusOr<std::vector<std::string>> lines = nats->ReadUntilClosed();
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ(lines->front(), "-ERR 'Maximum Payload Violation'");

  absl::StatusOr<wire::ConnectionRemoved> removed =
      removals().WaitForClient("nats-oversize", absl::Seconds(5));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->code(), wire::PAYLOAD_TOO_LARGE);
  EXPECT_EQ(removed->reason(),
            "NATS PUB announces 2000000 bytes; the limit is 1000");
  ExpectHealthyTrafficFlows();
}

INSTANTIATE_TEST_SUITE_P(Loops, OversizedInputTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
