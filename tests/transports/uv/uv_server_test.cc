// What only the libuv adapter does. libuv writes with writev(), which raises
// SIGPIPE on a vanished peer; Run() blocks it on its own thread and consumes
// any raised, so a broker embedded in a program that never heard of SIGPIPE
// survives, and the thread is left as it was found. Everything a client can
// see is tested for every loop in
// tests/transports/sockets/socket_server_test.cc.

#include "transports/uv/uv_server.h"

#include <signal.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "broker/sys_topics.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/transports/testing/wire_client.h"

namespace manifold {
namespace {

using testing::GreetedClient;
using testing::PatternPayload;
using testing::WireClient;

#define ASSERT_OK_AND_ASSIGN(lhs, expr)            \
  auto lhs##_or = (expr);                          \
  ASSERT_TRUE(lhs##_or.ok()) << lhs##_or.status(); \
  auto lhs = *std::move(lhs##_or)

TEST(UvServerTest, AVanishedPeerIsAWriteErrorAndTheThreadIsLeftAsFound) {
  ASSERT_EQ(::signal(SIGPIPE, SIG_DFL), SIG_DFL);  // SIGPIPE would kill us
  const std::string directory = testing::MakeShortTempDir();
  SocketServerOptions options;
  options.send_buffer_bytes = 4096;
  ASSERT_OK_AND_ASSIGN(server, UvServer::Create(options));
  ListenerConfig unix_socket;
  unix_socket.endpoint = Endpoint::Unix(directory + "/uv.sock");
  ASSERT_OK_AND_ASSIGN(bound, server->Listen(unix_socket));

  bool sigpipe_blocked_after = true;
  bool sigpipe_pending_after = true;
  absl::Status run_status;
  std::thread loop([&] {
    run_status = server->Run();
    sigset_t mask, pending;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    sigpending(&pending);
    sigpipe_blocked_after = sigismember(&mask, SIGPIPE);
    sigpipe_pending_after = sigismember(&pending, SIGPIPE);
  });
  {
    WireClient watcher = GreetedClient(bound, "watcher");
    ASSERT_TRUE(watcher.Subscribe(sys_topics::kConnectionRemoved).ok());
    WireClient leaver =
        GreetedClient(bound, "leaver", /*receive_buffer_bytes=*/4096);
    ASSERT_TRUE(leaver.Subscribe("flood").ok());
    WireClient publisher = GreetedClient(bound, "pub");
    ASSERT_OK_AND_ASSIGN(
        ack, publisher.PublishAcked("flood", PatternPayload(1 << 20, 5)));
    ASSERT_EQ(ack.ack().delivered(), 1u);
    // A round trip later the leaver's socket is full and the rest of the
    // message waits to be written.
    ASSERT_TRUE(publisher.Ping().ok());
    leaver.Close();  // a Unix socket's writer then gets EPIPE and SIGPIPE

    // The broker saw the failed write and ended that connection alone.
    ASSERT_OK_AND_ASSIGN(event, watcher.ReceiveSkippingPings());
    wire::BrokerEvent removed;
    ASSERT_TRUE(removed.ParseFromString(event.deliver().payload()));
    EXPECT_EQ(removed.connection_removed().client_name(), "leaver")
        << removed.ShortDebugString();
    EXPECT_TRUE(publisher.Ping().ok());  // still serving
  }
  server->RequestShutdown();
  loop.join();
  EXPECT_TRUE(run_status.ok()) << run_status;
  EXPECT_FALSE(sigpipe_blocked_after);
  EXPECT_FALSE(sigpipe_pending_after);
  EXPECT_EQ(server->driver().orphaned_write_count(), 0u);
  server.reset();
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace manifold
