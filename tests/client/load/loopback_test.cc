// The load tool targets only this machine: loopback addresses and Unix
// sockets pass, anything else is refused before a connection is made.

#include "client/load/loopback.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "gtest/gtest.h"

namespace manifold::load {
namespace {

TEST(IsLoopbackTest, AcceptsTheWholeIpv4LoopbackNetwork) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(0x7f000001);  // 127.0.0.1
  EXPECT_TRUE(IsLoopback(reinterpret_cast<sockaddr*>(&in), sizeof(in)));
  in.sin_addr.s_addr = htonl(0x7f0a0b0c);  // 127.10.11.12
  EXPECT_TRUE(IsLoopback(reinterpret_cast<sockaddr*>(&in), sizeof(in)));
  in.sin_addr.s_addr = htonl(0x0a000001);  // 10.0.0.1
  EXPECT_FALSE(IsLoopback(reinterpret_cast<sockaddr*>(&in), sizeof(in)));
  in.sin_addr.s_addr = htonl(0);  // 0.0.0.0
  EXPECT_FALSE(IsLoopback(reinterpret_cast<sockaddr*>(&in), sizeof(in)));
}

TEST(IsLoopbackTest, AcceptsIpv6LoopbackAndMappedIpv4Loopback) {
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_addr = in6addr_loopback;
  EXPECT_TRUE(IsLoopback(reinterpret_cast<sockaddr*>(&in6), sizeof(in6)));
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr), 1);
  EXPECT_TRUE(IsLoopback(reinterpret_cast<sockaddr*>(&in6), sizeof(in6)));
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:10.0.0.1", &in6.sin6_addr), 1);
  EXPECT_FALSE(IsLoopback(reinterpret_cast<sockaddr*>(&in6), sizeof(in6)));
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr), 1);
  EXPECT_FALSE(IsLoopback(reinterpret_cast<sockaddr*>(&in6), sizeof(in6)));
}

TEST(IsLoopbackTest, AcceptsUnixSockets) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  EXPECT_TRUE(IsLoopback(reinterpret_cast<sockaddr*>(&un), sizeof(un)));
}

TEST(LoopbackEndpointTest, AcceptsLocalTargets) {
  for (const char* server : {"127.0.0.1:4222", "127.1.2.3:1", "[::1]:4222",
                             "localhost:4222", "unix:/tmp/manifold.sock"}) {
    absl::StatusOr<Endpoint> endpoint = LoopbackEndpoint(server);
    EXPECT_TRUE(endpoint.ok()) << server << ": " << endpoint.status();
  }
  EXPECT_EQ(LoopbackEndpoint("unix:/tmp/m.sock")->kind, Endpoint::Kind::kUnix);
  EXPECT_EQ(LoopbackEndpoint("127.0.0.1:4222")->port, 4222);
}

TEST(LoopbackEndpointTest, RefusesOtherHostsWithPermissionDenied) {
  for (const char* server :
       {"10.0.0.1:4222", "192.168.1.1:4222", "8.8.8.8:53", "0.0.0.0:4222",
        ":4222" /* every interface */, "[2001:db8::1]:4222"}) {
    absl::StatusOr<Endpoint> endpoint = LoopbackEndpoint(server);
    EXPECT_TRUE(absl::IsPermissionDenied(endpoint.status()))
        << server << ": " << endpoint.status();
  }
  EXPECT_NE(LoopbackEndpoint("10.0.0.1:4222")
                .status()
                .message()
                .find("not a loopback address"),
            absl::string_view::npos);
}

TEST(LoopbackEndpointTest, RefusesTextThatNamesNoServer) {
  for (const char* server :
       {"127.0.0.1", "127.0.0.1:0", "unix:", "127.0.0.1:99999", "a:b:c"}) {
    absl::StatusOr<Endpoint> endpoint = LoopbackEndpoint(server);
    EXPECT_TRUE(absl::IsInvalidArgument(endpoint.status()))
        << server << ": " << endpoint.status();
  }
}

}  // namespace
}  // namespace manifold::load
