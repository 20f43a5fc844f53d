#include "transports/sockets/listen_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

// Decides what to do about an existing file at a Unix socket path: remove it
// if it is a socket nobody accepts on, refuse otherwise.
absl::Status ClearStaleSocketFile(const Endpoint& endpoint,
                                  const SocketAddress& address,
                                  absl::string_view what) {
  struct stat info;
  if (::lstat(endpoint.path.c_str(), &info) != 0) {
    return errno == ENOENT ? absl::OkStatus() : ErrnoStatus(errno, what);
  }
  if (!S_ISSOCK(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": the path exists and is not a socket"));
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return ErrnoStatus(errno, what);
  if (::connect(probe.get(), address.get(), address.length) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(what, ": another process is listening there"));
  }
  if (errno != ECONNREFUSED) return ErrnoStatus(errno, what);
  if (::unlink(endpoint.path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat(what, ": removing a stale socket"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ListenSocket> ListenSocket::Open(const Endpoint& endpoint,
                                                int backlog) {
  const std::string what =
      absl::StrCat("cannot listen on ", endpoint.ToString());
  absl::StatusOr<SocketAddress> address = Resolve(endpoint);
  if (!address.ok()) {
    return absl::Status(address.status().code(),
                        absl::StrCat(what, ": ", address.status().message()));
  }
  if (endpoint.kind == Endpoint::Kind::kUnix) {
    absl::Status cleared = ClearStaleSocketFile(endpoint, *address, what);
    if (!cleared.ok()) return cleared;
  }
  UniqueFd fd(
      ::socket(address->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, what);
  if (endpoint.kind == Endpoint::Kind::kTcp) {
    const int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (address->family == AF_INET6) {
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
  }
  if (::bind(fd.get(), address->get(), address->length) != 0 ||
      ::listen(fd.get(), backlog) != 0) {
    return ErrnoStatus(errno, what);
  }

  Endpoint bound = endpoint;
  if (endpoint.kind == Endpoint::Kind::kTcp) {
    sockaddr_storage storage{};
    socklen_t length = sizeof(storage);
    if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&storage), &length) ==
        0) {
      bound.port =
          ntohs(storage.ss_family == AF_INET6
                    ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    }
  }
  ListenSocket socket(std::move(fd), std::move(bound),
                      UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
  if (endpoint.kind == Endpoint::Kind::kUnix) {
    struct stat info;
    if (::lstat(endpoint.path.c_str(), &info) == 0) {
      socket.file_device_ = info.st_dev;
      socket.file_inode_ = info.st_ino;
      socket.owns_file_ = true;
    }
  }
  return socket;
}

ListenSocket::ListenSocket(UniqueFd fd, Endpoint endpoint, UniqueFd reserve)
    : fd_(std::move(fd)),
      endpoint_(std::move(endpoint)),
      reserve_(std::move(reserve)) {}

ListenSocket::ListenSocket(ListenSocket&& other) noexcept
    : fd_(std::move(other.fd_)),
      endpoint_(std::move(other.endpoint_)),
      reserve_(std::move(other.reserve_)),
      file_device_(other.file_device_),
      file_inode_(other.file_inode_),
      owns_file_(std::exchange(other.owns_file_, false)) {}

ListenSocket& ListenSocket::operator=(ListenSocket&& other) noexcept {
  if (this != &other) {
    RemoveSocketFile();
    fd_ = std::move(other.fd_);
    endpoint_ = std::move(other.endpoint_);
    reserve_ = std::move(other.reserve_);
    file_device_ = other.file_device_;
    file_inode_ = other.file_inode_;
    owns_file_ = std::exchange(other.owns_file_, false);
  }
  return *this;
}

ListenSocket::~ListenSocket() { RemoveSocketFile(); }

void ListenSocket::RemoveSocketFile() {
  if (!owns_file_) return;
  owns_file_ = false;
  // Another broker may have replaced the file since; leave that one alone.
  struct stat info;
  if (::lstat(endpoint_.path.c_str(), &info) == 0 &&
      info.st_dev == file_device_ && info.st_ino == file_inode_) {
    ::unlink(endpoint_.path.c_str());
  }
}

absl::StatusOr<std::optional<ListenSocket::Accepted>> ListenSocket::Accept() {
  while (true) {
    sockaddr_storage storage{};
    socklen_t length = sizeof(storage);
    const int fd = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&storage),
                             &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      Accepted accepted;
      accepted.fd.reset(fd);
      if (endpoint_.kind == Endpoint::Kind::kTcp) {
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        accepted.peer =
            FormatSocketAddress(reinterpret_cast<sockaddr*>(&storage), length);
      } else {
        accepted.peer = absl::StrCat("unix:", endpoint_.path);
      }
      return std::optional<Accepted>(std::move(accepted));
    }
    switch (errno) {
      case EINTR:
      case ECONNABORTED:  // the peer gave up while queued: take the next one
        continue;
      case EAGAIN:
        return std::optional<Accepted>();
      case EMFILE:
      case ENFILE: {
        const int error = errno;
        if (reserve_.valid()) {
          reserve_.reset();
          const int dropped =
              ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
          if (dropped >= 0) ::close(dropped);
          reserve_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        }
        return ErrnoStatus(error,
                           absl::StrCat("accept on ", endpoint_.ToString(),
                                        " (connection dropped)"));
      }
      default:
        return ErrnoStatus(errno,
                           absl::StrCat("accept on ", endpoint_.ToString()));
    }
  }
}

}  // namespace manifold
