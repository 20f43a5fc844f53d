// manifoldd with TLS under attack, on every event loop this build has, over
// real sockets: while a healthy TLS client publishes a steady stream of
// messages to itself and checks each one (none lost, in order, each back
// within a bound), attackers flood the port with ClientHellos they abandon,
// dribble handshakes and stall, send plain text and garbage, and finish
// handshakes only to send garbage records. manifoldd must stay up, close
// every attacker, log each closure with its reason, and keep the healthy
// client's traffic flowing.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/transports/testing/event_loop_params.h"
#include "tests/transports/tls/testing/test_pki.h"
#include "tests/transports/tls/testing/tls_socket_client.h"
#include "tests/transports/tls/testing/tls_test_contexts.h"
#include "transports/sockets/socket_io.h"
#include "transports/sockets/unique_fd.h"
#include "transports/tls/tls_context.h"
#include "transports/tls/tls_session.h"

namespace manifold {
namespace {

using testing::RunningManifoldd;
using testing::TlsSocketClient;

// The handshake timeout manifoldd runs with here: short, so stalled
// attackers are closed quickly.
constexpr absl::Duration kHandshakeTimeout = absl::Milliseconds(500);
// The worst round trip a healthy message may take while the broker fends
// off attackers; generous for a loaded two-core machine.
constexpr absl::Duration kMaxHealthyDelay = absl::Seconds(2);
// How long an attacker may wait to be closed.
constexpr absl::Duration kCloseDeadline = absl::Seconds(15);

std::string Frame(const wire::ClientMessage& m) { return EncodeFrame(m); }

std::string HelloFrame(absl::string_view name) {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
  m.mutable_hello()->set_client_name(std::string(name));
  return Frame(m);
}

// Reads plaintext from `client` until one whole frame decodes.
absl::StatusOr<wire::ServerMessage> ReadFrame(TlsSocketClient& client,
                                              FrameDecoder& decoder,
                                              absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  wire::ServerMessage m;
  while (true) {
    absl::StatusOr<bool> got = decoder.Next(m);
    if (!got.ok()) return got.status();
    if (*got) return m;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("no whole frame in time");
    }
    absl::StatusOr<std::string> bytes =
        client.ReadAtLeast(1, deadline - absl::Now());
    if (!bytes.ok()) return bytes.status();
    decoder.Append(*bytes);
  }
}

// A raw TCP connection an attacker controls byte by byte.
class RawPeer {
 public:
  static absl::StatusOr<RawPeer> Connect(const Endpoint& endpoint) {
    absl::StatusOr<UniqueFd> fd = ConnectStream(endpoint);
    if (!fd.ok()) return fd.status();
    return RawPeer(*std::move(fd));
  }

  // Sends all of `bytes`; false if the broker has closed already.
  bool Send(absl::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n =
          ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads what arrives within `timeout` (at most one read). Returns false
  // at end of stream or on a reset.
  bool ReadSome(std::string* into, absl::Duration timeout) {
    pollfd p{fd_.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, absl::ToInt64Milliseconds(timeout));
    if (ready <= 0) return true;
    char buffer[16384];
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
    if (n <= 0) return n < 0 && (errno == EINTR || errno == EAGAIN);
    into->append(buffer, static_cast<size_t>(n));
    return true;
  }

  // Waits until the broker closes the connection; discards what it sends.
  bool WaitForClose(absl::Time deadline) {
    std::string ignored;
    while (absl::Now() < deadline) {
      if (!ReadSome(&ignored, absl::Milliseconds(50))) return true;
      ignored.clear();
    }
    return false;
  }

  // Closes without a word (the socket just goes away).
  void Abandon() { fd_.reset(); }

 private:
  explicit RawPeer(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Runs a client TlsSession's handshake over a RawPeer, so the attacker can
// write raw bytes on the socket afterwards.
bool HandshakeOver(RawPeer& peer, TlsSession& session) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::string ignored;
  while (!session.handshake_done() && absl::Now() < deadline) {
    const std::string out(session.PendingCiphertext());
    session.ConsumeCiphertext(out.size());
    if (!out.empty() && !peer.Send(out)) return false;
    std::string in;
    if (!peer.ReadSome(&in, absl::Milliseconds(100))) return false;
    if (!session.Feed(in, &ignored).ok()) return false;
  }
  // TLS 1.3: the client's Finished is still pending.
  const std::string out(session.PendingCiphertext());
  session.ConsumeCiphertext(out.size());
  return session.handshake_done() && peer.Send(out);
}

// What the healthy client saw.
struct HealthReport {
  int64_t sent = 0;
  int64_t received = 0;
  absl::Duration worst_delay;
  std::string error;  // the first problem, empty if none
};

// The healthy client: subscribes to its own topic and publishes numbered
// messages one after another, each only once the previous one came back,
// until told to stop. Runs on its own thread.
class HealthyClient {
 public:
  HealthyClient(const Endpoint& endpoint,
                std::shared_ptr<const TlsClientContext> context)
      : thread_([this, endpoint, context] { Run(endpoint, context); }) {}
  ~HealthyClient() { Stop(); }

  // Waits until the stream has carried `n` messages (or failed).
  bool WaitForMessages(int64_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return report_.received >= n || !report_.error.empty();
    };
    mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
    return report_.received >= n;
  }

  int64_t received() {
    absl::MutexLock lock(&mu_);
    return report_.received;
  }

  HealthReport Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mu_);
    return report_;
  }

 private:
  void Fail(std::string error) {
    absl::MutexLock lock(&mu_);
    if (report_.error.empty()) report_.error = std::move(error);
  }

  void Run(const Endpoint& endpoint,
           std::shared_ptr<const TlsClientContext> context) {
    absl::StatusOr<TlsSocketClient> client =
        TlsSocketClient::Connect(endpoint, context);
    if (!client.ok()) return Fail(client.status().ToString());
    if (absl::Status s = client->Handshake(); !s.ok()) {
      return Fail(s.ToString());
    }
    FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1 << 20});
    wire::ClientMessage subscribe;
    subscribe.mutable_subscribe()->set_op_id(1);
    subscribe.mutable_subscribe()->set_pattern("health/stream");
    if (!client->Send(HelloFrame("healthy")).ok() ||
        !client->Send(Frame(subscribe)).ok()) {
      return Fail("cannot send the hello and the subscription");
    }
    // The Welcome, then the subscription's Ack.
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<wire::ServerMessage> m =
          ReadFrame(*client, decoder, absl::Seconds(10));
      if (!m.ok()) return Fail(absl::StrCat("setup: ", m.status().ToString()));
      if (m->has_error()) return Fail(m->DebugString());
    }
    for (int64_t seq = 1; !stop_; ++seq) {
      wire::ClientMessage publish;
      publish.mutable_publish()->set_op_id(100 + seq);
      publish.mutable_publish()->set_topic("health/stream");
      publish.mutable_publish()->set_payload(absl::StrCat(seq));
      const absl::Time sent = absl::Now();
      if (absl::Status s = client->Send(Frame(publish)); !s.ok()) {
        return Fail(absl::StrCat("send #", seq, ": ", s.ToString()));
      }
      {
        absl::MutexLock lock(&mu_);
        report_.sent = seq;
      }
      absl::StatusOr<wire::ServerMessage> m =
          NextDelivery(*client, decoder, absl::Seconds(30));
      if (!m.ok()) {
        return Fail(absl::StrCat(
            "message #", seq, " did not come back: ", m.status().ToString()));
      }
      const absl::Duration delay = absl::Now() - sent;
      int64_t got = 0;
      if (!absl::SimpleAtoi(m->deliver().payload(), &got) || got != seq) {
        return Fail(absl::StrCat("expected message #", seq, ", got ",
                                 m->ShortDebugString()));
      }
      {
        absl::MutexLock lock(&mu_);
        report_.received = seq;
        report_.worst_delay = std::max(report_.worst_delay, delay);
      }
      // A steady stream, not a busy loop.
      absl::SleepFor(absl::Milliseconds(2));
    }
  }

  // The next Deliver; answers the broker's keepalive pings on the way.
  static absl::StatusOr<wire::ServerMessage> NextDelivery(
      TlsSocketClient& client, FrameDecoder& decoder, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      absl::StatusOr<wire::ServerMessage> m =
          ReadFrame(client, decoder, deadline - absl::Now());
      if (!m.ok() || m->has_deliver()) return m;
      if (m->has_ping()) {
        wire::ClientMessage pong;
        pong.mutable_pong()->set_op_id(m->ping().op_id());
        if (absl::Status s = client.Send(Frame(pong)); !s.ok()) return s;
        continue;
      }
      return absl::InternalError(
          absl::StrCat("unexpected ", m->ShortDebugString()));
    }
  }

  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  HealthReport report_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class TlsAttackTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    pki_ = testing::SharedTestPki();
    ASSERT_NE(pki_, nullptr);
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        RunningManifoldd::Start({"--loop=" + GetParam(), "--listen=127.0.0.1:0",
                                 "--tls_cert=" + pki_->server_cert,
                                 "--tls_key=" + pki_->server_key,
                                 "--tls_handshake_timeout=" +
                                     absl::FormatDuration(kHandshakeTimeout),
                                 "--log_level=info"});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    context_ = testing::TlsClientContextFor(*pki_);
    ASSERT_NE(context_, nullptr);
    healthy_ = std::make_unique<HealthyClient>(broker_->tcp(), context_);
    // The stream is flowing before the attack starts.
    ASSERT_TRUE(healthy_->WaitForMessages(20, absl::Seconds(10)))
        << healthy_->Stop().error;
  }

  // Lets the stream carry some more messages after the attack, then checks
  // everything the healthy client saw and that manifoldd is still up.
  void ExpectTrafficKeptFlowing() {
    const int64_t after_attack = healthy_->received();
    EXPECT_TRUE(
        healthy_->WaitForMessages(after_attack + 20, absl::Seconds(10)));
    const HealthReport report = healthy_->Stop();
    EXPECT_EQ(report.error, "");
    EXPECT_EQ(report.received, report.sent) << "a message was lost";
    EXPECT_GE(report.received, 40);
    EXPECT_LE(report.worst_delay, kMaxHealthyDelay);
    EXPECT_TRUE(broker_->Alive()) << broker_->Log();
  }

  // Waits until manifoldd's log holds `text` at least `times` times.
  bool LogShows(absl::string_view text, int times = 1) {
    const absl::Time deadline = absl::Now() + kCloseDeadline;
    while (absl::Now() < deadline) {
      const std::string log = broker_->Log();
      const std::string needle(text);
      int count = 0;
      for (size_t at = log.find(needle); at != std::string::npos;
           at = log.find(needle, at + 1)) {
        ++count;
      }
      if (count >= times) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  // The first flight of a real client: its ClientHello record.
  std::string ClientHello() {
    std::unique_ptr<TlsSession> session = TlsSession::ForClient(context_);
    return std::string(session->PendingCiphertext());
  }

  const testing::TestPki* pki_ = nullptr;
  std::unique_ptr<RunningManifoldd> broker_;
  std::shared_ptr<const TlsClientContext> context_;
  std::unique_ptr<HealthyClient> healthy_;
};

TEST_P(TlsAttackTest, HandshakeFloodIsClosedWhileTrafficFlows) {
  constexpr int kAttackers = 240;
  const std::string hello = ClientHello();
  std::vector<RawPeer> stalled;
  for (int i = 0; i < kAttackers; ++i) {
    absl::StatusOr<RawPeer> peer = RawPeer::Connect(broker_->tcp());
    ASSERT_TRUE(peer.ok()) << peer.status();
    peer->Send(hello);
    // Half hang up at once, half keep the socket and never answer.
    if (i % 2 == 0) {
      peer->Abandon();
    } else {
      stalled.push_back(*std::move(peer));
    }
  }
  const absl::Time deadline = absl::Now() + kCloseDeadline;
  int closed = 0;
  for (RawPeer& peer : stalled) closed += peer.WaitForClose(deadline);
  EXPECT_EQ(closed, static_cast<int>(stalled.size()));
  EXPECT_TRUE(LogShows("TLS handshake not done within 500ms",
                       static_cast<int>(stalled.size())));
  ExpectTrafficKeptFlowing();
}

TEST_P(TlsAttackTest, SlowHandshakesAreClosedAtTheTimeout) {
  constexpr int kAttackers = 20;
  const std::string hello = ClientHello();
  std::vector<RawPeer> slow;
  for (int i = 0; i < kAttackers; ++i) {
    absl::StatusOr<RawPeer> peer = RawPeer::Connect(broker_->tcp());
    ASSERT_TRUE(peer.ok()) << peer.status();
    slow.push_back(*std::move(peer));
  }
  // Dribble the hello a byte at a time, slower than the timeout allows.
  const absl::Duration kDribble = kHandshakeTimeout / 5;
  std::vector<bool> open(kAttackers, true);
  for (size_t at = 0; at < 10; ++at) {
    for (int i = 0; i < kAttackers; ++i) {
      if (open[i]) open[i] = slow[i].Send(hello.substr(at, 1));
    }
    if (at == 1) {
      // Well within the timeout: a slow peer is not closed early.
      std::string ignored;
      int still_open = 0;
      for (RawPeer& peer : slow) {
        still_open += peer.ReadSome(&ignored, absl::ZeroDuration());
      }
      EXPECT_EQ(still_open, kAttackers);
    }
    absl::SleepFor(kDribble);
  }
  const absl::Time deadline = absl::Now() + kCloseDeadline;
  int closed = 0;
  for (RawPeer& peer : slow) closed += peer.WaitForClose(deadline);
  EXPECT_EQ(closed, kAttackers);
  EXPECT_TRUE(LogShows("TLS handshake not done within 500ms", kAttackers));
  ExpectTrafficKeptFlowing();
}

TEST_P(TlsAttackTest, PlainTextAndGarbageAreClosedWithTheirReasons) {
  const std::vector<std::string> attacks = {
      "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
      "CONNECT {}\r\nPING\r\n",
      std::string("\x00\x01\x02\x03\xff\xfe", 6),
      // A handshake record that is not a ClientHello.
      std::string("\x16\x03\x01\x00\x08\x0f\x00\x00\x04garb", 13),
      // A handshake record claiming a 64 KiB body.
      std::string("\x16\x03\x01\xff\xff", 5) + std::string(2000, 'A'),
  };
  constexpr int kRounds = 10;
  std::vector<RawPeer> peers;
  for (int round = 0; round < kRounds; ++round) {
    for (const std::string& bytes : attacks) {
      absl::StatusOr<RawPeer> peer = RawPeer::Connect(broker_->tcp());
      ASSERT_TRUE(peer.ok()) << peer.status();
      peer->Send(bytes);
      peers.push_back(*std::move(peer));
    }
  }
  const absl::Time deadline = absl::Now() + kCloseDeadline;
  int closed = 0;
  for (RawPeer& peer : peers) closed += peer.WaitForClose(deadline);
  EXPECT_EQ(closed, static_cast<int>(peers.size()));
  EXPECT_TRUE(LogShows("plain text on a TLS port: the first byte is 0x47 'G'",
                       kRounds));
  EXPECT_TRUE(
      LogShows("plain text on a TLS port: the first byte is 0x00", kRounds));
  EXPECT_TRUE(LogShows("TLS handshake failed: ", kRounds));
  ExpectTrafficKeptFlowing();
}

TEST_P(TlsAttackTest, GarbageRecordsAfterAHandshakeAreClosedAsProtocolErrors) {
  constexpr int kAttackers = 30;
  const std::vector<std::string> records = {
      // Application data that does not authenticate.
      std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, '\x5a'),
      // A record longer than TLS allows.
      std::string("\x17\x03\x03\x48\x01", 5) + std::string(18433, '\x01'),
      // Not a record type at all.
      std::string("\x63\x03\x03\x00\x04junk", 9),
  };
  std::vector<RawPeer> peers;
  for (int i = 0; i < kAttackers; ++i) {
    absl::StatusOr<RawPeer> peer = RawPeer::Connect(broker_->tcp());
    ASSERT_TRUE(peer.ok()) << peer.status();
    std::unique_ptr<TlsSession> session = TlsSession::ForClient(context_);
    ASSERT_TRUE(HandshakeOver(*peer, *session)) << "attacker " << i;
    // Some speak the protocol first; all then send a garbage record.
    if (i % 2 == 0) {
      session->Write(HelloFrame("attacker"));
      peer->Send(session->PendingCiphertext());
    }
    peer->Send(records[i % records.size()]);
    peers.push_back(*std::move(peer));
  }
  const absl::Time deadline = absl::Now() + kCloseDeadline;
  int closed = 0;
  for (RawPeer& peer : peers) closed += peer.WaitForClose(deadline);
  EXPECT_EQ(closed, kAttackers);
  EXPECT_TRUE(LogShows("TLS error: ", kAttackers)) << broker_->Log();
  ExpectTrafficKeptFlowing();
}

INSTANTIATE_TEST_SUITE_P(Loops, TlsAttackTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
