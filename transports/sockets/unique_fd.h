// File: transports/sockets/unique_fd.h
// -----------------------------------------------------------------------------
//
// Sole ownership of a file descriptor: closed when the owner goes away, moved
// never copied.
//
// Example:
//
//   UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
//   if (!fd.valid()) return ErrnoStatus(errno, "socket");
//   Use(fd.get());
//   int raw = fd.release();   // the caller now closes it

#ifndef MANIFOLD_TRANSPORTS_SOCKETS_UNIQUE_FD_H_
#define MANIFOLD_TRANSPORTS_SOCKETS_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace manifold {

class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of `fd` (-1 for none).
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Gives up ownership and returns the descriptor.
  int release() { return std::exchange(fd_, -1); }

  // Closes the held descriptor (if any) and takes `fd`.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_SOCKETS_UNIQUE_FD_H_
