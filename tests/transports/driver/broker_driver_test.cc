// BrokerDriver against a scripted event loop: the LinkIo here takes as many
// bytes per write as a test says, so partial writes, would-block, submitted
// (completion-based) writes, pauses and closes happen exactly when wanted.
// The clock is fake; everything else (Broker, codec, frames) is real.

#include "transports/driver/broker_driver.h"

#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/nats/nats_codec.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/transports/testing/scripted_links.h"

namespace manifold {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

using testing::ScriptedLinks;

std::string HelloFrame(absl::string_view name = "client") {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
  m.mutable_hello()->set_client_name(std::string(name));
  return EncodeFrame(m);
}

std::string PingFrame(uint64_t op_id) {
  wire::ClientMessage m;
  m.mutable_ping()->set_op_id(op_id);
  return EncodeFrame(m);
}

// Quiet, timer-free broker options, so RunTurn() only does what a test asks.
BrokerOptions QuietOptions() {
  BrokerOptions options;
  options.set_keepalive_interval_ms(0);
  options.set_statistics_interval_ms(0);
  return options;
}

class BrokerDriverTest : public ::testing::Test {
 protected:
  BrokerDriver& MakeDriver(BrokerOptions broker_options = QuietOptions()) {
    driver_options.clock = [this] { return now; };
    driver_options.logger =
        Logger(LogLevel::kError, [](LogLevel, absl::string_view) {});
    driver.emplace(std::move(broker_options), driver_options);
    return *driver;
  }

  absl::Time now = absl::FromUnixSeconds(1'000'000);
  DriverOptions driver_options;
  std::optional<BrokerDriver> driver;
};

TEST_F(BrokerDriverTest, WelcomesAClientThroughManyPartialWrites) {
  ScriptedLinks links;
  links.per_write = 3;
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame("alice"));
  d.RunTurn();

  const std::vector<wire::ServerMessage> got = links.Messages(id);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].welcome().session_id(), id.value());
  EXPECT_GT(d.statistics().partial_writes, 2u);
  EXPECT_EQ(d.statistics().bytes_written, links.written[id].size());
}

TEST_F(BrokerDriverTest, WouldBlockWaitsForOnWritable) {
  ScriptedLinks links;
  links.budget = 4;
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame());
  d.RunTurn();
  EXPECT_EQ(links.written[id].size(), 4u);
  EXPECT_EQ(d.statistics().writes_blocked, 1u);

  links.budget = std::numeric_limits<size_t>::max();
  d.RunTurn();  // the link did not say it is writable: nothing is tried
  EXPECT_EQ(links.written[id].size(), 4u);

  d.OnWritable(id);
  d.RunTurn();
  ASSERT_EQ(links.Messages(id).size(), 1u);
  EXPECT_TRUE(links.Messages(id)[0].has_welcome());
}

TEST_F(BrokerDriverTest, PausesReadingWhileTheConnectionIsFullAndResumesLater) {
  ScriptedLinks links;
  BrokerOptions options = QuietOptions();
  options.set_max_inbound_bytes(256);
  BrokerDriver& d = MakeDriver(options);
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  std::string input = HelloFrame();
  for (uint64_t op = 1; op <= 100; ++op) input += PingFrame(op);
  ASSERT_GT(input.size(), options.max_inbound_bytes());

  d.OnReceived(id, input);
  EXPECT_THAT(links.reading_changes, ElementsAre(Pair(id, false)));

  d.RunTurn();
  EXPECT_THAT(links.reading_changes,
              ElementsAre(Pair(id, false), Pair(id, true)));
  const std::vector<wire::ServerMessage> got = links.Messages(id);
  ASSERT_EQ(got.size(), 101u);  // Welcome and 100 Pongs
  EXPECT_EQ(got.back().pong().op_id(), 100u);
  EXPECT_EQ(d.statistics().reads_paused, 1u);
}

TEST_F(BrokerDriverTest, PeerThatHangsUpGetsTheImmediateAnswersThenIsClosed) {
  ScriptedLinks links;
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame() + PingFrame(7));
  d.OnPeerClosed(id);
  d.RunTurn();

  const std::vector<wire::ServerMessage> got = links.Messages(id);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].has_welcome());
  EXPECT_EQ(got[1].pong().op_id(), 7u);
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_EQ(d.link_count(), 0u);
  EXPECT_EQ(d.broker().connection_count(), 0u);
  EXPECT_EQ(d.statistics().peer_closes, 1u);
}

// A peer refused for a body over the limit may still be sending it: the
// link stays open, reading and dropping, until the peer closes or a short
// deadline passes, so that the peer reads the refusal instead of a reset.
TEST_F(BrokerDriverTest, RefusedOversizedBodyIsDrainedBeforeTheClose) {
  ScriptedLinks links;
  BrokerOptions options = QuietOptions();
  options.set_max_payload_bytes(1024);
  BrokerDriver& d = MakeDriver(options);
  NatsOptions nats;
  nats.max_payload_bytes = 1024;
  const ConnectionId id =
      d.Open(links, PeerInfo{"test:1"}, std::make_unique<NatsCodec>(nats));
  d.OnReceived(id, "CONNECT {}\r\nPUB a 4096\r\n");
  d.RunTurn();
  EXPECT_TRUE(absl::StrContains(links.written[id], "Maximum Payload"));
  EXPECT_FALSE(links.closed.count(id)) << "closed before the peer could read";
  // The rest of the body is dropped, not processed.
  d.OnReceived(id, std::string(4096, 'x') + "\r\nPING\r\n");
  d.RunTurn();
  EXPECT_FALSE(absl::StrContains(links.written[id], "PONG"));
  EXPECT_FALSE(links.closed.count(id));
  d.OnPeerClosed(id);
  d.RunTurn();
  EXPECT_TRUE(links.closed.count(id));

  // A peer that stays: closed at the deadline.
  const ConnectionId quiet =
      d.Open(links, PeerInfo{"test:2"}, std::make_unique<NatsCodec>(nats));
  d.OnReceived(quiet, "CONNECT {}\r\nPUB a 4096\r\n");
  d.RunTurn();
  EXPECT_FALSE(links.closed.count(quiet));
  now += absl::Milliseconds(600);
  d.RunTurn();
  EXPECT_TRUE(links.closed.count(quiet));
  EXPECT_EQ(d.link_count(), 0u);
}

TEST_F(BrokerDriverTest, IoErrorClosesTheLinkWithTheErrorAsReason) {
  std::vector<wire::ConnectionRemoved> removed;
  driver_options.on_event = [&](const wire::BrokerEvent& e) {
    if (e.has_connection_removed()) removed.push_back(e.connection_removed());
  };
  ScriptedLinks links;
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame());
  d.RunTurn();

  d.OnError(id, absl::UnavailableError("read: Connection reset by peer"));
  d.RunTurn();
  EXPECT_TRUE(links.closed.count(id));
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].reason(), "read: Connection reset by peer");
  EXPECT_EQ(d.statistics().link_errors, 1u);
}

TEST_F(BrokerDriverTest, FailedWriteClosesTheLink) {
  ScriptedLinks links;
  links.fail_writes = absl::UnavailableError("write: Broken pipe");
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame());
  d.RunTurn();
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_EQ(d.broker().connection_count(), 0u);
}

TEST_F(BrokerDriverTest, ClosesALinkOnceTheBrokerIsDoneWithIt) {
  ScriptedLinks links;
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, std::string(11, '\xff'));  // not a varint
  d.RunTurn();

  const std::vector<wire::ServerMessage> got = links.Messages(id);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error().code(), wire::BAD_LENGTH_PREFIX);
  EXPECT_TRUE(got[0].error().fatal());
  EXPECT_TRUE(links.closed.count(id));
}

TEST_F(BrokerDriverTest, RunTurnReturnsTheNextDeadlineAndFiresDueTimers) {
  ScriptedLinks links;
  BrokerOptions options = QuietOptions();
  options.set_handshake_timeout_ms(2000);
  BrokerDriver& d = MakeDriver(options);
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  EXPECT_EQ(d.RunTurn(), now + absl::Seconds(2));

  now += absl::Seconds(2);
  d.RunTurn();
  const std::vector<wire::ServerMessage> got = links.Messages(id);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error().code(), wire::HANDSHAKE_TIMEOUT);
  EXPECT_TRUE(links.closed.count(id));
}

// Counts its calls and asks for a turn at `wanted`.
struct CountingHook : TurnHook {
  void BeforeTurn(absl::Time at) override {
    ++before;
    before_at = at;
  }
  std::optional<absl::Time> AfterTurn(absl::Time at) override {
    ++after;
    EXPECT_EQ(after, before);  // in order, once each per turn
    return wanted;
  }
  int before = 0;
  int after = 0;
  absl::Time before_at;
  std::optional<absl::Time> wanted;
};

TEST_F(BrokerDriverTest, TurnHookRunsEveryTurnAndItsDeadlineCounts) {
  ScriptedLinks links;
  BrokerOptions options = QuietOptions();
  options.set_handshake_timeout_ms(2000);
  BrokerDriver& d = MakeDriver(options);
  CountingHook hook;
  d.SetTurnHook(&hook);
  EXPECT_EQ(d.RunTurn(), std::nullopt);
  EXPECT_EQ(hook.before, 1);
  EXPECT_EQ(hook.before_at, now);
  // The earlier of the hook's deadline and the Broker's.
  d.Open(links, PeerInfo{"test:1"});
  hook.wanted = now + absl::Seconds(1);
  EXPECT_EQ(d.RunTurn(), now + absl::Seconds(1));
  hook.wanted = now + absl::Seconds(3);
  EXPECT_EQ(d.RunTurn(), now + absl::Seconds(2));
  EXPECT_EQ(hook.after, 3);
  d.SetTurnHook(nullptr);
  d.RunTurn();
  EXPECT_EQ(hook.before, 3);
}

TEST_F(BrokerDriverTest, RefusesConnectionsBeyondTheLimitWithAnErrorFrame) {
  ScriptedLinks links;
  BrokerOptions options = QuietOptions();
  options.set_max_connections(1);
  BrokerDriver& d = MakeDriver(options);
  const ConnectionId first = d.Open(links, PeerInfo{"test:1"});
  const ConnectionId second = d.Open(links, PeerInfo{"test:2"});
  d.RunTurn();

  const std::vector<wire::ServerMessage> got = links.Messages(second);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error().code(), wire::TOO_MANY_CONNECTIONS);
  EXPECT_TRUE(links.closed.count(second));
  EXPECT_FALSE(links.closed.count(first));
}

TEST_F(BrokerDriverTest, SubmittedWritesWaitForCompletionAndResumePartialOnes) {
  ScriptedLinks links(WriteStyle::kSubmitted);
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame());
  d.RunTurn();
  ASSERT_EQ(links.submitted[id].size(), 1u);
  const std::string welcome = links.submitted[id][0];

  d.OnReceived(id, PingFrame(1));  // more output while the write is in flight
  d.RunTurn();
  EXPECT_EQ(links.submitted[id].size(), 1u);  // one write at a time

  d.OnWriteDone(id, 3);
  d.RunTurn();
  ASSERT_EQ(links.submitted[id].size(), 2u);
  EXPECT_EQ(links.submitted[id][1], welcome.substr(3));

  d.OnWriteDone(id, welcome.size() - 3);
  d.RunTurn();
  ASSERT_EQ(links.submitted[id].size(), 3u);
  const std::vector<wire::ServerMessage> pong =
      ScriptedLinks::Decode(links.submitted[id][2]);
  ASSERT_EQ(pong.size(), 1u);
  EXPECT_EQ(pong[0].pong().op_id(), 1u);
  EXPECT_EQ(d.statistics().partial_writes, 1u);
  EXPECT_EQ(d.statistics().bytes_written, welcome.size());
}

TEST_F(BrokerDriverTest,
       SubmittedWriteThatNeverCompletesIsClosedAfterTheLinger) {
  ScriptedLinks links(WriteStyle::kSubmitted);
  BrokerOptions options = QuietOptions();
  options.set_close_linger_ms(1000);
  BrokerDriver& d = MakeDriver(options);
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, std::string(11, '\xff'));
  const std::optional<absl::Time> wakeup = d.RunTurn();
  ASSERT_EQ(links.submitted[id].size(), 1u);  // the error frame, never done
  EXPECT_FALSE(links.closed.count(id));
  ASSERT_TRUE(wakeup.has_value());
  EXPECT_LE(*wakeup, now + absl::Seconds(1));

  now += absl::Seconds(1);
  d.RunTurn();
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_EQ(d.broker().connection_count(), 0u);
}

// A completion-based link that keeps the views it was given, as a kernel
// reading them later would.
class InFlightLinks : public LinkIo {
 public:
  WriteStyle write_style() const override { return WriteStyle::kSubmitted; }
  void StartWrite(ConnectionId id, absl::string_view bytes) override {
    in_flight[id] = bytes;
    copies[id] = std::string(bytes);
  }
  void SetReading(ConnectionId id, bool reading) override {}
  void Close(ConnectionId id) override { closed.insert(id); }

  std::map<ConnectionId, absl::string_view> in_flight;
  std::map<ConnectionId, std::string> copies;  // what the views showed then
  std::set<ConnectionId> closed;
};

TEST_F(BrokerDriverTest, SubmittedBytesStayPutWhileOtherLinksComeAndGo) {
  InFlightLinks links;
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame());
  d.RunTurn();
  d.OnWriteDone(id, links.copies[id].size());
  d.OnReceived(id, PingFrame(1));
  d.RunTurn();
  ASSERT_LT(links.copies[id].size(), 16u);  // a short string, kept inline
  for (int i = 0; i < 200; ++i) d.Open(links, PeerInfo{"test:other"});
  d.RunTurn();
  EXPECT_EQ(links.in_flight[id], links.copies[id]);
}

TEST_F(BrokerDriverTest, SubmittedBytesOutliveTheLinkUntilTheWriteIsDone) {
  InFlightLinks links;
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame());
  d.OnPeerClosed(id);
  d.RunTurn();
  ASSERT_TRUE(links.closed.count(id));  // closed with the welcome in flight
  EXPECT_EQ(d.orphaned_write_count(), 1u);
  for (int i = 0; i < 200; ++i) d.Open(links, PeerInfo{"test:other"});
  EXPECT_EQ(links.in_flight[id], links.copies[id]);

  d.OnWriteDone(id, links.copies[id].size());
  EXPECT_EQ(d.orphaned_write_count(), 0u);
  EXPECT_EQ(d.statistics().bytes_written, 0u);  // the link was gone
}

TEST_F(BrokerDriverTest, ShutdownSaysGoodbyeAndFinishesOnceEveryLinkClosed) {
  ScriptedLinks links;
  BrokerDriver& d = MakeDriver();
  const ConnectionId a = d.Open(links, PeerInfo{"test:1"});
  const ConnectionId b = d.Open(links, PeerInfo{"test:2"});
  d.OnReceived(a, HelloFrame("a"));
  d.OnReceived(b, HelloFrame("b"));
  d.RunTurn();
  EXPECT_FALSE(d.finished());

  d.Shutdown();
  d.RunTurn();
  for (ConnectionId id : {a, b}) {
    const std::vector<wire::ServerMessage> got = links.Messages(id);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].goodbye().code(), wire::SHUTTING_DOWN);
    EXPECT_TRUE(links.closed.count(id));
  }
  EXPECT_TRUE(d.finished());
}

TEST_F(BrokerDriverTest, CloseAllClosesLinksThatCannotDrain) {
  ScriptedLinks links;
  links.budget = 0;  // the peer reads nothing
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame());
  d.Shutdown();
  d.RunTurn();
  EXPECT_FALSE(d.finished());

  d.CloseAll("the broker shut down");
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_TRUE(d.finished());
}

TEST_F(BrokerDriverTest, ShutdownDoneWaitsForTheGracePeriodThenClosesTheRest) {
  ScriptedLinks links;
  links.budget = 0;  // the peer reads nothing
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame());
  d.Shutdown(absl::Seconds(2));
  std::optional<absl::Time> wakeup = d.RunTurn();
  EXPECT_FALSE(d.ShutdownDone(wakeup));
  // The loop is told to wake up by the end of the grace period.
  ASSERT_TRUE(wakeup.has_value());
  EXPECT_LE(*wakeup, now + absl::Seconds(2));

  now += absl::Seconds(1);
  wakeup = d.RunTurn();
  EXPECT_FALSE(d.ShutdownDone(wakeup));
  EXPECT_FALSE(links.closed.count(id));

  now += absl::Seconds(1);
  wakeup = d.RunTurn();
  EXPECT_TRUE(d.ShutdownDone(wakeup));
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_TRUE(d.finished());
}

TEST_F(BrokerDriverTest,
       AnEventHandlerMayAdmitAndTheClientIsWelcomedInTheSameTurn) {
  driver_options.on_event = [this](const wire::BrokerEvent& e) {
    if (e.has_connection_pending()) {
      EXPECT_TRUE(
          driver->Admit(ConnectionId(e.connection_pending().session_id()))
              .ok());
    }
  };
  ScriptedLinks links;
  BrokerOptions options = QuietOptions();
  options.set_require_admission(true);
  BrokerDriver& d = MakeDriver(options);
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame() + PingFrame(5));  // the ping waits for Admit
  d.RunTurn();

  const std::vector<wire::ServerMessage> got = links.Messages(id);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].has_welcome());
  EXPECT_EQ(got[1].pong().op_id(), 5u);
}

TEST_F(BrokerDriverTest, ObserverSeesEveryLinkEveryByteAndEveryTurn) {
  struct Recorder : DriverObserver {
    void OnOpen(ConnectionId, const PeerInfo& peer, absl::string_view protocol,
                absl::Time) override {
      opened = absl::StrCat(peer.address, " ", protocol);
    }
    void OnInput(ConnectionId, absl::string_view bytes, absl::Time) override {
      input.append(bytes.data(), bytes.size());
    }
    void OnOutput(ConnectionId, absl::Span<const absl::string_view> chunks,
                  size_t bytes, absl::Time) override {
      for (absl::string_view chunk : chunks) {
        const size_t n = std::min(chunk.size(), bytes);
        output.append(chunk.data(), n);
        bytes -= n;
      }
    }
    void OnClose(ConnectionId, absl::string_view why, absl::Time) override {
      reason = std::string(why);
    }
    void OnTurn(absl::Time) override { ++turns; }
    std::string opened, input, output, reason;
    int turns = 0;
  } recorder;
  driver_options.observer = &recorder;
  ScriptedLinks links;
  links.per_write = 5;
  BrokerDriver& d = MakeDriver();
  const ConnectionId id = d.Open(links, PeerInfo{"test:1"});
  d.OnReceived(id, HelloFrame() + PingFrame(1));
  d.OnPeerClosed(id);
  d.RunTurn();

  EXPECT_EQ(recorder.opened, "test:1 native");
  EXPECT_EQ(recorder.input, HelloFrame() + PingFrame(1));
  EXPECT_EQ(recorder.output, links.written[id]);
  EXPECT_EQ(recorder.reason, "peer closed the connection");
  EXPECT_EQ(recorder.turns, 1);
}

TEST_F(BrokerDriverTest, LogsConnectionsAtInfoAndRefusalsAtWarning) {
  std::vector<std::string> lines;
  BrokerOptions options = QuietOptions();
  options.set_max_connections(1);
  driver_options.clock = [this] { return now; };
  driver_options.logger =
      Logger(LogLevel::kInfo, [&](LogLevel level, absl::string_view line) {
        lines.push_back(absl::StrCat(LogLevelName(level), ": ", line));
      });
  driver.emplace(options, driver_options);
  ScriptedLinks links;
  const ConnectionId id = driver->Open(links, PeerInfo{"10.0.0.1:5"});
  driver->Open(links, PeerInfo{"10.0.0.2:6"});
  driver->OnReceived(id, HelloFrame("alice"));
  driver->RunTurn();
  driver->OnPeerClosed(id);
  driver->RunTurn();

  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(
      lines[0], "warning: refused connection from 10.0.0.2:6: "));
  EXPECT_EQ(lines[1],
            "info: conn#1 'alice' connected from 10.0.0.1:5 (native)");
  EXPECT_EQ(lines[2],
            "info: conn#1 'alice' disconnected: peer closed the connection");
}

}  // namespace
}  // namespace manifold
