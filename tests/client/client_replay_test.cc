// The blocking client's replays of durable streams end to end, on each event
// loop, against a manifoldd that keeps streams on disk: a subscription with
// a Replay gets what the stream stored, then the live messages, each with
// its sequence and time; a replay of an unknown stream is refused with the
// broker's words; and after a broker restart, a reconnecting client
// subscribes again after the last message it received, so it neither
// repeats nor loses one.

#include <signal.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/testing/temp_dir.h"
#include "tests/transports/testing/event_loop_params.h"

namespace manifold {
namespace {

using ::manifold::testing::RunningManifoldd;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);

class ClientReplayTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    data_dir_ = testing::MakeShortTempDir();
    StartBroker("127.0.0.1:0");
    absl::StatusOr<std::unique_ptr<Client>> admin =
        Client::Connect(broker_->tcp_address());
    ASSERT_TRUE(admin.ok()) << admin.status();
    wire::StreamConfig config;
    config.set_name("audit");
    config.add_topics("audit/*");
    config.set_storage(wire::STORAGE_FILE);
    absl::StatusOr<Message> added = (*admin)->Request(
        "$sys/streams/add", config.SerializeAsString(), kWait);
    ASSERT_TRUE(added.ok()) << added.status();
  }

  void TearDown() override {
    broker_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(data_dir_, ignored);
  }

  void StartBroker(const std::string& listen) {
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        RunningManifoldd::Start({"--loop", GetParam(), "--listen", listen,
                                 "--data_dir", data_dir_});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  // Publishes with a client of its own; returns once the message is stored.
  void Store(const std::string& topic, const std::string& payload) {
    absl::StatusOr<std::unique_ptr<Client>> publisher =
        Client::Connect(broker_->tcp_address());
    ASSERT_TRUE(publisher.ok()) << publisher.status();
    absl::StatusOr<uint64_t> published =
        (*publisher)->PublishConfirmed(topic, payload);
    ASSERT_TRUE(published.ok()) << published.status();
  }

  // Expects the next message of `sub` to be `payload` with sequence `seq`.
  static void ExpectNext(Client::Subscription& sub, absl::string_view payload,
                         uint64_t seq) {
    absl::StatusOr<Message> m = sub.Next(kWait);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->payload, payload);
    EXPECT_EQ(m->stream_seq, seq);
    EXPECT_LT(absl::Now() - m->stream_time, absl::Minutes(1));
  }

  // A replay of new messages only that has delivered nothing yet still knows
  // where it starts (its Ack says): a broker killed before its first message
  // and what is stored after the restart, before the client is back, come
  // once, and what was stored before the subscription never. With
  // `stored_before` messages already in the stream (0: an empty stream, whose
  // position is 0).
  void ExpectNothingLostAcrossAKillBeforeTheFirstMessage(int stored_before) {
    for (int i = 1; i <= stored_before; ++i) {
      Store("audit/a", absl::StrCat("before", i));
    }
    ClientOptions options;
    options.reconnect.enabled = true;
    // Back only after the restart and the publish below, usually.
    options.reconnect.initial_backoff = absl::Milliseconds(500);
    options.reconnect.max_backoff = absl::Milliseconds(500);
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Connect(broker_->tcp_address(), options);
    ASSERT_TRUE(client.ok()) << client.status();
    SubscribeOptions subscribe;
    subscribe.replay = Replay{.start = Replay::New{}};
    auto sub = (*client)->Subscribe("audit/*", subscribe);
    ASSERT_TRUE(sub.ok()) << sub.status();

    const int port = broker_->tcp().port;
    (void)broker_->Stop(SIGKILL, absl::Seconds(5));
    StartBroker(absl::StrCat("127.0.0.1:", port));
    Store("audit/b", "one");
    ExpectNext(**sub, "one", stored_before + 1);
    EXPECT_EQ((*client)->sessions_lost(), 1u);
    Store("audit/c", "two");
    ExpectNext(**sub, "two", stored_before + 2);
  }

  std::string data_dir_;
  std::unique_ptr<RunningManifoldd> broker_;
};

INSTANTIATE_TEST_SUITE_P(Loops, ClientReplayTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

TEST_P(ClientReplayTest, AReplayGivesTheStoredMessagesThenTheLiveOnes) {
  Store("audit/a", "one");
  Store("audit/b", "two");
  Store("audit/c", "three");
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(broker_->tcp_address());
  ASSERT_TRUE(client.ok()) << client.status();
  SubscribeOptions options;
  options.replay = Replay{.stream = "audit", .start = Replay::Last{2}};
  auto sub = (*client)->Subscribe("audit/*", options);
  ASSERT_TRUE(sub.ok()) << sub.status();
  ExpectNext(**sub, "two", 2);
  ExpectNext(**sub, "three", 3);
  Store("audit/d", "four");
  ExpectNext(**sub, "four", 4);
}

TEST_P(ClientReplayTest, AnUnknownStreamIsRefusedInTheBrokersWords) {
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(broker_->tcp_address());
  ASSERT_TRUE(client.ok()) << client.status();
  SubscribeOptions options;
  options.replay = Replay{.stream = "nope", .start = Replay::FromSeq{1}};
  auto sub = (*client)->Subscribe("audit/*", options);
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(WireCode(sub.status()), wire::UNKNOWN_STREAM);
  EXPECT_THAT(sub.status().message(), HasSubstr("UNKNOWN_STREAM: "));
  EXPECT_THAT(sub.status().message(), HasSubstr("nope"));
  // The connection stays usable.
  EXPECT_TRUE((*client)->Ping().ok());
}

TEST_P(ClientReplayTest, AfterARestartTheReplayGoesOnAfterTheLastMessage) {
  Store("audit/a", "one");
  Store("audit/b", "two");
  ClientOptions options;
  options.reconnect.enabled = true;
  options.reconnect.initial_backoff = absl::Milliseconds(20);
  options.reconnect.max_backoff = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(broker_->tcp_address(), options);
  ASSERT_TRUE(client.ok()) << client.status();
  SubscribeOptions subscribe;
  subscribe.replay = Replay{.stream = "audit", .start = Replay::FromSeq{1}};
  auto sub = (*client)->Subscribe("audit/*", subscribe);
  ASSERT_TRUE(sub.ok()) << sub.status();
  ExpectNext(**sub, "one", 1);
  ExpectNext(**sub, "two", 2);

  const int port = broker_->tcp().port;
  const absl::StatusOr<int> stopped = broker_->Stop(SIGTERM);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  StartBroker(absl::StrCat("127.0.0.1:", port));
  // Stored while the client may still be away: it comes as a replay, or
  // live, but it comes once, after "two", and "one" and "two" do not come
  // again.
  Store("audit/c", "three");
  ExpectNext(**sub, "three", 3);
  EXPECT_EQ((*client)->sessions_lost(), 1u);
  Store("audit/d", "four");
  ExpectNext(**sub, "four", 4);
}

TEST_P(ClientReplayTest,
       ANewMessagesReplayLosesNothingAcrossAKillBeforeItsFirstMessage) {
  ExpectNothingLostAcrossAKillBeforeTheFirstMessage(1);
}

TEST_P(ClientReplayTest,
       ANewMessagesReplayOfAnEmptyStreamLosesNothingAcrossAKill) {
  ExpectNothingLostAcrossAKillBeforeTheFirstMessage(0);
}

}  // namespace
}  // namespace manifold
