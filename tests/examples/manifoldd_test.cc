// manifoldd as an operator runs it: a real process on free loopback ports,
// talked to with raw native (and NATS) frames, stopped with signals by PID.
// Every case that runs a broker runs once on each event loop this build has
// (--loop epoll, io_uring, uv).

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/transcript/transcript_runner.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/testing/temp_dir.h"
#include "tests/transports/testing/event_loop_params.h"
#include "tests/transports/testing/wire_client.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

using testing::Completed;
using testing::ManifolddPath;
using testing::RunningManifoldd;
using testing::WireClient;

// Reads from a blocking socket until `text` has arrived; returns everything
// read, or fails after 5 s.
absl::StatusOr<std::string> ReadUntil(int fd, absl::string_view text) {
  std::string read;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!absl::StrContains(read, text)) {
    pollfd p{fd, POLLIN, 0};
    const int64_t wait = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait <= 0 || ::poll(&p, 1, static_cast<int>(wait)) <= 0) {
      return absl::DeadlineExceededError(absl::StrCat("got only: ", read));
    }
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n <= 0) return absl::UnavailableError(absl::StrCat("closed: ", read));
    read.append(chunk, static_cast<size_t>(n));
  }
  return read;
}

absl::Status WriteAll(int fd, absl::string_view bytes) {
  if (::write(fd, bytes.data(), bytes.size()) !=
      static_cast<ssize_t>(bytes.size())) {
    return absl::InternalError("short write");
  }
  return absl::OkStatus();
}

class ManifolddTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(ManifolddPath().empty())
        << "the build did not say where manifoldd is";
  }
  ~ManifolddTest() override { std::filesystem::remove_all(directory_); }

  const std::string directory_ = testing::MakeShortTempDir();
};

// The same, once per event loop: every broker it starts runs on that loop.
class ManifolddLoopTest : public ManifolddTest,
                          public ::testing::WithParamInterface<std::string> {
 protected:
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> StartBroker(
      std::vector<std::string> args,
      RunningManifoldd::Options options = RunningManifoldd::Options()) {
    args.insert(args.begin(), "--loop=" + GetParam());
    return RunningManifoldd::Start(args, options);
  }
  // What the "listening on" line ends with.
  std::string LoopSuffix() const { return ", loop " + GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Loops, ManifolddLoopTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

TEST_P(ManifolddLoopTest, SaysWhereItListensAndServesTcpAndUnixClients) {
  const std::string socket = directory_ + "/m.sock";
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--listen=127.0.0.1:0", "--unix=" + socket});
  ASSERT_TRUE(broker.ok()) << broker.status();
  EXPECT_EQ((*broker)->listening_line(),
            absl::StrCat("manifoldd listening on ", (*broker)->tcp().ToString(),
                         " (tcp), ", socket, " (unix)", LoopSuffix()));
  EXPECT_NE((*broker)->tcp().port, 0);

  WireClient subscriber =
      testing::GreetedClient((*broker)->unix_socket(), "sub");
  ASSERT_TRUE(subscriber.Subscribe("room/**").ok());
  WireClient publisher = testing::GreetedClient((*broker)->tcp(), "pub");
  ASSERT_TRUE(publisher.Publish("room/a/b", "hi").ok());
  absl::StatusOr<wire::ServerMessage> m = subscriber.Receive();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->deliver().payload(), "hi");
}

TEST_P(ManifolddLoopTest, RecordsTheSessionAsATranscriptThatReplays) {
  const std::string file = directory_ + "/session.textpb";
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = StartBroker(
      {"--listen=127.0.0.1:0", "--nats=127.0.0.1:0", "--record=" + file});
  ASSERT_TRUE(broker.ok()) << broker.status();
  EXPECT_TRUE(absl::StrContains((*broker)->listening_line(), " (nats)"))
      << (*broker)->listening_line();
  {
    WireClient subscriber = testing::GreetedClient((*broker)->tcp(), "sub");
    ASSERT_TRUE(subscriber.Subscribe("room/*").ok());
    // A NATS client on the same bus, through the --nats listener's codec.
    absl::StatusOr<UniqueFd> nats = ConnectStream((*broker)->nats());
    ASSERT_TRUE(nats.ok()) << nats.status();
    ASSERT_TRUE(ReadUntil(nats->get(), "\r\n").ok());  // INFO
    ASSERT_TRUE(WriteAll(nats->get(),
                         "CONNECT {\"name\":\"n\"}\r\nSUB room.a 1\r\nPING\r\n")
                    .ok());
    ASSERT_TRUE(ReadUntil(nats->get(), "PONG\r\n").ok());
    WireClient publisher = testing::GreetedClient((*broker)->tcp(), "pub");
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(publisher.Publish("room/a", absl::StrCat("m", i)).ok());
    }
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(subscriber.Receive().ok());
    absl::StatusOr<std::string> last = ReadUntil(nats->get(), "m19\r\n");
    ASSERT_TRUE(last.ok()) << last.status();
    ASSERT_TRUE(WriteAll(nats->get(), "PUB room.b 4\r\nnats\r\n").ok());
    absl::StatusOr<wire::ServerMessage> from_nats = subscriber.Receive();
    ASSERT_TRUE(from_nats.ok()) << from_nats.status();
    EXPECT_EQ(from_nats->deliver().payload(), "nats");
  }
  absl::StatusOr<int> exit_code = (*broker)->Stop(SIGTERM, absl::Seconds(10));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << (*broker)->Log();
  EXPECT_TRUE(absl::StrContains((*broker)->Log(), "recorded "));

  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<transcript::Transcript> t = ParseTranscript(text.str());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->recorded());
  EXPECT_GT(t->step_size(), 40);
  const absl::Status replay = ReplayTranscript(*t, StandardReplayOptions());
  EXPECT_TRUE(replay.ok()) << replay.message();
}

TEST_P(ManifolddLoopTest, SigtermSaysGoodbyeToConnectedClientsAndExitsZero) {
  const std::string socket = directory_ + "/m.sock";
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--listen=127.0.0.1:0", "--unix=" + socket});
  ASSERT_TRUE(broker.ok()) << broker.status();
  std::vector<WireClient> clients;
  clients.push_back(testing::GreetedClient((*broker)->tcp(), "a"));
  clients.push_back(testing::GreetedClient((*broker)->unix_socket(), "b"));
  clients.push_back(testing::GreetedClient((*broker)->tcp(), "c"));
  ASSERT_TRUE(clients[0].Subscribe("x").ok());

  ASSERT_TRUE((*broker)->process().Signal(SIGTERM).ok());
  for (WireClient& client : clients) {
    absl::StatusOr<std::vector<wire::ServerMessage>> messages =
        client.ReadUntilClosed();
    ASSERT_TRUE(messages.ok()) << messages.status();
    ASSERT_EQ(messages->size(), 1u);
    EXPECT_EQ(messages->back().goodbye().code(), wire::SHUTTING_DOWN);
  }
  absl::StatusOr<int> exit_code = (*broker)->process().Wait(absl::Seconds(10));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << (*broker)->Log();
  EXPECT_FALSE(std::filesystem::exists(socket));
}

TEST_P(ManifolddLoopTest, SigintShutsDownGracefullyToo) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--listen=127.0.0.1:0"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  WireClient client = testing::GreetedClient((*broker)->tcp(), "a");
  ASSERT_TRUE((*broker)->process().Signal(SIGINT).ok());
  absl::StatusOr<wire::ServerMessage> goodbye = client.Receive();
  ASSERT_TRUE(goodbye.ok()) << goodbye.status();
  EXPECT_TRUE(goodbye->has_goodbye());
  absl::StatusOr<int> exit_code = (*broker)->process().Wait(absl::Seconds(10));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << (*broker)->Log();
}

TEST_P(ManifolddLoopTest, ASigtermRightAfterStartIsNeverLost) {
  // The signal comes as soon as manifoldd says where it listens, while its
  // loop is starting. Under ThreadSanitizer a handler-based manifoldd missed
  // about one in fifty of these.
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        StartBroker({"--listen=127.0.0.1:0"});
    ASSERT_TRUE(broker.ok()) << broker.status();
    absl::StatusOr<int> exit_code = (*broker)->Stop(SIGTERM);
    ASSERT_TRUE(exit_code.ok()) << "start " << i << ": " << exit_code.status();
    EXPECT_EQ(*exit_code, 0) << (*broker)->Log();
  }
}

TEST_P(ManifolddLoopTest, ASecondSignalEndsAShutdownThatWaitsForAClient) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = StartBroker(
      {"--listen=127.0.0.1:0", "--shutdown_timeout=60s", "--close_linger=60s"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  // Reads nothing, through a small window: its Goodbye waits behind 5 MiB,
  // more than the kernel's largest send buffer (4 MiB), and so does the
  // shutdown.
  WireClient stuck = testing::GreetedClient((*broker)->tcp(), "stuck",
                                            /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(stuck.Subscribe("flood").ok());
  WireClient publisher = testing::GreetedClient((*broker)->tcp(), "pub");
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<wire::ServerMessage> ack =
        publisher.PublishAcked("flood", testing::PatternPayload(512 << 10, i));
    ASSERT_TRUE(ack.ok()) << ack.status();
    ASSERT_EQ(ack->ack().delivered(), 1u);
  }

  ASSERT_TRUE((*broker)->process().Signal(SIGTERM).ok());
  absl::StatusOr<wire::ServerMessage> goodbye = publisher.Receive();
  ASSERT_TRUE(goodbye.ok()) << goodbye.status();
  EXPECT_TRUE(goodbye->has_goodbye());
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE((*broker)->Alive()) << (*broker)->Log();

  ASSERT_TRUE((*broker)->process().Signal(SIGINT).ok());
  absl::StatusOr<int> exit_code = (*broker)->process().Wait(absl::Seconds(10));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 128 + SIGINT) << (*broker)->Log();
}

TEST_P(ManifolddLoopTest, PortInUseIsAOneLineErrorAndANonZeroExit) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> first =
      StartBroker({"--listen=127.0.0.1:0"});
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<Completed> second = testing::RunToCompletion(
      ManifolddPath(),
      {"--loop=" + GetParam(), "--listen=" + (*first)->tcp().ToString()});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->exit_code, 1);
  EXPECT_EQ(second->err, absl::StrCat("manifoldd: cannot listen on ",
                                      (*first)->tcp().ToString(),
                                      ": Address already in use\n"));
  EXPECT_EQ(second->out, "");
}

TEST_F(ManifolddTest, BadFlagsAreOneLineErrorsAndANonZeroExit) {
  for (const char* flag :
       {"--bogus", "--log_level=loud", "--loop=select", "--listen=nonsense",
        "--max_connections=0", "--slow_consumer_policy=maybe",
        "--keepalive_interval=-1s", "--max_payload_bytes=-5", "--listen="}) {
    absl::StatusOr<Completed> run =
        testing::RunToCompletion(ManifolddPath(), {std::string(flag)});
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_NE(run->exit_code, 0) << flag;
    EXPECT_EQ(std::count(run->err.begin(), run->err.end(), '\n'), 1)
        << flag << ": " << run->err;
    EXPECT_EQ(run->out, "") << flag;
  }
  absl::StatusOr<Completed> loop =
      testing::RunToCompletion(ManifolddPath(), {"--loop=kqueue"});
  ASSERT_TRUE(loop.ok());
  EXPECT_EQ(loop->err,
            absl::StrCat("manifoldd: unknown --loop 'kqueue'; this build has: ",
                         absl::StrJoin(testing::EventLoops(), ", "), "\n"));
}

TEST_P(ManifolddLoopTest, BrokerLimitFlagsReachTheBroker) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--listen=127.0.0.1:0", "--server_name=flagged",
                   "--max_payload_bytes=100", "--keepalive_interval=0"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  absl::StatusOr<WireClient> client = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(client.ok());
  absl::StatusOr<wire::Welcome> welcome = client->Hello("c");
  ASSERT_TRUE(welcome.ok());
  EXPECT_EQ(welcome->server_name(), "flagged");
  EXPECT_EQ(welcome->max_payload_bytes(), 100u);
  EXPECT_EQ(welcome->keepalive_interval_ms(), 0u);
  absl::StatusOr<wire::ServerMessage> reply =
      client->PublishAcked("t", std::string(200, 'x'));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->error().code(), wire::PAYLOAD_TOO_LARGE);
}

TEST_P(ManifolddLoopTest, ConnectionsBeyondMaxConnectionsAreRefused) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--listen=127.0.0.1:0", "--max_connections=2"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  WireClient a = testing::GreetedClient((*broker)->tcp(), "a");
  WireClient b = testing::GreetedClient((*broker)->tcp(), "b");
  absl::StatusOr<WireClient> c = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(c.ok());
  absl::StatusOr<std::vector<wire::ServerMessage>> refused =
      c->ReadUntilClosed();
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_EQ(refused->size(), 1u);
  EXPECT_EQ(refused->front().error().code(), wire::TOO_MANY_CONNECTIONS);
  EXPECT_TRUE(a.Ping().ok());
  EXPECT_TRUE(b.Ping().ok());
}

// Sanitizer runtimes need spare descriptors of their own (UBSan's vptr check
// opens a pipe), so a sanitized manifoldd cannot run at its limit.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MANIFOLD_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MANIFOLD_SANITIZED 1
#endif
#endif

TEST_P(ManifolddLoopTest, RunningOutOfFileDescriptorsDropsNewcomersOnly) {
#ifdef MANIFOLD_SANITIZED
  GTEST_SKIP() << "sanitizer runtimes need file descriptors of their own";
#endif
  // Room for the broker's own descriptors (libuv keeps five of its own) and
  // a handful of clients.
  RunningManifoldd::Options short_of_descriptors;
  short_of_descriptors.max_open_files = 20;
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = StartBroker(
      {"--listen=127.0.0.1:0", "--log_level=warning"}, short_of_descriptors);
  ASSERT_TRUE(broker.ok()) << broker.status();
  const Endpoint endpoint = (*broker)->tcp();

  std::vector<WireClient> welcomed;
  int dropped = 0;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<WireClient> client = WireClient::Connect(endpoint);
    ASSERT_TRUE(client.ok()) << client.status();  // the kernel accepts it
    if (client->Hello("c").ok()) {
      welcomed.push_back(*std::move(client));
    } else {
      ++dropped;  // the broker had no descriptor for it and closed it
    }
  }
  EXPECT_GT(welcomed.size(), 3u);
  EXPECT_GT(dropped, 0) << welcomed.size() << " welcomed";
  for (WireClient& client : welcomed) EXPECT_TRUE(client.Ping().ok());
  EXPECT_TRUE(absl::StrContains((*broker)->Log(), "Too many open files"))
      << (*broker)->Log();

  // Descriptors freed are descriptors to accept with again.
  welcomed.pop_back();
  welcomed.pop_back();
  bool again = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(5);
       !again && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(20))) {
    absl::StatusOr<WireClient> client = WireClient::Connect(endpoint);
    again = client.ok() && client->Hello("again").ok();
  }
  EXPECT_TRUE(again);
}

TEST_P(ManifolddLoopTest, LogsConnectionsAtInfoAndNothingAtError) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> chatty =
      StartBroker({"--listen=127.0.0.1:0", "--log_level=info"});
  ASSERT_TRUE(chatty.ok()) << chatty.status();
  testing::GreetedClient((*chatty)->tcp(), "visitor").Close();
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> quiet =
      StartBroker({"--listen=127.0.0.1:0", "--log_level=error"});
  ASSERT_TRUE(quiet.ok()) << quiet.status();
  testing::GreetedClient((*quiet)->tcp(), "visitor").Close();

  for (RunningManifoldd* broker : {chatty->get(), quiet->get()}) {
    ASSERT_TRUE(broker->Stop(SIGTERM, absl::Seconds(10)).ok());
  }
  const std::string log = (*chatty)->Log();
  EXPECT_TRUE(absl::StrContains(log, "'visitor' connected from 127.0.0.1:"))
      << log;
  EXPECT_TRUE(absl::StrContains(log, "'visitor' disconnected")) << log;
  EXPECT_EQ((*quiet)->Log(), "");
}

TEST_P(ManifolddLoopTest, ListensOnAUnixSocketAlone) {
  const std::string socket = directory_ + "/only.sock";
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--listen=", "--unix=" + socket});
  ASSERT_TRUE(broker.ok()) << broker.status();
  EXPECT_EQ(
      (*broker)->listening_line(),
      absl::StrCat("manifoldd listening on ", socket, " (unix)", LoopSuffix()));
  WireClient client = testing::GreetedClient((*broker)->unix_socket(), "u");
  EXPECT_TRUE(client.Ping().ok());
}

}  // namespace
}  // namespace manifold
