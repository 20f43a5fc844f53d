// manifoldd as an operator runs it: a real process on free loopback ports,
// talked to with raw native frames, stopped with signals by PID.

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "broker/transcript/transcript_runner.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/transports/testing/child_process.h"
#include "tests/transports/testing/wire_client.h"
#include "transports/sockets/endpoint.h"

#ifndef MANIFOLDD_PATH
#define MANIFOLDD_PATH nullptr
#endif

namespace manifold {
namespace {

using testing::ChildProcess;
using testing::Completed;
using testing::WireClient;

std::string Manifoldd() {
  return testing::ProgramPath("MANIFOLDD", MANIFOLDD_PATH);
}

// A running manifoldd and where it listens.
struct Broker {
  std::unique_ptr<ChildProcess> process;
  std::string line;  // what it printed
  Endpoint tcp;
  Endpoint unix_socket;
};

// Starts manifoldd with `args` and reads its "listening on" line.
absl::StatusOr<Broker> StartBroker(std::vector<std::string> args) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Start(Manifoldd(), args);
  if (!process.ok()) return process.status();
  absl::StatusOr<std::string> line = (*process)->ReadLine(absl::Seconds(10));
  if (!line.ok()) return line.status();
  Broker broker{*std::move(process), *line, {}, {}};
  absl::string_view rest = *line;
  if (!absl::ConsumePrefix(&rest, "manifoldd listening on ")) {
    return absl::InternalError(absl::StrCat("unexpected line: ", *line));
  }
  for (absl::string_view place : absl::StrSplit(rest, ", ")) {
    if (absl::ConsumeSuffix(&place, " (tcp)")) {
      absl::StatusOr<Endpoint> tcp = ParseTcpEndpoint(place);
      if (!tcp.ok()) return tcp.status();
      broker.tcp = *tcp;
    } else if (absl::ConsumeSuffix(&place, " (unix)")) {
      broker.unix_socket = Endpoint::Unix(std::string(place));
    }
  }
  return broker;
}

WireClient Client(const Endpoint& endpoint, absl::string_view name) {
  absl::StatusOr<WireClient> client = WireClient::Connect(endpoint);
  EXPECT_TRUE(client.ok()) << client.status();
  absl::StatusOr<wire::Welcome> welcome = client->Hello(name);
  EXPECT_TRUE(welcome.ok()) << welcome.status();
  return *std::move(client);
}

bool ExitedWith(int status, int code) {
  return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

class ManifolddTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Manifoldd().empty())
        << "the build did not say where manifoldd is";
  }
  ~ManifolddTest() override { std::filesystem::remove_all(directory_); }

  const std::string directory_ = testing::MakeShortTempDir();
};

TEST_F(ManifolddTest, SaysWhereItListensAndServesTcpAndUnixClients) {
  const std::string socket = directory_ + "/m.sock";
  absl::StatusOr<Broker> broker =
      StartBroker({"--listen=127.0.0.1:0", "--unix=" + socket});
  ASSERT_TRUE(broker.ok()) << broker.status();
  EXPECT_EQ(broker->line,
            absl::StrCat("manifoldd listening on ", broker->tcp.ToString(),
                         " (tcp), ", socket, " (unix), loop epoll"));
  EXPECT_NE(broker->tcp.port, 0);

  WireClient subscriber = Client(broker->unix_socket, "sub");
  ASSERT_TRUE(subscriber.Subscribe("room/**").ok());
  WireClient publisher = Client(broker->tcp, "pub");
  ASSERT_TRUE(publisher.Publish("room/a/b", "hi").ok());
  absl::StatusOr<wire::ServerMessage> m = subscriber.Receive();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->deliver().payload(), "hi");
}

TEST_F(ManifolddTest, RecordsTheSessionAsATranscriptThatReplays) {
  const std::string file = directory_ + "/session.textpb";
  absl::StatusOr<Broker> broker = StartBroker(
      {"--listen=127.0.0.1:0", "--nats=127.0.0.1:0", "--record=" + file});
  ASSERT_TRUE(broker.ok()) << broker.status();
  EXPECT_TRUE(absl::StrContains(broker->line, " (nats)")) << broker->line;
  {
    WireClient subscriber = Client(broker->tcp, "sub");
    ASSERT_TRUE(subscriber.Subscribe("room/*").ok());
    WireClient publisher = Client(broker->tcp, "pub");
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(publisher.Publish("room/a", absl::StrCat("m", i)).ok());
    }
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(subscriber.Receive().ok());
  }
  ASSERT_TRUE(broker->process->Signal(SIGTERM).ok());
  absl::StatusOr<int> status = broker->process->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(ExitedWith(*status, 0)) << broker->process->Stderr();
  EXPECT_TRUE(absl::StrContains(broker->process->Stderr(), "recorded "));

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

TEST_F(ManifolddTest, SigtermSaysGoodbyeToConnectedClientsAndExitsZero) {
  const std::string socket = directory_ + "/m.sock";
  absl::StatusOr<Broker> broker =
      StartBroker({"--listen=127.0.0.1:0", "--unix=" + socket});
  ASSERT_TRUE(broker.ok()) << broker.status();
  std::vector<WireClient> clients;
  clients.push_back(Client(broker->tcp, "a"));
  clients.push_back(Client(broker->unix_socket, "b"));
  clients.push_back(Client(broker->tcp, "c"));
  ASSERT_TRUE(clients[0].Subscribe("x").ok());

  ASSERT_TRUE(broker->process->Signal(SIGTERM).ok());
  for (WireClient& client : clients) {
    absl::StatusOr<std::vector<wire::ServerMessage>> messages =
        client.ReadUntilClosed();
    ASSERT_TRUE(messages.ok()) << messages.status();
    ASSERT_EQ(messages->size(), 1u);
    EXPECT_EQ(messages->back().goodbye().code(), wire::SHUTTING_DOWN);
  }
  absl::StatusOr<int> status = broker->process->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(ExitedWith(*status, 0)) << broker->process->Stderr();
  EXPECT_FALSE(std::filesystem::exists(socket));
}

TEST_F(ManifolddTest, SigintShutsDownGracefullyToo) {
  absl::StatusOr<Broker> broker = StartBroker({"--listen=127.0.0.1:0"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  WireClient client = Client(broker->tcp, "a");
  ASSERT_TRUE(broker->process->Signal(SIGINT).ok());
  absl::StatusOr<wire::ServerMessage> goodbye = client.Receive();
  ASSERT_TRUE(goodbye.ok()) << goodbye.status();
  EXPECT_TRUE(goodbye->has_goodbye());
  absl::StatusOr<int> status = broker->process->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(ExitedWith(*status, 0));
}

TEST_F(ManifolddTest, PortInUseIsAOneLineErrorAndANonZeroExit) {
  absl::StatusOr<Broker> first = StartBroker({"--listen=127.0.0.1:0"});
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<Completed> second = testing::RunToCompletion(
      Manifoldd(), {"--listen=" + first->tcp.ToString()});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(ExitedWith(second->status, 1));
  EXPECT_EQ(second->err,
            absl::StrCat("manifoldd: cannot listen on ", first->tcp.ToString(),
                         ": Address already in use\n"));
  EXPECT_EQ(second->out, "");
}

TEST_F(ManifolddTest, BadFlagsAreOneLineErrorsAndANonZeroExit) {
  for (const char* flag :
       {"--bogus", "--log_level=loud", "--loop=io_uring", "--listen=nonsense",
        "--max_connections=0", "--slow_consumer_policy=maybe",
        "--keepalive_interval=-1s", "--max_payload_bytes=-5", "--listen="}) {
    absl::StatusOr<Completed> run =
        testing::RunToCompletion(Manifoldd(), {std::string(flag)});
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_FALSE(ExitedWith(run->status, 0)) << flag;
    EXPECT_EQ(std::count(run->err.begin(), run->err.end(), '\n'), 1)
        << flag << ": " << run->err;
    EXPECT_EQ(run->out, "") << flag;
  }
  absl::StatusOr<Completed> loop =
      testing::RunToCompletion(Manifoldd(), {"--loop=kqueue"});
  ASSERT_TRUE(loop.ok());
  EXPECT_EQ(loop->err,
            "manifoldd: unknown --loop 'kqueue'; this build has: epoll\n");
}

TEST_F(ManifolddTest, BrokerLimitFlagsReachTheBroker) {
  absl::StatusOr<Broker> broker =
      StartBroker({"--listen=127.0.0.1:0", "--server_name=flagged",
                   "--max_payload_bytes=100", "--keepalive_interval=0"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  absl::StatusOr<WireClient> client = WireClient::Connect(broker->tcp);
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

TEST_F(ManifolddTest, ConnectionsBeyondMaxConnectionsAreRefused) {
  absl::StatusOr<Broker> broker =
      StartBroker({"--listen=127.0.0.1:0", "--max_connections=2"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  WireClient a = Client(broker->tcp, "a");
  WireClient b = Client(broker->tcp, "b");
  absl::StatusOr<WireClient> c = WireClient::Connect(broker->tcp);
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

TEST_F(ManifolddTest, RunningOutOfFileDescriptorsDropsNewcomersOnly) {
#ifdef MANIFOLD_SANITIZED
  GTEST_SKIP() << "sanitizer runtimes need file descriptors of their own";
#endif
  // Room for the broker's own descriptors and a handful of clients.
  absl::StatusOr<std::unique_ptr<ChildProcess>> process = ChildProcess::Start(
      Manifoldd(), {"--listen=127.0.0.1:0", "--log_level=warning"},
      {.max_open_files = 16});
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<std::string> line = (*process)->ReadLine(absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status();
  absl::string_view address = *line;
  ASSERT_TRUE(absl::ConsumePrefix(&address, "manifoldd listening on "));
  ASSERT_TRUE(absl::ConsumeSuffix(&address, " (tcp), loop epoll"));
  absl::StatusOr<Endpoint> endpoint = ParseTcpEndpoint(address);
  ASSERT_TRUE(endpoint.ok());

  std::vector<WireClient> welcomed;
  int dropped = 0;
  for (int i = 0; i < 12; ++i) {
    absl::StatusOr<WireClient> client = WireClient::Connect(*endpoint);
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
  EXPECT_TRUE(absl::StrContains((*process)->Stderr(), "Too many open files"))
      << (*process)->Stderr();

  // Descriptors freed are descriptors to accept with again.
  welcomed.pop_back();
  welcomed.pop_back();
  bool again = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(5);
       !again && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(20))) {
    absl::StatusOr<WireClient> client = WireClient::Connect(*endpoint);
    again = client.ok() && client->Hello("again").ok();
  }
  EXPECT_TRUE(again);
}

TEST_F(ManifolddTest, LogsConnectionsAtInfoAndNothingAtError) {
  absl::StatusOr<Broker> chatty =
      StartBroker({"--listen=127.0.0.1:0", "--log_level=info"});
  ASSERT_TRUE(chatty.ok()) << chatty.status();
  Client(chatty->tcp, "visitor").Close();
  absl::StatusOr<Broker> quiet =
      StartBroker({"--listen=127.0.0.1:0", "--log_level=error"});
  ASSERT_TRUE(quiet.ok()) << quiet.status();
  Client(quiet->tcp, "visitor").Close();

  for (Broker* broker : {&*chatty, &*quiet}) {
    ASSERT_TRUE(broker->process->Signal(SIGTERM).ok());
    ASSERT_TRUE(broker->process->Wait(absl::Seconds(10)).ok());
  }
  const std::string log = chatty->process->Stderr();
  EXPECT_TRUE(absl::StrContains(log, "'visitor' connected from 127.0.0.1:"))
      << log;
  EXPECT_TRUE(absl::StrContains(log, "'visitor' disconnected")) << log;
  EXPECT_EQ(quiet->process->Stderr(), "");
}

TEST_F(ManifolddTest, ListensOnAUnixSocketAlone) {
  const std::string socket = directory_ + "/only.sock";
  absl::StatusOr<Broker> broker =
      StartBroker({"--listen=", "--unix=" + socket});
  ASSERT_TRUE(broker.ok()) << broker.status();
  EXPECT_EQ(broker->line, absl::StrCat("manifoldd listening on ", socket,
                                       " (unix), loop epoll"));
  WireClient client = Client(broker->unix_socket, "u");
  EXPECT_TRUE(client.Ping().ok());
}

}  // namespace
}  // namespace manifold
