// The `manifold` command-line tool end to end: real `manifold` processes
// against a real manifoldd, over TCP and a Unix socket. Background commands
// (sub, serve, events) are known to be ready when the broker announces their
// subscription or service on $sys, which the test watches with the client
// library. Every test runs once on each event loop this build has (manifoldd
// --loop epoll, io_uring, uv).

#include <signal.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/errors.h"
#include "client/internal/await_mutex.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/program_path.h"
#include "tests/testing/running_manifoldd.h"
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
using ::testing::StartsWith;

constexpr absl::Duration kProcessTimeout = absl::Seconds(10);

class CliTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    cli_ = ProgramPath("MANIFOLD_CLI", MANIFOLD_CLI_PATH);
    ASSERT_FALSE(cli_.empty()) << "the build did not say where manifold is";
    RunningManifoldd::Options broker_options;
    broker_options.unix_socket = true;
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        RunningManifoldd::Start(
            {"--loop", GetParam(), "--listen", "127.0.0.1:0"}, broker_options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    ClientOptions options;
    options.name = "test-watcher";
    absl::StatusOr<std::unique_ptr<Client>> watcher =
        Client::Connect(broker_->tcp_address(), options);
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    watcher_ = *std::move(watcher);
    auto announcements = watcher_->Subscribe("$sys/*/added");
    ASSERT_TRUE(announcements.ok()) << announcements.status();
    announcements_ = *std::move(announcements);
  }

  // The arguments for `manifold --server <broker> args...`.
  std::vector<std::string> Command(std::vector<std::string> args,
                                   bool over_unix = false) {
    const std::string server =
        over_unix ? broker_->unix_address() : broker_->tcp_address();
    std::vector<std::string> argv = {"--server", server};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  Completed Run(std::vector<std::string> args, bool over_unix = false,
                const std::string& input = "") {
    ChildProcess::Options options;
    options.input = input;
    absl::StatusOr<Completed> result = RunToCompletion(
        cli_, Command(std::move(args), over_unix), kProcessTimeout, options);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : Completed();
  }

  std::unique_ptr<ChildProcess> Start(std::vector<std::string> args,
                                      bool over_unix = false) {
    absl::StatusOr<std::unique_ptr<ChildProcess>> child =
        ChildProcess::Start(cli_, Command(std::move(args), over_unix));
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? *std::move(child) : nullptr;
  }

  // Waits for the broker to announce a subscription to `pattern` (or, with
  // service = true, a service on that topic).
  void WaitUntilAnnounced(absl::string_view what, bool service = false) {
    const absl::Time deadline = absl::Now() + kProcessTimeout;
    while (absl::Now() < deadline) {
      absl::StatusOr<Message> m = announcements_->Next(deadline - absl::Now());
      if (!m.ok()) break;
      wire::BrokerEvent event;
      ASSERT_TRUE(event.ParseFromString(m->payload));
      if (!service && event.subscription_added().pattern() == what) return;
      if (service && event.service_added().topic() == what) return;
    }
    FAIL() << "the broker never announced " << what;
  }

  // Expects `child` to exit with `code` within the process timeout.
  static void ExpectExit(ChildProcess& child, int code) {
    absl::StatusOr<int> exit = child.Wait(kProcessTimeout);
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, code) << child.Describe() << " stderr: " << child.Stderr();
  }

  std::string cli_;
  std::unique_ptr<RunningManifoldd> broker_;
  std::unique_ptr<Client> watcher_;
  std::unique_ptr<Client::Subscription> announcements_;
};

INSTANTIATE_TEST_SUITE_P(Loops, CliTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

// --- pub and sub -------------------------------------------------------------

TEST_P(CliTest, PubReachesSubWhichStopsAfterCount) {
  std::unique_ptr<ChildProcess> sub = Start({"sub", "room/*", "--count", "2"});
  WaitUntilAnnounced("room/*");

  Completed pub = Run({"pub", "room/1", "hello"});
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_EQ(pub.out, "published 5 bytes to room/1 (1 subscription)\n");
  EXPECT_EQ(pub.err, "");
  EXPECT_EQ(Run({"pub", "hall/1", "not for sub"}).exit_code, 0);
  EXPECT_EQ(Run({"pub", "room/2", "line\nbreak"}).exit_code, 0);

  ExpectExit(*sub, 0);
  EXPECT_EQ(sub->Stdout(), "[room/1] hello\n[room/2] line\\nbreak\n");
  EXPECT_EQ(sub->Stderr(), "");
}

TEST_P(CliTest, JsonIsOneObjectPerLine) {
  std::unique_ptr<ChildProcess> sub =
      Start({"--json", "sub", "room/**", "--count", "2"});
  WaitUntilAnnounced("room/**");

  Completed pub = Run({"--json", "pub", "room/a/b", "hi"});
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_EQ(pub.out, "{\"topic\":\"room/a/b\",\"bytes\":2,\"delivered\":1}\n");
  // Bytes that are not UTF-8 travel as base64.
  EXPECT_EQ(Run({"pub", "room/bin", "\xff\xfe"}).exit_code, 0);

  ExpectExit(*sub, 0);
  EXPECT_EQ(sub->Stdout(),
            "{\"topic\":\"room/a/b\",\"payload\":\"hi\"}\n"
            "{\"topic\":\"room/bin\",\"payload_base64\":\"//4=\"}\n");
}

TEST_P(CliTest, PubReadsTheMessageFromStdinWhenItIsADash) {
  std::unique_ptr<ChildProcess> sub = Start({"sub", "t", "--count", "1"});
  WaitUntilAnnounced("t");
  EXPECT_EQ(Run({"pub", "t", "-"}, false, "from stdin").exit_code, 0);
  ExpectExit(*sub, 0);
  EXPECT_EQ(sub->Stdout(), "[t] from stdin\n");
}

TEST_P(CliTest, SubscribersInAQueueGroupShareTheMessages) {
  std::unique_ptr<ChildProcess> a =
      Start({"sub", "jobs/*", "--queue", "workers", "--count", "1"});
  WaitUntilAnnounced("jobs/*");
  std::unique_ptr<ChildProcess> b =
      Start({"sub", "jobs/*", "--queue", "workers", "--count", "1"});
  WaitUntilAnnounced("jobs/*");
  EXPECT_EQ(Run({"pub", "jobs/1", "one"}).exit_code, 0);
  EXPECT_EQ(Run({"pub", "jobs/2", "two"}).exit_code, 0);
  ExpectExit(*a, 0);
  ExpectExit(*b, 0);
  EXPECT_THAT(
      std::vector<std::string>({a->Stdout(), b->Stdout()}),
      ::testing::UnorderedElementsAre("[jobs/1] one\n", "[jobs/2] two\n"));
}

TEST_P(CliTest, SubWorksOverAUnixSocketAndStopsCleanlyOnSigterm) {
  std::unique_ptr<ChildProcess> sub = Start({"sub", "u/*"}, /*over_unix=*/true);
  WaitUntilAnnounced("u/*");
  EXPECT_EQ(Run({"pub", "u/1", "via unix"}, /*over_unix=*/true).exit_code, 0);
  ASSERT_TRUE(sub->WaitForOutput("[u/1] via unix\n", kProcessTimeout));
  ASSERT_TRUE(sub->Signal(SIGTERM).ok());
  ExpectExit(*sub, 0);
  EXPECT_EQ(sub->Stderr(), "");
}

TEST_P(CliTest, SubSurvivesABrokerRestartBySubscribingAgain) {
  std::unique_ptr<ChildProcess> sub = Start({"sub", "r/*"});
  WaitUntilAnnounced("r/*");
  EXPECT_EQ(Run({"pub", "r/1", "before"}).exit_code, 0);
  ASSERT_TRUE(sub->WaitForOutput("[r/1] before\n", kProcessTimeout));

  const int port = broker_->tcp().port;
  const absl::StatusOr<int> stopped = broker_->Stop(SIGTERM);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> restarted =
      RunningManifoldd::Start(
          {"--loop", GetParam(), "--listen", absl::StrCat("127.0.0.1:", port)});
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  broker_ = *std::move(restarted);
  // The subscriber comes back on its own schedule: publish until it shows.
  bool received = false;
  const absl::Time deadline = absl::Now() + kProcessTimeout;
  while (!received && absl::Now() < deadline) {
    Run({"pub", "r/2", "after"});
    received = sub->WaitForOutput("[r/1] before\n[r/2] after\n",
                                  absl::Milliseconds(200));
  }
  EXPECT_TRUE(received) << sub->Stdout() << sub->Stderr();
  // The notice comes from the client's callback thread, in its own time.
  const absl::Time told_by = absl::Now() + kProcessTimeout;
  while (!absl::StrContains(sub->Stderr(), "subscribing and serving again") &&
         absl::Now() < told_by) {
    absl::SleepFor(absl::Milliseconds(10));  // poll interval
  }
  EXPECT_THAT(sub->Stderr(), HasSubstr("subscribing and serving again"));
  ASSERT_TRUE(sub->Signal(SIGTERM).ok());
  ExpectExit(*sub, 0);
}

// --- req and serve -----------------------------------------------------------

TEST_P(CliTest, ServeAnswersWithAFixedReply) {
  std::unique_ptr<ChildProcess> serve =
      Start({"serve", "time/now", "--reply", "noon", "--count", "1"}, true);
  WaitUntilAnnounced("time/now", /*service=*/true);
  Completed req = Run({"req", "time/now", "what time?"}, true);
  EXPECT_EQ(req.exit_code, 0) << req.err;
  EXPECT_EQ(req.out, "noon\n");
  ExpectExit(*serve, 0);
  EXPECT_THAT(serve->Stdout(),
              MatchesRegex("\\[time/now\\] request [0-9]+ from session [0-9]+: "
                           "what time\\? -> noon\n"));
}

TEST_P(CliTest, ServeEchoesByDefaultAndReqPrintsJson) {
  std::unique_ptr<ChildProcess> serve =
      Start({"--json", "serve", "echo", "--count", "1"});
  WaitUntilAnnounced("echo", /*service=*/true);
  Completed req = Run({"--json", "req", "echo", "hi"});
  EXPECT_EQ(req.exit_code, 0) << req.err;
  EXPECT_EQ(req.out, "{\"topic\":\"echo\",\"payload\":\"hi\"}\n");
  ExpectExit(*serve, 0);
  EXPECT_THAT(serve->Stdout(),
              MatchesRegex("\\{\"topic\":\"echo\",\"request_id\":[0-9]+,"
                           "\"requester_session_id\":[0-9]+,\"payload\":\"hi\","
                           "\"reply\":\"hi\"\\}\n"));
}

TEST_P(CliTest, ServeExecAnswersWithTheCommandsOutput) {
  std::unique_ptr<ChildProcess> serve =
      Start({"serve", "upper", "--exec", "tr a-z A-Z", "--count", "1"});
  WaitUntilAnnounced("upper", /*service=*/true);
  Completed req = Run({"req", "upper", "hello"});
  EXPECT_EQ(req.exit_code, 0) << req.err;
  EXPECT_EQ(req.out, "HELLO\n");
  ExpectExit(*serve, 0);
}

TEST_P(CliTest, AFailingExecCommandRejectsTheRequest) {
  std::unique_ptr<ChildProcess> serve = Start(
      {"serve", "fragile", "--exec", "echo oops >&2; exit 3", "--count", "1"});
  WaitUntilAnnounced("fragile", /*service=*/true);
  Completed req = Run({"req", "fragile", "x"});
  EXPECT_EQ(req.exit_code, 1);
  EXPECT_EQ(req.out, "");
  EXPECT_EQ(req.err,
            "manifold req: REJECTED: the command exited with status 3: oops\n");
  ExpectExit(*serve, 0);
}

TEST_P(CliTest, ReqWithoutAServerFailsWithOneLine) {
  Completed req = Run({"req", "nobody", "x"});
  EXPECT_EQ(req.exit_code, 1);
  EXPECT_EQ(req.out, "");
  EXPECT_EQ(req.err, "manifold req: NO_SERVER: no server for topic 'nobody'\n");
}

TEST_P(CliTest, ReqTimesOutWhenTheServerSitsOnTheRequest) {
  auto service = watcher_->Serve("slow");  // pulled, never answered
  ASSERT_TRUE(service.ok());
  const absl::Time start = absl::Now();
  Completed req = Run({"req", "slow", "x", "--timeout", "300ms"});
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(req.exit_code, 1);
  EXPECT_THAT(req.err, StartsWith("manifold req: TIMED_OUT: "));
  EXPECT_EQ(std::count(req.err.begin(), req.err.end(), '\n'), 1);
}

TEST_P(CliTest, AServerProcessKilledMidRequestMeansServerGone) {
  std::unique_ptr<ChildProcess> serve =
      Start({"serve", "svc", "--exec", "sleep 2"});
  WaitUntilAnnounced("svc", /*service=*/true);
  absl::StatusOr<Message> reply;
  std::thread ask(
      [&] { reply = watcher_->Request("svc", "x", absl::Seconds(10)); });
  // Wait until the broker has routed the request, then kill the server.
  bool in_flight = false;
  for (const absl::Time deadline = absl::Now() + kProcessTimeout;
       !in_flight && absl::Now() < deadline;) {
    absl::StatusOr<Message> stats =
        watcher_->Request("$sys/stats", "", absl::Seconds(5));
    wire::Statistics parsed;
    in_flight = stats.ok() && parsed.ParseFromString(stats->payload) &&
                parsed.requests_in_flight() > 0;
  }
  ASSERT_TRUE(in_flight) << "the request never reached the broker";
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(serve->Signal(SIGKILL).ok());
  ask.join();
  EXPECT_EQ(RequestStatusOf(reply.status()), wire::SERVER_GONE)
      << reply.status();
  EXPECT_LT(absl::Now() - killed, absl::Seconds(1));
}

TEST_P(CliTest, ARequesterProcessKilledMidRequestDoesNotDisturbTheServer) {
  client_internal::AwaitMutex mu;
  std::vector<absl::Status> errors;
  ClientOptions options;
  options.on_error = [&](const absl::Status& s) {
    client_internal::AwaitMutexLock lock(&mu);
    errors.push_back(s);
  };
  absl::StatusOr<std::unique_ptr<Client>> server =
      Client::Connect(broker_->tcp_address(), options);
  ASSERT_TRUE(server.ok());
  auto service = (*server)->Serve("svc");
  auto removals = (*server)->Subscribe("$sys/connection/removed");
  ASSERT_TRUE(service.ok() && removals.ok());

  std::unique_ptr<ChildProcess> req =
      Start({"req", "svc", "x", "--timeout", "10s"});
  absl::StatusOr<IncomingRequest> request = (*service)->Next(kProcessTimeout);
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_TRUE(req->Signal(SIGKILL).ok());
  ExpectExit(*req, 128 + SIGKILL);
  // Once the broker has noticed, the answer has nowhere to go.
  ASSERT_TRUE((*removals)->Next(kProcessTimeout).ok());
  ASSERT_TRUE((*server)->Respond(request->id, "late").ok());
  ASSERT_TRUE((*server)->Ping().ok());

  // The server goes on serving.
  std::unique_ptr<ChildProcess> next = Start({"req", "svc", "y"});
  absl::StatusOr<IncomingRequest> second = (*service)->Next(kProcessTimeout);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE((*server)->Respond(second->id, "fine").ok());
  ExpectExit(*next, 0);
  EXPECT_EQ(next->Stdout(), "fine\n");

  client_internal::AwaitMutexLock lock(&mu);
  auto reported = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return !errors.empty();
  };
  mu.AwaitWithTimeout(reported, absl::Seconds(2));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(WireCode(errors[0]), wire::UNKNOWN_REQUEST);
}

// --- stats and events --------------------------------------------------------

TEST_P(CliTest, StatsPrintsTheBrokersCounters) {
  Completed human = Run({"stats"});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  const std::vector<std::string> lines =
      absl::StrSplit(human.out, '\n', absl::SkipEmpty());
  // One per counter, and one by protocol (no TLS failures line: no TLS).
  EXPECT_EQ(lines.size(), 38u);
  // The watcher and the stats command itself.
  EXPECT_THAT(human.out, StartsWith("connections                2\n"));
  // The flow-control policy in force, and its counters.
  EXPECT_THAT(human.out,
              HasSubstr("\nslow_consumer_policy       backpressure\n"));
  EXPECT_THAT(human.out, HasSubstr("\npublisher_stalls           0\n"));

  Completed json = Run({"--json", "stats"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, StartsWith("{\"connections\":2,\"subscriptions\":1,"));
  EXPECT_EQ(std::count(json.out.begin(), json.out.end(), '\n'), 1);
}

TEST_P(CliTest, EventsShowsWhatHappensOnTheBroker) {
  std::unique_ptr<ChildProcess> events =
      Start({"--json", "events", "--count", "2"});
  WaitUntilAnnounced("$sys/**");
  ClientOptions options;
  options.name = "visitor";
  absl::StatusOr<std::unique_ptr<Client>> visitor =
      Client::Connect(broker_->tcp_address(), options);
  ASSERT_TRUE(visitor.ok());
  ExpectExit(*events, 0);
  const std::vector<std::string> lines =
      absl::StrSplit(events->Stdout(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << events->Stdout();
  // Its own subscription, then the visitor.
  EXPECT_THAT(lines[0], StartsWith("{\"topic\":\"$sys/subscription/added\","
                                   "\"event\":\"subscription_added\""));
  EXPECT_THAT(lines[1], StartsWith("{\"topic\":\"$sys/connection/added\","
                                   "\"event\":\"connection_added\","));
  EXPECT_THAT(lines[1], HasSubstr("\"client_name\":\"visitor\""));
  EXPECT_THAT(lines[1], HasSubstr("\"protocol\":\"native\""));
}

TEST_P(CliTest, EventsAreOneReadableLineEachWithoutJson) {
  std::unique_ptr<ChildProcess> events = Start({"events", "--count", "2"});
  WaitUntilAnnounced("$sys/**");
  ClientOptions options;
  options.name = "visitor";
  absl::StatusOr<std::unique_ptr<Client>> visitor =
      Client::Connect(broker_->tcp_address(), options);
  ASSERT_TRUE(visitor.ok());
  ExpectExit(*events, 0);
  const std::vector<std::string> lines =
      absl::StrSplit(events->Stdout(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[1],
              MatchesRegex("\\$sys/connection/added connection_added "
                           "session_id=[0-9]+ client_name=\"visitor\" "
                           "peer=\"127.0.0.1:[0-9]+\" protocol=\"native\" "
                           "resumed=false user=\"\""));
}

// --- errors ------------------------------------------------------------------

struct ErrorCase {
  std::vector<std::string> args;
  int exit_code;
  std::string stderr_text;
};

TEST_P(CliTest, ErrorsAreOneLineOnStderrWithANonZeroExit) {
  const std::vector<ErrorCase> cases = {
      {{"pub"},
       2,
       "manifold pub: expects TOPIC MESSAGE (usage: manifold pub TOPIC "
       "MESSAGE)\n"},
      {{"frobnicate"},
       2,
       "manifold: unknown command 'frobnicate' (try 'manifold help')\n"},
      {{"--nope", "stats"},
       2,
       "manifold: unknown flag '--nope' (try 'manifold help')\n"},
      {{"pub", "a", "b", "--count", "3"},
       2,
       "manifold pub: --count does not apply to 'pub' (usage: manifold pub "
       "TOPIC MESSAGE)\n"},
      {{"serve", "t", "--reply", "x", "--exec", "y"},
       2,
       "manifold serve: give --reply or --exec, not both\n"},
      {{"req", "t", "x", "--timeout", "0s"},
       2,
       "manifold req: --timeout must be positive, e.g. 500ms or 2s\n"},
      {{"pub", "$sys/x", "y"},
       1,
       "manifold pub: RESERVED_TOPIC: topic '$sys/x' is reserved for the "
       "broker\n"},
      {{"sub", "a//b"},
       1,
       "manifold sub: INVALID_PATTERN: invalid pattern 'a//b': segment 2 is "
       "empty\n"},
      {{"req", "a/*", "x"},
       1,
       "manifold req: INVALID_TOPIC: invalid topic 'a/*': segment 2 '*' is a "
       "wildcard; only a literal topic is allowed here\n"},
  };
  for (const ErrorCase& c : cases) {
    Completed r = Run(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << absl::StrJoin(c.args, " ");
    EXPECT_EQ(r.err, c.stderr_text) << absl::StrJoin(c.args, " ");
    EXPECT_EQ(r.out, "") << absl::StrJoin(c.args, " ");
  }
}

TEST_P(CliTest, NoBrokerIsOneLineAndExitStatusOne) {
  const std::string address = broker_->tcp_address();
  const absl::StatusOr<int> stopped = broker_->Stop(SIGTERM);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  absl::StatusOr<Completed> r =
      RunToCompletion(cli_, {"--server", address, "stats"}, kProcessTimeout);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_EQ(r->err, absl::StrCat("manifold stats: cannot connect to ", address,
                                 ": Connection refused\n"));
}

TEST_P(CliTest, HelpListsEveryCommand) {
  absl::StatusOr<Completed> r =
      RunToCompletion(cli_, {"help"}, kProcessTimeout);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  for (const char* command :
       {"pub", "sub", "req", "serve", "stats", "events"}) {
    EXPECT_THAT(r->out, HasSubstr(absl::StrCat("\n  ", command, " ")));
  }
  // --help says the same, and nothing else.
  absl::StatusOr<Completed> flag =
      RunToCompletion(cli_, {"--help"}, kProcessTimeout);
  ASSERT_TRUE(flag.ok());
  EXPECT_EQ(flag->exit_code, 0);
  EXPECT_EQ(flag->out, r->out);
}

}  // namespace
}  // namespace manifold
