// The durable-stream roles: a durable publisher keeps at most its window of
// publishes waiting for their acks and accounts for every answer (acked,
// refused, unexpected); a replay reader checks stored sequences follow one
// another; a JetStream PubAck is read as nats-server writes it.

#include "client/load/durable_roles.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/nats/parser.h"
#include "gtest/gtest.h"
#include "transports/sockets/unique_fd.h"

namespace manifold::load {
namespace {

TEST(PubAckTest, ReadsTheSequenceOfAnAck) {
  PubAck ack = ReadPubAck(R"({"stream":"BENCH","seq":17})");
  EXPECT_TRUE(ack.ok);
  EXPECT_EQ(ack.seq, 17u);
  ack = ReadPubAck(
      R"({"stream":"BENCH","domain":"hub","seq": 9,"duplicate":true})");
  EXPECT_TRUE(ack.ok);
  EXPECT_EQ(ack.seq, 9u);
}

TEST(PubAckTest, AnErrorAnswerIsARefusalWithItsDescription) {
  const PubAck ack = ReadPubAck(
      R"({"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"BENCH","seq":0})");
  EXPECT_FALSE(ack.ok);
  EXPECT_EQ(ack.error, "maximum messages exceeded");
}

TEST(PubAckTest, AnAnswerWithoutASequenceIsNoAck) {
  PubAck ack = ReadPubAck("hello");
  EXPECT_FALSE(ack.ok);
  EXPECT_NE(ack.error.find("without \"seq\""), std::string::npos) << ack.error;
  ack = ReadPubAck(R"({"stream":"BENCH","seq":"x"})");
  EXPECT_FALSE(ack.ok);
  EXPECT_NE(ack.error.find("no number"), std::string::npos) << ack.error;
}

// A link to a loopback listener that greets it as a NATS server does (for
// NATS links) and reads nothing: the link's output is inspected, not sent.
class RoleTest : public ::testing::TestWithParam<Protocol> {
 protected:
  void SetUp() override {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ASSERT_EQ(
        ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), length),
        0);
    ASSERT_EQ(::listen(listener_.get(), 1), 0);
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address),
                  &length);
    const bool nats = GetParam() == Protocol::kNats;
    std::thread greeter([this, nats] {
      accepted_.reset(::accept(listener_.get(), nullptr, nullptr));
      const absl::string_view info = "INFO {\"server_id\":\"test\"}\r\n";
      if (nats) ::send(accepted_.get(), info.data(), info.size(), MSG_NOSIGNAL);
    });
    absl::StatusOr<std::unique_ptr<Link>> link =
        Link::Open(Endpoint::Tcp("127.0.0.1", ntohs(address.sin_port)), *wire_,
                   "bench-pub-0", absl::Seconds(5));
    greeter.join();
    ASSERT_TRUE(link.ok()) << link.status();
    link_ = *std::move(link);
  }

  bool nats() const { return GetParam() == Protocol::kNats; }

  // The numbers of the publishes in the link's output (NATS: from their
  // reply subjects; native: op id - 1), which it then forgets.
  std::vector<uint64_t> TakeSent() {
    std::vector<uint64_t> numbers;
    absl::string_view out = link_->output();
    while (!out.empty()) {
      if (nats()) {
        nats::Command command;
        absl::StatusOr<size_t> used =
            nats::ParseCommand(out, nats::ParseLimits(), command);
        if (!used.ok() || *used == 0) break;
        EXPECT_EQ(command.subject, "bench.r1.data");
        const absl::string_view prefix = "_INBOX.benchr1.0.";
        EXPECT_TRUE(absl::StartsWith(command.reply_to, prefix))
            << command.reply_to;
        uint64_t n = 0;
        EXPECT_TRUE(
            absl::SimpleAtoi(command.reply_to.substr(std::min(
                                 prefix.size(), command.reply_to.size())),
                             &n));
        numbers.push_back(n);
        out.remove_prefix(*used);
      } else {
        absl::StatusOr<std::optional<FrameView>> frame =
            LocateFrame(out, kDefaultMaxFrameBytes);
        if (!frame.ok() || !frame->has_value()) break;
        wire::ClientMessage m;
        EXPECT_TRUE(m.ParseFromArray((*frame)->body.data(),
                                     static_cast<int>((*frame)->body.size())));
        EXPECT_TRUE(m.publish().ack());
        EXPECT_EQ(m.publish().topic(), "bench/r1/data");
        numbers.push_back(m.publish().op_id() - 1);
        out.remove_prefix((*frame)->size);
      }
    }
    link_->output().clear();
    return numbers;
  }

  // The server's durable ack of publish `n`.
  void Ack(DurablePublisher& publisher, uint64_t n, int64_t now_ns) {
    ServerEvent event;
    std::string subject;
    const std::string payload =
        absl::StrCat(R"({"stream":"BENCH","seq":)", n + 1, "}");
    if (nats()) {
      subject = absl::StrCat("_INBOX.benchr1.0.", n);
      event.kind = ServerEvent::Kind::kMessage;
      event.subject = subject;
      event.payload = payload;
    } else {
      event.kind = ServerEvent::Kind::kAck;
      event.id = n + 1;
    }
    publisher.OnEvent(*link_, event, now_ns);
  }

  // The server refuses publish `n`.
  void Refuse(DurablePublisher& publisher, uint64_t n, int64_t now_ns) {
    ServerEvent event;
    std::string subject;
    const std::string payload =
        R"({"error":{"code":503,"description":"disk full"}})";
    if (nats()) {
      subject = absl::StrCat("_INBOX.benchr1.0.", n);
      event.kind = ServerEvent::Kind::kMessage;
      event.subject = subject;
      event.payload = payload;
    } else {
      event.kind = ServerEvent::Kind::kError;
      event.id = n + 1;
      event.text = "STORAGE_UNAVAILABLE: disk full";
    }
    publisher.OnEvent(*link_, event, now_ns);
  }

  std::unique_ptr<LoadWire> wire_ = LoadWire::For(GetParam());
  UniqueFd listener_;
  UniqueFd accepted_;
  std::unique_ptr<Link> link_;
};

TEST_P(RoleTest, DurablePublisherKeepsAtMostItsWindowWaiting) {
  std::atomic<bool> stop{false};
  RoundTrips counters;
  DurablePublisher publisher(0, "bench.r1.data", "_INBOX.benchr1.0", 16,
                             /*window=*/3, /*limit=*/5, counters, stop);
  publisher.Pump(*link_, 100);
  EXPECT_EQ(TakeSent(), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_FALSE(publisher.Pump(*link_, 110));
  EXPECT_TRUE(TakeSent().empty());
  // Publish 3 takes the place of publish 0, which still waits.
  Ack(publisher, 1, 150);
  publisher.Pump(*link_, 160);
  EXPECT_TRUE(TakeSent().empty());
  Ack(publisher, 0, 200);
  publisher.Pump(*link_, 210);
  EXPECT_EQ(TakeSent(), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(counters.sent.load(), 5u);
  EXPECT_FALSE(counters.done.load());
  Ack(publisher, 2, 300);
  Ack(publisher, 3, 310);
  Ack(publisher, 4, 320);
  EXPECT_TRUE(counters.done.load());
  EXPECT_EQ(publisher.acked(), 5u);
  EXPECT_EQ(publisher.refused(), 0u);
  EXPECT_EQ(publisher.unexpected(), 0u);
  // Each ack is timed from its publish.
  EXPECT_EQ(publisher.samples(),
            (std::vector<int64_t>{50, 100, 200, 100, 110}));
  EXPECT_EQ(publisher.first_send_ns(), 100);
  EXPECT_EQ(publisher.last_ack_ns(), 320);
}

TEST_P(RoleTest, DurablePublisherAccountsForRefusalsAndStrayAnswers) {
  std::atomic<bool> stop{false};
  RoundTrips counters;
  DurablePublisher publisher(0, "bench.r1.data", "_INBOX.benchr1.0", 16,
                             /*window=*/10, /*limit=*/2, counters, stop);
  publisher.Pump(*link_, 1);
  EXPECT_EQ(TakeSent().size(), 2u);
  Refuse(publisher, 0, 2);
  EXPECT_EQ(publisher.refused(), 1u);
  EXPECT_EQ(publisher.refused_in_replies(), nats() ? 1u : 0u);
  EXPECT_NE(publisher.first_refusal().find("disk full"), std::string::npos);
  // A second answer for the same publish, and one for a publish never made.
  Ack(publisher, 0, 3);
  Ack(publisher, 7, 3);
  EXPECT_EQ(publisher.unexpected(), 2u);
  EXPECT_FALSE(counters.done.load());
  Ack(publisher, 1, 4);
  EXPECT_TRUE(counters.done.load());
  EXPECT_EQ(publisher.acked(), 1u);
  EXPECT_EQ(counters.answered.load(), 2u);
  if (nats()) {
    // Answers on other subjects are no acks.
    ServerEvent stray;
    stray.kind = ServerEvent::Kind::kMessage;
    stray.subject = "_INBOX.benchr1.0.1x";
    stray.payload = R"({"stream":"BENCH","seq":2})";
    publisher.OnEvent(*link_, stray, 5);
    stray.subject = "bench.r1.data";
    publisher.OnEvent(*link_, stray, 5);
    EXPECT_EQ(publisher.unexpected(), 4u);
  }
}

TEST_P(RoleTest, DurablePublisherStopsWhenToldAndWaitsForItsAcks) {
  std::atomic<bool> stop{false};
  RoundTrips counters;
  DurablePublisher publisher(0, "bench.r1.data", "_INBOX.benchr1.0", 16,
                             /*window=*/2, /*limit=*/100, counters, stop);
  publisher.Pump(*link_, 1);
  EXPECT_EQ(TakeSent().size(), 2u);
  stop.store(true);
  Ack(publisher, 0, 2);
  publisher.Pump(*link_, 3);
  EXPECT_TRUE(TakeSent().empty());
  EXPECT_FALSE(counters.done.load());  // publish 1 still waits
  Ack(publisher, 1, 4);
  EXPECT_TRUE(counters.done.load());
  EXPECT_EQ(publisher.sent(), 2u);
}

INSTANTIATE_TEST_SUITE_P(BothProtocols, RoleTest,
                         ::testing::Values(Protocol::kNats, Protocol::kNative),
                         [](const auto& info) {
                           return std::string(ProtocolName(info.param));
                         });

// A replay reader over a native link.
class ReplayReaderTest : public RoleTest {};

ServerEvent Stored(uint64_t seq) {
  ServerEvent event;
  event.kind = ServerEvent::Kind::kMessage;
  event.stream_seq = seq;
  event.payload = "0123456789abcdef";
  return event;
}

TEST_P(ReplayReaderTest, SubscribesOnceAndChecksSequencesFollowOneAnother) {
  RoundTrips counters;
  ReplayReader reader("bench.>", "BENCH", 5, /*limit=*/5, counters);
  reader.Pump(*link_, 10);
  reader.Pump(*link_, 11);
  absl::StatusOr<std::optional<FrameView>> frame =
      LocateFrame(link_->output(), kDefaultMaxFrameBytes);
  ASSERT_TRUE(frame.ok() && frame->has_value());
  EXPECT_EQ((*frame)->size, link_->output().size());  // one subscription
  wire::ClientMessage m;
  ASSERT_TRUE(m.ParseFromArray((*frame)->body.data(),
                               static_cast<int>((*frame)->body.size())));
  EXPECT_EQ(m.subscribe().replay().stream(), "BENCH");
  EXPECT_EQ(m.subscribe().replay().from_seq(), 5u);

  for (uint64_t seq : {5, 6, 8, 7}) reader.OnEvent(*link_, Stored(seq), 20);
  reader.OnEvent(*link_, Stored(0), 21);  // a live message: not counted
  EXPECT_EQ(reader.skipped(), 1u);
  EXPECT_EQ(reader.out_of_order(), 1u);
  EXPECT_EQ(reader.live(), 1u);
  EXPECT_FALSE(counters.done.load());
  reader.OnEvent(*link_, Stored(9), 30);
  EXPECT_TRUE(counters.done.load());
  EXPECT_EQ(reader.received(), 5u);
  EXPECT_EQ(reader.received_bytes(), 5u * 16);
  EXPECT_EQ(reader.subscribe_ns(), 10);
  EXPECT_EQ(reader.last_arrival_ns(), 30);
}

TEST_P(ReplayReaderTest, ARefusedReplayEndsTheRun) {
  RoundTrips counters;
  ReplayReader reader("bench.>", "NOPE", 1, 10, counters);
  reader.Pump(*link_, 1);
  ServerEvent error;
  error.kind = ServerEvent::Kind::kError;
  error.id = ReplayReader::kOpId;
  error.text = "UNKNOWN_STREAM: no stream 'NOPE' to replay";
  reader.OnEvent(*link_, error, 2);
  EXPECT_TRUE(reader.refused());
  EXPECT_TRUE(counters.done.load());
  EXPECT_EQ(reader.received(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Native, ReplayReaderTest,
                         ::testing::Values(Protocol::kNative));

}  // namespace
}  // namespace manifold::load
