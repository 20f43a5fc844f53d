// Flow control end to end, on every event loop and over both protocols: a
// publisher bursting at a subscriber that reads slowly is held back, not cut
// off, so every message arrives, in order, while the broker's memory stays
// bounded and an unrelated pair keeps flowing; a subscriber that stops
// reading for good is cut after max_stall and everyone else goes on.

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/load/load_options.h"
#include "client/load/load_runner.h"
#include "client/load/load_wire.h"
#include "gtest/gtest.h"
#include "tests/e2e/testing/attacked_broker_test.h"

namespace manifold {
namespace {

using testing::AttackedBrokerTest;
using testing::WireClient;

// What the broker may add to its resident memory during a burst at the
// default limits: the slow subscriber's output (8 MiB high-water mark, at most
// twice that plus a frame), the publisher's unread input, the allocator's
// slack.
constexpr int64_t kBurstMemoryBoundKib = 48 * 1024;

struct Burst {
  load::Protocol protocol;
  size_t payload_bytes;
  uint64_t messages;
};

std::string Name(const Burst& burst) {
  return absl::StrCat(burst.messages, " x ", burst.payload_bytes, " B over ",
                      load::ProtocolName(burst.protocol));
}

class BackpressureTest : public AttackedBrokerTest {
 protected:
  // Runs `burst` from one publisher at one subscriber that reads 100 MB/s,
  // while sampling the broker's resident memory; returns the report and sets
  // `peak_kib`.
  load::LoadReport RunBurst(const Burst& burst, int64_t& peak_kib) {
    load::LoadOptions options;
    options.scenario = load::Scenario::kPubSub;
    options.protocol = burst.protocol;
    options.server = burst.protocol == load::Protocol::kNats
                         ? broker().nats().ToString()
                         : broker().tcp().ToString();
    options.publishers = 1;
    options.subscribers = 1;
    options.payload_bytes = burst.payload_bytes;
    options.messages = burst.messages;
    options.window = burst.messages;  // a burst: no window
    options.read_bytes_per_second = 100'000'000;
    options.duration = absl::Minutes(2);
    options.timeout = absl::Seconds(15);
    std::atomic<bool> done{false};
    std::atomic<int64_t> peak{0};
    std::thread sampler([&] {
      while (!done.load()) {
        if (absl::StatusOr<int64_t> now = ResidentKib(); now.ok()) {
          peak.store(std::max(peak.load(), *now));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    absl::StatusOr<load::LoadReport> report = load::RunLoad(options);
    done.store(true);
    sampler.join();
    peak_kib = peak.load();
    EXPECT_TRUE(report.ok()) << Name(burst) << ": " << report.status();
    return report.ok() ? *report : load::LoadReport();
  }
};

TEST_P(BackpressureTest, BurstsAtASlowReaderArriveWholeAndInOrder) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({}, {.nats = true}));
  absl::StatusOr<int64_t> before = ResidentKib();
  ASSERT_TRUE(before.ok()) << before.status();
  const std::vector<Burst> bursts = {
      {load::Protocol::kNative, 1024, 60'000},
      {load::Protocol::kNats, 1024, 60'000},
      {load::Protocol::kNative, 64 * 1024, 1'000},
      {load::Protocol::kNats, 64 * 1024, 1'000},
  };
  for (const Burst& burst : bursts) {
    int64_t peak_kib = 0;
    const load::LoadReport report = RunBurst(burst, peak_kib);
    EXPECT_EQ(report.received, burst.messages) << Name(burst);
    EXPECT_EQ(report.lost, 0u) << Name(burst);
    EXPECT_EQ(report.reordered, 0u) << Name(burst);
    EXPECT_TRUE(report.clean()) << Name(burst) << ": " << report.first_error;
    if (!testing::kSanitizedBuild) {
      EXPECT_LT(peak_kib - *before, kBurstMemoryBoundKib)
          << Name(burst) << ": RSS " << *before << " KiB before, peak "
          << peak_kib << " KiB";
    }
    std::printf(
        "[   INFO   ] %s: %.0f msgs/s, broker RSS %lld -> peak %lld KiB\n",
        Name(burst).c_str(), report.received_per_second,
        static_cast<long long>(*before), static_cast<long long>(peak_kib));
  }
  absl::StatusOr<wire::Statistics> stats = Statistics();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->slow_consumer_policy(), "backpressure");
  // Instrumented (sanitizer) builds slow the publishing client as much as
  // the broker, so there it may never outrun the reader and nothing needs
  // holding back; the checks of what arrived hold either way.
  if (!testing::kSanitizedBuild) {
    EXPECT_GT(stats->publisher_stalls(), 0u) << "the publishers were held back";
  }
  EXPECT_EQ(stats->stall_timeouts(), 0u);
  EXPECT_EQ(stats->slow_consumer_disconnects(), 0u);
  EXPECT_EQ(stats->dropped_deliveries(), 0u);
  // The healthy pair (fixture) went on throughout; it is checked again at
  // the end of the test.
  ExpectHealthyTrafficFlows();
}

TEST_P(BackpressureTest, ASubscriberThatStopsReadingIsCutAfterMaxStall) {
  ASSERT_NO_FATAL_FAILURE(
      StartBroker({"--max_outbound_bytes=262144", "--max_stall=1s",
                   "--close_linger=500ms"}));
  absl::StatusOr<WireClient> hog =
      WireClient::Connect(broker().tcp(), /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(hog.ok()) << hog.status();
  ASSERT_TRUE(hog->Hello("hog").ok());
  ASSERT_TRUE(hog->Subscribe("firehose/*").ok());
  WireClient publisher = Connect("firehose-publisher");
  const std::string payload(64 * 1024, 'f');
  // 16 MiB: far more than the hog's limit and the sockets hold. The
  // publisher's writes block while it is stalled, then go on once the hog
  // is cut.
  for (int i = 0; i < 256; ++i) {
    ASSERT_TRUE(publisher.Publish("firehose/a", payload).ok());
  }
  absl::StatusOr<wire::ConnectionRemoved> removed =
      removals().WaitForClient("hog", absl::Seconds(10));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->code(), wire::SLOW_CONSUMER);
  // The timer fires at the deadline or, on a busy machine, a little after.
  EXPECT_TRUE(absl::StartsWith(removed->reason(),
                               "slow consumer: kept 1 connection(s) waiting "
                               "for 1"))
      << removed->reason();
  EXPECT_TRUE(publisher.Ping().ok()) << "the publisher goes on";

  absl::StatusOr<wire::Statistics> stats = Statistics();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->stall_timeouts(), 1u);
  EXPECT_EQ(stats->slow_consumer_disconnects(), 1u);
  EXPECT_GE(stats->publisher_stalls(), 1u);
  EXPECT_EQ(stats->stalled_publishers(), 0u);
  ExpectHealthyTrafficFlows();
}

TEST_P(BackpressureTest, AStalledPublisherDoesNotHoldBackAnUnrelatedPair) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({"--max_stall=10s"}));
  // A subscriber that does not read, and a publisher that fills it and is
  // then held back for as long as the test lasts.
  absl::StatusOr<WireClient> stuck =
      WireClient::Connect(broker().tcp(), /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(stuck.ok()) << stuck.status();
  ASSERT_TRUE(stuck->Hello("stuck").ok());
  ASSERT_TRUE(stuck->Subscribe("stuck/topic").ok());
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    absl::StatusOr<WireClient> publisher = WireClient::Connect(broker().tcp());
    if (!publisher.ok() || !publisher->Hello("flood").ok()) return;
    const std::string payload(64 * 1024, 's');
    // Its writes block once the broker stops reading it; closing the socket
    // at the end releases it.
    for (int i = 0; i < 512 && !stop.load(); ++i) {
      if (!publisher->Publish("stuck/topic", payload).ok()) return;
    }
  });
  // Wait until the broker holds the flood back.
  absl::StatusOr<wire::Statistics> stats;
  for (int i = 0; i < 100; ++i) {
    stats = Statistics();
    if (stats.ok() && stats->stalled_publishers() > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->stalled_publishers(), 1u);
  // The fixture's healthy pair keeps flowing while the flood is stalled.
  ExpectHealthyTrafficFlows();
  ExpectHealthyTrafficFlows();
  stuck->Close();
  stop.store(true);
  flood.join();
}

INSTANTIATE_TEST_SUITE_P(Loops, BackpressureTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
