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
#include "tests/transports/tls/testing/test_pki.h"
#include "transports/driver/broker_driver.h"
#include "transports/tls/tls_context.h"
#include "transports/tls/tls_link_security.h"
#include "transports/tls/tls_session.h"

namespace manifold {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The adapter side: every write is taken whole (kImmediate) or recorded for
// the test to complete (kSubmitted).
class RecordingLinks : public LinkIo {
 public:
  explicit RecordingLinks(WriteStyle style = WriteStyle::kImmediate)
      : style_(style) {}
  WriteStyle write_style() const override { return style_; }
  absl::StatusOr<size_t> WriteSome(
      ConnectionId id, absl::Span<const absl::string_view> chunks) override {
    size_t taken = 0;
    for (absl::string_view chunk : chunks) {
      written[id].append(chunk.data(), chunk.size());
      taken += chunk.size();
    }
    return taken;
  }
  void StartWrite(ConnectionId id, absl::string_view bytes) override {
    in_flight[id] = std::string(bytes);
  }
  void SetReading(ConnectionId, bool) override {}
  void Close(ConnectionId id) override { closed.insert(id); }

  std::map<ConnectionId, std::string> written;
  std::map<ConnectionId, std::string> in_flight;
  std::set<ConnectionId> closed;

 private:
  const WriteStyle style_;
};

std::string HelloFrame() {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
  m.mutable_hello()->set_client_name("tls-client");
  return EncodeFrame(m);
}

std::vector<wire::ServerMessage> DecodeAll(absl::string_view bytes) {
  FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1 << 24});
  decoder.Append(bytes);
  std::vector<wire::ServerMessage> messages;
  wire::ServerMessage m;
  while (decoder.Next(m).value_or(false)) messages.push_back(m);
  return messages;
}

class TlsDriverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<testing::TestPki> pki = testing::TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new testing::TestPki(*std::move(pki));
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  BrokerDriver& MakeDriver(
      ClientVerification verify = ClientVerification::kNone) {
    TlsSettings settings;
    settings.cert_file = pki_->server_cert;
    settings.key_file = pki_->server_key;
    if (verify != ClientVerification::kNone) settings.ca_file = pki_->ca_cert;
    settings.verify_clients = verify;
    absl::StatusOr<std::shared_ptr<ReloadableTlsServerContext>> contexts =
        ReloadableTlsServerContext::Create(settings);
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
    TlsClientSettings settings;
    settings.ca_file = pki_->ca_cert;
    settings.cert_file = cert;
    settings.key_file = key;
    settings.server_name = "localhost";
    absl::StatusOr<std::shared_ptr<const TlsClientContext>> context =
        TlsClientContext::Create(settings);
    EXPECT_TRUE(context.ok()) << context.status();
    return TlsSession::ForClient(*context);
  }

  ConnectionId OpenTls(RecordingLinks& links, TlsLinkOptions options = {},
                       std::unique_ptr<ProtocolCodec> codec = nullptr) {
    return driver_->Open(links, PeerInfo{"127.0.0.1:5555"}, std::move(codec),
                         MakeTlsLinkSecurity(contexts_->current(), options));
  }

  // Moves bytes between `client` and link `id` until both are quiet;
  // returns what the client decrypted.
  std::string Pump(RecordingLinks& links, ConnectionId id, TlsSession& client) {
    std::string plain;
    for (int round = 0; round < 20; ++round) {
      driver_->RunTurn();
      std::string from_server = std::move(links.written[id]);
      links.written[id].clear();
      if (auto it = links.in_flight.find(id); it != links.in_flight.end()) {
        from_server += it->second;
        const size_t n = it->second.size();
        links.in_flight.erase(it);
        driver_->OnWriteDone(id, n);
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

  static testing::TestPki* pki_;
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  std::vector<std::string> warnings_;
  std::shared_ptr<ReloadableTlsServerContext> contexts_;
  std::optional<BrokerDriver> driver_;
};

testing::TestPki* TlsDriverTest::pki_ = nullptr;

TEST_F(TlsDriverTest, NativeClientIsWelcomedOverTls) {
  BrokerDriver& d = MakeDriver();
  RecordingLinks links;
  const ConnectionId id = OpenTls(links);
  auto client = Client();
  Pump(links, id, *client);
  ASSERT_TRUE(client->handshake_done());
  ASSERT_EQ(client->Write(HelloFrame()), HelloFrame().size());
  const std::vector<wire::ServerMessage> got =
      DecodeAll(Pump(links, id, *client));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].welcome().session_id(), id.value());
  EXPECT_EQ(d.statistics().tls_handshakes, 1u);
  // No client certificate was asked for.
  EXPECT_EQ(d.peer_identity(id), nullptr);
}

TEST_F(TlsDriverTest, SubmittedWritesCarryCiphertextToo) {
  MakeDriver();
  RecordingLinks links(WriteStyle::kSubmitted);
  const ConnectionId id = OpenTls(links);
  auto client = Client();
  Pump(links, id, *client);
  ASSERT_TRUE(client->handshake_done());
  client->Write(HelloFrame());
  const std::vector<wire::ServerMessage> got =
      DecodeAll(Pump(links, id, *client));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].has_welcome());
}

TEST_F(TlsDriverTest, PlainTextClosesOnlyThatLinkAndIsCounted) {
  BrokerDriver& d = MakeDriver();
  RecordingLinks links;
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
      DecodeAll(Pump(links, healthy, *client));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].has_welcome());
  EXPECT_FALSE(links.closed.count(healthy));
}

TEST_F(TlsDriverTest, TlsCountersReachTheBrokersStatisticsByReason) {
  BrokerDriver& d = MakeDriver();
  // Without a secured link the broker lists no TLS figures.
  EXPECT_TRUE(d.broker().statistics().tls.failures.empty());
  RecordingLinks links;
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
  ASSERT_EQ(DecodeAll(Pump(links, healthy, *client)).size(), 1u);
  const TlsStatistics& tls = d.broker().statistics().tls;
  EXPECT_EQ(tls.handshakes, 1u);
  EXPECT_EQ(tls.failures.at("plain_text"), 1u);
  EXPECT_EQ(tls.failures.at("handshake_failure"), 0u);
}

TEST_F(TlsDriverTest, StalledHandshakeIsClosedAtTheTimeout) {
  BrokerDriver& d = MakeDriver();
  RecordingLinks links;
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
  RecordingLinks links;
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
  RecordingLinks links;
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
  RecordingLinks links;
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
  RecordingLinks links(WriteStyle::kSubmitted);
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
  RecordingLinks links;
  const ConnectionId id = OpenTls(links);
  auto client = Client(pki_->stranger_client_cert, pki_->stranger_client_key);
  Pump(links, id, *client);
  EXPECT_TRUE(links.closed.count(id));
  EXPECT_EQ(d.statistics().tls_handshake_failures, 1u);
  EXPECT_THAT(warnings_, ElementsAre(HasSubstr("unknown CA")));
}

TEST_F(TlsDriverTest, NatsGreetingGoesOutInClearThenTlsTakesOver) {
  BrokerDriver& d = MakeDriver();
  RecordingLinks links;
  NatsOptions nats;
  nats.tls_required = true;
  const ConnectionId id = OpenTls(links, TlsLinkOptions{.clear_greeting = true},
                                  std::make_unique<NatsCodec>(nats));
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

TEST_F(TlsDriverTest, ClosingLinkSendsCloseNotify) {
  BrokerDriver& d = MakeDriver();
  RecordingLinks links;
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
