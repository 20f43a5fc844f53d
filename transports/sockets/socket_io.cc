#include "transports/sockets/socket_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace manifold {
namespace {

// iovecs for one sendmsg() call, on the stack.
constexpr size_t kMaxIovecs = 64;

}  // namespace

absl::Status ErrnoStatus(int error, absl::string_view what) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(error));
  switch (error) {
    case ECONNRESET:
    case EPIPE:
    case ECONNREFUSED:
    case ECONNABORTED:
    case ENOTCONN:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
      return absl::UnavailableError(message);
    case EADDRINUSE:
      return absl::AlreadyExistsError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      return absl::ResourceExhaustedError(message);
    case EADDRNOTAVAIL:
    case EINVAL:
      return absl::InvalidArgumentError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    default:
      return absl::InternalError(message);
  }
}

ReadResult ReadSome(int fd, absl::Span<char> buffer) {
  ReadResult result;
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) {
      result.kind = ReadResult::kData;
      result.bytes = static_cast<size_t>(n);
      return result;
    }
    if (n == 0) {
      result.kind = ReadResult::kEnd;
      return result;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      result.kind = ReadResult::kWouldBlock;
      return result;
    }
    result.kind = ReadResult::kError;
    result.error = ErrnoStatus(errno, "read");
    return result;
  }
}

absl::StatusOr<size_t> WriteSome(int fd,
                                 absl::Span<const absl::string_view> chunks) {
  iovec iov[kMaxIovecs];
  const size_t count = std::min(chunks.size(), kMaxIovecs);
  for (size_t i = 0; i < count; ++i) {
    iov[i].iov_base = const_cast<char*>(chunks[i].data());
    iov[i].iov_len = chunks[i].size();
  }
  msghdr message{};
  message.msg_iov = iov;
  message.msg_iovlen = count;
  while (true) {
    const ssize_t n = ::sendmsg(fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return ErrnoStatus(errno, "write");
  }
}

absl::Status SendAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "send");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return ErrnoStatus(errno, "fcntl(O_NONBLOCK)");
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> ConnectStream(const Endpoint& endpoint,
                                       absl::Duration timeout) {
  absl::StatusOr<SocketAddress> address = Resolve(endpoint);
  if (!address.ok()) return address.status();
  UniqueFd fd(
      ::socket(address->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  const std::string what = absl::StrCat("connect to ", endpoint.ToString());
  if (::connect(fd.get(), address->get(), address->length) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN)
      return ErrnoStatus(errno, what);
    // Wait for the outcome, then read it from SO_ERROR.
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      pollfd p{fd.get(), POLLOUT, 0};
      const int64_t wait_ms = std::max<int64_t>(
          0, absl::ToInt64Milliseconds(deadline - absl::Now()));
      const int ready = ::poll(&p, 1, static_cast<int>(wait_ms));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return ErrnoStatus(errno, what);
      if (ready == 0) return ErrnoStatus(ETIMEDOUT, what);
      break;
    }
    int error = 0;
    socklen_t length = sizeof(error);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) return ErrnoStatus(error, what);
  }
  const int flags = fcntl(fd.get(), F_GETFL);
  fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  if (address->family != AF_UNIX) {
    const int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return fd;
}

}  // namespace manifold
