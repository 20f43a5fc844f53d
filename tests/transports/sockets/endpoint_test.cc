// Parsing and printing the addresses a broker listens on.

#include "transports/sockets/endpoint.h"

#include "gtest/gtest.h"

namespace manifold {
namespace {

TEST(ParseTcpEndpointTest, AcceptsHostPortIpv6InBracketsAndABarePort) {
  absl::StatusOr<Endpoint> v4 = ParseTcpEndpoint("127.0.0.1:24387");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 24387);
  EXPECT_EQ(v4->ToString(), "127.0.0.1:24387");

  absl::StatusOr<Endpoint> v6 = ParseTcpEndpoint("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "[::1]:0");

  absl::StatusOr<Endpoint> any = ParseTcpEndpoint(":4222");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->ToString(), "0.0.0.0:4222");

  absl::StatusOr<Endpoint> named = ParseTcpEndpoint("localhost:1");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->host, "localhost");
}

TEST(ParseTcpEndpointTest, RejectsMalformedAddressesNamingTheProblem) {
  EXPECT_EQ(ParseTcpEndpoint("127.0.0.1").status().message(),
            "invalid address '127.0.0.1': expected HOST:PORT");
  EXPECT_EQ(ParseTcpEndpoint("host:70000").status().message(),
            "invalid address 'host:70000': the port must be a number from 0 "
            "to 65535");
  EXPECT_EQ(ParseTcpEndpoint("host:-1").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTcpEndpoint("host:").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTcpEndpoint("::1:80").status().message(),
            "invalid address '::1:80': write IPv6 addresses in brackets, e.g. "
            "[::1]:24387");
  EXPECT_EQ(ParseTcpEndpoint("[::1:80").status().message(),
            "invalid address '[::1:80': missing ']'");
  EXPECT_EQ(ParseTcpEndpoint("[::1]80").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ResolveTest, ResolvesNumericAndLocalNamesAndUnixPaths) {
  absl::StatusOr<SocketAddress> v4 = Resolve(Endpoint::Tcp("127.0.0.1", 80));
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ(FormatSocketAddress(v4->get(), v4->length), "127.0.0.1:80");

  absl::StatusOr<SocketAddress> unix_socket =
      Resolve(Endpoint::Unix("/tmp/m.sock"));
  ASSERT_TRUE(unix_socket.ok());
  EXPECT_EQ(unix_socket->family, AF_UNIX);
  EXPECT_EQ(FormatSocketAddress(unix_socket->get(), unix_socket->length),
            "unix:/tmp/m.sock");
}

TEST(ResolveTest, RejectsUnixPathsTooLongForTheKernel) {
  absl::StatusOr<SocketAddress> address =
      Resolve(Endpoint::Unix("/tmp/" + std::string(200, 'x')));
  EXPECT_EQ(address.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace manifold
