#include "transports/tls/tls_session.h"

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/transports/tls/testing/test_pki.h"
#include "tests/transports/tls/testing/tls_test_contexts.h"
#include "transports/tls/tls_context.h"

namespace manifold {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TlsSessionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = testing::SharedTestPki(); }
  void SetUp() override { ASSERT_NE(pki_, nullptr) << "no test PKI"; }

  static std::shared_ptr<const TlsServerContext> Server(
      ClientVerification verify = ClientVerification::kNone) {
    return testing::TlsServerContextFor(*pki_, verify);
  }

  static std::shared_ptr<const TlsClientContext> Client(
      const std::string& cert = "", const std::string& key = "",
      const std::string& ca = "") {
    return testing::TlsClientContextFor(*pki_, cert, key, ca);
  }

  // Moves ciphertext both ways until neither side has any to send, collecting
  // what each side decrypts. Returns the first failure of either side.
  absl::Status Pump(TlsSession& client, TlsSession& server) {
    for (int round = 0; round < 20; ++round) {
      const std::string to_server(client.PendingCiphertext());
      client.ConsumeCiphertext(to_server.size());
      const std::string to_client(server.PendingCiphertext());
      server.ConsumeCiphertext(to_client.size());
      if (to_server.empty() && to_client.empty()) return absl::OkStatus();
      if (absl::Status s = server.Feed(to_server, &server_plain_); !s.ok()) {
        // Deliver the server's alert, as a real link would before closing.
        const std::string alert(server.PendingCiphertext());
        client.Feed(alert, &client_plain_).IgnoreError();
        return s;
      }
      if (absl::Status s = client.Feed(to_client, &client_plain_); !s.ok()) {
        return s;
      }
    }
    return absl::DeadlineExceededError("the sessions kept talking");
  }

  static const testing::TestPki* pki_;
  std::string server_plain_;
  std::string client_plain_;
};

const testing::TestPki* TlsSessionTest::pki_ = nullptr;

TEST_F(TlsSessionTest, ClientAndServerExchangeBytesBothWays) {
  auto server = TlsSession::ForServer(Server());
  auto client = TlsSession::ForClient(Client());
  ASSERT_TRUE(Pump(*client, *server).ok());
  ASSERT_TRUE(server->handshake_done());
  ASSERT_TRUE(client->handshake_done());
  EXPECT_EQ(server->protocol_version(), "TLSv1.3");

  EXPECT_EQ(client->Write("PUB a 5\r\nhello\r\n"), 16u);
  EXPECT_EQ(server->Write("+OK\r\n"), 5u);
  ASSERT_TRUE(Pump(*client, *server).ok());
  EXPECT_EQ(server_plain_, "PUB a 5\r\nhello\r\n");
  EXPECT_EQ(client_plain_, "+OK\r\n");
  // No client certificate was asked for.
  EXPECT_EQ(server->peer_identity(), nullptr);
  // The client verified the server.
  ASSERT_NE(client->peer_identity(), nullptr);
  EXPECT_EQ(client->peer_identity()->subject, "CN=localhost");
}

TEST_F(TlsSessionTest, WriteTakesNothingBeforeTheHandshakeIsDone) {
  auto server = TlsSession::ForServer(Server());
  EXPECT_EQ(server->Write("early"), 0u);
  EXPECT_TRUE(server->PendingCiphertext().empty());
}

TEST_F(TlsSessionTest, LargeWritesArriveWholeAndPendingCiphertextIsBounded) {
  TlsSessionOptions options;
  options.max_pending_ciphertext = 64 * 1024;
  auto server = TlsSession::ForServer(Server(), options);
  auto client = TlsSession::ForClient(Client());
  ASSERT_TRUE(Pump(*client, *server).ok());
  std::string big(1 << 20, 'x');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>('a' + i % 26);
  size_t sent = 0;
  while (sent < big.size()) {
    const size_t taken = server->Write(absl::string_view(big).substr(sent));
    ASSERT_GT(taken, 0u);
    // At most one record past the limit.
    EXPECT_LE(server->PendingCiphertext().size(),
              options.max_pending_ciphertext + 17 * 1024);
    sent += taken;
    // A full session takes nothing more until its ciphertext is taken.
    EXPECT_EQ(server->Write(absl::string_view(big).substr(sent)), 0u);
    ASSERT_TRUE(Pump(*client, *server).ok());
  }
  EXPECT_EQ(client_plain_, big);
}

TEST_F(TlsSessionTest, MutualTlsExposesTheClientCertificate) {
  auto server = TlsSession::ForServer(Server(ClientVerification::kRequire));
  auto client =
      TlsSession::ForClient(Client(pki_->client_cert, pki_->client_key));
  ASSERT_TRUE(Pump(*client, *server).ok());
  ASSERT_TRUE(server->handshake_done());
  const TlsPeerIdentity* identity = server->peer_identity();
  ASSERT_NE(identity, nullptr);
  EXPECT_EQ(identity->subject, "CN=alice,O=Manifold Tests");
  EXPECT_THAT(identity->dns_names, ElementsAre("alice.example"));
  EXPECT_THAT(identity->emails, ElementsAre("alice@example.com"));
}

TEST_F(TlsSessionTest, RequiredClientCertificateMissingFailsTheHandshake) {
  auto server = TlsSession::ForServer(Server(ClientVerification::kRequire));
  auto client = TlsSession::ForClient(Client());
  const absl::Status status = Pump(*client, *server);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  EXPECT_THAT(status.message(), HasSubstr("sent no certificate"));
  EXPECT_EQ(server->failure_kind(), TlsFailureKind::kHandshake);
  EXPECT_FALSE(server->handshake_done());
  EXPECT_EQ(server->peer_identity(), nullptr);
}

TEST_F(TlsSessionTest, RequestedClientCertificateMayBeAbsent) {
  auto server = TlsSession::ForServer(Server(ClientVerification::kRequest));
  auto client = TlsSession::ForClient(Client());
  ASSERT_TRUE(Pump(*client, *server).ok());
  EXPECT_TRUE(server->handshake_done());
  EXPECT_EQ(server->peer_identity(), nullptr);
}

TEST_F(TlsSessionTest, ClientCertificateFromAnotherCaIsRefused) {
  auto server = TlsSession::ForServer(Server(ClientVerification::kRequire));
  auto client = TlsSession::ForClient(
      Client(pki_->stranger_client_cert, pki_->stranger_client_key));
  const absl::Status status = Pump(*client, *server);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  EXPECT_THAT(status.message(),
              HasSubstr("client certificate from an unknown CA"));
  EXPECT_EQ(server->failure_kind(), TlsFailureKind::kHandshake);
}

TEST_F(TlsSessionTest, ExpiredClientCertificateIsRefused) {
  auto server = TlsSession::ForServer(Server(ClientVerification::kRequire));
  auto client = TlsSession::ForClient(
      Client(pki_->expired_client_cert, pki_->expired_client_key));
  const absl::Status status = Pump(*client, *server);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  EXPECT_THAT(status.message(), HasSubstr("certificate has expired"));
}

TEST_F(TlsSessionTest, ClientRefusesAServerFromAnUnknownCa) {
  auto server = TlsSession::ForServer(Server());
  auto client = TlsSession::ForClient(Client("", "", pki_->stranger_ca_cert));
  const absl::Status status = Pump(*client, *server);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(client->failure().code(), absl::StatusCode::kUnauthenticated)
      << client->failure();
  EXPECT_THAT(client->failure().message(),
              HasSubstr("server certificate from an unknown CA"));
  // The server hears about it through the client's alert.
  const std::string alert(client->PendingCiphertext());
  std::string ignored;
  EXPECT_FALSE(server->Feed(alert, &ignored).ok());
  EXPECT_THAT(server->failure().message(), HasSubstr("unknown ca"));
}

TEST_F(TlsSessionTest, PlainTextIsNamedBeforeOpenSslSeesIt) {
  auto server = TlsSession::ForServer(Server());
  std::string plain;
  const absl::Status status =
      server->Feed("CONNECT {\"verbose\":false}\r\n", &plain);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("plain text on a TLS port"));
  EXPECT_THAT(status.message(), HasSubstr("0x43 'C'"));
  EXPECT_EQ(server->failure_kind(), TlsFailureKind::kPlainText);
  EXPECT_TRUE(plain.empty());
  // Final: more input changes nothing.
  EXPECT_EQ(server->Feed("\x16\x03\x01", &plain), status);
}

TEST_F(TlsSessionTest, RecordsSplitAtEveryByteStillDecrypt) {
  auto server = TlsSession::ForServer(Server());
  auto client = TlsSession::ForClient(Client());
  ASSERT_TRUE(Pump(*client, *server).ok());
  ASSERT_EQ(client->Write("split me"), 8u);
  const std::string record(client->PendingCiphertext());
  client->ConsumeCiphertext(record.size());
  std::string plain;
  for (size_t i = 0; i + 1 < record.size(); ++i) {
    ASSERT_TRUE(server->Feed(record.substr(i, 1), &plain).ok());
    EXPECT_TRUE(plain.empty());
  }
  // The peer hangs up here: the stream is truncated mid-record.
  const absl::Status truncated = server->FinishInput();
  EXPECT_EQ(truncated.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(truncated.message(), HasSubstr("middle of a record"));
  ASSERT_TRUE(server->Feed(record.substr(record.size() - 1), &plain).ok());
  EXPECT_EQ(plain, "split me");
  EXPECT_THAT(server->FinishInput().message(),
              HasSubstr("without close_notify"));
}

TEST_F(TlsSessionTest, CorruptRecordFailsAsAProtocolError) {
  auto server = TlsSession::ForServer(Server());
  auto client = TlsSession::ForClient(Client());
  ASSERT_TRUE(Pump(*client, *server).ok());
  ASSERT_EQ(client->Write("tamper"), 6u);
  std::string record(client->PendingCiphertext());
  record.back() ^= 0x01;  // the authentication tag no longer matches
  std::string plain;
  EXPECT_FALSE(server->Feed(record, &plain).ok());
  EXPECT_EQ(server->failure_kind(), TlsFailureKind::kProtocol);
  EXPECT_TRUE(plain.empty());
}

TEST_F(TlsSessionTest, CloseNotifyEndsTheStreamCleanly) {
  auto server = TlsSession::ForServer(Server());
  auto client = TlsSession::ForClient(Client());
  ASSERT_TRUE(Pump(*client, *server).ok());
  client->Shutdown();
  EXPECT_EQ(client->Write("late"), 0u);
  ASSERT_TRUE(Pump(*client, *server).ok());
  EXPECT_TRUE(server->peer_closed());
  EXPECT_TRUE(server->FinishInput().ok());
}

TEST_F(TlsSessionTest, Tls11OnlyClientIsRefused) {
  // OpenSSL 3 allows TLS 1.1 only at security level 0.
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ASSERT_NE(ctx, nullptr);
  SSL_CTX_set_security_level(ctx, 0);
  SSL_CTX_set_min_proto_version(ctx, TLS1_1_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION);
  SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0");
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);
  std::string hello(BIO_ctrl_pending(out), '\0');
  BIO_read(out, hello.data(), static_cast<int>(hello.size()));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ASSERT_FALSE(hello.empty());

  auto server = TlsSession::ForServer(Server());
  std::string plain;
  const absl::Status status = server->Feed(hello, &plain);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(server->failure_kind(), TlsFailureKind::kHandshake);
  EXPECT_THAT(status.message(), HasSubstr("unsupported protocol"));
  // An alert tells the client why.
  EXPECT_FALSE(server->PendingCiphertext().empty());
}

}  // namespace
}  // namespace manifold
