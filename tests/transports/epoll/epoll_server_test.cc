// What only the epoll adapter does, over real loopback sockets. Everything a
// client can see is the same on every loop and is tested once for all of them
// in tests/transports/sockets/socket_server_test.cc; this file covers the
// readiness-based write path: sendmsg() straight from the connection's output
// until the socket refuses, then again when epoll says it is writable.

#include "transports/epoll/epoll_server.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
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

TEST(EpollServerTest, WritesStraightFromTheOutputUntilTheSocketRefuses) {
  SocketServerOptions options;
  options.send_buffer_bytes = 4096;
  options.broker.set_max_payload_bytes(8 << 20);
  options.broker.set_max_frame_bytes(9 << 20);
  options.broker.set_max_outbound_bytes(32 << 20);
  ASSERT_OK_AND_ASSIGN(server, EpollServer::Create(options));
  EXPECT_EQ(server->loop_name(), "epoll");
  ListenerConfig tcp;
  tcp.endpoint = Endpoint::Tcp("127.0.0.1", 0);
  ASSERT_OK_AND_ASSIGN(bound, server->Listen(tcp));
  absl::Status run_status;
  std::thread loop([&] { run_status = server->Run(); });
  {
    WireClient subscriber =
        GreetedClient(bound, "slow", /*receive_buffer_bytes=*/4096);
    ASSERT_TRUE(subscriber.Subscribe("big").ok());
    WireClient publisher = GreetedClient(bound, "pub");
    const std::string payload = PatternPayload(4 << 20, 1);
    ASSERT_OK_AND_ASSIGN(ack, publisher.PublishAcked("big", payload));
    EXPECT_EQ(ack.ack().delivered(), 1u);
    // A round trip after the delivery: the turn that routed it has written
    // to the subscriber until its socket refused more, before anything is
    // read.
    ASSERT_TRUE(publisher.Ping().ok());
    ASSERT_OK_AND_ASSIGN(m, subscriber.Receive(absl::Seconds(20)));
    EXPECT_TRUE(m.deliver().payload() == payload) << "payload corrupted";
  }
  server->RequestShutdown();
  loop.join();
  EXPECT_TRUE(run_status.ok()) << run_status;
  const DriverStatistics& stats = server->driver().statistics();
  EXPECT_GT(stats.partial_writes, 10u);
  EXPECT_GT(stats.writes_blocked, 10u);  // each one waited for EPOLLOUT
  EXPECT_EQ(server->driver().orphaned_write_count(), 0u);
}

}  // namespace
}  // namespace manifold
