#include "tests/e2e/testing/nats_line_client.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/sockets/socket_io.h"

namespace manifold::testing {

absl::StatusOr<NatsLineClient> NatsLineClient::Connect(
    const Endpoint& endpoint) {
  absl::StatusOr<UniqueFd> fd = ConnectStream(endpoint);
  if (!fd.ok()) return fd.status();
  NatsLineClient client(*std::move(fd));
  absl::StatusOr<std::string> info = client.ReadLine();
  if (!info.ok()) return info.status();
  client.info_ = *std::move(info);
  return client;
}

absl::Status NatsLineClient::Send(absl::string_view bytes) {
  return SendAll(fd_.get(), bytes);
}

absl::StatusOr<std::string> NatsLineClient::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  char chunk[16 * 1024];
  while (true) {
    if (const size_t end = buffer_.find("\r\n"); end != std::string::npos) {
      std::string line = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      return line;
    }
    if (closed_)
      return absl::UnavailableError("the broker closed the connection");
    const int64_t wait_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait_ms <= 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("no line within ", absl::FormatDuration(timeout)));
    }
    pollfd p{fd_.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(wait_ms));
    if (ready <= 0) continue;
    const ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      closed_ = true;  // end of stream, or a reset after the last bytes
    }
  }
}

absl::StatusOr<std::vector<std::string>> NatsLineClient::ReadUntilClosed(
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<std::string> lines;
  while (true) {
    absl::StatusOr<std::string> line =
        ReadLine(std::max(deadline - absl::Now(), absl::ZeroDuration()));
    if (line.ok()) {
      lines.push_back(*std::move(line));
    } else if (absl::IsUnavailable(line.status())) {
      return lines;
    } else {
      return line.status();
    }
  }
}

}  // namespace manifold::testing
