// HttpLink against a bare loopback socket playing the server: a POST goes out
// with its Content-Length and cookie, the answer is read whole, and a server
// that closes the connection after answering (Connection: close) gets a new
// connection with the next POST.

#include "client/load/http_link.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "transports/sockets/endpoint.h"

namespace manifold::load {
namespace {

// Reads one request (headers and a Content-Length body) from `fd`.
std::string ReadRequest(int fd) {
  std::string in;
  char buffer[4096];
  while (true) {
    const size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      const size_t at = in.find("Content-Length: ");
      const size_t length =
          at == std::string::npos ? 0 : std::stoul(in.substr(at + 16));
      if (in.size() >= end + 4 + length) return in;
    }
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) return in;
    in.append(buffer, static_cast<size_t>(n));
  }
}

TEST(HttpLinkTest, PostsReadsAndReconnectsAfterConnectionClose) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(
      ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
      0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length),
      0);
  absl::StatusOr<Endpoint> endpoint =
      ParseTcpEndpoint(absl::StrCat("127.0.0.1:", ntohs(address.sin_port)));
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();

  // Two connections, one request each; the first is closed after its answer.
  std::vector<std::string> requests;
  std::thread server([&] {
    for (int k = 0; k < 2; ++k) {
      const int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      requests.push_back(ReadRequest(fd));
      const std::string body = absl::StrCat("[", k, "]");
      const std::string answer = absl::StrCat(
          "HTTP/1.1 200 OK\r\nContent-Length: ", body.size(), "\r\n",
          k == 0 ? "Set-Cookie: B=1; Path=/\r\nConnection: close\r\n" : "",
          "\r\n", body);
      (void)!::write(fd, answer.data(), answer.size());
      ::close(fd);
    }
  });

  absl::StatusOr<std::unique_ptr<HttpLink>> link =
      HttpLink::Open(*endpoint, "bench-test", absl::Seconds(5));
  ASSERT_TRUE(link.ok()) << link.status();
  ASSERT_TRUE((*link)->Post("/cometd/handshake", "", "[{}]").ok());
  EXPECT_TRUE((*link)->busy());
  ASSERT_TRUE((*link)->Exchange(absl::Now() + absl::Seconds(5)).ok());
  EXPECT_FALSE((*link)->busy());
  EXPECT_EQ((*link)->response().body(), "[0]");
  EXPECT_EQ((*link)->response().set_cookie(), "B=1");
  EXPECT_FALSE((*link)->response().keep_alive());

  ASSERT_TRUE((*link)->Post("/cometd/connect", "B=1", "[1]").ok());
  absl::Status second = (*link)->Exchange(absl::Now() + absl::Seconds(5));
  server.join();
  ::close(listener);
  ASSERT_TRUE(second.ok()) << second;
  EXPECT_EQ((*link)->response().body(), "[1]");

  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(requests[0], "POST /cometd/handshake HTTP/1.1"))
      << requests[0];
  EXPECT_TRUE(absl::StrContains(requests[0], "Content-Length: 4\r\n"));
  EXPECT_TRUE(absl::EndsWith(requests[0], "\r\n\r\n[{}]"));
  EXPECT_FALSE(absl::StrContains(requests[0], "Cookie:"));
  EXPECT_TRUE(absl::StartsWith(requests[1], "POST /cometd/connect HTTP/1.1"));
  EXPECT_TRUE(absl::StrContains(requests[1], "Cookie: B=1\r\n"));
}

}  // namespace
}  // namespace manifold::load
