// RedisClusterLink's setup: Redis addresses as operators write them, and the
// options it refuses before anything connects.

#include "transports/cluster/redis_cluster_link.h"

#include <signal.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/transports/testing/event_loop_params.h"
#include "tests/transports/testing/free_port.h"
#include "transports/loops/event_loops.h"
#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

using ::testing::HasSubstr;

TEST(ParseRedisUrlTest, HostsPortsAndTheDefaultPort) {
  absl::StatusOr<Endpoint> plain = ParseRedisUrl("redis://127.0.0.1:7000");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, 7000);
  absl::StatusOr<Endpoint> named = ParseRedisUrl("redis://cache.internal/");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->host, "cache.internal");
  EXPECT_EQ(named->port, 6379);
  absl::StatusOr<Endpoint> v6 = ParseRedisUrl("redis://[::1]:7001");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7001);
  EXPECT_EQ(RedisUrl(*v6), "redis://[::1]:7001");
  EXPECT_EQ(RedisUrl(*plain), "redis://127.0.0.1:7000");
}

TEST(ParseRedisUrlTest, RefusesWhatTheClusterDoesNotUse) {
  EXPECT_THAT(ParseRedisUrl("127.0.0.1:6379").status().message(),
              HasSubstr("is not redis://HOST:PORT"));
  EXPECT_THAT(ParseRedisUrl("rediss://h:1").status().message(),
              HasSubstr("is not redis://HOST:PORT"));
  EXPECT_THAT(ParseRedisUrl("redis://user:pw@h:1").status().message(),
              HasSubstr("credentials"));
  EXPECT_THAT(ParseRedisUrl("redis://h:1/2").status().message(),
              HasSubstr("database number"));
  EXPECT_THAT(ParseRedisUrl("redis://h:0").status().message(),
              HasSubstr("port '0' is not 1 to 65535"));
  EXPECT_THAT(ParseRedisUrl("redis://h:x").status().message(),
              HasSubstr("port 'x'"));
  EXPECT_THAT(ParseRedisUrl("redis://:1").status().message(),
              HasSubstr("has no host"));
  EXPECT_THAT(ParseRedisUrl("redis://[::1").status().message(),
              HasSubstr("unclosed '['"));
}

TEST(RedisClusterLinkTest, RefusesBadOptionsBeforeConnecting) {
  absl::StatusOr<std::unique_ptr<SocketServer>> server =
      MakeSocketServer("epoll", SocketServerOptions());
  ASSERT_TRUE(server.ok()) << server.status();
  RedisClusterLinkOptions options;
  options.redis = Endpoint::Tcp("127.0.0.1", 6379);
  options.cluster.node = "bad name";
  absl::StatusOr<std::unique_ptr<RedisClusterLink>> link =
      RedisClusterLink::Create(**server, options);
  EXPECT_TRUE(absl::IsInvalidArgument(link.status())) << link.status();
  options.cluster.node = "n1";
  options.redis = Endpoint::Unix("/tmp/redis.sock");
  EXPECT_THAT(RedisClusterLink::Create(**server, options).status().message(),
              HasSubstr("TCP"));
  options.redis = Endpoint::Tcp("no-such-host.invalid", 6379);
  link = RedisClusterLink::Create(**server, options);
  EXPECT_TRUE(absl::IsInvalidArgument(link.status())) << link.status();
  EXPECT_THAT(link.status().message(),
              HasSubstr("redis://no-such-host.invalid:6379"));
}

constexpr char kRedisServer[] = "/usr/bin/redis-server";

// The link on each loop, in this process, against a real redis-server that
// is missing at first, comes up, and is killed.
class RedisClusterLinkLoopTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (::access(kRedisServer, X_OK) != 0) {
      GTEST_SKIP() << "needs " << kRedisServer << " (redis-server)";
    }
  }
  // Waits until a notice containing `text` came, `times` times in all.
  bool WaitForNotice(absl::string_view text, int times = 1) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (Notices(text) >= times) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
  int Notices(absl::string_view text) {
    std::lock_guard<std::mutex> lock(mutex_);
    int n = 0;
    for (const std::string& line : notices_) n += absl::StrContains(line, text);
    return n;
  }
  std::string AllNotices() {
    std::lock_guard<std::mutex> lock(mutex_);
    return absl::StrJoin(notices_, "\n");
  }

  std::mutex mutex_;
  std::vector<std::string> notices_;
};

INSTANTIATE_TEST_SUITE_P(Loops, RedisClusterLinkLoopTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

TEST_P(RedisClusterLinkLoopTest, WaitsForRedisJoinsAndNoticesTheLoss) {
  const uint16_t port = testing::FreeLoopbackPort();
  absl::StatusOr<std::unique_ptr<SocketServer>> server =
      MakeSocketServer(GetParam(), SocketServerOptions());
  ASSERT_TRUE(server.ok()) << server.status();
  RedisClusterLinkOptions options;
  options.redis = Endpoint::Tcp("127.0.0.1", port);
  options.cluster.node = "n1";
  options.cluster.incarnation = 1;
  options.notify = [this](absl::string_view line) {
    std::lock_guard<std::mutex> lock(mutex_);
    notices_.emplace_back(line);
  };
  absl::StatusOr<std::unique_ptr<RedisClusterLink>> link =
      RedisClusterLink::Create(**server, options);
  ASSERT_TRUE(link.ok()) << link.status();
  absl::Status run;
  std::thread loop([&] { run = (*server)->Run(); });

  ASSERT_TRUE(WaitForNotice("unreachable")) << AllNotices();
  absl::SleepFor(absl::Milliseconds(500));  // retries, quietly
  EXPECT_EQ(Notices("unreachable"), 1) << AllNotices();
  EXPECT_EQ(AllNotices(),
            absl::StrCat("cluster: redis://127.0.0.1:", port,
                         " unreachable (connect: Connection refused); serving "
                         "local clients, joining when it is up"));

  absl::StatusOr<std::unique_ptr<testing::ChildProcess>> redis =
      testing::ChildProcess::Start(
          kRedisServer, {"--port", absl::StrCat(port), "--bind", "127.0.0.1",
                         "--save", "", "--appendonly", "no"});
  ASSERT_TRUE(redis.ok()) << redis.status();
  EXPECT_TRUE(WaitForNotice("cluster: joined")) << AllNotices();
  EXPECT_THAT(AllNotices(),
              HasSubstr(absl::StrCat("cluster: joined redis://127.0.0.1:", port,
                                     " as node n1")));
  (*redis)->Signal(SIGKILL).IgnoreError();
  (*redis)->Wait(absl::Seconds(5)).IgnoreError();
  EXPECT_TRUE(WaitForNotice("cluster: lost")) << AllNotices();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(Notices("cluster: lost"), 1) << AllNotices();

  (*server)->RequestShutdown();
  loop.join();
  EXPECT_TRUE(run.ok()) << run;
  link->reset();
}

}  // namespace
}  // namespace manifold
