// RedisClusterLink's setup: Redis addresses as operators write them, and the
// options it refuses before anything connects.

#include "transports/cluster/redis_cluster_link.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transports/loops/event_loops.h"

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

}  // namespace
}  // namespace manifold
