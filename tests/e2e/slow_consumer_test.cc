// Limits under attack: clients that subscribe and never read, under the
// policies that act at the limit itself. With --slow_consumer_policy=
// disconnect such a client is cut as a slow consumer once its unsent output
// reaches --max_outbound_bytes; with drop it stays and its deliveries are
// dropped and counted. Either way the broker's memory stays bounded by the
// limits, not by the traffic, and other clients keep their full speed. (The
// default, backpressure, is backpressure_test.cc.)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/testing/attacked_broker_test.h"

namespace manifold {
namespace {

using testing::AttackedBrokerTest;
using testing::WireClient;

class SlowConsumerTest : public AttackedBrokerTest {
 protected:
  // A client that subscribes to `pattern` and then never reads; its tiny
  // receive window makes the broker's writes back up at once.
  WireClient Hog(absl::string_view name, absl::string_view pattern) {
    absl::StatusOr<WireClient> hog =
        WireClient::Connect(broker().tcp(), /*receive_buffer_bytes=*/4096);
    EXPECT_TRUE(hog.ok()) << hog.status();
    EXPECT_TRUE(hog->Hello(name).ok());
    EXPECT_TRUE(hog->Subscribe(pattern).ok());
    return *std::move(hog);
  }

  // Sends `count` messages of `size` bytes from one client to another as
  // fast as the receiver takes them (at most `window` in flight, so the
  // receiver never becomes a slow consumer itself) and returns messages per
  // second.
  double Throughput(absl::string_view topic, int count, size_t size,
                    int window = 64) {
    WireClient sender = Connect("fast-sender");
    WireClient receiver = Connect("fast-receiver");
    EXPECT_TRUE(receiver.Subscribe(topic).ok());
    const std::string payload = testing::PatternPayload(size, 7);
    std::atomic<int> received{0};
    const absl::Time start = absl::Now();
    std::thread send([&] {
      for (int i = 0; i < count; ++i) {
        while (i - received.load() >= window) {
          std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
        if (!sender.Publish(topic, payload).ok()) return;
      }
    });
    for (int i = 0; i < count; ++i) {
      absl::StatusOr<wire::ServerMessage> m = receiver.ReceiveSkippingPings();
      if (!m.ok() || m->deliver().payload() != payload) {
        ADD_FAILURE() << "message " << i << ": "
                      << (m.ok() ? m->ShortDebugString()
                                 : m.status().ToString());
        break;
      }
      received.store(i + 1);
    }
    const absl::Duration elapsed = absl::Now() - start;
    received.store(count);  // release the sender if the receiver gave up
    send.join();
    return count / absl::ToDoubleSeconds(elapsed);
  }

  // Measures `topic` 2000 x 4 KiB.
  double Throughput(absl::string_view topic) {
    return Throughput(topic, 2000, 4096);
  }
};

TEST_P(SlowConsumerTest, ClientThatNeverReadsIsCutAtItsOutboundLimit) {
  ASSERT_NO_FATAL_FAILURE(
      StartBroker({"--slow_consumer_policy=disconnect",
                   "--max_outbound_bytes=262144", "--close_linger=500ms"}));
  WireClient hog = Hog("hog", "firehose/*");
  WireClient publisher = Connect("firehose-publisher");
  const std::string payload(64 * 1024, 'f');
  bool cut = false;
  // 64 MiB at most; the hog's limit is 256 KiB.
  for (int i = 0; i < 1024 && !cut; ++i) {
    ASSERT_TRUE(publisher.Publish("firehose/a", payload).ok());
    if (i % 16 == 15) {
      cut = removals().WaitForClient("hog", absl::Milliseconds(1)).ok();
    }
  }
  absl::StatusOr<wire::ConnectionRemoved> removed =
      removals().WaitForClient("hog", absl::Seconds(5));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->code(), wire::SLOW_CONSUMER);
  EXPECT_TRUE(absl::StartsWith(removed->reason(), "slow consumer: "))
      << removed->reason();
  EXPECT_TRUE(
      absl::EndsWith(removed->reason(), " bytes unread; the limit is 262144"))
      << removed->reason();

  absl::StatusOr<wire::Statistics> stats = Statistics();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->slow_consumer_disconnects(), 1u);
  // The publisher was not punished for the hog.
  EXPECT_TRUE(publisher.Ping().ok());
  ExpectHealthyTrafficFlows();

  // The hog's socket is closed: reading it to the end finds what the broker
  // managed to write, then the end (nothing waits on the broker's side).
  absl::StatusOr<std::vector<wire::ServerMessage>> rest =
      hog.ReadUntilClosed(absl::Seconds(10));
  ASSERT_TRUE(rest.ok()) << rest.status();
  for (const wire::ServerMessage& m : *rest) {
    if (m.has_error()) {
      EXPECT_EQ(m.error().code(), wire::SLOW_CONSUMER);
    }
  }
}

TEST_P(SlowConsumerTest, MemoryStaysBoundedByTheLimitsNotTheTraffic) {
  constexpr int kHogs = 8;
  constexpr int64_t kLimitBytes = 1 << 20;
  ASSERT_NO_FATAL_FAILURE(
      StartBroker({"--slow_consumer_policy=drop",
                   absl::StrCat("--max_outbound_bytes=", kLimitBytes)}));
  absl::StatusOr<int64_t> before = ResidentKib();
  ASSERT_TRUE(before.ok()) << before.status();

  std::vector<WireClient> hogs;
  for (int i = 0; i < kHogs; ++i) {
    hogs.push_back(Hog(absl::StrCat("hog-", i), "firehose/*"));
  }
  WireClient publisher = Connect("firehose-publisher");
  // 64 MiB published, 512 MiB of deliveries asked for; none is ever read.
  const std::string payload(64 * 1024, 'f');
  int64_t peak = *before;
  for (int i = 0; i < 1024; ++i) {
    ASSERT_TRUE(publisher.Publish("firehose/a", payload).ok());
    if (i % 32 == 31) {
      absl::StatusOr<int64_t> now = ResidentKib();
      ASSERT_TRUE(now.ok()) << now.status();
      peak = std::max(peak, *now);
    }
  }
  EXPECT_TRUE(publisher.Ping().ok());  // everything published was processed
  absl::StatusOr<int64_t> after = ResidentKib();
  ASSERT_TRUE(after.ok());
  peak = std::max(peak, *after);

  // Each hog may hold its limit plus one frame; allow 16 MiB for the
  // allocator and the broker's other buffers.
  const int64_t bound_kib =
      kHogs * (kLimitBytes + 64 * 1024 + 1024) / 1024 + 16 * 1024;
  if (!testing::kSanitizedBuild) {
    EXPECT_LT(peak - *before, bound_kib)
        << "RSS " << *before << " KiB before, peak " << peak << " KiB";
  }
  std::printf(
      "[   INFO   ] RSS %lld KiB before the hogs, peak %lld KiB, "
      "bound +%lld KiB\n",
      static_cast<long long>(*before), static_cast<long long>(peak),
      static_cast<long long>(bound_kib));

  absl::StatusOr<wire::Statistics> stats = Statistics();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->dropped_deliveries(), 0u);
  EXPECT_EQ(stats->slow_consumer_disconnects(), 0u);
  for (int i = 0; i < kHogs; ++i) {
    // Still connected: the drop policy keeps them.
    EXPECT_FALSE(
        removals()
            .WaitForClient(absl::StrCat("hog-", i), absl::ZeroDuration())
            .ok());
  }
  ExpectHealthyTrafficFlows();
}

TEST_P(SlowConsumerTest, OthersKeepFullSpeedWhileClientsNeverRead) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(
      {"--slow_consumer_policy=drop", "--max_outbound_bytes=1048576"}));
  // Eight hogs on one stream: every message on it is also offered to each of
  // them, and none is ever read. The same sender and receiver speed is
  // measured on that stream and on one without hogs, in turns, so that
  // whatever else the machine does weighs on both alike; the best run of
  // each is compared.
  std::vector<WireClient> hogs;
  for (int i = 0; i < 8; ++i) {
    hogs.push_back(Hog(absl::StrCat("hog-", i), "fast/hogged"));
  }
  double alone = 0;
  double hogged = 0;
  for (int round = 0; round < 3; ++round) {
    alone = std::max(alone, Throughput("fast/alone"));
    hogged = std::max(hogged, Throughput("fast/hogged"));
  }
  std::printf("[   INFO   ] %s: %.0f msg/s alone, %.0f msg/s with 8 hogs\n",
              GetParam().c_str(), alone, hogged);
  // The hogged stream costs the broker more per message (it offers each one
  // to nine subscriptions, and writes to the hogs until their socket buffers
  // fill), so it cannot be as fast; a broker that let the hogs hold it up
  // would be near zero. A third of the speed alone separates the two with
  // room for a busy machine. Sanitizers slow the broker's per-delivery work
  // far more than the clients' I/O, so speed is compared only in builds that
  // run at speed.
  if (!testing::kSanitizedBuild) {
    EXPECT_GT(hogged, alone / 3)
        << alone << " msg/s alone, " << hogged << " msg/s with hogs";
  }
  absl::StatusOr<wire::Statistics> stats = Statistics();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->dropped_deliveries(), 0u);
  EXPECT_EQ(stats->slow_consumer_disconnects(), 0u);
  ExpectHealthyTrafficFlows();
}

INSTANTIATE_TEST_SUITE_P(Loops, SlowConsumerTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
