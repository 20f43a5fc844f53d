// `manifold bench --protocol bayeux` end to end: the Bayeux long-polling
// client against a real manifoldd --http (/cometd) over loopback. Pub/sub and
// fan-out runs must be clean (every sequence of every lane once and in order
// at every subscriber); a path the server does not serve fails the run with
// the server's answer; options that make no sense for Bayeux are refused.

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/load/bayeux_load.h"
#include "client/load/load_runner.h"
#include "gtest/gtest.h"
#include "tests/testing/running_manifoldd.h"

namespace manifold::load {
namespace {

using ::manifold::testing::RunningManifoldd;

class BayeuxLoadRunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        RunningManifoldd::Start({"--listen", "127.0.0.1:0", "--http",
                                 "127.0.0.1:0", "--log_level", "warning"});
    if (!broker.ok() &&
        absl::StrContains(broker.status().message(), "without the web")) {
      return;  // every test skips
    }
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    // "manifoldd listening on 127.0.0.1:A (tcp), 127.0.0.1:B (http), ..."
    const std::string& line = broker_->listening_line();
    const size_t http = line.find(" (http)");
    ASSERT_NE(http, std::string::npos) << line;
    const size_t from = line.rfind(' ', http - 1) + 1;
    *http_address_ = line.substr(from, http - from);
  }

  static void TearDownTestSuite() {
    delete broker_;
    broker_ = nullptr;
  }

  void SetUp() override {
    if (broker_ == nullptr) {
      GTEST_SKIP() << "manifoldd was built without the web front end";
    }
  }

  static LoadOptions Options(Scenario scenario, int subscribers,
                             uint64_t messages) {
    LoadOptions o;
    o.scenario = scenario;
    o.bayeux_path = "/cometd";
    o.server = *http_address_;
    o.subscribers = subscribers;
    o.messages = messages;
    o.timeout = absl::Seconds(10);
    o.duration = absl::Seconds(60);
    return o;
  }

  static RunningManifoldd* broker_;
  static std::string* http_address_;
};

RunningManifoldd* BayeuxLoadRunnerTest::broker_ = nullptr;
std::string* BayeuxLoadRunnerTest::http_address_ = new std::string;

TEST_F(BayeuxLoadRunnerTest, PubSubDeliversEveryMessageOnceInOrder) {
  // Not a multiple of the lanes or the batch: the last batches are short.
  const LoadOptions o = Options(Scenario::kPubSub, 1, 20'003);
  absl::StatusOr<LoadReport> report = RunLoad(o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->clean())
      << "lost " << report->lost << ", duplicates " << report->duplicates
      << ", reordered " << report->reordered << ", corrupt " << report->corrupt
      << ", errors " << report->errors << " (" << report->first_error << ")";
  EXPECT_FALSE(report->timed_out);
  EXPECT_EQ(report->sent, 20'003u);
  EXPECT_EQ(report->received, 20'003u);
  EXPECT_EQ(report->expected, 20'003u);
  EXPECT_EQ(report->options.window, kBayeuxWindow);
  EXPECT_GT(report->received_per_second, 0);
  EXPECT_GT(report->client_cpu, absl::ZeroDuration());
}

TEST_F(BayeuxLoadRunnerTest, FanOutDeliversEveryMessageToEverySubscriber) {
  LoadOptions o = Options(Scenario::kFanOut, 16, 3'000);
  // A window smaller than the lanes' batches together: the publisher waits
  // for the slowest subscriber and is woken when it catches up.
  o.window = 250;
  absl::StatusOr<LoadReport> report = RunLoad(o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->clean()) << report->first_error;
  EXPECT_FALSE(report->timed_out);
  EXPECT_EQ(report->sent, 3'000u);
  EXPECT_EQ(report->received, 16u * 3'000u);
}

TEST_F(BayeuxLoadRunnerTest, APathTheServerDoesNotServeFailsWithItsAnswer) {
  LoadOptions o = Options(Scenario::kPubSub, 1, 100);
  o.bayeux_path = "/not-cometd";
  absl::StatusOr<LoadReport> report = RunLoad(o);
  ASSERT_FALSE(report.ok());
  EXPECT_TRUE(absl::StrContains(report.status().message(), "bench-sub-0"))
      << report.status();
  EXPECT_TRUE(absl::StrContains(report.status().message(), "HTTP 404"))
      << report.status();
}

TEST(BayeuxLoadOptionsTest, RefusesScenariosAndPublishersBayeuxRunsLack) {
  LoadOptions o;
  o.bayeux_path = "/cometd";
  o.scenario = Scenario::kQueue;
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveOptions(o).status()));
  o.scenario = Scenario::kPubSub;
  o.publishers = 2;
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveOptions(o).status()));
  o.publishers = 1;
  o.bayeux_path = "cometd";
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveOptions(o).status()));
  o.bayeux_path = "/cometd";
  absl::StatusOr<LoadOptions> resolved = ResolveOptions(o);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->window, kBayeuxWindow);
}

}  // namespace
}  // namespace manifold::load
