// The bookkeeping behind a load run: every arrival is checked against the
// numbers the publishers sent, and publishers learn how far the receivers
// got.

#include "client/load/roles.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/nats/parser.h"
#include "gtest/gtest.h"
#include "transports/sockets/unique_fd.h"

namespace manifold::load {
namespace {

std::string Payload(uint64_t seq, uint32_t publisher) {
  std::string payload(16, 'x');
  WriteStamp(Stamp{seq, publisher}, payload.data());
  return payload;
}

TEST(ReceiveTallyTest, BroadcastExpectsEveryMessageAtEverySubscriber) {
  SendStream stream;
  ReceiveTally tally(ReceiveTally::Kind::kBroadcast, 2, {&stream}, 100);
  for (uint64_t seq = 0; seq < 10; ++seq) {
    tally.Record(0, Payload(seq, 0), 1);
    if (seq != 4) tally.Record(1, Payload(seq, 0), 1);  // subscriber 1 misses 4
  }
  tally.Record(1, Payload(2, 0), 2);  // and gets 2 twice
  const ReceiveTally::Totals t = tally.Finish({10});
  EXPECT_EQ(t.expected, 20u);
  EXPECT_EQ(t.received, 20u);
  EXPECT_EQ(t.lost, 1u);
  EXPECT_EQ(t.duplicates, 1u);
  EXPECT_EQ(t.reordered, 0u);
}

TEST(ReceiveTallyTest, BroadcastCountsLateArrivalsAsReordered) {
  SendStream stream;
  ReceiveTally tally(ReceiveTally::Kind::kBroadcast, 1, {&stream}, 100);
  for (uint64_t seq : {0, 2, 1, 3}) tally.Record(0, Payload(seq, 0), 1);
  const ReceiveTally::Totals t = tally.Finish({4});
  EXPECT_EQ(t.lost, 0u);
  EXPECT_EQ(t.reordered, 1u);
}

TEST(ReceiveTallyTest, QueueGroupExpectsEachMessageOnceAcrossMembers) {
  SendStream stream;
  ReceiveTally tally(ReceiveTally::Kind::kQueueGroup, 3, {&stream}, 100);
  // Members see interleaved parts of the stream, each in order.
  for (uint64_t seq = 0; seq < 9; ++seq) {
    tally.Record(static_cast<int>(seq % 3), Payload(seq, 0), 1);
  }
  ReceiveTally::Totals t = tally.Finish({9});
  EXPECT_EQ(t.expected, 9u);
  EXPECT_TRUE(t.lost == 0 && t.duplicates == 0 && t.reordered == 0);
  // A message delivered to two members is a duplicate; one a member gets
  // after a later one is reordered.
  tally.Record(1, Payload(3, 0), 1);
  tally.Record(2, Payload(1, 0), 1);
  t = tally.Finish({10});
  EXPECT_EQ(t.duplicates, 2u);
  EXPECT_EQ(t.reordered, 2u);
  EXPECT_EQ(t.lost, 1u);  // 9 never came
}

TEST(ReceiveTallyTest, PayloadsThatAreNoMessageOfTheRunAreCorrupt) {
  SendStream stream;
  ReceiveTally tally(ReceiveTally::Kind::kBroadcast, 1, {&stream}, 100);
  tally.Record(0, "short", 1);
  tally.Record(0, Payload(0, 5), 1);    // no publisher 5
  tally.Record(0, Payload(500, 0), 1);  // never sent
  EXPECT_EQ(tally.Finish({1}).corrupt, 3u);
}

TEST(ReceiveTallyTest, PublishSharesTheSlowestSubscribersProgress) {
  SendStream stream;
  ReceiveTally tally(ReceiveTally::Kind::kBroadcast, 2, {&stream}, 100);
  for (uint64_t seq = 0; seq < 5; ++seq) tally.Record(0, Payload(seq, 0), 1);
  for (uint64_t seq = 0; seq < 3; ++seq) tally.Record(1, Payload(seq, 0), 1);
  tally.Publish();
  EXPECT_EQ(stream.progress.load(), 3u);
  EXPECT_EQ(tally.received_total(), 8u);
}

// A loopback listener the publisher's link connects to: it greets the link
// with an INFO, as a NATS server does, and reads nothing (the link's output
// is inspected, not sent).
class PublisherTest : public ::testing::Test {
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
    std::thread greeter([this] {
      accepted_.reset(::accept(listener_.get(), nullptr, nullptr));
      const absl::string_view info = "INFO {\"server_id\":\"test\"}\r\n";
      ::send(accepted_.get(), info.data(), info.size(), MSG_NOSIGNAL);
    });
    absl::StatusOr<std::unique_ptr<Link>> link =
        Link::Open(Endpoint::Tcp("127.0.0.1", ntohs(address.sin_port)), *wire_,
                   "bench-pub-0", absl::Seconds(5));
    greeter.join();
    ASSERT_TRUE(link.ok()) << link.status();
    link_ = *std::move(link);
  }

  // The stamps of the messages in the link's output.
  std::vector<Stamp> Sent() {
    std::vector<Stamp> stamps;
    absl::string_view out = link_->output();
    while (!out.empty()) {
      nats::Command command;
      absl::StatusOr<size_t> used =
          nats::ParseCommand(out, nats::ParseLimits(), command);
      if (!used.ok() || *used == 0) break;
      Stamp stamp;
      EXPECT_TRUE(
          ReadStamp(command.payload.data(), command.payload.size(), stamp));
      stamps.push_back(stamp);
      out.remove_prefix(*used);
    }
    return stamps;
  }

  std::unique_ptr<LoadWire> wire_ = LoadWire::For(Protocol::kNats);
  UniqueFd listener_;
  UniqueFd accepted_;
  std::unique_ptr<Link> link_;
};

TEST_F(PublisherTest, SendsNumberedMessagesUpToItsWindow) {
  std::atomic<bool> stop{false};
  SendStream stream;
  Publisher publisher(3, {wire_->PublishTemplate("bench.data", "", 16)},
                      /*limit=*/100, /*window=*/10, stream, stop);
  EXPECT_TRUE(publisher.Pump(*link_, 1));
  EXPECT_EQ(stream.sent.load(), 10u);
  // The window is full: the publisher asks to be woken at half of it.
  EXPECT_FALSE(publisher.Pump(*link_, 2));
  EXPECT_EQ(stream.wake_at.load(), 5u);
  std::vector<Stamp> stamps = Sent();
  ASSERT_EQ(stamps.size(), 10u);
  for (uint64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(stamps[i].seq, i);
    EXPECT_EQ(stamps[i].publisher, 3u);
  }
  // Half arrived: as much again may go.
  stream.progress.store(5);
  EXPECT_TRUE(publisher.Pump(*link_, 3));
  EXPECT_EQ(stream.sent.load(), 15u);
  EXPECT_FALSE(stream.done.load());
}

TEST_F(PublisherTest, StopsAtItsCountOrWhenTold) {
  std::atomic<bool> stop{false};
  SendStream stream;
  Publisher publisher(0, {wire_->PublishTemplate("bench.data", "", 16)},
                      /*limit=*/4, /*window=*/100, stream, stop);
  EXPECT_FALSE(publisher.Pump(*link_, 1));  // all 4 sent
  EXPECT_FALSE(publisher.Pump(*link_, 2));
  EXPECT_TRUE(stream.done.load());
  EXPECT_EQ(stream.sent.load(), 4u);
  EXPECT_EQ(Sent().size(), 4u);

  SendStream stopped;
  Publisher early(0, {wire_->PublishTemplate("bench.data", "", 16)}, 1000, 100,
                  stopped, stop);
  stop.store(true);
  EXPECT_FALSE(early.Pump(*link_, 1));
  EXPECT_TRUE(stopped.done.load());
  EXPECT_EQ(stopped.sent.load(), 0u);
}

}  // namespace
}  // namespace manifold::load
