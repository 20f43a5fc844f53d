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
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/transports/testing/vanished_peer.h"

namespace manifold {
namespace {

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
  // A Unix socket's writer gets EPIPE and SIGPIPE.
  testing::ExpectAVanishedPeerEndsOnlyItsConnection(/*leaver_at=*/bound,
                                                    /*others_at=*/bound);
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
