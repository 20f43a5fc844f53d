// TLS over the memory transport: a MemoryBroker link given a TLS security
// layer (MakeTlsLinkSecurity) carries TLS records exactly as a socket would,
// so an embedder can secure in-process links with the same code. A client
// TlsSession talks to the real broker thread through a MemoryLink.

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "gtest/gtest.h"
#include "tests/transports/tls/testing/test_pki.h"
#include "tests/transports/tls/testing/tls_test_contexts.h"
#include "transports/memory/memory_broker.h"
#include "transports/tls/tls_link_security.h"
#include "transports/tls/tls_session.h"

namespace manifold {
namespace {

// A client TlsSession over a MemoryLink: writes are encrypted onto the
// link, reads decrypted from it.
class TlsOverMemory {
 public:
  TlsOverMemory(std::unique_ptr<MemoryLink> link,
                std::unique_ptr<TlsSession> tls)
      : link_(std::move(link)), tls_(std::move(tls)) {}

  // Moves ciphertext both ways until the handshake is done or `timeout`.
  bool Handshake(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!tls_->handshake_done() && !tls_->failed() &&
           absl::Now() < deadline) {
      if (!Send().ok()) return false;
      if (!Receive(absl::Now() + absl::Milliseconds(20)).ok()) return false;
    }
    return tls_->handshake_done();
  }

  absl::Status Write(absl::string_view plaintext) {
    while (!plaintext.empty()) {
      const size_t n = tls_->Write(plaintext);
      if (n == 0) return absl::InternalError("TLS layer took nothing");
      plaintext.remove_prefix(n);
      if (absl::Status s = Send(); !s.ok()) return s;
    }
    return Send();
  }

  // The next server message, decrypted, or an error at the deadline or
  // when the link closes.
  absl::StatusOr<wire::ServerMessage> Next(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      absl::StatusOr<std::optional<FrameView>> frame =
          LocateFrame(plain_, std::numeric_limits<size_t>::max());
      if (frame.ok() && frame->has_value()) {
        wire::ServerMessage m;
        const bool parsed = m.ParseFromArray(
            (*frame)->body.data(), static_cast<int>((*frame)->body.size()));
        plain_.erase(0, (*frame)->size);
        if (!parsed) return absl::DataLossError("undecodable frame");
        if (m.has_ping()) continue;
        return m;
      }
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError("no message in time");
      }
      if (absl::Status s = Receive(deadline); !s.ok()) return s;
    }
  }

  // Reads what the link has until `deadline`; returns UNAVAILABLE once it
  // closed.
  absl::Status Receive(absl::Time deadline) {
    absl::StatusOr<std::string> bytes = link_->Read(deadline);
    if (!bytes.ok()) return bytes.status();
    if (!bytes->empty()) {
      if (absl::Status s = tls_->Feed(*bytes, &plain_); !s.ok()) return s;
      return Send();
    }
    return absl::OkStatus();
  }

  MemoryLink& link() { return *link_; }

 private:
  absl::Status Send() {
    const std::string out(tls_->PendingCiphertext());
    if (out.empty()) return absl::OkStatus();
    tls_->ConsumeCiphertext(out.size());
    return link_->Write(out);
  }

  std::unique_ptr<MemoryLink> link_;
  std::unique_ptr<TlsSession> tls_;
  std::string plain_;
};

std::string HelloFrame(absl::string_view name) {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
  m.mutable_hello()->set_client_name(std::string(name));
  return EncodeFrame(m);
}

class TlsMemoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = testing::SharedTestPki(); }
  void SetUp() override { ASSERT_NE(pki_, nullptr) << "no test PKI"; }

  TlsOverMemory Connect(MemoryBroker& broker, absl::string_view name) {
    return TlsOverMemory(
        broker.Connect(
            name, nullptr,
            MakeTlsLinkSecurity(testing::TlsServerContextFor(*pki_))),
        TlsSession::ForClient(testing::TlsClientContextFor(*pki_)));
  }

  static const testing::TestPki* pki_;
};

const testing::TestPki* TlsMemoryTest::pki_ = nullptr;

TEST_F(TlsMemoryTest, ClientsTalkToTheBrokerOverTlsOnMemoryLinks) {
  MemoryBroker broker;
  TlsOverMemory subscriber = Connect(broker, "subscriber");
  TlsOverMemory publisher = Connect(broker, "publisher");
  ASSERT_TRUE(subscriber.Handshake(absl::Seconds(10)));
  ASSERT_TRUE(publisher.Handshake(absl::Seconds(10)));

  ASSERT_TRUE(subscriber.Write(HelloFrame("subscriber")).ok());
  absl::StatusOr<wire::ServerMessage> welcome =
      subscriber.Next(absl::Seconds(5));
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  EXPECT_TRUE(welcome->has_welcome());
  wire::ClientMessage subscribe;
  subscribe.mutable_subscribe()->set_op_id(1);
  subscribe.mutable_subscribe()->set_pattern("secure/*");
  ASSERT_TRUE(subscriber.Write(EncodeFrame(subscribe)).ok());
  absl::StatusOr<wire::ServerMessage> ack = subscriber.Next(absl::Seconds(5));
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_TRUE(ack->has_ack());

  ASSERT_TRUE(publisher.Write(HelloFrame("publisher")).ok());
  ASSERT_TRUE(publisher.Next(absl::Seconds(5)).ok());
  for (int i = 0; i < 50; ++i) {
    wire::ClientMessage publish;
    publish.mutable_publish()->set_topic("secure/x");
    publish.mutable_publish()->set_payload(std::to_string(i));
    ASSERT_TRUE(publisher.Write(EncodeFrame(publish)).ok());
  }
  for (int i = 0; i < 50; ++i) {
    absl::StatusOr<wire::ServerMessage> m = subscriber.Next(absl::Seconds(5));
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE(m->has_deliver()) << m->ShortDebugString();
    EXPECT_EQ(m->deliver().payload(), std::to_string(i));
  }
}

TEST_F(TlsMemoryTest, PlainFramesOnATlsMemoryLinkCloseOnlyThatLink) {
  MemoryBroker broker;
  TlsOverMemory healthy = Connect(broker, "healthy");
  ASSERT_TRUE(healthy.Handshake(absl::Seconds(10)));
  ASSERT_TRUE(healthy.Write(HelloFrame("healthy")).ok());
  ASSERT_TRUE(healthy.Next(absl::Seconds(5)).ok());

  std::unique_ptr<MemoryLink> plain =
      broker.Connect("plain", nullptr,
                     MakeTlsLinkSecurity(testing::TlsServerContextFor(*pki_)));
  ASSERT_TRUE(plain->Write(HelloFrame("plain")).ok());
  // The broker closes it without a readable answer.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  absl::Status closed = absl::OkStatus();
  while (closed.ok() && absl::Now() < deadline) {
    absl::StatusOr<std::string> bytes = plain->Read(deadline);
    if (!bytes.ok()) closed = bytes.status();
  }
  EXPECT_TRUE(absl::IsUnavailable(closed)) << closed;

  wire::ClientMessage ping;
  ping.mutable_ping()->set_op_id(7);
  ASSERT_TRUE(healthy.Write(EncodeFrame(ping)).ok());
  absl::StatusOr<wire::ServerMessage> pong = healthy.Next(absl::Seconds(5));
  ASSERT_TRUE(pong.ok()) << pong.status();
}

}  // namespace
}  // namespace manifold
