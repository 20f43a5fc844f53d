// ListenSocket on real loopback TCP and Unix sockets.

#include "transports/sockets/listen_socket.h"

#include <filesystem>
#include <optional>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

TEST(ListenSocketTest, PortZeroBindsAFreePortAndAcceptsFromIt) {
  absl::StatusOr<ListenSocket> listener =
      ListenSocket::Open(Endpoint::Tcp("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_NE(listener->endpoint().port, 0);

  absl::StatusOr<std::optional<ListenSocket::Accepted>> none =
      listener->Accept();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  absl::StatusOr<UniqueFd> client = ConnectStream(listener->endpoint());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::optional<ListenSocket::Accepted>> accepted =
      listener->Accept();
  ASSERT_TRUE(accepted.ok());
  ASSERT_TRUE(accepted->has_value());
  EXPECT_TRUE(absl::StartsWith((*accepted)->peer, "127.0.0.1:"));
}

TEST(ListenSocketTest, UnixSocketFileLivesAsLongAsTheListener) {
  const std::string directory = testing::MakeShortTempDir();
  const std::string path = directory + "/a.sock";
  {
    absl::StatusOr<ListenSocket> listener =
        ListenSocket::Open(Endpoint::Unix(path));
    ASSERT_TRUE(listener.ok()) << listener.status();
    ListenSocket moved = *std::move(listener);  // moving keeps the file
    EXPECT_TRUE(std::filesystem::exists(path));
    absl::StatusOr<UniqueFd> client = ConnectStream(Endpoint::Unix(path));
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<std::optional<ListenSocket::Accepted>> accepted =
        moved.Accept();
    ASSERT_TRUE(accepted.ok() && accepted->has_value());
    EXPECT_EQ((*accepted)->peer, "unix:" + path);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  std::filesystem::remove_all(directory);
}

TEST(ListenSocketTest, UnixPathTooLongIsNamedInTheError) {
  const std::string path = "/tmp/" + std::string(120, 'x');
  absl::StatusOr<ListenSocket> listener =
      ListenSocket::Open(Endpoint::Unix(path));
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(listener.status().message(),
                               "cannot listen on " + path + ": "))
      << listener.status();
}

}  // namespace
}  // namespace manifold
