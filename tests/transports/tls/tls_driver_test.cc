// BrokerDriver links secured by TLS (transports/tls/tls_link_security.h),
// against a scripted event loop and a client TlsSession: the driver decrypts
// before the codec, encrypts after it, closes only the failing link, counts
// each failure by kind and enforces the handshake timeout. The clock is fake;
// the Broker, codecs, certificates and OpenSSL are real.

#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/strings/match.h"
#include "broker/nats/nats_codec.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/transports/testing/scripted_links.h"
#include "tests/transports/tls/testing/test_pki.h"
#include "tests/transports/tls/testing/tls_test_contexts.h"
#include "transports/driver/broker_driver.h"
#include "transports/tls/tls_context.h"
#include "transports/tls/tls_link_security.h"
#include "transports/tls/tls_session.h"

namespace manifold {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using testing::ScriptedLinks;

std::string HelloFrame() {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
  m.mutable_hello()->set_client_name("tls-client");
  return EncodeFrame(m);
}

class TlsDriverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = testing::SharedTestPki(); }
  void SetUp() override { ASSERT_NE(pki_, nullptr) << "no test PKI"; }

  BrokerDriver& MakeDriver(
      ClientVerification verify = ClientVerification::kNone) {
    absl::StatusOr<std::shared_ptr<ReloadableTlsServerContext>> contexts =
        ReloadableTlsServerContext::Create(
            testing::TlsServerSettingsFor(*pki_, verify));
    EXPECT_TRUE(contexts.ok()) << contexts.status();
    contexts_ = *contexts;
    BrokerOptions broker;
    broker.set_keepalive_interval_ms(0);
    broker.set_statistics_interval_ms(0);
    DriverOptions options;
    options.clock = [this] { return now_; };
    options.logger =
        Logger(LogLevel::kWarning, [this](LogLevel, absl::string_view line) {
          warnings_.emplace_back(line);
        });
    driver_.emplace(std::move(broker), std::move(options));
    return *driver_;
  }

  std::unique_ptr<TlsSession> Client(const std::string& cert = "",
                                     const std::string& key = "") {
    return TlsSession::ForClient(
        testing::TlsClientContextFor(*pki_, cert, key));
  }

  ConnectionId OpenTls(ScriptedLinks& links, TlsLinkOptions options = {},
                       std::unique_ptr<ProtocolCodec> codec = nullptr) {
    return driver_->Open(links, PeerInfo{"127.0.0.1:5555"}, std::move(codec),
                         MakeTlsLinkSecurity(contexts_->current(), options));
  }

  // Moves bytes between `client` and link `id` until both are quiet;
  // returns what the client decrypted.
  std::string Pump(ScriptedLinks& links, ConnectionId id, TlsSession& client) {
    std::string plain;
    for (int round = 0; round < 20; ++round) {
      driver_->RunTurn();
      std::string from_server = std::move(links.written[id]);
      links.written[id].clear();
      if (std::vector<std::string>& queue = links.submitted[id];
          !queue.empty()) {
        const std::string bytes = std::move(queue.front());
        queue.erase(queue.begin());
        from_server += bytes;
        driver_->OnWriteDone(id, bytes.size());
      }
      if (!from_server.empty()) {
        client.Feed(from_server, &plain).IgnoreError();
      }
      const std::string to_server(client.PendingCiphertext());
      client.ConsumeCiphertext(to_server.size());
      if (to_server.empty() && from_server.empty()) break;
      if (!to_server.empty()) driver_->OnReceived(id, to_server);
    }
    return plain;
  }

  static const testing::TestPki* pki_;
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  std::vector<std::string> warnings_;
  std::shared_ptr<ReloadableTlsServerContext> contexts_;
  std::optional<BrokerDriver> driver_;
};

const testing::TestPki* TlsDriverTest::pki_ = nullptr;

TEST_F(TlsDriverTest, NativeClientIsWelcomedOverTls) {
  BrokerDriver& d = MakeDriver();
  ScriptedLinks links;
  const ConnectionId id = OpenTls(links);
  auto client = Client();
  Pump(links, id, *client);
  ASSERT_TRUE(client->handshake_done());
  ASSERT_EQ(client->Write(HelloFrame()), HelloFrame().size());
  const std::vector<wire::ServerMessage> got =
      ScriptedLinks::Decode(Pump(links, id, *client));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].welcome().session_id(), id.value());
  EXPECT_EQ(d.statistics().tls_handshakes, 1u);
  // No client certificate was asked for.
  EXPECT_EQ(d.peer_identity(id), nullptr);
}

TEST_F(TlsDriverTest, SubmittedWritesCarryCiphertextToo) {
  MakeDriver();
  ScriptedLinks links(WriteStyle::kSubmitted);
  const ConnectionId id = OpenTls(links);
  auto client = Client();
  Pump(links, id, *client);
  ASSERT_TRUE(client->handshake_done());
  client->Write(HelloFrame());
  const std::vector<wire::ServerMessage> got =
      ScriptedLinks::Decode(Pump(links, id, *client));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].has_welcome());
}

TEST_F(TlsDriverTest, PlainTextClosesOnlyThatLinkAndIsCounted) {
  BrokerDriver& d = MakeDriver();
  ScriptedLinks links;
  const ConnectionId healthy = OpenTls(links);
  const ConnectionId plain = OpenTls(links);
  auto client = Client();
  Pump(links, healthy, *client);

  d.OnReceived(plain, HelloFrame());
  d.RunTurn();
  EXPECT_TRUE(links.closed.count(plain));
  EXPECT_EQ(d.statistics().tls_plain_text, 1u);
  EXPECT_THAT(warnings_,
              ElementsAre(HasSubstr(
                  "TLS from 127.0.0.1:5555: plain text on a TLS port")));

  client->Write(HelloFrame());
  const std::vector<wire::ServerMessage> got =
      ScriptedLinks::Decode(Pump(links, healthy, *client));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].has_welcome());
  EXPECT_FALSE(links.closed.count(healthy));
}

TEST_F(TlsDriverTest, TlsCountersReachTheBrokersStatisticsByReason) {
  BrokerDriver& d = MakeDriver();
  // Without a secured link the broker lists no TLS figures.
  EXPECT_TRUE(d.broker().statistics().tls.failures.empty());
  ScriptedLinks links;
  const ConnectionId healthy = OpenTls(links);
  const ConnectionId plain = OpenTls(links);
  using Failures = absl::btree_map<std::string, uint64_t>;
  EXPECT_EQ(d.broker().statistics().tls.failures,
            (Failures{{"handshake_failure", 0},
                      {"handshake_timeout", 0},
                      {"plain_text", 0},
                      {"protocol_error", 0}}));
  auto client = Client();
  Pump(links, healthy, *client);
  ASSERT_TRUE(client->handshake_done());
  d.OnReceived(plain, HelloFrame());
  d.RunTurn();
  client->Write(HelloFrame());
  ASSERT_EQ(ScriptedLinks::Decode(Pump(links, healthy, *client)).size(), 1u);
  const TlsStatistics& tls = d.broker().statistics().tls;
  EXPECT_EQ(tls.handshakes, 1u);
  EXPECT_EQ(tls.failures.at("plain_text"), 1u);
  EXPECT_EQ(tls.failures.at("handshake_failure"), 0u);
}

TEST_F(TlsDriverTest, StalledHandshakeIsClosedAtTheTimeout) {
  BrokerDriver& d = MakeDriver();
  ScriptedLinks links;
  const ConnectionId id = OpenTls(links);
  const std::optional<absl::Time> wakeup = d.RunTurn();
  ASSERT_TRUE(wakeup.has_value());
  EXPECT_EQ(*wakeup, now_ + absl::Seconds(10));

  now_ += absl::Seconds(9);
  d.RunTurn();
  EXPECT_FALSE(links.closed.count(id));
  now_ += absl::Seconds(1);
  d.RunTurn();
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_EQ(d.statistics().tls_handshake_timeouts, 1u);
  EXPECT_THAT(warnings_,
              ElementsAre(HasSubstr("TLS handshake not done within 10s")));
}

TEST_F(TlsDriverTest, FinishedHandshakeIsNotTimedOut) {
  BrokerDriver& d = MakeDriver();
  ScriptedLinks links;
  const ConnectionId id = OpenTls(links);
  auto client = Client();
  Pump(links, id, *client);
  client->Write(HelloFrame());  // and the Broker's own handshake too
  Pump(links, id, *client);
  now_ += absl::Seconds(60);
  d.RunTurn();
  EXPECT_FALSE(links.closed.count(id));
  EXPECT_EQ(d.statistics().tls_handshake_timeouts, 0u);
}

TEST_F(TlsDriverTest, VerifiedClientCertificateIsTheLinksPeerIdentity) {
  BrokerDriver& d = MakeDriver(ClientVerification::kRequire);
  ScriptedLinks links;
  const ConnectionId id = OpenTls(links);
  auto client = Client(pki_->client_cert, pki_->client_key);
  Pump(links, id, *client);
  ASSERT_TRUE(client->handshake_done());
  const PeerIdentity* identity = d.peer_identity(id);
  ASSERT_NE(identity, nullptr);
  EXPECT_EQ(identity->subject, "CN=alice,O=Manifold Tests");
  EXPECT_THAT(identity->dns_names, ElementsAre("alice.example"));
  EXPECT_THAT(identity->emails, ElementsAre("alice@example.com"));
}

TEST_F(TlsDriverTest, MissingRequiredClientCertificateIsRefusedAndCounted) {
  BrokerDriver& d = MakeDriver(ClientVerification::kRequire);
  ScriptedLinks links;
  const ConnectionId id = OpenTls(links);
  auto client = Client();
  Pump(links, id, *client);
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_EQ(d.statistics().tls_handshake_failures, 1u);
  EXPECT_THAT(warnings_, ElementsAre(HasSubstr("sent no certificate")));
  // The alert reached the client, which knows why.
  EXPECT_TRUE(client->failed());
}

TEST_F(TlsDriverTest, AlertOfAFailedHandshakeIsWrittenOnSubmittedLinksToo) {
  BrokerDriver& d = MakeDriver(ClientVerification::kRequire);
  ScriptedLinks links(WriteStyle::kSubmitted);
  const ConnectionId id = OpenTls(links);
  auto client = Client();
  Pump(links, id, *client);
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_EQ(d.statistics().tls_handshake_failures, 1u);
  EXPECT_TRUE(client->failed());
  EXPECT_EQ(d.orphaned_write_count(), 0u);
}

TEST_F(TlsDriverTest, ClientFromAnotherCaIsRefusedAndCounted) {
  BrokerDriver& d = MakeDriver(ClientVerification::kRequire);
  ScriptedLinks links;
  const ConnectionId id = OpenTls(links);
  auto client = Client(pki_->stranger_client_cert, pki_->stranger_client_key);
  Pump(links, id, *client);
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_EQ(d.statistics().tls_handshake_failures, 1u);
  EXPECT_THAT(warnings_, ElementsAre(HasSubstr("unknown CA")));
}

TEST_F(TlsDriverTest, NatsGreetingGoesOutInClearThenTlsTakesOver) {
  BrokerDriver& d = MakeDriver();
  ScriptedLinks links;
  NatsOptions nats;
  nats.tls_required = true;
  TlsLinkOptions greeting_in_clear;
  greeting_in_clear.clear_greeting = true;
  const ConnectionId id =
      OpenTls(links, greeting_in_clear, std::make_unique<NatsCodec>(nats));
  d.RunTurn();
  const std::string info = std::move(links.written[id]);
  links.written[id].clear();
  EXPECT_TRUE(absl::StartsWith(info, "INFO {")) << info;
  EXPECT_THAT(info, HasSubstr("\"tls_required\":true"));

  auto client = Client();
  Pump(links, id, *client);
  ASSERT_TRUE(client->handshake_done());
  client->Write("CONNECT {\"verbose\":false}\r\nPING\r\n");
  EXPECT_EQ(Pump(links, id, *client), "PONG\r\n");
}

TEST_F(TlsDriverTest, ShutdownClosesLinksWhoseHandshakeIsNotDoneAtOnce) {
  BrokerDriver& d = MakeDriver();
  ScriptedLinks links;
  // One link has heard nothing yet; the other is halfway through its
  // handshake (the server has answered the ClientHello).
  const ConnectionId silent = OpenTls(links);
  const ConnectionId halfway = OpenTls(links);
  auto client = Client();
  const std::string hello(client->PendingCiphertext());
  ASSERT_FALSE(hello.empty());
  client->ConsumeCiphertext(hello.size());
  d.OnReceived(halfway, hello);
  d.RunTurn();
  ASSERT_FALSE(links.closed.count(halfway));
  // The Goodbye cannot reach either before a handshake is done: the turn
  // ends, and both links are closed without waiting for the grace period.
  d.Shutdown(absl::Seconds(5));
  d.RunTurn();
  EXPECT_TRUE(links.closed.count(silent));
  EXPECT_TRUE(links.closed.count(halfway));
  std::optional<absl::Time> wakeup;
  EXPECT_TRUE(d.ShutdownDone(wakeup));
}

// More output than the layer holds as ciphertext at once, to a link that
// took nothing at first: when it is writable again, the ciphertext goes
// and so does everything after it, with no further event.
TEST_F(TlsDriverTest, OutputPastTheCiphertextBoundAllGoesOnceTheLinkTakesIt) {
  BrokerDriver& d = MakeDriver();
  ScriptedLinks links;
  const ConnectionId id = OpenTls(links);
  auto client = Client();
  Pump(links, id, *client);
  ASSERT_TRUE(client->handshake_done());
  wire::ClientMessage subscribe;
  subscribe.mutable_subscribe()->set_op_id(1);
  subscribe.mutable_subscribe()->set_pattern("big");
  client->Write(HelloFrame() + EncodeFrame(subscribe));
  ASSERT_EQ(ScriptedLinks::Decode(Pump(links, id, *client)).size(), 2u);

  // A plain publisher sends three messages of 200 KiB: more than the 256
  // KiB of ciphertext the layer holds. The TLS link takes nothing yet.
  ScriptedLinks plain_links;
  const ConnectionId publisher =
      d.Open(plain_links, PeerInfo{"127.0.0.1:5556"});
  std::string frames = HelloFrame();
  for (int i = 0; i < 3; ++i) {
    wire::ClientMessage publish;
    publish.mutable_publish()->set_topic("big");
    publish.mutable_publish()->set_payload(std::string(200 << 10, 'a' + i));
    frames += EncodeFrame(publish);
  }
  links.budget = 0;
  d.OnReceived(publisher, frames);
  d.RunTurn();
  ASSERT_TRUE(links.written[id].empty());

  links.budget = std::numeric_limits<size_t>::max();
  d.OnWritable(id);
  std::string plain;
  for (int turn = 0; turn < 5; ++turn) {
    d.RunTurn();
    client->Feed(links.written[id], &plain).IgnoreError();
    links.written[id].clear();
  }
  const std::vector<wire::ServerMessage> got = ScriptedLinks::Decode(plain);
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].deliver().payload(), std::string(200 << 10, 'a' + i));
  }
}

TEST_F(TlsDriverTest, ClosingLinkSendsCloseNotify) {
  BrokerDriver& d = MakeDriver();
  ScriptedLinks links;
  const ConnectionId id = OpenTls(links);
  auto client = Client();
  Pump(links, id, *client);
  client->Write(HelloFrame());
  Pump(links, id, *client);
  d.Shutdown(absl::ZeroDuration());
  Pump(links, id, *client);
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_TRUE(client->peer_closed());
}

}  // namespace
}  // namespace manifold
