// EpollServer over real loopback TCP and Unix sockets, driven by raw native
// frames from a blocking test client. The server runs its loop on a thread of
// this process; each test starts its own on free ports and stops it.

#include "transports/epoll/epoll_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/sys_topics.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "gtest/gtest.h"
#include "tests/transports/testing/child_process.h"
#include "tests/transports/testing/wire_client.h"
#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

using testing::MakeShortTempDir;
using testing::PatternPayload;
using testing::WireClient;

#define ASSERT_OK_AND_ASSIGN(lhs, expr)            \
  auto lhs##_or = (expr);                          \
  ASSERT_TRUE(lhs##_or.ok()) << lhs##_or.status(); \
  auto lhs = *std::move(lhs##_or)

class EpollServerTest : public ::testing::Test {
 protected:
  ~EpollServerTest() override {
    if (loop_.joinable()) Stop();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  // Starts a server listening on 127.0.0.1:0 and on a Unix socket, running
  // its loop on a thread.
  void Start(SocketServerOptions options = SocketServerOptions()) {
    absl::StatusOr<std::unique_ptr<EpollServer>> server =
        EpollServer::Create(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ListenerConfig tcp;
    tcp.endpoint = Endpoint::Tcp("127.0.0.1", 0);
    absl::StatusOr<Endpoint> bound = server_->Listen(tcp);
    ASSERT_TRUE(bound.ok()) << bound.status();
    tcp_ = *bound;
    ListenerConfig unix_socket;
    unix_socket.endpoint = Endpoint::Unix(directory_ + "/broker.sock");
    bound = server_->Listen(unix_socket);
    ASSERT_TRUE(bound.ok()) << bound.status();
    unix_ = *bound;
    loop_ = std::thread([this] { run_status_ = server_->Run(); });
  }

  // Shuts the server down gracefully and waits for its loop to end.
  void Stop() {
    server_->RequestShutdown();
    loop_.join();
    EXPECT_TRUE(run_status_.ok()) << run_status_;
  }

  // Statistics of the stopped server's driver.
  const DriverStatistics& stats() { return server_->driver().statistics(); }

  static WireClient Client(const Endpoint& endpoint, absl::string_view name,
                           int receive_buffer_bytes = 0) {
    absl::StatusOr<WireClient> client =
        WireClient::Connect(endpoint, receive_buffer_bytes);
    EXPECT_TRUE(client.ok()) << client.status();
    absl::StatusOr<wire::Welcome> welcome = client->Hello(name);
    EXPECT_TRUE(welcome.ok()) << welcome.status();
    return *std::move(client);
  }

  const std::string directory_ = MakeShortTempDir();
  std::unique_ptr<EpollServer> server_;
  std::thread loop_;
  absl::Status run_status_;
  Endpoint tcp_;
  Endpoint unix_;
};

TEST_F(EpollServerTest, WelcomesClientsOverTcpAndUnixSockets) {
  SocketServerOptions options;
  options.broker.server_name = "edge-1";
  Start(options);
  for (const Endpoint& endpoint : {tcp_, unix_}) {
    ASSERT_OK_AND_ASSIGN(client, WireClient::Connect(endpoint));
    ASSERT_OK_AND_ASSIGN(welcome, client.Hello("alice"));
    EXPECT_EQ(welcome.server_name(), "edge-1");
    EXPECT_GT(welcome.session_id(), 0u);
  }
}

TEST_F(EpollServerTest, PublishOnTcpReachesSubscriberOnUnixSocket) {
  Start();
  WireClient subscriber = Client(unix_, "sub");
  ASSERT_OK_AND_ASSIGN(sub, subscriber.Subscribe("room/*"));
  WireClient publisher = Client(tcp_, "pub");
  ASSERT_OK_AND_ASSIGN(ack, publisher.PublishAcked("room/1", "hello"));
  EXPECT_EQ(ack.ack().delivered(), 1u);

  ASSERT_OK_AND_ASSIGN(m, subscriber.Receive());
  EXPECT_EQ(m.deliver().subscription_id(), sub);
  EXPECT_EQ(m.deliver().topic(), "room/1");
  EXPECT_EQ(m.deliver().payload(), "hello");
}

TEST_F(EpollServerTest, ManyClientsAtOnceAllGetTheMessage) {
  Start();
  std::vector<WireClient> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(Client(i % 2 ? tcp_ : unix_, absl::StrCat("c", i)));
    ASSERT_TRUE(clients.back().Subscribe("all").ok());
  }
  WireClient publisher = Client(tcp_, "pub");
  ASSERT_OK_AND_ASSIGN(ack, publisher.PublishAcked("all", "hi"));
  EXPECT_EQ(ack.ack().delivered(), 50u);
  for (WireClient& c : clients) {
    ASSERT_OK_AND_ASSIGN(m, c.Receive());
    EXPECT_EQ(m.deliver().payload(), "hi");
  }
}

TEST_F(EpollServerTest, LargeMessageCrossesManyPartialWrites) {
  SocketServerOptions options;
  options.send_buffer_bytes = 4096;
  options.broker.max_payload_bytes = 8 << 20;
  options.broker.max_frame_bytes = 9 << 20;
  options.broker.max_outbound_bytes = 32 << 20;
  Start(options);
  WireClient subscriber = Client(tcp_, "slow", /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(subscriber.Subscribe("big").ok());
  WireClient publisher = Client(unix_, "pub");
  const std::string payload = PatternPayload(4 << 20, 1);
  ASSERT_OK_AND_ASSIGN(ack, publisher.PublishAcked("big", payload));
  EXPECT_EQ(ack.ack().delivered(), 1u);

  absl::SleepFor(absl::Milliseconds(50));  // let the socket fill up
  ASSERT_OK_AND_ASSIGN(m, subscriber.Receive(absl::Seconds(20)));
  EXPECT_TRUE(m.deliver().payload() == payload) << "payload corrupted";
  Stop();
  EXPECT_GT(stats().partial_writes, 10u);
  EXPECT_GT(stats().writes_blocked, 10u);
}

TEST_F(EpollServerTest, SlowReaderWithSmallBuffersGetsEveryMessageInOrder) {
  SocketServerOptions options;
  options.send_buffer_bytes = 4096;
  Start(options);
  WireClient subscriber = Client(unix_, "slow", /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(subscriber.Subscribe("n").ok());
  WireClient publisher = Client(tcp_, "pub");
  constexpr int kMessages = 2000;
  std::string batch;
  for (int i = 0; i < kMessages; ++i) {
    wire::ClientMessage m;
    m.mutable_publish()->set_topic("n");
    m.mutable_publish()->set_payload(
        absl::StrCat(i, ":", PatternPayload(1000, i)));
    AppendFrame(m, &batch);
  }
  ASSERT_TRUE(publisher.SendRaw(batch).ok());
  ASSERT_TRUE(publisher.Ping().ok());  // every publish has been routed

  absl::SleepFor(absl::Milliseconds(20));
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_OK_AND_ASSIGN(m, subscriber.Receive());
    ASSERT_EQ(m.deliver().payload(),
              absl::StrCat(i, ":", PatternPayload(1000, i)));
  }
  Stop();
  EXPECT_GT(stats().writes_blocked, 0u);
}

TEST_F(EpollServerTest, ReadingPausesWhileTheBrokerCatchesUpAndNothingIsLost) {
  SocketServerOptions options;
  options.broker.max_inbound_bytes = 1024;
  Start(options);
  WireClient subscriber = Client(tcp_, "sub");
  ASSERT_TRUE(subscriber.Subscribe("n").ok());
  WireClient publisher = Client(tcp_, "pub");
  std::string batch;
  for (int i = 0; i < 500; ++i) {
    wire::ClientMessage m;
    m.mutable_publish()->set_topic("n");
    m.mutable_publish()->set_payload(absl::StrCat("message ", i));
    AppendFrame(m, &batch);
  }
  ASSERT_TRUE(publisher.SendRaw(batch).ok());
  for (int i = 0; i < 500; ++i) {
    ASSERT_OK_AND_ASSIGN(m, subscriber.Receive());
    ASSERT_EQ(m.deliver().payload(), absl::StrCat("message ", i));
  }
  Stop();
  EXPECT_GT(stats().reads_paused, 0u);
}

TEST_F(EpollServerTest, PeerResetMidStreamEndsOnlyThatConnection) {
  Start();
  WireClient watcher = Client(tcp_, "watcher");
  ASSERT_TRUE(watcher.Subscribe(sys_topics::kConnectionRemoved).ok());
  WireClient victim = Client(tcp_, "victim", /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(victim.Subscribe("stream").ok());
  WireClient bystander = Client(unix_, "bystander");
  ASSERT_TRUE(bystander.Subscribe("stream").ok());
  WireClient publisher = Client(tcp_, "pub");
  const std::string payload = PatternPayload(512 << 10, 7);
  ASSERT_OK_AND_ASSIGN(ack, publisher.PublishAcked("stream", payload));
  EXPECT_EQ(ack.ack().delivered(), 2u);

  char some[1024];
  ASSERT_GT(::recv(victim.fd(), some, sizeof(some), 0), 0);  // mid-stream
  victim.Reset();

  ASSERT_OK_AND_ASSIGN(event, watcher.Receive());
  wire::BrokerEvent removed;
  ASSERT_TRUE(removed.ParseFromString(event.deliver().payload()));
  EXPECT_EQ(removed.connection_removed().client_name(), "victim");
  EXPECT_EQ(removed.connection_removed().code(), wire::CONNECTION_CLOSED)
      << removed.ShortDebugString();

  ASSERT_OK_AND_ASSIGN(whole, bystander.Receive());
  EXPECT_TRUE(whole.deliver().payload() == payload);
  ASSERT_OK_AND_ASSIGN(after, publisher.PublishAcked("stream", "after"));
  EXPECT_EQ(after.ack().delivered(), 1u);
  ASSERT_OK_AND_ASSIGN(next, bystander.Receive());
  EXPECT_EQ(next.deliver().payload(), "after");
}

TEST_F(EpollServerTest, PeerResetInTheMiddleOfAFrameIsATruncatedFrame) {
  Start();
  WireClient watcher = Client(tcp_, "watcher");
  ASSERT_TRUE(watcher.Subscribe(sys_topics::kConnectionRemoved).ok());
  WireClient client = Client(tcp_, "half");
  wire::ClientMessage m;
  m.mutable_publish()->set_topic("t");
  m.mutable_publish()->set_payload(std::string(1000, 'x'));
  const std::string frame = EncodeFrame(m);
  ASSERT_TRUE(client.SendRaw(frame.substr(0, 100)).ok());
  ASSERT_TRUE(watcher.Ping().ok());  // give the broker time to read it
  client.Reset();

  ASSERT_OK_AND_ASSIGN(event, watcher.Receive());
  wire::BrokerEvent removed;
  ASSERT_TRUE(removed.ParseFromString(event.deliver().payload()));
  EXPECT_EQ(removed.connection_removed().client_name(), "half");
  EXPECT_EQ(removed.connection_removed().code(), wire::TRUNCATED_FRAME);
}

TEST_F(EpollServerTest, HalfClosedPeerGetsTheAnswersToWhatItSentThenIsClosed) {
  Start();
  ASSERT_OK_AND_ASSIGN(client, WireClient::Connect(tcp_));
  wire::ClientMessage hello, ping;
  hello.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
  ping.mutable_ping()->set_op_id(42);
  wire::ClientMessage publish;
  publish.mutable_publish()->set_op_id(7);
  publish.mutable_publish()->set_topic("nobody/listens");
  publish.mutable_publish()->set_ack(true);
  ASSERT_TRUE(client
                  .SendRaw(EncodeFrame(hello) + EncodeFrame(publish) +
                           EncodeFrame(ping))
                  .ok());
  client.ShutdownWrite();

  ASSERT_OK_AND_ASSIGN(messages, client.ReadUntilClosed());
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_TRUE(messages[0].has_welcome());
  EXPECT_EQ(messages[1].ack().op_id(), 7u);
  EXPECT_EQ(messages[2].pong().op_id(), 42u);
}

TEST_F(EpollServerTest, ConnectionFloodPastTheLimitIsRefusedCleanly) {
  SocketServerOptions options;
  options.broker.max_connections = 3;
  Start(options);
  std::vector<WireClient> admitted;
  for (int i = 0; i < 3; ++i) admitted.push_back(Client(tcp_, "ok"));

  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(extra, WireClient::Connect(i % 2 ? tcp_ : unix_));
    if (i % 3 == 0) {
      // Some say Hello before hearing they are refused. The broker may have
      // closed the connection already, so the send itself may fail.
      wire::ClientMessage hello;
      hello.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
      extra.Send(hello).IgnoreError();
    }
    ASSERT_OK_AND_ASSIGN(messages, extra.ReadUntilClosed());
    ASSERT_EQ(messages.size(), 1u) << i;
    EXPECT_EQ(messages[0].error().code(), wire::TOO_MANY_CONNECTIONS);
    EXPECT_TRUE(messages[0].error().fatal());
  }

  // The admitted ones never noticed.
  ASSERT_TRUE(admitted[0].Subscribe("x").ok());
  ASSERT_OK_AND_ASSIGN(ack, admitted[1].PublishAcked("x", "still here"));
  EXPECT_EQ(ack.ack().delivered(), 1u);

  // A freed slot can be taken again.
  admitted[2].Close();
  bool welcomed = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(5);
       !welcomed && absl::Now() < deadline;) {
    ASSERT_OK_AND_ASSIGN(again, WireClient::Connect(tcp_));
    welcomed = again.Hello("again").ok();
  }
  EXPECT_TRUE(welcomed);
}

TEST_F(EpollServerTest, TimersFireFromTheLoop) {
  SocketServerOptions options;
  options.broker.handshake_timeout = absl::Milliseconds(100);
  Start(options);
  ASSERT_OK_AND_ASSIGN(silent, WireClient::Connect(tcp_));
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(messages, silent.ReadUntilClosed());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].error().code(), wire::HANDSHAKE_TIMEOUT);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(EpollServerTest,
       ShutdownSaysGoodbyeToEveryClientAndRemovesTheSocketFile) {
  Start();
  std::vector<WireClient> clients;
  clients.push_back(Client(tcp_, "a"));
  clients.push_back(Client(unix_, "b"));
  clients.push_back(Client(tcp_, "c"));
  ASSERT_TRUE(std::filesystem::exists(unix_.path));

  server_->RequestShutdown();
  for (WireClient& c : clients) {
    ASSERT_OK_AND_ASSIGN(messages, c.ReadUntilClosed());
    ASSERT_FALSE(messages.empty());
    EXPECT_EQ(messages.back().goodbye().code(), wire::SHUTTING_DOWN);
  }
  Stop();
  EXPECT_FALSE(std::filesystem::exists(unix_.path));
  EXPECT_FALSE(WireClient::Connect(tcp_).ok());
}

TEST_F(EpollServerTest, ShutdownGivesUpOnClientsThatDoNotRead) {
  SocketServerOptions options;
  options.shutdown_timeout = absl::Milliseconds(200);
  options.broker.close_linger = absl::Minutes(1);
  options.send_buffer_bytes = 4096;
  Start(options);
  WireClient stuck = Client(tcp_, "stuck", /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(stuck.Subscribe("flood").ok());
  WireClient publisher = Client(tcp_, "pub");
  ASSERT_OK_AND_ASSIGN(
      ack, publisher.PublishAcked("flood", PatternPayload(512 << 10, 3)));
  ASSERT_EQ(ack.ack().delivered(), 1u);

  const absl::Time start = absl::Now();
  Stop();
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(200));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST_F(EpollServerTest, StaleUnixSocketFileIsReplaced) {
  const std::string path = directory_ + "/stale.sock";
  {
    // A socket file left behind by a process that died.
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address),
                     sizeof(address)),
              0);
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  absl::StatusOr<std::unique_ptr<EpollServer>> server = EpollServer::Create();
  ASSERT_TRUE(server.ok());
  ListenerConfig config;
  config.endpoint = Endpoint::Unix(path);
  absl::StatusOr<Endpoint> bound = (*server)->Listen(config);
  EXPECT_TRUE(bound.ok()) << bound.status();
  server->reset();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(EpollServerTest, AddressesInUseAreRefusedWithClearErrors) {
  Start();
  absl::StatusOr<std::unique_ptr<EpollServer>> second = EpollServer::Create();
  ASSERT_TRUE(second.ok());

  ListenerConfig tcp;
  tcp.endpoint = tcp_;
  absl::StatusOr<Endpoint> bound = (*second)->Listen(tcp);
  EXPECT_EQ(bound.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(bound.status().message(),
            absl::StrCat("cannot listen on ", tcp_.ToString(),
                         ": Address already in use"));

  ListenerConfig live_unix;
  live_unix.endpoint = unix_;
  bound = (*second)->Listen(live_unix);
  EXPECT_EQ(bound.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(bound.status().message(),
                                "another process is listening there"))
      << bound.status();

  const std::string regular = directory_ + "/not-a-socket";
  std::ofstream(regular) << "data";
  ListenerConfig file;
  file.endpoint = Endpoint::Unix(regular);
  bound = (*second)->Listen(file);
  EXPECT_EQ(bound.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(regular));

  // The first server is untouched.
  WireClient client = Client(unix_, "still-works");
  EXPECT_TRUE(client.Ping().ok());
}

TEST_F(EpollServerTest, ServesIpv6Loopback) {
  absl::StatusOr<std::unique_ptr<EpollServer>> server = EpollServer::Create();
  ASSERT_TRUE(server.ok());
  ListenerConfig config;
  config.endpoint = *ParseTcpEndpoint("[::1]:0");
  absl::StatusOr<Endpoint> bound = (*server)->Listen(config);
  if (!bound.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << bound.status();
  EXPECT_TRUE(absl::StartsWith(bound->ToString(), "[::1]:"));
  std::thread loop([&] { EXPECT_TRUE((*server)->Run().ok()); });
  {
    WireClient client = Client(*bound, "six");
    EXPECT_TRUE(client.Ping().ok());
  }
  (*server)->RequestShutdown();
  loop.join();
}

}  // namespace
}  // namespace manifold
