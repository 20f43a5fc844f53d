// `manifold stream` and `manifold sub` with a replay, end to end: real
// `manifold` processes against a real manifoldd that keeps durable streams.
// A stream is added, filled with `manifold pub` (acknowledged once stored),
// listed, described, replayed, purged and removed; and a stream on disk
// outlives a broker restart. Every test runs once on each event loop this
// build has.

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/program_path.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/testing/temp_dir.h"
#include "tests/transports/testing/event_loop_params.h"

// CMake compiles the path in; Bazel sets $MANIFOLD_CLI.
#ifndef MANIFOLD_CLI_PATH
#define MANIFOLD_CLI_PATH nullptr
#endif

namespace manifold {
namespace {

using ::manifold::testing::ChildProcess;
using ::manifold::testing::Completed;
using ::manifold::testing::ProgramPath;
using ::manifold::testing::RunningManifoldd;
using ::manifold::testing::RunToCompletion;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kProcessTimeout = absl::Seconds(10);
// How `manifold` shows a stored message's time.
constexpr absl::string_view kTime =
    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z";

class CliStreamTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    cli_ = ProgramPath("MANIFOLD_CLI", MANIFOLD_CLI_PATH);
    ASSERT_FALSE(cli_.empty()) << "the build did not say where manifold is";
    data_dir_ = testing::MakeShortTempDir();
    StartBroker("127.0.0.1:0");
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

  // Stops the broker and starts a new one on the same port and data
  // directory.
  void RestartBroker() {
    const int port = broker_->tcp().port;
    const absl::StatusOr<int> stopped = broker_->Stop(SIGTERM);
    ASSERT_TRUE(stopped.ok()) << stopped.status();
    StartBroker(absl::StrCat("127.0.0.1:", port));
  }

  std::vector<std::string> Command(std::vector<std::string> args) {
    std::vector<std::string> argv = {"--server", broker_->tcp_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  Completed Run(std::vector<std::string> args) {
    absl::StatusOr<Completed> result =
        RunToCompletion(cli_, Command(std::move(args)), kProcessTimeout);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : Completed();
  }

  // Runs `args` and expects it to succeed; returns its stdout.
  std::string Ok(std::vector<std::string> args) {
    Completed done = Run(args);
    EXPECT_EQ(done.exit_code, 0)
        << absl::StrJoin(args, " ") << ": " << done.err;
    EXPECT_EQ(done.err, "");
    return done.out;
  }

  std::unique_ptr<ChildProcess> Start(std::vector<std::string> args) {
    absl::StatusOr<std::unique_ptr<ChildProcess>> child =
        ChildProcess::Start(cli_, Command(std::move(args)));
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? *std::move(child) : nullptr;
  }

  // Publishes `payload` on `topic`; `manifold pub` waits for the broker's
  // acknowledgement, which for a stream's topic means it is stored.
  void Publish(const std::string& topic, const std::string& payload) {
    Ok({"pub", topic, payload});
  }

  static void ExpectExit(ChildProcess& child, int code) {
    absl::StatusOr<int> exit = child.Wait(kProcessTimeout);
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, code) << child.Describe() << " stderr: " << child.Stderr();
  }

  std::string cli_;
  std::string data_dir_;
  std::unique_ptr<RunningManifoldd> broker_;
};

INSTANTIATE_TEST_SUITE_P(Loops, CliStreamTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

TEST_P(CliStreamTest, AddListDescribePurgeAndRemoveAStream) {
  const std::string added =
      Ok({"stream", "add", "orders", "--topics", "orders/**,refunds/*",
          "--max-msgs", "100", "--max-bytes", "1MiB", "--max-age", "1d",
          "--storage", "memory"});
  EXPECT_THAT(added, StartsWith("name                orders\n"
                                "storage             memory\n"
                                "topics              orders/**,refunds/*\n"
                                "max_msgs            100\n"
                                "max_msgs_per_topic  none\n"
                                "max_bytes           1048576\n"
                                "max_age             24h\n"
                                "messages            0\n"));

  Publish("orders/1", "one");
  Publish("refunds/1", "two");
  Publish("elsewhere", "not stored");
  Publish("orders/2", "three");

  const std::string table = Ok({"stream", "ls"});
  EXPECT_THAT(table, MatchesRegex("NAME +STORAGE +TOPICS +MESSAGES +BYTES +"
                                  "FIRST_SEQ +LAST_SEQ\n"
                                  "orders +memory +orders/\\*\\*,refunds/\\* +"
                                  "3 +[0-9]+ +1 +3\n"));

  const std::string listed = Ok({"--json", "stream", "ls"});
  EXPECT_THAT(listed, StartsWith("{\"name\":\"orders\",\"storage\":\"memory\","
                                 "\"topics\":[\"orders/**\",\"refunds/*\"],"
                                 "\"max_msgs\":100,\"max_msgs_per_topic\":0,"
                                 "\"max_bytes\":1048576,"
                                 "\"max_age_ms\":86400000,\"messages\":3,"));
  EXPECT_EQ(std::count(listed.begin(), listed.end(), '\n'), 1);

  const std::string info = Ok({"--json", "stream", "info", "orders"});
  EXPECT_THAT(info, HasSubstr("\"messages\":3,"));
  EXPECT_THAT(info, HasSubstr("\"first_seq\":1,\"last_seq\":3,"));
  EXPECT_THAT(
      info, MatchesRegex(absl::StrCat(".*\"first_time\":\"", kTime,
                                      "\",\"last_time\":\"", kTime, "\".*\n")));

  const std::string purged = Ok({"stream", "purge", "orders"});
  EXPECT_THAT(purged, HasSubstr("\nmessages            0\n"));
  EXPECT_THAT(Ok({"--json", "stream", "info", "orders"}),
              HasSubstr("\"messages\":0,"));

  EXPECT_EQ(Ok({"stream", "rm", "orders"}), "removed stream orders\n");
  EXPECT_EQ(Ok({"stream", "ls"}), "no streams\n");
  EXPECT_EQ(Ok({"--json", "stream", "ls"}), "");

  Completed gone = Run({"stream", "info", "orders"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(gone.out, "");
  EXPECT_THAT(gone.err, StartsWith("manifold stream: "));
  EXPECT_THAT(gone.err, HasSubstr("orders"));
  EXPECT_EQ(std::count(gone.err.begin(), gone.err.end(), '\n'), 1);
}

TEST_P(CliStreamTest, SubLastReplaysTheNewestMessages) {
  Ok({"stream", "add", "orders", "--topics", "orders/*", "--storage",
      "memory"});
  Publish("orders/1", "one");
  Publish("orders/2", "two");
  Publish("orders/3", "three");

  Completed sub = Run({"sub", "orders/*", "--last", "2", "--count", "2"});
  EXPECT_EQ(sub.exit_code, 0) << sub.err;
  EXPECT_THAT(sub.out, MatchesRegex(absl::StrCat(
                           "\\[orders/2 seq=2 time=", kTime, "\\] two\n",
                           "\\[orders/3 seq=3 time=", kTime, "\\] three\n")));

  Completed json = Run({"--json", "sub", "orders/*", "--stream", "orders",
                        "--from-seq", "3", "--count", "1"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, MatchesRegex(absl::StrCat(
                            "\\{\"topic\":\"orders/3\",\"seq\":3,\"time\":\"",
                            kTime, "\",\"payload\":\"three\"\\}\n")));
}

TEST_P(CliStreamTest, SubReplaysThenGoesOnWithLiveMessages) {
  Ok({"stream", "add", "ticks", "--topics", "ticks/*", "--storage", "memory"});
  Publish("ticks/a", "stored");
  std::unique_ptr<ChildProcess> sub =
      Start({"sub", "ticks/*", "--since", "1h", "--count", "2"});
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(sub->WaitForOutput("] stored\n", kProcessTimeout))
      << sub->Stderr();
  Publish("ticks/b", "live");
  ExpectExit(*sub, 0);
  EXPECT_THAT(sub->Stdout(),
              MatchesRegex(
                  absl::StrCat("\\[ticks/a seq=1 time=", kTime, "\\] stored\n",
                               "\\[ticks/b seq=2 time=", kTime, "\\] live\n")));
}

TEST_P(CliStreamTest, StreamAloneShowsOnlyNewMessagesWithTheirSequence) {
  Ok({"stream", "add", "ticks", "--topics", "ticks/*", "--storage", "memory"});
  Publish("ticks/a", "old");
  std::unique_ptr<ChildProcess> sub =
      Start({"--json", "sub", "ticks/*", "--stream", "ticks", "--count", "1"});
  ASSERT_NE(sub, nullptr);
  // Ready once the broker counts its subscription.
  for (const absl::Time deadline = absl::Now() + kProcessTimeout;
       absl::Now() < deadline;) {
    if (absl::StrContains(Ok({"--json", "stats"}), "\"subscriptions\":1,"))
      break;
    absl::SleepFor(absl::Milliseconds(20));  // poll interval
  }
  Publish("ticks/b", "new");
  ExpectExit(*sub, 0);
  EXPECT_THAT(sub->Stdout(),
              MatchesRegex(
                  absl::StrCat("\\{\"topic\":\"ticks/b\",\"seq\":2,\"time\":\"",
                               kTime, "\",\"payload\":\"new\"\\}\n")));
}

TEST_P(CliStreamTest, RemovingTheStreamEndsAReplayingSub) {
  Ok({"stream", "add", "ticks", "--topics", "ticks/*", "--storage", "memory"});
  Publish("ticks/a", "one");
  std::unique_ptr<ChildProcess> sub = Start({"sub", "ticks/*", "--last", "1"});
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(sub->WaitForOutput("] one\n", kProcessTimeout)) << sub->Stderr();
  Ok({"stream", "rm", "ticks"});
  ExpectExit(*sub, 1);
  EXPECT_THAT(sub->Stderr(), StartsWith("manifold sub: UNKNOWN_STREAM: "));
}

TEST_P(CliStreamTest, LastPerTopicReplaysTheLatestOfEachTopic) {
  Ok({"stream", "add", "prices", "--topics", "prices/*", "--storage",
      "memory"});
  Publish("prices/a", "1");
  Publish("prices/b", "10");
  Publish("prices/a", "2");
  Completed sub = Run({"sub", "prices/*", "--last-per-topic", "--count", "2"});
  EXPECT_EQ(sub.exit_code, 0) << sub.err;
  const std::vector<std::string> lines =
      absl::StrSplit(sub.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << sub.out;
  EXPECT_THAT(
      lines,
      ::testing::UnorderedElementsAre(
          MatchesRegex(absl::StrCat("\\[prices/a seq=3 time=", kTime, "\\] 2")),
          MatchesRegex(
              absl::StrCat("\\[prices/b seq=2 time=", kTime, "\\] 10"))));
}

TEST_P(CliStreamTest, ALastValueStreamKeepsEachTopicsNewestAcrossARestart) {
  EXPECT_THAT(Ok({"stream", "add", "state", "--topics", "dev/*",
                  "--max-msgs-per-topic", "1"}),
              HasSubstr("max_msgs_per_topic  1\n"));
  Publish("dev/a", "on");
  Publish("dev/b", "idle");
  Publish("dev/a", "off");
  Publish("dev/b", "busy");
  Publish("dev/c", "new");
  RestartBroker();
  const std::string info = Ok({"--json", "stream", "info", "state"});
  EXPECT_THAT(info, HasSubstr("\"max_msgs_per_topic\":1,"));
  EXPECT_THAT(info, HasSubstr("\"messages\":3,"));
  EXPECT_THAT(info, HasSubstr("\"first_seq\":3,\"last_seq\":5,"));
  EXPECT_THAT(info, HasSubstr("\"expired\":0,"));  // counted since start
  // A replay from the start skips what the limit dropped.
  Completed sub = Run({"sub", "dev/*", "--from-seq", "1", "--count", "3"});
  EXPECT_EQ(sub.exit_code, 0) << sub.err;
  EXPECT_THAT(sub.out, MatchesRegex(absl::StrCat(
                           "\\[dev/a seq=3 time=", kTime, "\\] off\n",
                           "\\[dev/b seq=4 time=", kTime, "\\] busy\n",
                           "\\[dev/c seq=5 time=", kTime, "\\] new\n")));
  // The limit cannot change while the stream holds messages.
  Completed change = Run({"stream", "add", "state", "--topics", "dev/*",
                          "--max-msgs-per-topic", "2"});
  EXPECT_EQ(change.exit_code, 1);
  EXPECT_THAT(change.err, HasSubstr("max_msgs_per_topic cannot change"));
}

TEST_P(CliStreamTest, ADurableConsumerGoesOnWhereTheLastRunStopped) {
  Ok({"stream", "add", "jobs", "--topics", "jobs/*"});
  for (const char* job : {"a", "b", "c", "d"}) Publish("jobs/x", job);
  Completed first =
      Run({"sub", "jobs/*", "--consumer", "workers", "--count", "2"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, MatchesRegex(absl::StrCat(
                             "\\[jobs/x seq=1 time=", kTime, "\\] a\n",
                             "\\[jobs/x seq=2 time=", kTime, "\\] b\n")));
  // Kept on disk: after a restart the consumer goes on with c.
  RestartBroker();
  Completed second =
      Run({"--json", "sub", "jobs/*", "--consumer", "workers", "--count", "1"});
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("\"seq\":3"));
  // The first run had 3 sent to it (up to --count in flight) and left
  // without printing it: it comes again, marked.
  EXPECT_THAT(second.out, HasSubstr("\"redelivered\":true"));
  const std::string info = Ok({"--json", "stream", "info", "jobs"});
  EXPECT_THAT(info, HasSubstr("workers"));
  Completed usage = Run({"sub", "jobs/*", "--ack-wait", "5s"});
  EXPECT_EQ(usage.exit_code, 2);

  // Removed on its own: the stream stays, and the name starts over.
  EXPECT_EQ(Ok({"stream", "rm", "jobs", "--consumer", "workers"}),
            "removed consumer workers of stream jobs\n");
  EXPECT_THAT(Ok({"--json", "stream", "info", "jobs"}),
              Not(HasSubstr("workers")));
  Completed again = Run({"stream", "rm", "jobs", "--consumer", "workers"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("has no consumer 'workers'"));
  Completed misplaced = Run({"stream", "info", "jobs", "--consumer", "w"});
  EXPECT_EQ(misplaced.exit_code, 2);
  EXPECT_THAT(misplaced.err, HasSubstr("--consumer applies to 'stream rm'"));
  Completed fresh =
      Run({"sub", "jobs/*", "--consumer", "workers", "--count", "1"});
  EXPECT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_THAT(fresh.out, HasSubstr("seq=1 "));
}

TEST_P(CliStreamTest, AReplayOfAStreamThatDoesNotExistFails) {
  Completed sub = Run({"sub", "x/*", "--stream", "nope", "--last", "1"});
  EXPECT_EQ(sub.exit_code, 1);
  EXPECT_EQ(sub.out, "");
  EXPECT_THAT(sub.err, StartsWith("manifold sub: UNKNOWN_STREAM: "));
  EXPECT_EQ(std::count(sub.err.begin(), sub.err.end(), '\n'), 1);
}

TEST_P(CliStreamTest, ABrokerRefusalOfAStreamIsShownInItsWords) {
  Completed bad = Run({"stream", "add", "no spaces allowed", "--topics", "a/*",
                       "--storage", "memory"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, StartsWith("manifold stream: REJECTED: "));
  EXPECT_EQ(Ok({"stream", "ls"}), "no streams\n");
}

TEST_P(CliStreamTest, BadFlagsAreUsageErrorsBeforeAnythingIsSent) {
  Completed both = Run({"sub", "a/*", "--last", "2", "--from-seq", "1"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_EQ(both.err,
            "manifold sub: give one of --from-seq, --since, --last and "
            "--last-per-topic, not --from-seq and --last\n");
  Completed no_topics = Run({"stream", "add", "orders"});
  EXPECT_EQ(no_topics.exit_code, 2);
  EXPECT_THAT(no_topics.err, HasSubstr("a stream needs --topics"));
  Completed no_verb = Run({"stream", "list"});
  EXPECT_EQ(no_verb.exit_code, 2);
  EXPECT_THAT(no_verb.err, HasSubstr("has no action 'list'"));
}

TEST_P(CliStreamTest, AStreamOnDiskOutlivesABrokerRestart) {
  Ok({"stream", "add", "audit", "--topics", "audit/**", "--storage", "file"});
  Publish("audit/login", "alice");
  Publish("audit/logout", "alice");
  Publish("audit/login", "bob");
  RestartBroker();
  EXPECT_THAT(Ok({"--json", "stream", "info", "audit"}),
              HasSubstr("\"storage\":\"file\""));
  Completed sub = Run({"sub", "audit/**", "--last", "2", "--count", "2"});
  EXPECT_EQ(sub.exit_code, 0) << sub.err;
  EXPECT_THAT(sub.out, MatchesRegex(absl::StrCat(
                           "\\[audit/logout seq=2 time=", kTime, "\\] alice\n",
                           "\\[audit/login seq=3 time=", kTime, "\\] bob\n")));
}

}  // namespace
}  // namespace manifold
