// Every SocketServer this build has (epoll, io_uring, libuv), held to the same
// behaviour over real loopback TCP and Unix sockets, driven by raw native and
// NATS frames from blocking test clients. Each case runs once per loop; the
// server runs its loop on a thread of this process, on free ports, and each
// test stops it. What only one loop does is tested in that loop's folder.

#include "transports/sockets/socket_server.h"

#include <poll.h>
#include <signal.h>
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
#include "broker/nats/nats_codec.h"
#include "broker/sys_topics.h"
#include "broker/transcript/transcript_runner.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/transports/testing/event_loop_params.h"
#include "tests/transports/testing/vanished_peer.h"
#include "tests/transports/testing/wire_client.h"
#include "transports/driver/recording_observer.h"
#include "transports/loops/event_loops.h"
#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

using testing::GreetedClient;
using testing::MakeShortTempDir;
using testing::PatternPayload;
using testing::WireClient;

#define ASSERT_OK_AND_ASSIGN(lhs, expr)            \
  auto lhs##_or = (expr);                          \
  ASSERT_TRUE(lhs##_or.ok()) << lhs##_or.status(); \
  auto lhs = *std::move(lhs##_or)

class SocketServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  ~SocketServerTest() override {
    if (loop_.joinable()) Stop();
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  // A server on the loop under test, not yet listening.
  absl::StatusOr<std::unique_ptr<SocketServer>> Make(
      SocketServerOptions options = SocketServerOptions()) {
    return MakeSocketServer(GetParam(), std::move(options));
  }

  // Starts a server listening on 127.0.0.1:0 and on a Unix socket, plus any
  // `extra` listeners, running its loop on a thread.
  void Start(SocketServerOptions options = SocketServerOptions(),
             std::vector<ListenerConfig> extra = {}) {
    absl::StatusOr<std::unique_ptr<SocketServer>> server =
        Make(std::move(options));
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
    for (ListenerConfig& config : extra) {
      bound = server_->Listen(std::move(config));
      ASSERT_TRUE(bound.ok()) << bound.status();
      extra_.push_back(*bound);
    }
    loop_ = std::thread([this] { run_status_ = server_->Run(); });
  }

  // Shuts the server down gracefully and waits for its loop to end.
  void Stop() {
    server_->RequestShutdown();
    loop_.join();
    EXPECT_TRUE(run_status_.ok()) << run_status_;
    // Every write a completion-based loop had in flight was reported.
    EXPECT_EQ(server_->driver().orphaned_write_count(), 0u);
  }

  // Statistics of the stopped server's driver.
  const DriverStatistics& stats() { return server_->driver().statistics(); }

  const std::string directory_ = MakeShortTempDir();
  std::unique_ptr<SocketServer> server_;
  std::thread loop_;
  absl::Status run_status_;
  Endpoint tcp_;
  Endpoint unix_;
  std::vector<Endpoint> extra_;
};

INSTANTIATE_TEST_SUITE_P(Loops, SocketServerTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

// Reads from a blocking socket until `text` has arrived (and returns all
// read so far), or fails after `timeout`.
absl::StatusOr<std::string> ReadUntil(
    int fd, absl::string_view text, std::string& buffer,
    absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!absl::StrContains(buffer, text)) {
    pollfd p{fd, POLLIN, 0};
    const int64_t wait = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait <= 0 || ::poll(&p, 1, static_cast<int>(wait)) <= 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("no '", text, "' in '", buffer, "'"));
    }
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n <= 0) return absl::UnavailableError("closed");
    buffer.append(chunk, static_cast<size_t>(n));
  }
  std::string all;
  all.swap(buffer);
  return all;
}

TEST_P(SocketServerTest, NamesItsLoop) {
  ASSERT_OK_AND_ASSIGN(server, Make());
  EXPECT_EQ(server->loop_name(), GetParam());
}

TEST_P(SocketServerTest, WelcomesClientsOverTcpAndUnixSockets) {
  SocketServerOptions options;
  options.broker.set_server_name("edge-1");
  Start(options);
  for (const Endpoint& endpoint : {tcp_, unix_}) {
    ASSERT_OK_AND_ASSIGN(client, WireClient::Connect(endpoint));
    ASSERT_OK_AND_ASSIGN(welcome, client.Hello("alice"));
    EXPECT_EQ(welcome.server_name(), "edge-1");
    EXPECT_GT(welcome.session_id(), 0u);
  }
}

TEST_P(SocketServerTest, PublishOnTcpReachesSubscriberOnUnixSocket) {
  Start();
  WireClient subscriber = GreetedClient(unix_, "sub");
  ASSERT_OK_AND_ASSIGN(sub, subscriber.Subscribe("room/*"));
  WireClient publisher = GreetedClient(tcp_, "pub");
  ASSERT_OK_AND_ASSIGN(ack, publisher.PublishAcked("room/1", "hello"));
  EXPECT_EQ(ack.ack().delivered(), 1u);

  ASSERT_OK_AND_ASSIGN(m, subscriber.Receive());
  EXPECT_EQ(m.deliver().subscription_id(), sub);
  EXPECT_EQ(m.deliver().topic(), "room/1");
  EXPECT_EQ(m.deliver().payload(), "hello");
}

TEST_P(SocketServerTest, EachListenerSpeaksTheProtocolItsCodecFactoryMakes) {
  ListenerConfig nats;
  nats.endpoint = Endpoint::Tcp("127.0.0.1", 0);
  nats.label = "nats";
  nats.codec_factory = []() -> std::unique_ptr<ProtocolCodec> {
    return std::make_unique<NatsCodec>(NatsOptions());
  };
  Start(SocketServerOptions(), {std::move(nats)});
  ASSERT_OK_AND_ASSIGN(fd, ConnectStream(extra_[0]));
  std::string buffer;
  ASSERT_OK_AND_ASSIGN(info, ReadUntil(fd.get(), "\r\n", buffer));
  EXPECT_TRUE(absl::StartsWith(info, "INFO {")) << info;
  const std::string hello = "CONNECT {}\r\nSUB room.* 7\r\nPING\r\n";
  ASSERT_EQ(::write(fd.get(), hello.data(), hello.size()),
            static_cast<ssize_t>(hello.size()));
  ASSERT_TRUE(ReadUntil(fd.get(), "PONG\r\n", buffer).ok());

  // Native to NATS.
  WireClient native = GreetedClient(unix_, "native");
  ASSERT_OK_AND_ASSIGN(ack, native.PublishAcked("room/a", "hello"));
  EXPECT_EQ(ack.ack().delivered(), 1u);
  ASSERT_OK_AND_ASSIGN(msg, ReadUntil(fd.get(), "hello\r\n", buffer));
  EXPECT_EQ(msg, "MSG room.a 7 5\r\nhello\r\n");

  // NATS to native.
  ASSERT_TRUE(native.Subscribe("news/**").ok());
  const std::string pub = "PUB news.today 3\r\nhi!\r\n";
  ASSERT_EQ(::write(fd.get(), pub.data(), pub.size()),
            static_cast<ssize_t>(pub.size()));
  ASSERT_OK_AND_ASSIGN(m, native.Receive());
  EXPECT_EQ(m.deliver().topic(), "news/today");
  EXPECT_EQ(m.deliver().payload(), "hi!");
}

TEST_P(SocketServerTest, ManyClientsAtOnceAllGetTheMessage) {
  Start();
  std::vector<WireClient> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(
        GreetedClient(i % 2 ? tcp_ : unix_, absl::StrCat("c", i)));
    ASSERT_TRUE(clients.back().Subscribe("all").ok());
  }
  WireClient publisher = GreetedClient(tcp_, "pub");
  ASSERT_OK_AND_ASSIGN(ack, publisher.PublishAcked("all", "hi"));
  EXPECT_EQ(ack.ack().delivered(), 50u);
  for (WireClient& c : clients) {
    ASSERT_OK_AND_ASSIGN(m, c.Receive());
    EXPECT_EQ(m.deliver().payload(), "hi");
  }
}

TEST_P(SocketServerTest, LargeMessageThroughSmallSocketBuffersArrivesWhole) {
  SocketServerOptions options;
  options.send_buffer_bytes = 4096;
  options.broker.set_max_payload_bytes(8 << 20);
  options.broker.set_max_frame_bytes(9 << 20);
  options.broker.set_max_outbound_bytes(32 << 20);
  Start(options);
  WireClient subscriber =
      GreetedClient(tcp_, "slow", /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(subscriber.Subscribe("big").ok());
  WireClient publisher = GreetedClient(unix_, "pub");
  const std::string payload = PatternPayload(4 << 20, 1);
  ASSERT_OK_AND_ASSIGN(ack, publisher.PublishAcked("big", payload));
  EXPECT_EQ(ack.ack().delivered(), 1u);

  // A round trip after the delivery: the turn that routed it has written to
  // the subscriber until its socket refused more, before anything is read.
  ASSERT_TRUE(publisher.Ping().ok());
  ASSERT_OK_AND_ASSIGN(m, subscriber.Receive(absl::Seconds(20)));
  EXPECT_TRUE(m.deliver().payload() == payload) << "payload corrupted";
  Stop();
  EXPECT_GT(stats().writes, 10u);  // it took many writes
}

TEST_P(SocketServerTest, SlowReaderWithSmallBuffersGetsEveryMessageInOrder) {
  SocketServerOptions options;
  options.send_buffer_bytes = 4096;
  Start(options);
  WireClient subscriber =
      GreetedClient(unix_, "slow", /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(subscriber.Subscribe("n").ok());
  WireClient publisher = GreetedClient(tcp_, "pub");
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
  // And the turn that routed them is over: the subscriber's socket was filled
  // before it reads anything.
  ASSERT_TRUE(publisher.Ping().ok());

  for (int i = 0; i < kMessages; ++i) {
    ASSERT_OK_AND_ASSIGN(m, subscriber.Receive());
    ASSERT_EQ(m.deliver().payload(),
              absl::StrCat(i, ":", PatternPayload(1000, i)));
  }
}

TEST_P(SocketServerTest, ReadingPausesWhileTheBrokerCatchesUpAndNothingIsLost) {
  SocketServerOptions options;
  options.broker.set_max_inbound_bytes(1024);
  Start(options);
  WireClient subscriber = GreetedClient(tcp_, "sub");
  ASSERT_TRUE(subscriber.Subscribe("n").ok());
  WireClient publisher = GreetedClient(tcp_, "pub");
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

TEST_P(SocketServerTest, PeerResetMidStreamEndsOnlyThatConnection) {
  Start();
  WireClient watcher = GreetedClient(tcp_, "watcher");
  ASSERT_TRUE(watcher.Subscribe(sys_topics::kConnectionRemoved).ok());
  WireClient victim =
      GreetedClient(tcp_, "victim", /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(victim.Subscribe("stream").ok());
  WireClient bystander = GreetedClient(unix_, "bystander");
  ASSERT_TRUE(bystander.Subscribe("stream").ok());
  WireClient publisher = GreetedClient(tcp_, "pub");
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

TEST_P(SocketServerTest, PeerResetInTheMiddleOfAFrameIsATruncatedFrame) {
  Start();
  WireClient watcher = GreetedClient(tcp_, "watcher");
  ASSERT_TRUE(watcher.Subscribe(sys_topics::kConnectionRemoved).ok());
  WireClient client = GreetedClient(tcp_, "half");
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

TEST_P(SocketServerTest, HalfClosedPeerGetsTheAnswersToWhatItSentThenIsClosed) {
  Start();
  for (const Endpoint& endpoint : {tcp_, unix_}) {
    ASSERT_OK_AND_ASSIGN(client, WireClient::Connect(endpoint));
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
}

TEST_P(SocketServerTest, AVanishedPeerIsAWriteErrorNotASignal) {
  ASSERT_EQ(::signal(SIGPIPE, SIG_DFL), SIG_DFL);  // SIGPIPE would kill us
  SocketServerOptions options;
  options.send_buffer_bytes = 4096;
  Start(options);
  // Writing to a closed Unix socket raises SIGPIPE.
  testing::ExpectAVanishedPeerEndsOnlyItsConnection(/*leaver_at=*/unix_,
                                                    /*others_at=*/tcp_);
}

TEST_P(SocketServerTest, ConnectionFloodPastTheLimitIsRefusedCleanly) {
  SocketServerOptions options;
  options.broker.set_max_connections(3);
  Start(options);
  std::vector<WireClient> admitted;
  for (int i = 0; i < 3; ++i) admitted.push_back(GreetedClient(tcp_, "ok"));

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

TEST_P(SocketServerTest, TimersFireFromTheLoop) {
  SocketServerOptions options;
  options.broker.set_handshake_timeout_ms(100);
  Start(options);
  ASSERT_OK_AND_ASSIGN(silent, WireClient::Connect(tcp_));
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(messages, silent.ReadUntilClosed());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].error().code(), wire::HANDSHAKE_TIMEOUT);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_P(SocketServerTest,
       ShutdownSaysGoodbyeToEveryClientAndRemovesTheSocketFile) {
  Start();
  std::vector<WireClient> clients;
  clients.push_back(GreetedClient(tcp_, "a"));
  clients.push_back(GreetedClient(unix_, "b"));
  clients.push_back(GreetedClient(tcp_, "c"));
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

TEST_P(SocketServerTest, ShutdownBeforeTheLoopRunsEndsItAtOnce) {
  ASSERT_OK_AND_ASSIGN(server, Make());
  ListenerConfig tcp;
  tcp.endpoint = Endpoint::Tcp("127.0.0.1", 0);
  ASSERT_TRUE(server->Listen(tcp).ok());
  server->RequestShutdown();
  const absl::Time start = absl::Now();
  EXPECT_TRUE(server->Run().ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_P(SocketServerTest, ShutdownGivesUpOnClientsThatDoNotRead) {
  SocketServerOptions options;
  options.shutdown_timeout = absl::Milliseconds(200);
  options.broker.set_close_linger_ms(60000);
  options.send_buffer_bytes = 4096;
  Start(options);
  WireClient stuck =
      GreetedClient(tcp_, "stuck", /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(stuck.Subscribe("flood").ok());
  WireClient publisher = GreetedClient(tcp_, "pub");
  ASSERT_OK_AND_ASSIGN(
      ack, publisher.PublishAcked("flood", PatternPayload(512 << 10, 3)));
  ASSERT_EQ(ack.ack().delivered(), 1u);

  const absl::Time start = absl::Now();
  Stop();
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(200));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST_P(SocketServerTest, StaleUnixSocketFileIsReplaced) {
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
  ASSERT_OK_AND_ASSIGN(server, Make());
  ListenerConfig config;
  config.endpoint = Endpoint::Unix(path);
  absl::StatusOr<Endpoint> bound = server->Listen(config);
  EXPECT_TRUE(bound.ok()) << bound.status();
  server.reset();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_P(SocketServerTest, AddressesInUseAreRefusedWithClearErrors) {
  Start();
  ASSERT_OK_AND_ASSIGN(second, Make());

  ListenerConfig tcp;
  tcp.endpoint = tcp_;
  absl::StatusOr<Endpoint> bound = second->Listen(tcp);
  EXPECT_EQ(bound.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(bound.status().message(),
            absl::StrCat("cannot listen on ", tcp_.ToString(),
                         ": Address already in use"));

  ListenerConfig live_unix;
  live_unix.endpoint = unix_;
  bound = second->Listen(live_unix);
  EXPECT_EQ(bound.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(bound.status().message(),
                                "another process is listening there"))
      << bound.status();

  const std::string regular = directory_ + "/not-a-socket";
  std::ofstream(regular) << "data";
  ListenerConfig file;
  file.endpoint = Endpoint::Unix(regular);
  bound = second->Listen(file);
  EXPECT_EQ(bound.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(regular));

  // The first server is untouched.
  WireClient client = GreetedClient(unix_, "still-works");
  EXPECT_TRUE(client.Ping().ok());
}

TEST_P(SocketServerTest, ServesIpv6Loopback) {
  ASSERT_OK_AND_ASSIGN(server, Make());
  ListenerConfig config;
  config.endpoint = *ParseTcpEndpoint("[::1]:0");
  absl::StatusOr<Endpoint> bound = server->Listen(config);
  if (!bound.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << bound.status();
  EXPECT_TRUE(absl::StartsWith(bound->ToString(), "[::1]:"));
  std::thread loop([&] { EXPECT_TRUE(server->Run().ok()); });
  {
    WireClient client = GreetedClient(*bound, "six");
    EXPECT_TRUE(client.Ping().ok());
  }
  server->RequestShutdown();
  loop.join();
}

TEST_P(SocketServerTest, ASessionRecordedLiveReplaysByteForByte) {
  RecordingObserver recorder(absl::StrCat("recorded live on ", GetParam()));
  SocketServerOptions options;
  options.driver.observer = &recorder;
  Start(options);
  {
    WireClient subscriber = GreetedClient(unix_, "sub");
    ASSERT_TRUE(subscriber.Subscribe("room/*").ok());
    WireClient publisher = GreetedClient(tcp_, "pub");
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(publisher.Publish("room/a", absl::StrCat("m", i)).ok());
    }
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(subscriber.Receive().ok());
    ASSERT_TRUE(publisher.Ping().ok());
    publisher.Reset();  // one leaves abruptly, the other says nothing
  }
  Stop();
  server_.reset();  // the recorder outlives the server's use of it

  ASSERT_OK_AND_ASSIGN(transcript, ParseTranscript(recorder.ToText()));
  EXPECT_GT(transcript.step_size(), 20);
  const absl::Status replay =
      ReplayTranscript(transcript, StandardReplayOptions());
  EXPECT_TRUE(replay.ok()) << replay.message();
}

TEST_P(SocketServerTest, ResumableSessionsRecordedLiveReplayWithTheirTokens) {
  RecordingObserver recorder(absl::StrCat("recorded live on ", GetParam()));
  SocketServerOptions options;
  options.driver.observer = &recorder;
  Start(options);
  std::string token;
  {
    ASSERT_OK_AND_ASSIGN(client, WireClient::Connect(tcp_));
    wire::ClientMessage hello;
    hello.mutable_hello()->set_protocol_version(1);
    hello.mutable_hello()->set_client_name("resumable");
    hello.mutable_hello()->set_resumable(true);
    ASSERT_TRUE(client.Send(hello).ok());
    ASSERT_OK_AND_ASSIGN(welcome, client.Receive());
    token = welcome.welcome().resume_token();
    ASSERT_EQ(token.size(), 40u);  // drawn from the operating system
  }
  Stop();
  server_.reset();

  ASSERT_OK_AND_ASSIGN(transcript, ParseTranscript(recorder.ToText()));
  ASSERT_EQ(transcript.session_ids_size(), 1);
  EXPECT_EQ(transcript.session_ids(0), token);
  const absl::Status replay =
      ReplayTranscript(transcript, StandardReplayOptions());
  EXPECT_TRUE(replay.ok()) << replay.message();
}

}  // namespace
}  // namespace manifold
