// manifoldd with TLS on every listener, over real sockets, on every event
// loop this build has: `openssl s_client` speaks native frames through it,
// the NATS port sends INFO in clear and then takes the TLS handshake (as
// nats-server 2.9 does), plain text on a TLS port closes only that
// connection, a stalled handshake is closed at the timeout, and client
// certificates are required when manifoldd says so; `manifold bench --tls`
// loads it with every message checked.

#include <csignal>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/program_path.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/transports/testing/event_loop_params.h"
#include "tests/transports/testing/wire_client.h"
#include "tests/transports/tls/testing/test_pki.h"
#include "tests/transports/tls/testing/tls_socket_client.h"
#include "tests/transports/tls/testing/tls_test_contexts.h"
#include "transports/tls/tls_context.h"

#ifndef MANIFOLD_CLI_PATH
#define MANIFOLD_CLI_PATH nullptr
#endif

namespace manifold {
namespace {

using ::testing::HasSubstr;
using testing::RunningManifoldd;
using testing::TlsSocketClient;

std::string HelloFrame(absl::string_view name) {
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

// Reads plaintext from `client` until one whole frame decodes.
absl::StatusOr<wire::ServerMessage> ReadFrame(TlsSocketClient& client,
                                              FrameDecoder& decoder) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  wire::ServerMessage m;
  while (true) {
    absl::StatusOr<bool> got = decoder.Next(m);
    if (!got.ok()) return got.status();
    if (*got) return m;
    absl::StatusOr<std::string> bytes =
        client.ReadAtLeast(1, deadline - absl::Now());
    if (!bytes.ok()) return bytes.status();
    decoder.Append(*bytes);
  }
}

// Waits until manifoldd's log holds `text`.
bool LogShows(RunningManifoldd& broker, absl::string_view text) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    if (absl::StrContains(broker.Log(), text)) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

class TlsManifolddTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { pki_ = testing::SharedTestPki(); }
  void SetUp() override { ASSERT_NE(pki_, nullptr) << "no test PKI"; }

  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> flags = {"--loop=" + GetParam(),
                                      "--listen=127.0.0.1:0",
                                      "--nats=127.0.0.1:0",
                                      "--tls_cert=" + pki_->server_cert,
                                      "--tls_key=" + pki_->server_key,
                                      "--log_level=info"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        RunningManifoldd::Start(flags);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  std::shared_ptr<const TlsClientContext> ClientContext(
      const std::string& cert = "", const std::string& key = "") {
    return testing::TlsClientContextFor(*pki_, cert, key);
  }

  // A native client over TLS that has been welcomed.
  TlsSocketClient WelcomedClient(absl::string_view name,
                                 FrameDecoder& decoder) {
    absl::StatusOr<TlsSocketClient> client =
        TlsSocketClient::Connect(broker_->tcp(), ClientContext());
    EXPECT_TRUE(client.ok()) << client.status();
    EXPECT_TRUE(client->Handshake().ok());
    EXPECT_TRUE(client->Send(HelloFrame(name)).ok());
    absl::StatusOr<wire::ServerMessage> welcome = ReadFrame(*client, decoder);
    EXPECT_TRUE(welcome.ok() && welcome->has_welcome()) << welcome.status();
    return *std::move(client);
  }

  static const testing::TestPki* pki_;
  std::unique_ptr<RunningManifoldd> broker_;
};

const testing::TestPki* TlsManifolddTest::pki_ = nullptr;

TEST_P(TlsManifolddTest, OpenSslClientIsWelcomedOnTheNativePort) {
  Start();
  testing::ChildProcess::Options options;
  options.input = HelloFrame("s_client");
  absl::StatusOr<std::unique_ptr<testing::ChildProcess>> s_client =
      testing::ChildProcess::Start(
          "/usr/bin/openssl",
          {"s_client", "-connect", broker_->tcp_address(), "-CAfile",
           pki_->ca_cert, "-verify_return_error", "-quiet", "-ign_eof"},
          options);
  ASSERT_TRUE(s_client.ok()) << s_client.status();
  // The Welcome is binary; it carries the broker's name.
  std::vector<wire::ServerMessage> got;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (got.empty() && absl::Now() < deadline) {
    FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1 << 20});
    decoder.Append((*s_client)->Stdout());
    wire::ServerMessage m;
    if (decoder.Next(m).value_or(false)) got.push_back(m);
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(got.size(), 1u) << (*s_client)->Stderr();
  EXPECT_TRUE(got[0].has_welcome());
  (*s_client)->Signal(SIGTERM).IgnoreError();
  (*s_client)->Wait(absl::Seconds(5)).IgnoreError();
}

TEST_P(TlsManifolddTest, NatsSendsInfoInClearThenSpeaksTls) {
  Start();
  absl::StatusOr<TlsSocketClient> client =
      TlsSocketClient::Connect(broker_->nats(), ClientContext());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::string> info = client->ReadClearLine();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_THAT(*info, HasSubstr("\"tls_required\":true"));
  ASSERT_TRUE(client->Handshake().ok());
  ASSERT_TRUE(client
                  ->Send("CONNECT {\"verbose\":false}\r\nSUB a 1\r\n"
                         "PUB a 2\r\nhi\r\nPING\r\n")
                  .ok());
  std::string got;
  while (!absl::StrContains(got, "PONG\r\n")) {
    absl::StatusOr<std::string> more = client->ReadAtLeast(1);
    ASSERT_TRUE(more.ok()) << more.status() << " after " << got;
    got += *more;
  }
  EXPECT_EQ(got, "MSG a 1 2\r\nhi\r\nPONG\r\n");
}

TEST_P(TlsManifolddTest, PlainTextClosesOnlyThatConnection) {
  Start();
  FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1 << 20});
  TlsSocketClient healthy = WelcomedClient("healthy", decoder);

  absl::StatusOr<testing::WireClient> plain =
      testing::WireClient::Connect(broker_->tcp());
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(plain->SendRaw(HelloFrame("plain")).ok());
  absl::StatusOr<std::vector<wire::ServerMessage>> before_close =
      plain->ReadUntilClosed();
  ASSERT_TRUE(before_close.ok()) << before_close.status();
  EXPECT_TRUE(before_close->empty());
  EXPECT_TRUE(LogShows(*broker_, "plain text on a TLS port"));

  ASSERT_TRUE(healthy.Send(PingFrame(42)).ok());
  absl::StatusOr<wire::ServerMessage> pong = ReadFrame(healthy, decoder);
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->pong().op_id(), 42u);
}

TEST_P(TlsManifolddTest, StalledHandshakeIsClosedAtTheTimeout) {
  Start({"--tls_handshake_timeout=300ms"});
  absl::StatusOr<testing::WireClient> silent =
      testing::WireClient::Connect(broker_->tcp());
  ASSERT_TRUE(silent.ok()) << silent.status();
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<wire::ServerMessage>> got =
      silent->ReadUntilClosed(absl::Seconds(5));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_TRUE(LogShows(*broker_, "TLS handshake not done within 300ms"));
}

TEST_P(TlsManifolddTest, RequiredClientCertificateIsChecked) {
  Start({"--tls_ca=" + pki_->ca_cert, "--tls_verify_clients=require"});
  {
    absl::StatusOr<TlsSocketClient> anonymous =
        TlsSocketClient::Connect(broker_->tcp(), ClientContext());
    ASSERT_TRUE(anonymous.ok());
    // TLS 1.3: the client finishes first and hears the refusal after.
    if (anonymous->Handshake().ok()) {
      anonymous->Send(HelloFrame("anonymous")).IgnoreError();
      EXPECT_TRUE(anonymous->WaitForClose().ok());
    }
    EXPECT_TRUE(LogShows(*broker_, "sent no certificate"));
  }
  {
    absl::StatusOr<TlsSocketClient> stranger = TlsSocketClient::Connect(
        broker_->tcp(),
        ClientContext(pki_->stranger_client_cert, pki_->stranger_client_key));
    ASSERT_TRUE(stranger.ok());
    if (stranger->Handshake().ok()) {
      stranger->Send(HelloFrame("stranger")).IgnoreError();
      EXPECT_TRUE(stranger->WaitForClose().ok());
    }
    EXPECT_TRUE(LogShows(*broker_, "client certificate from an unknown CA"));
  }
  absl::StatusOr<TlsSocketClient> alice = TlsSocketClient::Connect(
      broker_->tcp(), ClientContext(pki_->client_cert, pki_->client_key));
  ASSERT_TRUE(alice.ok());
  ASSERT_TRUE(alice->Handshake().ok());
  ASSERT_TRUE(alice->Send(HelloFrame("alice")).ok());
  FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1 << 20});
  absl::StatusOr<wire::ServerMessage> welcome = ReadFrame(*alice, decoder);
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  EXPECT_TRUE(welcome->has_welcome());
}

TEST_P(TlsManifolddTest, AVerifiedClientCertificateLogsInAsItsUser) {
  // Alice's certificate names her user by subject; the stranger's CA is
  // trusted here too but its certificate belongs to nobody.
  const std::string config = pki_->dir + "/auth-" + GetParam() + ".textpb";
  std::ofstream(config)
      << "auth {\n"
         "  users {\n"
         "    name: \"orders-service\"\n"
         "    certificates: \"CN=alice,O=Manifold Tests\"\n"
         "    permissions { publish { allow: \"orders/**\" } }\n"
         "  }\n"
         "  failed_login_delay_ms: 0\n"
         "}\n";
  Start({"--config=" + config, "--tls_ca=" + pki_->ca_cert,
         "--tls_verify_clients=request"});
  absl::StatusOr<TlsSocketClient> alice = TlsSocketClient::Connect(
      broker_->tcp(), ClientContext(pki_->client_cert, pki_->client_key));
  ASSERT_TRUE(alice.ok());
  ASSERT_TRUE(alice->Handshake().ok());
  ASSERT_TRUE(alice->Send(HelloFrame("alice")).ok());
  FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1 << 20});
  absl::StatusOr<wire::ServerMessage> welcome = ReadFrame(*alice, decoder);
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  ASSERT_TRUE(welcome->has_welcome()) << welcome->DebugString();
  wire::ClientMessage publish;
  publish.mutable_publish()->set_op_id(7);
  publish.mutable_publish()->set_topic("billing/1");
  publish.mutable_publish()->set_ack(true);
  ASSERT_TRUE(alice->Send(EncodeFrame(publish)).ok());
  absl::StatusOr<wire::ServerMessage> denied = ReadFrame(*alice, decoder);
  ASSERT_TRUE(denied.ok()) << denied.status();
  EXPECT_EQ(denied->error().message(),
            "permission denied: publish to 'billing/1' (user "
            "'orders-service')");

  // No certificate and no credentials: refused, since users are configured.
  absl::StatusOr<TlsSocketClient> anonymous =
      TlsSocketClient::Connect(broker_->tcp(), ClientContext());
  ASSERT_TRUE(anonymous.ok());
  ASSERT_TRUE(anonymous->Handshake().ok());
  ASSERT_TRUE(anonymous->Send(HelloFrame("anonymous")).ok());
  FrameDecoder refusal_decoder(
      FrameDecoder::Options{.max_frame_bytes = 1 << 20});
  absl::StatusOr<wire::ServerMessage> refused =
      ReadFrame(*anonymous, refusal_decoder);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->error().message(),
            "connection refused: credentials required");
}

TEST_P(TlsManifolddTest, ManifoldCliPublishesAndSubscribesOverMutualTls) {
  Start({"--tls_ca=" + pki_->ca_cert, "--tls_verify_clients=require"});
  const std::string cli =
      testing::ProgramPath("MANIFOLD_CLI", MANIFOLD_CLI_PATH);
  ASSERT_FALSE(cli.empty()) << "the build did not say where manifold is";
  const std::vector<std::string> tls = {
      "--server=" + broker_->tcp_address(), "--tls",
      "--tls_ca=" + pki_->ca_cert,          "--tls_cert=" + pki_->client_cert,
      "--tls_key=" + pki_->client_key,      "--tls_server_name=localhost"};
  std::vector<std::string> sub_args = tls;
  sub_args.insert(sub_args.end(), {"--count=1", "sub", "room/*"});
  absl::StatusOr<std::unique_ptr<testing::ChildProcess>> sub =
      testing::ChildProcess::Start(cli, sub_args);
  ASSERT_TRUE(sub.ok()) << sub.status();
  // Publish until the subscriber prints the message: its subscription may
  // not be in place when the first one arrives.
  std::vector<std::string> pub_args = tls;
  pub_args.insert(pub_args.end(), {"pub", "room/1", "hello over tls"});
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  bool delivered = false;
  while (!delivered && absl::Now() < deadline) {
    absl::StatusOr<testing::Completed> pub =
        testing::RunToCompletion(cli, pub_args);
    ASSERT_TRUE(pub.ok()) << pub.status();
    ASSERT_EQ(pub->exit_code, 0) << pub->err;
    delivered = (*sub)->WaitForOutput("[room/1] hello over tls",
                                      absl::Milliseconds(200));
  }
  EXPECT_TRUE(delivered) << (*sub)->Stderr();
  absl::StatusOr<int> code = (*sub)->Wait(absl::Seconds(5));
  EXPECT_EQ(code.value_or(-1), 0) << (*sub)->Stderr();

  // Without a client certificate the broker refuses it.
  std::vector<std::string> anonymous = {"--server=" + broker_->tcp_address(),
                                        "--tls",
                                        "--tls_ca=" + pki_->ca_cert,
                                        "pub",
                                        "room/1",
                                        "no"};
  absl::StatusOr<testing::Completed> refused =
      testing::RunToCompletion(cli, anonymous);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_NE(refused->exit_code, 0);
}

TEST_P(TlsManifolddTest, ManifoldBenchChecksEveryMessageOverTls) {
  Start();
  const std::string cli =
      testing::ProgramPath("MANIFOLD_CLI", MANIFOLD_CLI_PATH);
  ASSERT_FALSE(cli.empty()) << "the build did not say where manifold is";
  for (const auto& [address, protocol] :
       {std::pair{broker_->tcp_address(), "native"},
        std::pair{broker_->nats().ToString(), "nats"}}) {
    SCOPED_TRACE(protocol);
    absl::StatusOr<testing::Completed> bench = testing::RunToCompletion(
        cli, {"--server=" + address, "--tls", "--tls_ca=" + pki_->ca_cert,
              "--json", "bench", "fanout", "--subs=3", "--count=5000",
              std::string("--protocol=") + protocol});
    ASSERT_TRUE(bench.ok()) << bench.status();
    EXPECT_EQ(bench->exit_code, 0) << bench->err;
    EXPECT_THAT(bench->out, HasSubstr("\"clean\":true")) << bench->out;
  }
}

INSTANTIATE_TEST_SUITE_P(Loops, TlsManifolddTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
