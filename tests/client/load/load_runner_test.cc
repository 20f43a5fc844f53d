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

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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

// The same scenarios against the reference server, when it is installed:
// the NATS side of the tool speaks the real protocol, not just Manifold's
// reading of it.
TEST(LoadRunnerNatsServerTest, EveryScenarioIsCleanAgainstNatsServer) {
  std::string nats_server;
  for (const char* candidate : {"/usr/sbin/nats-server", "/usr/bin/nats-server",
                                "/usr/local/bin/nats-server"}) {
    if (::access(candidate, X_OK) == 0) nats_server = candidate;
  }
  if (nats_server.empty()) GTEST_SKIP() << "nats-server is not installed";
  absl::StatusOr<std::unique_ptr<ChildProcess>> server =
      ChildProcess::Start(nats_server, {"-a", "127.0.0.1", "-p", "-1"});
  ASSERT_TRUE(server.ok()) << server.status();
  // nats-server logs where it listens on stderr.
  const std::string kMark = "Listening for client connections on ";
  std::string address;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
       address.empty() && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(20))) {
    const std::string log = (*server)->Stderr();
    const size_t at = log.find(kMark);
    if (at == std::string::npos) continue;
    const size_t end = log.find('\n', at);
    if (end == std::string::npos) continue;
    address = log.substr(at + kMark.size(), end - at - kMark.size());
  }
  ASSERT_FALSE(address.empty()) << (*server)->Stderr();
  for (Scenario scenario : kScenarios) {
    LoadOptions o;
    o.scenario = scenario;
    o.protocol = Protocol::kNats;
    o.server = address;
    o.messages = IsRoundTrip(scenario) ? 300 : 20000;
    o.timeout = absl::Seconds(10);
    SCOPED_TRACE(ScenarioName(scenario));
    absl::StatusOr<LoadReport> report = RunLoad(o);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->clean());
    EXPECT_EQ(report->received, report->expected);
  }
  (*server)->Signal(SIGTERM).IgnoreError();
  (*server)->Wait(absl::Seconds(5)).IgnoreError();
}

}  // namespace
}  // namespace manifold::load
