// File: tests/e2e/testing/attacked_broker_test.h
// -----------------------------------------------------------------------------
//
// The fixture of every limits-under-attack test: one real manifoldd per test,
// on the event loop the test is instantiated for, with a RemovalWatcher and a
// HealthyPair attached from the start. At the end of each test the fixture
// checks what every attack must leave intact: the healthy pair lost nothing,
// the watcher's own connection survived, and manifoldd is alive and shuts
// down cleanly (exit status 0 after SIGTERM).

//
// Instantiate each suite over testing::EventLoops(), so a loop added to
// manifoldd is attacked by every test without copying one:
//
//   class SlowConsumerTest : public AttackedBrokerTest {};
//   TEST_P(SlowConsumerTest, IsCut) {
//     ASSERT_NO_FATAL_FAILURE(StartBroker({"--max_outbound_bytes=65536"}));
//     WireClient hog = Connect("hog");
//     ...
//   }
//   INSTANTIATE_TEST_SUITE_P(Loops, SlowConsumerTest,
//                            ::testing::ValuesIn(testing::EventLoops()),
//                            testing::LoopName);

#ifndef MANIFOLD_TESTS_E2E_TESTING_ATTACKED_BROKER_TEST_H_
#define MANIFOLD_TESTS_E2E_TESTING_ATTACKED_BROKER_TEST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/manifold.pb.h"
#include "gtest/gtest.h"
#include "tests/e2e/testing/broker_statistics.h"
#include "tests/e2e/testing/healthy_pair.h"
#include "tests/e2e/testing/removal_watcher.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/transports/testing/event_loop_params.h"
#include "tests/transports/testing/wire_client.h"
#include "transports/process/resident_memory.h"

namespace manifold::testing {

class AttackedBrokerTest : public ::testing::TestWithParam<std::string> {
 protected:
  struct StartOptions {
    // Also listen for NATS clients (--nats=127.0.0.1:0).
    bool nats = false;
  };

  // Starts manifoldd on GetParam()'s loop with --listen=127.0.0.1:0,
  // --log_level=info (so removals are logged with their reason) and `flags`,
  // then the watcher and the healthy pair. Use with ASSERT_NO_FATAL_FAILURE.
  void StartBroker(const std::vector<std::string>& flags,
                   StartOptions options) {
    std::vector<std::string> args = {absl::StrCat("--loop=", GetParam()),
                                     "--listen=127.0.0.1:0",
                                     "--log_level=info"};
    if (options.nats) args.push_back("--nats=127.0.0.1:0");
    args.insert(args.end(), flags.begin(), flags.end());
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        RunningManifoldd::Start(args);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    absl::StatusOr<std::unique_ptr<RemovalWatcher>> watcher =
        RemovalWatcher::Start(broker_->tcp());
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    watcher_ = *std::move(watcher);
    absl::StatusOr<std::unique_ptr<HealthyPair>> pair =
        HealthyPair::Start(broker_->tcp(), "healthy/stream");
    ASSERT_TRUE(pair.ok()) << pair.status();
    healthy_ = *std::move(pair);
    ASSERT_TRUE(healthy_->WaitForProgress(10, absl::Seconds(5)))
        << "the healthy pair does not get going";
  }

  void TearDown() override {
    if (healthy_ != nullptr) {
      const HealthyPair::Report report = healthy_->Stop();
      EXPECT_TRUE(report.ok()) << "healthy pair: " << report.ToString();
      EXPECT_GT(report.received, 0u);
      // A loaded 2-core machine can stall a thread for a while; a broker
      // that stopped serving others stalls them for good.
      EXPECT_LT(report.max_latency, absl::Seconds(3)) << report.ToString();
    }
    if (watcher_ != nullptr) {
      EXPECT_TRUE(watcher_->status().ok())
          << "the watcher lost its connection: " << watcher_->status();
      watcher_->Stop();
    }
    if (broker_ != nullptr) {
      EXPECT_TRUE(broker_->Alive()) << broker_->Log();
      const absl::StatusOr<int> exit_code = broker_->Stop();
      EXPECT_TRUE(exit_code.ok()) << exit_code.status();
      EXPECT_EQ(exit_code.value_or(-1), 0) << broker_->Log();
    }
  }

  void StartBroker(const std::vector<std::string>& flags) {
    StartBroker(flags, StartOptions());
  }

  // A native client that has said Hello as `name`.
  WireClient Connect(absl::string_view name) {
    absl::StatusOr<WireClient> client = WireClient::Connect(broker_->tcp());
    EXPECT_TRUE(client.ok()) << client.status();
    absl::StatusOr<wire::Welcome> welcome = client->Hello(name);
    EXPECT_TRUE(welcome.ok()) << welcome.status();
    return *std::move(client);
  }

  // Asserts that the healthy pair is still flowing now.
  void ExpectHealthyTrafficFlows() {
    EXPECT_TRUE(healthy_->WaitForProgress(20, absl::Seconds(5)))
        << "the healthy pair stalled";
  }

  // The broker's statistics, asked for over a fresh native connection.
  absl::StatusOr<wire::Statistics> Statistics() {
    return RequestStatistics(broker_->tcp());
  }

  // The broker's resident memory, in KiB.
  absl::StatusOr<int64_t> ResidentKib() {
    return ReadResidentKib(broker_->pid());
  }

  RunningManifoldd& broker() { return *broker_; }
  RemovalWatcher& removals() { return *watcher_; }
  HealthyPair& healthy() { return *healthy_; }

 private:
  std::unique_ptr<RunningManifoldd> broker_;
  std::unique_ptr<RemovalWatcher> watcher_;
  std::unique_ptr<HealthyPair> healthy_;
};

// True when this build, and so the manifoldd it made, runs under a
// sanitizer. Their allocators keep freed memory in quarantine and add shadow
// memory, so resident memory says little about the broker's own use, and
// they slow some code far more than other code, so relative speeds say
// little either: tests report both but do not judge them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_E2E_TESTING_ATTACKED_BROKER_TEST_H_
