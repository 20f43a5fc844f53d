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

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "tests/e2e/testing/healthy_pair.h"
#include "tests/e2e/testing/removal_watcher.h"
#include "tests/e2e/testing/running_broker.h"
#include "tests/transports/testing/event_loops.h"
#include "tests/transports/testing/wire_client.h"

namespace manifold::testing {

class AttackedBrokerTest : public ::testing::TestWithParam<std::string> {
 protected:
  // Starts manifoldd on GetParam()'s loop with `flags`, then the watcher and
  // the healthy pair. Use with ASSERT_NO_FATAL_FAILURE.
  void StartBroker(const std::vector<std::string>& flags,
                   RunningBroker::Options options = {}) {
    ASSERT_FALSE(ManifolddPath().empty())
        << "the build did not say where manifoldd is";
    absl::StatusOr<std::unique_ptr<RunningBroker>> broker =
        RunningBroker::Start(GetParam(), flags, options);
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
      const absl::Status stopped = broker_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped;
    }
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

  RunningBroker& broker() { return *broker_; }
  RemovalWatcher& removals() { return *watcher_; }
  HealthyPair& healthy() { return *healthy_; }

 private:
  std::unique_ptr<RunningBroker> broker_;
  std::unique_ptr<RemovalWatcher> watcher_;
  std::unique_ptr<HealthyPair> healthy_;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_E2E_TESTING_ATTACKED_BROKER_TEST_H_
