// Limits under attack: a flood of connections past --max_connections. Every
// connection past the limit, native or NATS, silent or talking, gets
// TOO_MANY_CONNECTIONS (NATS: 'Maximum Connections Exceeded') and is closed;
// those within it are served; slots freed are slots to use again; clients
// that were connected before the flood never notice it.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "gtest/gtest.h"
#include "tests/e2e/testing/attacked_broker_test.h"
#include "tests/e2e/testing/nats_line_client.h"

namespace manifold {
namespace {

using testing::AttackedBrokerTest;
using testing::NatsLineClient;
using testing::WireClient;

class ConnectionFloodTest : public AttackedBrokerTest {};

// The watcher and the healthy pair hold three of the broker's connections.
constexpr int kLimit = 40;
constexpr int kFixtureConnections = 3;

TEST_P(ConnectionFloodTest, ConnectionsPastTheLimitGetTooManyConnections) {
  ASSERT_NO_FATAL_FAILURE(
      StartBroker({absl::StrCat("--max_connections=", kLimit)}));
  // Open 200 connections as fast as possible, before any says a word (a
  // flood of silent peers must count against the limit too).
  std::vector<WireClient> flood;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<WireClient> c = WireClient::Connect(broker().tcp());
    ASSERT_TRUE(c.ok()) << c.status();  // the kernel accepts them all
    flood.push_back(*std::move(c));
  }
  std::vector<WireClient> admitted;
  int refused = 0;
  for (WireClient& c : flood) {
    absl::StatusOr<wire::Welcome> welcome = c.Hello("flood");
    if (welcome.ok()) {
      admitted.push_back(std::move(c));
      continue;
    }
    absl::StatusOr<wire::ServerMessage> next = c.Receive();
    ++refused;
    EXPECT_EQ(WireCode(welcome.status()), wire::TOO_MANY_CONNECTIONS)
        << welcome.status();
    EXPECT_EQ(welcome.status().message(),
              absl::StrCat("broker has ", kLimit, " connections; the limit is ",
                           kLimit));
    EXPECT_TRUE(absl::IsUnavailable(next.status())) << "not closed";
  }
  EXPECT_EQ(admitted.size(), size_t{kLimit - kFixtureConnections});
  EXPECT_EQ(refused, 200 - static_cast<int>(admitted.size()));

  // Those within the limit work.
  for (WireClient& c : admitted) EXPECT_TRUE(c.Ping().ok());
  ExpectHealthyTrafficFlows();
  flood.clear();
  admitted.clear();

  // The welcomed ones leave (each announced on $sys; refused connections
  // never joined, so only the statistics count them).
  absl::StatusOr<std::vector<wire::ConnectionRemoved>> departures =
      removals().WaitForCount(
          kLimit - kFixtureConnections,
          [](const wire::ConnectionRemoved& r) {
            return r.client_name() == "flood";
          },
          absl::Seconds(5));
  ASSERT_TRUE(departures.ok()) << departures.status();

  // With the flood gone the broker accepts again: a statistics client gets
  // in and finds only the fixture's connections and itself.
  absl::StatusOr<wire::Statistics> stats = Statistics();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->connections(), uint64_t{kFixtureConnections + 1});
  EXPECT_EQ(stats->connections_refused(), uint64_t(refused));
}

TEST_P(ConnectionFloodTest, NatsConnectionsPastTheLimitAreToldSo) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(
      {absl::StrCat("--max_connections=", kLimit)}, {.nats = true}));
  std::vector<NatsLineClient> accepted;
  for (int i = 0; i < kLimit - kFixtureConnections; ++i) {
    absl::StatusOr<NatsLineClient> c = NatsLineClient::Connect(broker().nats());
    ASSERT_TRUE(c.ok()) << c.status();
    accepted.push_back(*std::move(c));
  }
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<NatsLineClient> c = NatsLineClient::Connect(broker().nats());
    ASSERT_TRUE(c.ok()) << c.status();
    // A refused NATS client gets INFO (it is the greeting), then the error.
    absl::StatusOr<std::vector<std::string>> lines = c->ReadUntilClosed();
    ASSERT_TRUE(lines.ok()) << lines.status();
    EXPECT_EQ(*lines,
              std::vector<std::string>{"-ERR 'Maximum Connections Exceeded'"});
  }
  for (NatsLineClient& c : accepted) {
    ASSERT_TRUE(c.Send("CONNECT {\"verbose\":false}\r\nPING\r\n").ok());
    absl::StatusOr<std::string> pong = c.ReadLine();
    ASSERT_TRUE(pong.ok()) << pong.status();
    EXPECT_EQ(*pong, "PONG");
  }
  ExpectHealthyTrafficFlows();
}

INSTANTIATE_TEST_SUITE_P(Loops, ConnectionFloodTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
