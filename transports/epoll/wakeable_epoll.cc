#include "transports/epoll/wakeable_epoll.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

absl::Status Control(int epoll_fd, int op, int fd, uint32_t events,
                     uint64_t token) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = token;
  if (::epoll_ctl(epoll_fd, op, fd, &event) != 0) {
    return ErrnoStatus(errno, "epoll_ctl");
  }
  return absl::OkStatus();
}

absl::Status ReservedTokenError() {
  return absl::InvalidArgumentError(
      "epoll token ~0 is reserved for the wake-up descriptor");
}

}  // namespace

absl::StatusOr<WakeableEpoll> WakeableEpoll::Create() {
  UniqueFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd.valid()) return ErrnoStatus(errno, "epoll_create1");
  UniqueFd wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd.valid()) return ErrnoStatus(errno, "eventfd");
  if (absl::Status s = Control(epoll_fd.get(), EPOLL_CTL_ADD, wake_fd.get(),
                               EPOLLIN, kWakeToken);
      !s.ok()) {
    return s;
  }
  return WakeableEpoll(std::move(epoll_fd), std::move(wake_fd));
}

absl::Status WakeableEpoll::Add(int fd, uint32_t events, uint64_t token) {
  if (token == kWakeToken) return ReservedTokenError();
  return Control(epoll_fd_.get(), EPOLL_CTL_ADD, fd, events, token);
}

absl::Status WakeableEpoll::Modify(int fd, uint32_t events, uint64_t token) {
  if (token == kWakeToken) return ReservedTokenError();
  return Control(epoll_fd_.get(), EPOLL_CTL_MOD, fd, events, token);
}

absl::Status WakeableEpoll::Remove(int fd) {
  return Control(epoll_fd_.get(), EPOLL_CTL_DEL, fd, 0, 0);
}

absl::StatusOr<int> WakeableEpoll::Wait(absl::Span<epoll_event> events,
                                        int timeout_ms) {
  const int n = ::epoll_wait(epoll_fd_.get(), events.data(),
                             static_cast<int>(events.size()), timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    return ErrnoStatus(errno, "epoll_wait");
  }
  // Drop the wake-up, keeping the others in order.
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == kWakeToken) {
      uint64_t count;
      [[maybe_unused]] ssize_t ignored =
          ::read(wake_fd_.get(), &count, sizeof(count));
      continue;
    }
    events[kept++] = events[i];
  }
  return kept;
}

void WakeableEpoll::Wake() const {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(wake_fd_.get(), &one, sizeof(one));
}

}  // namespace manifold
