// OutboundConnection on every loop this build has: a connection the process
// opens itself, driven by the same loop as the Broker's clients, with a
// TurnHook that wakes the loop at its own deadline. The far end is a plain
// socket served by the test's thread.

#include "transports/sockets/outbound_connection.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/transports/testing/event_loop_params.h"
#include "transports/loops/event_loops.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {
namespace {

using ::testing::HasSubstr;

// A listening socket on 127.0.0.1 with blocking, bounded accept and I/O.
class Peer {
 public:
  Peer() {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address),
           sizeof(address));
    ::listen(listener_.get(), 4);
    socklen_t length = sizeof(address);
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address),
                  &length);
    port_ = ntohs(address.sin_port);
  }
  uint16_t port() const { return port_; }

  bool Accept() {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    connection_ =
        UniqueFd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    return connection_.valid();
  }
  // Reads until `n` bytes came (or 5 s passed, or the end).
  std::string Read(size_t n) {
    std::string got;
    char buffer[65536];
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (got.size() < n && absl::Now() < deadline) {
      pollfd p{connection_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      const ssize_t r = ::read(connection_.get(), buffer,
                               std::min(sizeof(buffer), n - got.size()));
      if (r <= 0) break;
      got.append(buffer, static_cast<size_t>(r));
    }
    return got;
  }
  void Write(absl::string_view bytes) {
    ASSERT_EQ(::write(connection_.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  void Close() { connection_.reset(); }

 private:
  UniqueFd listener_;
  UniqueFd connection_;
  uint16_t port_ = 0;
};

// Records what the connection reports; output is a string it drains.
class Recorder : public OutboundHandler, public TurnHook {
 public:
  explicit Recorder(SocketServer& server) : server_(server) {}

  void OnConnected() override {
    std::lock_guard<std::mutex> lock(mutex_);
    connected_ = true;
    output_ += first_output;
  }
  absl::Status OnBytes(absl::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    input_.append(bytes.data(), bytes.size());
    if (!refuse_input.empty()) return absl::DataLossError(refuse_input);
    return absl::OkStatus();
  }
  void OnClosed(absl::Status why) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = std::move(why);
    }
    server_.RequestShutdown();
  }
  absl::string_view PendingOutput() override { return output_; }
  void Consume(size_t n) override {
    output_.erase(0, n);
    written_ += n;
  }

  // TurnHook: `late_output` is queued at `late_at` (the loop must wake for
  // it) and written after that turn.
  void BeforeTurn(absl::Time now) override {
    if (late_at && now >= *late_at && connection != nullptr &&
        connection->connected()) {
      late_at.reset();
      output_ += late_output;
    }
  }
  std::optional<absl::Time> AfterTurn(absl::Time now) override {
    if (connection != nullptr) connection->Flush();
    return late_at;
  }

  std::string input() {
    std::lock_guard<std::mutex> lock(mutex_);
    return input_;
  }
  std::optional<absl::Status> closed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_;
  }
  bool connected() {
    std::lock_guard<std::mutex> lock(mutex_);
    return connected_;
  }

  std::string first_output;
  std::string late_output;
  std::optional<absl::Time> late_at;
  std::string refuse_input;
  OutboundConnection* connection = nullptr;
  size_t written_ = 0;

 private:
  SocketServer& server_;
  std::mutex mutex_;
  bool connected_ = false;
  std::string input_;
  std::string output_;
  std::optional<absl::Status> closed_;
};

class OutboundConnectionTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<SocketServer>> server =
        MakeSocketServer(GetParam(), SocketServerOptions());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    recorder_ = std::make_unique<Recorder>(*server_);
  }
  void TearDown() override {
    if (loop_.joinable()) {
      server_->RequestShutdown();
      loop_.join();
    }
    connection_.reset();
  }

  void Connect(uint16_t port) {
    absl::StatusOr<SocketAddress> address =
        Resolve(Endpoint::Tcp("127.0.0.1", port));
    ASSERT_TRUE(address.ok()) << address.status();
    absl::StatusOr<std::unique_ptr<OutboundConnection>> connection =
        OutboundConnection::Connect(*server_, *address, *recorder_);
    ASSERT_TRUE(connection.ok()) << connection.status();
    connection_ = *std::move(connection);
    recorder_->connection = connection_.get();
    server_->driver().SetTurnHook(recorder_.get());
  }
  void StartLoop() {
    loop_ = std::thread([this] { run_status_ = server_->Run(); });
  }
  // Waits for the loop to end (OnClosed asks for the shutdown).
  bool LoopEnds() {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!recorder_->closed() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    if (!recorder_->closed()) return false;
    loop_.join();
    return run_status_.ok();
  }

  std::unique_ptr<SocketServer> server_;
  std::unique_ptr<Recorder> recorder_;
  std::unique_ptr<OutboundConnection> connection_;
  std::thread loop_;
  absl::Status run_status_;
};

INSTANTIATE_TEST_SUITE_P(Loops, OutboundConnectionTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

TEST_P(OutboundConnectionTest, TalksBothWaysAndWakesForTheHooksDeadline) {
  Peer peer;
  recorder_->first_output = "hello";
  recorder_->late_output = "late";
  Connect(peer.port());
  // Set from the test's clock: the driver's is monotonic, so ask the loop.
  recorder_->late_at = server_->driver().Now() + absl::Milliseconds(200);
  StartLoop();
  ASSERT_TRUE(peer.Accept());
  EXPECT_EQ(peer.Read(5), "hello");
  // Nothing else happens on the loop: only the hook's deadline wakes it.
  EXPECT_EQ(peer.Read(4), "late");
  peer.Write("world");
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (recorder_->input() != "world" && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(recorder_->input(), "world");
  EXPECT_TRUE(recorder_->connected());
  peer.Close();
  ASSERT_TRUE(LoopEnds());
  EXPECT_THAT(recorder_->closed()->message(), HasSubstr("closed by the peer"));
}

TEST_P(OutboundConnectionTest, WritesMoreThanTheSocketTakesAtOnce) {
  Peer peer;
  constexpr size_t kBytes = 8 << 20;
  std::string big(kBytes, '\0');
  for (size_t i = 0; i < kBytes; ++i) big[i] = static_cast<char>('a' + i % 26);
  recorder_->first_output = big;
  Connect(peer.port());
  StartLoop();
  ASSERT_TRUE(peer.Accept());
  // Read slowly at first, so the connection must wait for room.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE(peer.Read(kBytes) == big);
  peer.Close();
  ASSERT_TRUE(LoopEnds());
  EXPECT_EQ(recorder_->written_, kBytes);
}

TEST_P(OutboundConnectionTest, ReportsARefusedConnect) {
  uint16_t port;
  {
    Peer gone;  // a port that was free a moment ago, closed again
    port = gone.port();
  }
  Connect(port);
  StartLoop();
  ASSERT_TRUE(LoopEnds());
  EXPECT_FALSE(recorder_->connected());
  EXPECT_THAT(recorder_->closed()->message(), HasSubstr("refused"));
  EXPECT_TRUE(connection_->closed());
}

TEST_P(OutboundConnectionTest, ClosesWhenTheHandlerRefusesInput) {
  Peer peer;
  recorder_->refuse_input = "not RESP";
  Connect(peer.port());
  StartLoop();
  ASSERT_TRUE(peer.Accept());
  peer.Write("garbage");
  ASSERT_TRUE(LoopEnds());
  EXPECT_EQ(recorder_->closed()->message(), "not RESP");
  // The connection is gone: the peer reads the end.
  EXPECT_EQ(peer.Read(1), "");
}

}  // namespace
}  // namespace manifold
