// `manifold bench`'s engine end to end: every scenario, in both protocols,
// against a real manifoldd (its native and NATS listeners), and against a real
// nats-server when one is installed. Each run must be clean: everything sent
// arrives exactly once, in order. Runs are also bounded: by count, by
// duration, and by a timeout when the server stops answering; and no run
// targets another machine.

#include "client/load/load_runner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/load/link.h"
#include "client/load/loopback.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/running_manifoldd.h"
#include "transports/sockets/unique_fd.h"

namespace manifold::load {
namespace {

using ::manifold::testing::ChildProcess;
using ::manifold::testing::RunningManifoldd;

// A manifoldd listening for native and NATS clients on free ports.
class LoadRunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        RunningManifoldd::Start({"--listen", "127.0.0.1:0", "--nats",
                                 "127.0.0.1:0", "--log_level", "warning"});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
  }

  static void TearDownTestSuite() {
    delete broker_;  // SIGTERM, then SIGKILL if it hangs
    broker_ = nullptr;
  }

  static LoadOptions Options(Scenario scenario, Protocol protocol) {
    LoadOptions o;
    o.scenario = scenario;
    o.protocol = protocol;
    o.server = protocol == Protocol::kNats ? broker_->nats().ToString()
                                           : broker_->tcp_address();
    o.messages = IsRoundTrip(scenario) ? 300 : 20000;
    o.timeout = absl::Seconds(10);
    return o;
  }

  static void ExpectClean(const LoadOptions& o) {
    SCOPED_TRACE(absl::StrCat(ScenarioName(o.scenario), " over ",
                              ProtocolName(o.protocol), " with ",
                              o.client_threads, " client threads"));
    absl::StatusOr<LoadReport> report = RunLoad(o);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->clean())
        << "lost " << report->lost << ", duplicates " << report->duplicates
        << ", reordered " << report->reordered << ", corrupt "
        << report->corrupt << ", errors " << report->errors << " ("
        << report->first_error << ")";
    EXPECT_FALSE(report->timed_out);
    EXPECT_EQ(report->sent, o.messages * report->options.publishers);
    EXPECT_EQ(report->received, report->expected);
    EXPECT_GT(report->received_per_second, 0);
    if (IsRoundTrip(o.scenario)) {
      EXPECT_EQ(report->latency.count, report->sent);
      EXPECT_GT(report->latency.p50, absl::ZeroDuration());
      EXPECT_LE(report->latency.p50, report->latency.p99);
    }
  }

  static RunningManifoldd* broker_;
};

RunningManifoldd* LoadRunnerTest::broker_ = nullptr;

constexpr Scenario kScenarios[] = {Scenario::kPubSub,       Scenario::kFanOut,
                                   Scenario::kQueue,        Scenario::kWildcard,
                                   Scenario::kRequestReply, Scenario::kPing};

TEST_F(LoadRunnerTest, EveryScenarioIsCleanOverTheNativeProtocol) {
  for (Scenario scenario : kScenarios) {
    ExpectClean(Options(scenario, Protocol::kNative));
  }
}

TEST_F(LoadRunnerTest, EveryScenarioIsCleanOverNats) {
  for (Scenario scenario : kScenarios) {
    ExpectClean(Options(scenario, Protocol::kNats));
  }
}

TEST_F(LoadRunnerTest, OneClientThreadWorksToo) {
  for (Protocol protocol : {Protocol::kNative, Protocol::kNats}) {
    for (Scenario scenario : kScenarios) {
      LoadOptions o = Options(scenario, protocol);
      o.client_threads = 1;
      ExpectClean(o);
    }
  }
}

TEST_F(LoadRunnerTest, ManyPublishersSubscribersAndLargePayloads) {
  for (Protocol protocol : {Protocol::kNative, Protocol::kNats}) {
    LoadOptions o = Options(Scenario::kPubSub, protocol);
    o.publishers = 3;
    o.subscribers = 2;
    o.payload_bytes = 4096;
    o.messages = 2000;
    o.window = 50;
    ExpectClean(o);
    LoadOptions queue = Options(Scenario::kQueue, protocol);
    queue.publishers = 2;
    ExpectClean(queue);
    LoadOptions requests = Options(Scenario::kRequestReply, protocol);
    requests.publishers = 2;
    requests.inflight = 8;
    ExpectClean(requests);
  }
}

TEST_F(LoadRunnerTest, DurationBoundsSending) {
  LoadOptions o = Options(Scenario::kPing, Protocol::kNative);
  o.messages = 100'000'000;
  o.duration = absl::Milliseconds(200);
  const absl::Time start = absl::Now();
  absl::StatusOr<LoadReport> report = RunLoad(o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_LT(report->sent, o.messages);
  EXPECT_TRUE(report->clean());
}

TEST_F(LoadRunnerTest, RefusesServersOnOtherMachines) {
  LoadOptions o = Options(Scenario::kPubSub, Protocol::kNats);
  o.server = "10.20.30.40:4222";
  absl::StatusOr<LoadReport> report = RunLoad(o);
  EXPECT_TRUE(absl::IsPermissionDenied(report.status())) << report.status();
}

TEST_F(LoadRunnerTest, RejectsOptionsOutOfRange) {
  LoadOptions o = Options(Scenario::kPubSub, Protocol::kNative);
  o.payload_bytes = 4;
  EXPECT_TRUE(absl::IsInvalidArgument(RunLoad(o).status()));
  LoadOptions native_rpc = Options(Scenario::kRequestReply, Protocol::kNative);
  native_rpc.subscribers = 2;  // one server per native service
  EXPECT_TRUE(absl::IsInvalidArgument(RunLoad(native_rpc).status()));
}

TEST_F(LoadRunnerTest, SubscribersConnectToTheirOwnServers) {
  // Subscribers listed on the publishers' own server: as without the list.
  LoadOptions same = Options(Scenario::kFanOut, Protocol::kNats);
  same.subscribers = 3;
  same.subscriber_servers = {broker_->nats().ToString()};
  same.settle = absl::Milliseconds(50);
  ExpectClean(same);

  // A second, unrelated broker: subscribers 1 and 3 (of 0..3) connect there,
  // in turn, and get nothing of what is published on the first.
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> other =
      RunningManifoldd::Start({"--listen", "127.0.0.1:0", "--nats",
                               "127.0.0.1:0", "--log_level", "warning"});
  ASSERT_TRUE(other.ok()) << other.status();
  for (Protocol protocol : {Protocol::kNative, Protocol::kNats}) {
    LoadOptions o = Options(Scenario::kFanOut, protocol);
    o.subscribers = 4;
    o.messages = 1000;
    o.timeout = absl::Milliseconds(500);
    o.subscriber_servers =
        protocol == Protocol::kNats
            ? std::vector<std::string>{broker_->nats().ToString(),
                                       (*other)->nats().ToString()}
            : std::vector<std::string>{broker_->tcp_address(),
                                       (*other)->tcp_address()};
    absl::StatusOr<LoadReport> report = RunLoad(o);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->sent, 1000);
    EXPECT_EQ(report->expected, 4000);
    EXPECT_EQ(report->received, 2000);
    EXPECT_EQ(report->lost, 2000);
    EXPECT_TRUE(report->timed_out);
  }
}

TEST_F(LoadRunnerTest, RejectsBadSubscriberServersAndSettle) {
  LoadOptions elsewhere = Options(Scenario::kPubSub, Protocol::kNats);
  elsewhere.subscriber_servers = {broker_->nats().ToString(),
                                  "10.20.30.40:4222"};
  absl::StatusOr<LoadReport> report = RunLoad(elsewhere);
  EXPECT_TRUE(absl::IsPermissionDenied(report.status())) << report.status();

  LoadOptions empty = Options(Scenario::kPubSub, Protocol::kNats);
  empty.subscriber_servers = {""};
  EXPECT_TRUE(absl::IsInvalidArgument(RunLoad(empty).status()));

  LoadOptions negative = Options(Scenario::kPubSub, Protocol::kNats);
  negative.settle = absl::Milliseconds(-1);
  EXPECT_TRUE(absl::IsInvalidArgument(RunLoad(negative).status()));

  LoadOptions bayeux = Options(Scenario::kPubSub, Protocol::kNats);
  bayeux.bayeux_path = "/cometd";
  bayeux.subscriber_servers = {broker_->nats().ToString()};
  EXPECT_TRUE(absl::IsInvalidArgument(RunLoad(bayeux).status()));
}

TEST_F(LoadRunnerTest, DurableRunsNeedAStreamOnTheBenchSubjects) {
  // This manifoldd has no stream: a native Ack would not mean durable.
  LoadOptions o = Options(Scenario::kDurable, Protocol::kNative);
  absl::StatusOr<LoadReport> report = RunLoad(o);
  EXPECT_TRUE(absl::IsFailedPrecondition(report.status())) << report.status();
  EXPECT_TRUE(absl::StrContains(report.status().message(), "no stream"))
      << report.status();
  // Over NATS nothing answers such a publish: the run says so.
  LoadOptions nats = Options(Scenario::kDurable, Protocol::kNats);
  nats.messages = 10;
  nats.timeout = absl::Milliseconds(300);
  report = RunLoad(nats);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->clean());
  EXPECT_EQ(report->lost, 10u);
  EXPECT_TRUE(report->timed_out);
  // Replays are native only, with one reader.
  LoadOptions replay = Options(Scenario::kReplay, Protocol::kNats);
  EXPECT_TRUE(absl::IsInvalidArgument(RunLoad(replay).status()));
}

// A manifoldd with a memory stream on the bench subjects.
class DurableLoadRunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    config_ =
        absl::StrCat(::testing::TempDir(), "/durable-", getpid(), ".textpb");
    {
      std::ofstream file(config_);
      file << "streams { name: \"BENCH\" topics: \"bench/**\" "
              "storage: STORAGE_MEMORY }\n";
    }
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        RunningManifoldd::Start({"--config", config_, "--listen", "127.0.0.1:0",
                                 "--nats", "127.0.0.1:0", "--log_level",
                                 "warning"});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
  }

  static void TearDownTestSuite() {
    delete broker_;
    broker_ = nullptr;
    std::remove(config_.c_str());
  }

  static LoadOptions Options(Scenario scenario, Protocol protocol) {
    LoadOptions o;
    o.scenario = scenario;
    o.protocol = protocol;
    o.server = protocol == Protocol::kNats ? broker_->nats().ToString()
                                           : broker_->tcp_address();
    o.messages = 5000;
    o.timeout = absl::Seconds(10);
    return o;
  }

  static RunningManifoldd* broker_;
  static std::string config_;
};

RunningManifoldd* DurableLoadRunnerTest::broker_ = nullptr;
std::string DurableLoadRunnerTest::config_;

// Every publish is acknowledged once, and timed.
void ExpectEveryPublishAcked(const LoadOptions& o) {
  SCOPED_TRACE(absl::StrCat("durable over ", ProtocolName(o.protocol)));
  absl::StatusOr<LoadReport> report = RunLoad(o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->clean())
      << "lost " << report->lost << ", unexpected " << report->corrupt
      << ", errors " << report->errors << " (" << report->first_error << ")";
  const uint64_t sent =
      o.messages * static_cast<uint64_t>(report->options.publishers);
  EXPECT_EQ(report->sent, sent);
  EXPECT_EQ(report->received, sent);
  EXPECT_EQ(report->latency.count, sent);
  EXPECT_GT(report->latency.p50, absl::ZeroDuration());
  EXPECT_LE(report->latency.p50, report->latency.p99);
  EXPECT_GT(report->received_per_second, 0);
}

TEST_F(DurableLoadRunnerTest, PublishesAreAckedAndReplayedOverBothProtocols) {
  ExpectEveryPublishAcked(Options(Scenario::kDurable, Protocol::kNative));
  ExpectEveryPublishAcked(Options(Scenario::kDurable, Protocol::kNats));
  LoadOptions several = Options(Scenario::kDurable, Protocol::kNats);
  several.publishers = 2;
  several.window = 16;
  several.payload_bytes = 1024;
  ExpectEveryPublishAcked(several);
  LoadOptions native = Options(Scenario::kDurable, Protocol::kNative);
  native.publishers = 2;
  native.window = 1;
  native.messages = 500;
  ExpectEveryPublishAcked(native);

  // The stream holds 5000 * 4 + 500 * 2 messages: replay them all.
  LoadOptions replay = Options(Scenario::kReplay, Protocol::kNative);
  replay.messages = 21000;
  absl::StatusOr<LoadReport> report = RunLoad(replay);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->clean()) << report->lost << " lost, " << report->reordered
                               << " out of order, " << report->first_error;
  EXPECT_EQ(report->received, 21000u);
  EXPECT_GT(report->received_per_second, 0);
  // From the middle on, and past the end: what is missing is lost.
  replay.replay_from = 20001;
  replay.messages = 1500;
  replay.timeout = absl::Milliseconds(300);
  report = RunLoad(replay);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->received, 1000u);
  EXPECT_EQ(report->lost, 500u);
  // A stream the server does not have.
  replay.replay_stream = "NOPE";
  report = RunLoad(replay);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->errors, 1u);
  EXPECT_TRUE(absl::StrContains(report->first_error, "UNKNOWN_STREAM"))
      << report->first_error;
}

TEST(LoadRunnerBoundsTest, ASilentServerEndsTheRunAtTheTimeout) {
  // Accepts connections (the kernel does, from the backlog) and never says
  // a word.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(
      ::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length);
  LoadOptions o;
  o.protocol = Protocol::kNats;
  o.server = absl::StrCat("127.0.0.1:", ntohs(address.sin_port));
  o.timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  absl::StatusOr<LoadReport> report = RunLoad(o);
  EXPECT_TRUE(absl::IsDeadlineExceeded(report.status())) << report.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// NATS and the native protocol inside WebSockets (manifoldd --http at /nats
// and /ws): the load tool reads frames from its input buffer in place, and
// every scenario must still arrive whole and in order.
TEST(LoadRunnerWebSocketTest, EveryScenarioIsCleanOverWebSockets) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      RunningManifoldd::Start({"--listen", "127.0.0.1:0", "--http",
                               "127.0.0.1:0", "--log_level", "warning"});
  if (!broker.ok() &&
      absl::StrContains(broker.status().message(), "without the web")) {
    GTEST_SKIP() << "manifoldd was built without the web front end";
  }
  ASSERT_TRUE(broker.ok()) << broker.status();
  // "manifoldd listening on 127.0.0.1:A (tcp), 127.0.0.1:B (http), ..."
  const std::string& line = (*broker)->listening_line();
  const size_t http = line.find(" (http)");
  ASSERT_NE(http, std::string::npos) << line;
  const size_t from = line.rfind(' ', http - 1) + 1;
  const std::string address = line.substr(from, http - from);
  for (const bool nats : {true, false}) {
    for (Scenario scenario : kScenarios) {
      LoadOptions o;
      o.scenario = scenario;
      o.protocol = nats ? Protocol::kNats : Protocol::kNative;
      o.websocket_path = nats ? "/nats" : "/ws";
      o.websocket_protocol = nats ? "" : "manifold.v1";
      o.server = address;
      o.messages = IsRoundTrip(scenario) ? 300 : 20000;
      o.timeout = absl::Seconds(10);
      SCOPED_TRACE(
          absl::StrCat(ScenarioName(scenario), " at ", o.websocket_path));
      absl::StatusOr<LoadReport> report = RunLoad(o);
      ASSERT_TRUE(report.ok()) << report.status();
      EXPECT_TRUE(report->clean()) << report->first_error;
      EXPECT_EQ(report->received, report->expected);
      EXPECT_EQ(report->sent, o.messages * report->options.publishers);
    }
  }
  // Messages larger than the server's WebSocket messages (64 KiB) span
  // several frames.
  LoadOptions o;
  o.scenario = Scenario::kFanOut;
  o.subscribers = 3;
  o.protocol = Protocol::kNats;
  o.websocket_path = "/nats";
  o.server = address;
  o.payload_bytes = 300 * 1024;
  o.messages = 200;
  o.timeout = absl::Seconds(10);
  absl::StatusOr<LoadReport> report = RunLoad(o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->clean()) << report->first_error;
  EXPECT_EQ(report->received, 3u * 200u);
}

// The same scenarios against the reference server, when it is installed:
// the NATS side of the tool speaks the real protocol, not just Manifold's
// reading of it.
std::string NatsServerPath() {
  for (const char* candidate : {"/usr/sbin/nats-server", "/usr/bin/nats-server",
                                "/usr/local/bin/nats-server"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return "";
}

// Waits up to 10 s for nats-server to log `mark` followed by an address
// (e.g. "Listening for client connections on "). Returns that address
// ("127.0.0.1:N", any "ws://" dropped), or "" if it never came.
std::string LoggedAddress(ChildProcess& server, const std::string& mark) {
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
       absl::Now() < deadline; absl::SleepFor(absl::Milliseconds(20))) {
    const std::string log = server.Stderr();
    const size_t at = log.find(mark);
    if (at == std::string::npos) continue;
    const size_t end = log.find('\n', at);
    if (end == std::string::npos) continue;
    std::string address = log.substr(at + mark.size(), end - at - mark.size());
    if (absl::StartsWith(address, "ws://")) address.erase(0, 5);
    return address;
  }
  return "";
}

// Runs every scenario over NATS (inside WebSockets at `websocket_path`
// unless empty) against `address` and expects each to be clean.
void ExpectEveryNatsScenarioClean(const std::string& address,
                                  const std::string& websocket_path) {
  for (Scenario scenario : kScenarios) {
    LoadOptions o;
    o.scenario = scenario;
    o.protocol = Protocol::kNats;
    o.server = address;
    o.websocket_path = websocket_path;
    o.messages = IsRoundTrip(scenario) ? 300 : 20000;
    o.timeout = absl::Seconds(10);
    SCOPED_TRACE(ScenarioName(scenario));
    absl::StatusOr<LoadReport> report = RunLoad(o);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->clean()) << report->first_error;
    EXPECT_EQ(report->received, report->expected);
  }
}

TEST(LoadRunnerNatsServerTest, EveryScenarioIsCleanAgainstNatsServer) {
  const std::string nats_server = NatsServerPath();
  if (nats_server.empty()) GTEST_SKIP() << "nats-server is not installed";
  absl::StatusOr<std::unique_ptr<ChildProcess>> server =
      ChildProcess::Start(nats_server, {"-a", "127.0.0.1", "-p", "-1"});
  ASSERT_TRUE(server.ok()) << server.status();
  // nats-server logs where it listens on stderr.
  const std::string address =
      LoggedAddress(**server, "Listening for client connections on ");
  ASSERT_FALSE(address.empty()) << (*server)->Stderr();
  ExpectEveryNatsScenarioClean(address, "");
  (*server)->Signal(SIGTERM).IgnoreError();
  (*server)->Wait(absl::Seconds(5)).IgnoreError();
}

// The durable scenario's NATS side is nats-server JetStream's own protocol:
// a publish with a reply subject to a stream's subject is answered there
// with a PubAck once stored.
TEST(LoadRunnerNatsServerTest, DurablePublishesAreAckedByJetStream) {
  const std::string nats_server = NatsServerPath();
  if (nats_server.empty()) GTEST_SKIP() << "nats-server is not installed";
  const std::string store =
      absl::StrCat(::testing::TempDir(), "/nats-js-", getpid());
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = ChildProcess::Start(
      nats_server, {"-js", "-sd", store, "-a", "127.0.0.1", "-p", "-1"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address =
      LoggedAddress(**server, "Listening for client connections on ");
  ASSERT_FALSE(address.empty()) << (*server)->Stderr();

  // Creates a file stream on bench.> through the JetStream API.
  absl::StatusOr<Endpoint> endpoint = LoopbackEndpoint(address);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  std::unique_ptr<LoadWire> wire = LoadWire::For(Protocol::kNats);
  absl::StatusOr<std::unique_ptr<Link>> link =
      Link::Open(*endpoint, *wire, "stream-create", absl::Seconds(5));
  ASSERT_TRUE(link.ok()) << link.status();
  wire->AppendConnect("stream-create", (*link)->output());
  wire->AppendSubscribe("_INBOX.create", "", 1, (*link)->output());
  wire->AppendPublish("$JS.API.STREAM.CREATE.BENCH", "_INBOX.create",
                      R"({"name":"BENCH","subjects":["bench.>"],)"
                      R"("storage":"file"})",
                      (*link)->output());
  std::string answer;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
       answer.empty() && absl::Now() < deadline;) {
    ASSERT_TRUE((*link)
                    ->Sync(deadline,
                           [&](const ServerEvent& event) {
                             if (event.kind == ServerEvent::Kind::kMessage) {
                               answer = std::string(event.payload);
                             }
                             return absl::OkStatus();
                           })
                    .ok());
  }
  ASSERT_TRUE(absl::StrContains(answer, "\"config\"")) << answer;

  for (size_t size : {16, 1024}) {
    LoadOptions o;
    o.scenario = Scenario::kDurable;
    o.protocol = Protocol::kNats;
    o.server = address;
    o.payload_bytes = size;
    o.messages = 5000;
    o.timeout = absl::Seconds(10);
    ExpectEveryPublishAcked(o);
  }
  (*server)->Signal(SIGTERM).IgnoreError();
  (*server)->Wait(absl::Seconds(5)).IgnoreError();
  std::filesystem::remove_all(store);
}

// nats-server's own WebSocket listener frames its output its own way (one
// frame per flush, of any size): the tool must read it as well.
TEST(LoadRunnerNatsServerTest, EveryScenarioIsCleanAgainstNatsServerWebSocket) {
  const std::string nats_server = NatsServerPath();
  if (nats_server.empty()) GTEST_SKIP() << "nats-server is not installed";
  const std::string config =
      absl::StrCat(::testing::TempDir(), "/nats-ws-", getpid(), ".conf");
  {
    std::ofstream file(config);
    file << "listen: 127.0.0.1:-1\n"
            "websocket {\n  host: 127.0.0.1\n  port: -1\n  no_tls: true\n}\n";
  }
  absl::StatusOr<std::unique_ptr<ChildProcess>> server =
      ChildProcess::Start(nats_server, {"-c", config});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address =
      LoggedAddress(**server, "Listening for websocket clients on ");
  ASSERT_FALSE(address.empty()) << (*server)->Stderr();
  ExpectEveryNatsScenarioClean(address, "/nats");
  (*server)->Signal(SIGTERM).IgnoreError();
  (*server)->Wait(absl::Seconds(5)).IgnoreError();
  std::remove(config.c_str());
}

}  // namespace
}  // namespace manifold::load
