// `manifold bench`'s engine over TLS, end to end: against a real manifoldd
// whose native and NATS listeners speak TLS (certificates made by the test
// with `openssl`), and against a real nats-server with TLS when one is
// installed. Every run must stay clean (every message checked). A TLS client
// on a plain port and a plain client on a TLS port fail at once, with an
// error that says what to check, rather than waiting for the timeout.

#include <unistd.h>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/load/load_runner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/transports/tls/testing/test_pki.h"

namespace manifold::load {
namespace {

using ::manifold::testing::ChildProcess;
using ::manifold::testing::RunningManifoldd;
using ::manifold::testing::TestPki;
using ::testing::HasSubstr;

// Long enough that a run which waited for it would stand out: the failures
// below must come well before it.
constexpr absl::Duration kTimeout = absl::Seconds(20);
constexpr absl::Duration kPromptly = absl::Seconds(5);

constexpr Scenario kScenarios[] = {Scenario::kPubSub,       Scenario::kFanOut,
                                   Scenario::kQueue,        Scenario::kWildcard,
                                   Scenario::kRequestReply, Scenario::kPing};

std::string NatsServerPath() {
  for (const char* candidate : {"/usr/sbin/nats-server", "/usr/bin/nats-server",
                                "/usr/local/bin/nats-server"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return "";
}

// Waits up to 10 s for nats-server to log `mark` followed by an address.
// Returns that address ("127.0.0.1:N"), or "" if it never came.
std::string LoggedAddress(ChildProcess& server, const std::string& mark) {
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
       absl::Now() < deadline; absl::SleepFor(absl::Milliseconds(20))) {
    const std::string log = server.Stderr();
    const size_t at = log.find(mark);
    if (at == std::string::npos) continue;
    const size_t end = log.find('\n', at);
    if (end == std::string::npos) continue;
    return log.substr(at + mark.size(), end - at - mark.size());
  }
  return "";
}

// One manifoldd with TLS on its native and NATS listeners, one without.
class TlsLoadRunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<TestPki> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new TestPki(*std::move(pki));
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> tls =
        RunningManifoldd::Start({"--listen", "127.0.0.1:0", "--nats",
                                 "127.0.0.1:0", "--tls_cert", pki_->server_cert,
                                 "--tls_key", pki_->server_key, "--log_level",
                                 "warning"});
    ASSERT_TRUE(tls.ok()) << tls.status();
    tls_broker_ = tls->release();
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> plain =
        RunningManifoldd::Start({"--listen", "127.0.0.1:0", "--nats",
                                 "127.0.0.1:0", "--log_level", "warning"});
    ASSERT_TRUE(plain.ok()) << plain.status();
    plain_broker_ = plain->release();
  }

  static void TearDownTestSuite() {
    delete tls_broker_;
    tls_broker_ = nullptr;
    delete plain_broker_;
    plain_broker_ = nullptr;
    delete pki_;
    pki_ = nullptr;
  }

  static std::string Address(const RunningManifoldd& broker,
                             Protocol protocol) {
    return protocol == Protocol::kNats ? broker.nats().ToString()
                                       : broker.tcp_address();
  }

  // A run with TLS on, trusting the test CA.
  static LoadOptions TlsOptions(Scenario scenario, Protocol protocol,
                                const std::string& server) {
    LoadOptions o;
    o.scenario = scenario;
    o.protocol = protocol;
    o.server = server;
    o.messages = IsRoundTrip(scenario) ? 300 : 20000;
    o.timeout = kTimeout;
    o.tls.enabled = true;
    o.tls.ca_file = pki_->ca_cert;
    return o;
  }

  static void ExpectClean(const LoadOptions& o) {
    SCOPED_TRACE(absl::StrCat(ScenarioName(o.scenario), " over ",
                              ProtocolName(o.protocol), " with TLS to ",
                              o.server));
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
  }

  // Runs `o`, which must fail within kPromptly; returns its error.
  static absl::Status FailsPromptly(const LoadOptions& o) {
    const absl::Time start = absl::Now();
    absl::StatusOr<LoadReport> report = RunLoad(o);
    EXPECT_LT(absl::Now() - start, kPromptly) << report.status();
    EXPECT_FALSE(report.ok());
    return report.status();
  }

  static TestPki* pki_;
  static RunningManifoldd* tls_broker_;
  static RunningManifoldd* plain_broker_;
};

TestPki* TlsLoadRunnerTest::pki_ = nullptr;
RunningManifoldd* TlsLoadRunnerTest::tls_broker_ = nullptr;
RunningManifoldd* TlsLoadRunnerTest::plain_broker_ = nullptr;

TEST_F(TlsLoadRunnerTest, EveryScenarioIsCleanOverTheNativeProtocolWithTls) {
  for (Scenario scenario : kScenarios) {
    ExpectClean(TlsOptions(scenario, Protocol::kNative,
                           Address(*tls_broker_, Protocol::kNative)));
  }
}

TEST_F(TlsLoadRunnerTest, EveryScenarioIsCleanOverNatsUpgradedToTls) {
  for (Scenario scenario : kScenarios) {
    ExpectClean(TlsOptions(scenario, Protocol::kNats,
                           Address(*tls_broker_, Protocol::kNats)));
  }
}

// Messages larger than a TLS record (16 KiB) arrive in pieces of several
// records and reads; each must still be whole and in order.
TEST_F(TlsLoadRunnerTest, PayloadsLargerThanARecordArriveWhole) {
  for (Protocol protocol : {Protocol::kNative, Protocol::kNats}) {
    LoadOptions o = TlsOptions(Scenario::kFanOut, protocol,
                               Address(*tls_broker_, protocol));
    o.subscribers = 3;
    o.payload_bytes = 100 * 1024;
    o.messages = 300;
    ExpectClean(o);
  }
}

TEST_F(TlsLoadRunnerTest, OneClientThreadWorksToo) {
  for (Protocol protocol : {Protocol::kNative, Protocol::kNats}) {
    LoadOptions o = TlsOptions(Scenario::kPubSub, protocol,
                               Address(*tls_broker_, protocol));
    o.client_threads = 1;
    ExpectClean(o);
  }
}

TEST_F(TlsLoadRunnerTest, ServerNameDefaultsToTheHostOfTheServerAddress) {
  // The test certificate carries IP:127.0.0.1 and DNS:localhost.
  LoadOptions by_ip = TlsOptions(Scenario::kPubSub, Protocol::kNative,
                                 Address(*tls_broker_, Protocol::kNative));
  by_ip.messages = 1000;
  ExpectClean(by_ip);
  LoadOptions by_name = by_ip;
  by_name.server = absl::StrCat("localhost:", tls_broker_->tcp().port);
  ExpectClean(by_name);
  LoadOptions wrong_name = by_ip;
  wrong_name.tls.server_name = "elsewhere.example";
  EXPECT_THAT(FailsPromptly(wrong_name).message(), HasSubstr("hostname"));
}

TEST_F(TlsLoadRunnerTest, ACertificateFromAnotherCaIsRefused) {
  for (Protocol protocol : {Protocol::kNative, Protocol::kNats}) {
    LoadOptions o = TlsOptions(Scenario::kPubSub, protocol,
                               Address(*tls_broker_, protocol));
    o.tls.ca_file = pki_->stranger_ca_cert;
    const absl::Status status = FailsPromptly(o);
    EXPECT_THAT(status.message(), HasSubstr("unknown CA"));
    EXPECT_THAT(status.message(), HasSubstr("bench-sub-0"));
  }
}

TEST_F(TlsLoadRunnerTest, UnreadableCaFileIsAnInvalidArgument) {
  LoadOptions o = TlsOptions(Scenario::kPubSub, Protocol::kNative,
                             Address(*tls_broker_, Protocol::kNative));
  o.tls.ca_file = absl::StrCat(pki_->dir, "/no-such-ca.pem");
  const absl::Status status = FailsPromptly(o);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("no-such-ca.pem"));
}

TEST_F(TlsLoadRunnerTest, TlsToAPlainNativePortFailsAtOnce) {
  const absl::Status status =
      FailsPromptly(TlsOptions(Scenario::kPubSub, Protocol::kNative,
                               Address(*plain_broker_, Protocol::kNative)));
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("is TLS on at this port?"));
}

TEST_F(TlsLoadRunnerTest, TlsToAPlainNatsPortFailsAtOnce) {
  const absl::Status status =
      FailsPromptly(TlsOptions(Scenario::kPubSub, Protocol::kNats,
                               Address(*plain_broker_, Protocol::kNats)));
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("does not offer TLS"));
}

TEST_F(TlsLoadRunnerTest, PlainToATlsNativePortFailsAtOnce) {
  LoadOptions o = TlsOptions(Scenario::kPubSub, Protocol::kNative,
                             Address(*tls_broker_, Protocol::kNative));
  o.tls = LoadTlsOptions();
  const absl::Status status = FailsPromptly(o);
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("add --tls"));
}

TEST_F(TlsLoadRunnerTest, PlainToATlsNatsPortFailsAtOnce) {
  LoadOptions o = TlsOptions(Scenario::kPubSub, Protocol::kNats,
                             Address(*tls_broker_, Protocol::kNats));
  o.tls = LoadTlsOptions();
  const absl::Status status = FailsPromptly(o);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("requires TLS"));
}

TEST_F(TlsLoadRunnerTest, TlsIsRefusedInsideWebSockets) {
  LoadOptions o = TlsOptions(Scenario::kPubSub, Protocol::kNats,
                             Address(*tls_broker_, Protocol::kNats));
  o.websocket_path = "/nats";
  absl::StatusOr<LoadReport> report = RunLoad(o);
  EXPECT_TRUE(absl::IsInvalidArgument(report.status())) << report.status();
}

// mutual TLS: a broker that requires a client certificate takes the run
// with one and refuses it, at once, without.
TEST(TlsLoadRunnerClientCertificateTest,
     RequiredClientCertificateIsSentAndItsAbsenceRefused) {
  absl::StatusOr<TestPki> pki = TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      RunningManifoldd::Start({"--listen", "127.0.0.1:0", "--nats",
                               "127.0.0.1:0", "--tls_cert", pki->server_cert,
                               "--tls_key", pki->server_key, "--tls_ca",
                               pki->ca_cert, "--tls_verify_clients", "require",
                               "--log_level", "warning"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  LoadOptions o;
  o.scenario = Scenario::kPubSub;
  o.server = (*broker)->tcp_address();
  o.messages = 2000;
  o.timeout = kTimeout;
  o.tls.enabled = true;
  o.tls.ca_file = pki->ca_cert;
  o.tls.cert_file = pki->client_cert;
  o.tls.key_file = pki->client_key;
  absl::StatusOr<LoadReport> report = RunLoad(o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->clean()) << report->first_error;
  EXPECT_EQ(report->received, report->expected);

  o.tls.cert_file.clear();
  o.tls.key_file.clear();
  const absl::Time start = absl::Now();
  report = RunLoad(o);
  EXPECT_LT(absl::Now() - start, kPromptly);
  EXPECT_FALSE(report.ok());
}

TEST(TlsLoadRunnerNatsServerTest,
     PubSubFanOutAndReqRepAreCleanAgainstNatsServerTls) {
  const std::string nats_server = NatsServerPath();
  if (nats_server.empty()) GTEST_SKIP() << "nats-server is not installed";
  absl::StatusOr<TestPki> pki = TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = ChildProcess::Start(
      nats_server, {"-a", "127.0.0.1", "-p", "-1", "--tls", "--tlscert",
                    pki->server_cert, "--tlskey", pki->server_key});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address =
      LoggedAddress(**server, "Listening for client connections on ");
  ASSERT_FALSE(address.empty()) << (*server)->Stderr();
  for (Scenario scenario :
       {Scenario::kPubSub, Scenario::kFanOut, Scenario::kRequestReply}) {
    SCOPED_TRACE(ScenarioName(scenario));
    LoadOptions o;
    o.scenario = scenario;
    o.protocol = Protocol::kNats;
    o.server = address;
    o.messages = IsRoundTrip(scenario) ? 300 : 20000;
    o.timeout = kTimeout;
    o.tls.enabled = true;
    o.tls.ca_file = pki->ca_cert;
    absl::StatusOr<LoadReport> report = RunLoad(o);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->clean()) << report->first_error;
    EXPECT_EQ(report->received, report->expected);
  }
  // And a plain client is told the server wants TLS.
  LoadOptions plain;
  plain.protocol = Protocol::kNats;
  plain.server = address;
  plain.messages = 1000;
  plain.timeout = kTimeout;
  absl::StatusOr<LoadReport> refused = RunLoad(plain);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  (*server)->Signal(SIGTERM).IgnoreError();
  (*server)->Wait(absl::Seconds(5)).IgnoreError();
}

}  // namespace
}  // namespace manifold::load
