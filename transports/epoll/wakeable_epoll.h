// File: transports/epoll/wakeable_epoll.h
// -----------------------------------------------------------------------------
//
// An epoll instance that another thread, or a signal handler, can wake: the
// epoll descriptor plus an eventfd registered in it. The loops built on epoll
// (EpollServer, the load generator's LoadLoop) all need this pair; this class
// sets it up once, consumes wake-ups itself, and tags every other descriptor
// with a caller-chosen 64-bit token (epoll_event.data.u64).
//
// Example:
//
//   absl::StatusOr<WakeableEpoll> epoll = WakeableEpoll::Create();
//   if (!epoll.ok()) return epoll.status();
//   epoll->Add(socket_fd, EPOLLIN, /*token=*/7);
//   epoll_event events[64];
//   absl::StatusOr<int> n = epoll->Wait(absl::MakeSpan(events), timeout_ms);
//   for (int i = 0; i < *n; ++i) Handle(events[i].data.u64, events[i].events);
//
//   // On another thread: make that Wait() return now.
//   epoll->Wake();
//
// Thread safety: Wake() may be called from any thread and from a signal
// handler; everything else belongs to the thread that runs the loop.

#ifndef MANIFOLD_TRANSPORTS_EPOLL_WAKEABLE_EPOLL_H_
#define MANIFOLD_TRANSPORTS_EPOLL_WAKEABLE_EPOLL_H_

#include <sys/epoll.h>

#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {

class WakeableEpoll {
 public:
  // The token of the wake-up descriptor. Callers must not use it.
  static constexpr uint64_t kWakeToken = ~uint64_t{0};

  // Creates the epoll instance and the eventfd, both close-on-exec. Returns
  // the kernel's error ("epoll_create1: ...", "eventfd: ...") if it refuses.
  static absl::StatusOr<WakeableEpoll> Create();

  WakeableEpoll(WakeableEpoll&&) = default;
  WakeableEpoll& operator=(WakeableEpoll&&) = default;

  // Starts watching `fd` for `events` (EPOLLIN, EPOLLOUT, EPOLLET, ...);
  // its events carry `token`. The caller keeps owning `fd`; closing it stops
  // the watch. Returns INVALID_ARGUMENT for token == kWakeToken, else the
  // epoll_ctl error, if any.
  absl::Status Add(int fd, uint32_t events, uint64_t token);

  // Changes what `fd` (already added) is watched for, and its token; `events`
  // 0 pauses it. Errors as for Add().
  absl::Status Modify(int fd, uint32_t events, uint64_t token);

  // Stops watching `fd` (before it is closed while others may hold it).
  // Returns the epoll_ctl error, if any.
  absl::Status Remove(int fd);

  // Waits at most `timeout_ms` milliseconds (-1: no limit, 0: do not block)
  // for events and stores them at the front of `events`. Returns how many
  // were stored. A Wake() ends the wait and is consumed here, so it is not
  // among them; an interrupted wait (EINTR) also returns 0.
  // REQUIRES: !events.empty().
  absl::StatusOr<int> Wait(absl::Span<epoll_event> events, int timeout_ms);

  // Ends the current Wait(), or the next one if none is waiting.
  // Async-signal-safe: one write() to the eventfd.
  void Wake() const;

 private:
  WakeableEpoll(UniqueFd epoll_fd, UniqueFd wake_fd)
      : epoll_fd_(std::move(epoll_fd)), wake_fd_(std::move(wake_fd)) {}

  UniqueFd epoll_fd_;
  UniqueFd wake_fd_;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_EPOLL_WAKEABLE_EPOLL_H_
