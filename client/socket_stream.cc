#include "client/socket_stream.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace manifold {
namespace {

constexpr absl::string_view kUnixPrefix = "unix:";
constexpr size_t kReadChunk = 64 * 1024;

std::string ErrnoText(int error) { return std::strerror(error); }

// Milliseconds from now until `deadline`, for poll(): 0 when it has passed,
// -1 when there is none.
int PollTimeout(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  // Round up so that a wait never ends just short of the deadline.
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(left + absl::Milliseconds(1) -
                                                  absl::Nanoseconds(1)),
                        1 << 30));
}

class SocketStream : public ByteStream {
 public:
  SocketStream(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {}
  ~SocketStream() override {
    Close();
    ::close(fd_);
  }

  absl::Status Write(absl::string_view bytes) override {
    while (!bytes.empty()) {
      if (closed_.load()) return Closed();
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return absl::UnavailableError(
            absl::StrCat("writing to ", peer_, " failed: ", ErrnoText(errno)));
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Read(absl::Time deadline) override {
    while (true) {
      if (closed_.load()) return Closed();
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, PollTimeout(deadline));
      if (ready < 0) {
        if (errno == EINTR) continue;
        return absl::UnavailableError(
            absl::StrCat("waiting for ", peer_, " failed: ", ErrnoText(errno)));
      }
      if (ready == 0) {
        if (absl::Now() >= deadline) return std::string();
        continue;
      }
      std::string buffer(kReadChunk, '\0');
      const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return absl::UnavailableError(absl::StrCat(
            "reading from ", peer_, " failed: ", ErrnoText(errno)));
      }
      if (n == 0) {
        if (closed_.load()) return Closed();
        return absl::UnavailableError(
            absl::StrCat(peer_, " closed the connection"));
      }
      buffer.resize(static_cast<size_t>(n));
      return buffer;
    }
  }

  void Close() override {
    // shutdown() wakes a thread blocked in poll/recv/send on this socket; the
    // descriptor itself is released only in the destructor, so it cannot be
    // reused while another thread still uses the number.
    if (!closed_.exchange(true)) ::shutdown(fd_, SHUT_RDWR);
  }

  std::string peer() const override { return peer_; }

 private:
  absl::Status Closed() const {
    return absl::UnavailableError(
        absl::StrCat("the connection to ", peer_, " is closed"));
  }

  const int fd_;
  const std::string peer_;
  std::atomic<bool> closed_{false};
};

// Connects `fd` to `addr` without blocking past `deadline`, then makes the
// socket blocking again. Returns 0 or an errno value (ETIMEDOUT at the
// deadline).
int ConnectWithDeadline(int fd, const sockaddr* addr, socklen_t len,
                        absl::Time deadline) {
  const int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int error = 0;
  if (::connect(fd, addr, len) != 0) {
    error = errno;
    if (error == EINPROGRESS || error == EINTR) {
      while (true) {
        pollfd p{fd, POLLOUT, 0};
        const int ready = ::poll(&p, 1, PollTimeout(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
          error = ready == 0 ? ETIMEDOUT : errno;
          break;
        }
        socklen_t size = sizeof(error);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
        break;
      }
    }
  }
  ::fcntl(fd, F_SETFL, flags);
  return error;
}

absl::Status ConnectFailed(absl::string_view address, int error,
                           absl::Duration timeout) {
  if (error == ETIMEDOUT) {
    return absl::DeadlineExceededError(
        absl::StrCat("connecting to ", address, " took longer than ",
                     absl::FormatDuration(timeout)));
  }
  return absl::UnavailableError(
      absl::StrCat("cannot connect to ", address, ": ", ErrnoText(error)));
}

absl::StatusOr<std::unique_ptr<ByteStream>> ConnectUnix(
    absl::string_view address, absl::Duration timeout) {
  const absl::string_view path = address.substr(kUnixPrefix.size());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid address '", address,
                                                   "': a Unix socket path "
                                                   "must be 1 to ",
                                                   sizeof(addr.sun_path) - 1,
                                                   " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create a socket for ", address, ": ", ErrnoText(errno)));
  }
  const int error =
      ConnectWithDeadline(fd, reinterpret_cast<const sockaddr*>(&addr),
                          sizeof(addr), absl::Now() + timeout);
  if (error != 0) {
    ::close(fd);
    return ConnectFailed(address, error, timeout);
  }
  return std::make_unique<SocketStream>(fd, std::string(address));
}

absl::StatusOr<std::unique_ptr<ByteStream>> ConnectTcp(
    absl::string_view address, absl::Duration timeout) {
  const size_t colon = address.rfind(':');
  absl::string_view host =
      colon == absl::string_view::npos ? "" : address.substr(0, colon);
  const absl::string_view port_text =
      colon == absl::string_view::npos ? "" : address.substr(colon + 1);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  if (host.empty() || !absl::SimpleAtoi(port_text, &port) || port <= 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid address '", address,
        "': expected HOST:PORT (e.g. 127.0.0.1:24387) or unix:/PATH"));
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* results = nullptr;
  const std::string host_string(host);
  const std::string port_string(port_text);
  if (int rc = ::getaddrinfo(host_string.c_str(), port_string.c_str(), &hints,
                             &results);
      rc != 0) {
    return absl::NotFoundError(absl::StrCat("cannot resolve '", host, "' in ",
                                            address, ": ", gai_strerror(rc)));
  }
  const absl::Time deadline = absl::Now() + timeout;
  int error = ECONNREFUSED;
  int fd = -1;
  for (addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                  ai->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    error = ConnectWithDeadline(fd, ai->ai_addr, ai->ai_addrlen, deadline);
    if (error == 0) break;
    ::close(fd);
    fd = -1;
    if (error == ETIMEDOUT) break;
  }
  ::freeaddrinfo(results);
  if (fd < 0) return ConnectFailed(address, error, timeout);
  // Frames are small and latency matters more than packet count.
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return std::make_unique<SocketStream>(fd, std::string(address));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ByteStream>> ConnectSocket(
    absl::string_view address, absl::Duration timeout) {
  if (absl::StartsWith(address, kUnixPrefix)) {
    return ConnectUnix(address, timeout);
  }
  return ConnectTcp(address, timeout);
}

}  // namespace manifold
