#include "transports/io_uring/io_uring_server.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "transports/io_uring/internal/buffer_ring.h"
#include "transports/io_uring/internal/ring.h"
#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

using io_uring_internal::BufferRing;
using io_uring_internal::Ring;

// Submission slots; the completion queue is eight times larger.
constexpr unsigned kRingEntries = 512;
// The receive buffer pool shared by every socket: 8 MiB, touched as used.
constexpr uint16_t kBufferGroup = 0;
constexpr unsigned kReceiveBuffers = 256;
constexpr size_t kReceiveBufferBytes = 32 * 1024;
static_assert(kReceiveBufferBytes <= BrokerDriver::kMaxReceiveBytes);
// Completions handled per batch, and batches per loop iteration before the
// driver gets a turn.
constexpr unsigned kCompletionBatch = 256;
constexpr int kBatchesPerTurn = 4;
// Input held for one socket (past its read budget) before its receive is
// cancelled, so that a fast sender waits in TCP, not in memory.
constexpr size_t kMaxHeldBytes = 4 * BrokerDriver::kReadBudgetBytes;
// How long a listener rests after accept failed.
constexpr absl::Duration kAcceptPause = absl::Milliseconds(100);
// How long a closed link's last send may run before it is cancelled.
constexpr absl::Duration kCloseLinger = absl::Seconds(1);
// How long the end of Run() waits for cancelled operations to complete.
constexpr absl::Duration kCancelWait = absl::Seconds(2);
// Unread input discarded before close(), so the peer gets a FIN rather than
// a reset (see EpollServer::Close).
constexpr size_t kMaxDrainOnClose = 256 * 1024;

// user_data: the operation in the top byte, a connection id or listener
// index below.
enum Op : uint64_t {
  kWake = 1,
  kAccept,
  kReceive,
  kSend,
  kCancelReceive,
  kCancelSend,
  kCancelOther,
  kPoll,
};
constexpr int kOpShift = 56;
constexpr uint64_t kValueMask = (uint64_t{1} << kOpShift) - 1;

uint64_t Tag(Op op, uint64_t value = 0) {
  return (uint64_t{op} << kOpShift) | value;
}

__kernel_timespec WaitTimespec(absl::Duration wait) {
  wait = std::max(wait, absl::ZeroDuration());
  // Round up to the microsecond: waking early would only spin.
  const int64_t micros =
      absl::ToInt64Microseconds(absl::Ceil(wait, absl::Microseconds(1)));
  __kernel_timespec ts{};
  ts.tv_sec = micros / 1'000'000;
  ts.tv_nsec = (micros % 1'000'000) * 1000;
  return ts;
}

std::string PeerName(int fd, const Endpoint& listening) {
  if (listening.kind == Endpoint::Kind::kUnix) {
    return absl::StrCat("unix:", listening.path);
  }
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return "unknown";
  }
  return FormatSocketAddress(reinterpret_cast<sockaddr*>(&storage), length);
}

}  // namespace

absl::StatusOr<std::unique_ptr<IoUringServer>> IoUringServer::Create(
    SocketServerOptions options) {
  absl::StatusOr<std::unique_ptr<Ring>> ring = Ring::Create(kRingEntries);
  if (!ring.ok()) return ring.status();
  absl::StatusOr<std::unique_ptr<BufferRing>> buffers = BufferRing::Create(
      (*ring)->get(), kBufferGroup, kReceiveBuffers, kReceiveBufferBytes);
  if (!buffers.ok()) return buffers.status();
  UniqueFd wake_fd(::eventfd(0, EFD_CLOEXEC));
  if (!wake_fd.valid()) return ErrnoStatus(errno, "eventfd");
  return std::unique_ptr<IoUringServer>(
      new IoUringServer(std::move(options), *std::move(ring),
                        *std::move(buffers), std::move(wake_fd)));
}

IoUringServer::IoUringServer(SocketServerOptions options,
                             std::unique_ptr<Ring> ring,
                             std::unique_ptr<BufferRing> buffers,
                             UniqueFd wake_fd)
    : shutdown_timeout_(options.shutdown_timeout),
      send_buffer_bytes_(options.send_buffer_bytes),
      logger_(options.driver.logger),
      driver_(std::move(options.broker), std::move(options.driver)),
      buffers_(std::move(buffers)),
      wake_fd_(std::move(wake_fd)),
      ring_(std::move(ring)),
      drain_buffer_(new char[BrokerDriver::kMaxReceiveBytes]) {}

IoUringServer::~IoUringServer() {
  // Sockets and listeners close first; tearing the ring down then cancels
  // whatever is still in flight.
  sockets_.clear();
  listeners_.clear();
  ring_.reset();
}

std::string IoUringServer::ring_flags() const { return ring_->DescribeFlags(); }

absl::StatusOr<Endpoint> IoUringServer::Listen(ListenerConfig config) {
  absl::StatusOr<ListenSocket> socket = ListenSocket::Open(config.endpoint);
  if (!socket.ok()) return socket.status();
  const Endpoint bound = socket->endpoint();
  logger_.Log(LogLevel::kInfo, absl::StrCat("listening on ", bound.ToString(),
                                            " (", config.display_label(), ")"));
  listeners_.push_back(std::make_unique<Listener>(
      Listener{std::move(*socket), std::move(config), false, std::nullopt}));
  return bound;
}

void IoUringServer::RequestShutdown() {
  // Async-signal-safe: a lock-free store and a write().
  shutdown_requested_.store(true, std::memory_order_relaxed);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(wake_fd_.get(), &one, sizeof(one));
}

void IoUringServer::Wake() {
  // Async-signal-safe: a write().
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(wake_fd_.get(), &one, sizeof(one));
}

// ---------------------------------------------------------------------------
// The loop

absl::Status IoUringServer::Run() {
  if (ran_) return absl::FailedPreconditionError("Run() was called before");
  ran_ = true;
  if (absl::Status enabled = ring_->Enable(); !enabled.ok()) return enabled;
  logger_.Log(LogLevel::kDebug,
              absl::StrCat("io_uring ring: ", kRingEntries, " entries, flags ",
                           ring_->DescribeFlags()));
  ArmWake();
  for (size_t i = 0; i < listeners_.size(); ++i) ArmAccept(i);

  bool shutting_down = false;
  absl::Status status;
  std::optional<absl::Time> wakeup = driver_.RunTurn();
  while (true) {
    if (!shutting_down && shutdown_requested_.load(std::memory_order_relaxed)) {
      shutting_down = true;
      CloseListeners();  // stop accepting; Unix socket files go away
      driver_.Shutdown(shutdown_timeout_);
      wakeup = driver_.RunTurn();
    }
    if (shutting_down && driver_.ShutdownDone(wakeup)) break;
    if (std::optional<absl::Time> timer = RunTimers()) {
      if (!wakeup || *timer < *wakeup) wakeup = timer;
    }
    // Held input to hand over first: only collect what is ready.
    if (!resume_list_.empty() || !deferred_.empty()) wakeup = driver_.Now();
    status = WaitAndDispatch(wakeup);
    if (!status.ok()) break;
    ResumeScheduled();
    wakeup = driver_.RunTurn();
    RenewReadBudgets();
  }
  CancelEverything();
  if (!status.ok()) return status;
  logger_.Log(LogLevel::kInfo, "shut down");
  return absl::OkStatus();
}

absl::Status IoUringServer::WaitAndDispatch(std::optional<absl::Time> wakeup) {
  __kernel_timespec timeout{};
  if (wakeup) timeout = WaitTimespec(*wakeup - driver_.Now());
  io_uring_cqe* first = nullptr;
  const int waited = io_uring_submit_and_wait_timeout(
      ring_->get(), &first, 1, wakeup ? &timeout : nullptr, nullptr);
  if (waited < 0 && waited != -ETIME && waited != -EINTR && waited != -EAGAIN &&
      waited != -EBUSY) {
    return ErrnoStatus(-waited, "io_uring_enter");
  }
  deferred_now_.clear();
  deferred_now_.swap(deferred_);
  for (const auto& [user_data, result] : deferred_now_) {
    Dispatch(user_data, result, 0);
  }
  struct Completion {
    uint64_t user_data;
    int result;
    uint32_t flags;
  };
  io_uring_cqe* cqes[kCompletionBatch];
  Completion batch[kCompletionBatch];
  for (int round = 0; round < kBatchesPerTurn; ++round) {
    const unsigned n =
        io_uring_peek_batch_cqe(ring_->get(), cqes, kCompletionBatch);
    if (n == 0) break;
    // Copy, then free the slots, so completions posted while these are
    // handled (a send that finishes at submission) have room.
    for (unsigned i = 0; i < n; ++i) {
      batch[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
    }
    io_uring_cq_advance(ring_->get(), n);
    for (unsigned i = 0; i < n; ++i) {
      Dispatch(batch[i].user_data, batch[i].result, batch[i].flags);
    }
  }
  return absl::OkStatus();
}

void IoUringServer::Dispatch(uint64_t user_data, int result, uint32_t flags) {
  if (user_data == LIBURING_UDATA_TIMEOUT) return;  // liburing's own timeout
  const uint64_t value = user_data & kValueMask;
  switch (user_data >> kOpShift) {
    case kWake:
      --in_flight_;
      if (!stopping_) ArmWake();  // the loop checks shutdown_requested_
      return;
    case kAccept:
      OnAccepted(static_cast<size_t>(value), result,
                 (flags & IORING_CQE_F_MORE) != 0);
      return;
    case kReceive:
      OnReceived(ConnectionId(value), result, flags);
      return;
    case kSend:
      OnSent(ConnectionId(value), result);
      return;
    case kPoll:
      OnPolled(value, result);
      return;
    case kCancelReceive:
    case kCancelSend:
    case kCancelOther:
      --in_flight_;
      OnCancelDone(user_data, result);
      return;
    default:
      return;
  }
}

std::optional<absl::Time> IoUringServer::RunTimers() {
  std::optional<absl::Time> next;
  auto earliest = [&next](absl::Time t) {
    if (!next || t < *next) next = t;
  };
  const absl::Time now = driver_.Now();
  for (size_t i = 0; i < listeners_.size(); ++i) {
    Listener& listener = *listeners_[i];
    if (!listener.paused_until) continue;
    if (*listener.paused_until > now) {
      earliest(*listener.paused_until);
      continue;
    }
    listener.paused_until.reset();
    if (!listener.accept_armed) ArmAccept(i);
  }
  size_t kept = 0;
  for (ConnectionId id : lingering_) {
    auto it = sockets_.find(id);
    if (it == sockets_.end() || !it->second.send_in_flight) continue;
    Socket& socket = it->second;
    lingering_[kept++] = id;
    if (socket.send_cancel_sent) continue;
    if (*socket.linger_until <= now) {
      socket.send_cancel_sent = true;
      Cancel(Tag(kSend, id.value()), Tag(kCancelSend, id.value()));
    } else {
      earliest(*socket.linger_until);
    }
  }
  lingering_.resize(kept);
  return next;
}

void IoUringServer::CloseListeners() {
  for (size_t i = 0; i < listeners_.size(); ++i) {
    Listener& listener = *listeners_[i];
    // The accept in flight holds the socket open; shutting it down refuses
    // new connections at once, and the cancel lets it go.
    ::shutdown(listener.socket.fd(), SHUT_RDWR);
    if (listener.accept_armed) {
      Cancel(Tag(kAccept, i), Tag(kCancelOther));
    }
  }
  listeners_.clear();
}

void IoUringServer::CancelEverything() {
  stopping_ = true;
  if (in_flight_ == 0) return;
  if (io_uring_sqe* sqe = ring_->NextSqe()) {
    io_uring_prep_cancel64(sqe, 0,
                           IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, Tag(kCancelOther));
    ++in_flight_;
  }
  const absl::Time deadline = driver_.Now() + kCancelWait;
  while (in_flight_ > 0 && driver_.Now() < deadline) {
    if (!WaitAndDispatch(
             std::min(deadline, driver_.Now() + absl::Milliseconds(100)))
             .ok()) {
      break;
    }
  }
}

// ---------------------------------------------------------------------------
// Submissions

void IoUringServer::ArmWake() {
  ++in_flight_;
  io_uring_sqe* sqe = ring_->NextSqe();
  if (sqe == nullptr) {
    Defer(Tag(kWake), 0);  // tried again at the next dispatch
    return;
  }
  io_uring_prep_read(sqe, wake_fd_.get(), &wake_value_, sizeof(wake_value_), 0);
  io_uring_sqe_set_data64(sqe, Tag(kWake));
}

void IoUringServer::ArmAccept(size_t listener_index) {
  Listener& listener = *listeners_[listener_index];
  io_uring_sqe* sqe = ring_->NextSqe();
  if (sqe == nullptr) {
    listener.paused_until = driver_.Now() + kAcceptPause;
    return;
  }
  io_uring_prep_multishot_accept(sqe, listener.socket.fd(), nullptr, nullptr,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, Tag(kAccept, listener_index));
  listener.accept_armed = true;
  ++in_flight_;
}

void IoUringServer::ArmReceive(ConnectionId id, Socket& socket) {
  if (socket.receive_armed || socket.closed || !socket.want_read ||
      socket.end || !socket.held.empty()) {
    return;
  }
  socket.receive_armed = true;
  socket.receive_cancel_sent = false;
  ++in_flight_;
  io_uring_sqe* sqe = ring_->NextSqe();
  if (sqe == nullptr) {
    Defer(Tag(kReceive, id.value()), -ENOMEM);
    return;
  }
  io_uring_prep_recv_multishot(sqe, socket.fd.get(), nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = buffers_->group();
  io_uring_sqe_set_data64(sqe, Tag(kReceive, id.value()));
}

absl::StatusOr<WatchId> IoUringServer::Watch(int fd, bool read, bool write,
                                             DescriptorWatcher& watcher) {
  const WatchId id = next_watch_++;
  Watched& watched = watches_[id];
  watched = Watched{fd, &watcher, read, write};
  ArmPoll(id, watched);
  return id;
}

void IoUringServer::UpdateWatch(WatchId id, bool read, bool write) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  Watched& watched = it->second;
  if (watched.read == read && watched.write == write) return;
  watched.read = read;
  watched.write = write;
  if (!watched.armed) {
    ArmPoll(id, watched);
  } else if (!watched.cancel_sent) {
    // Its completion arms the poll again with the new events.
    watched.cancel_sent = true;
    Cancel(Tag(kPoll, id), Tag(kCancelOther));
  }
}

void IoUringServer::Unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  // The completion of a poll still armed finds no watch and is dropped.
  if (it->second.armed && !it->second.cancel_sent && !stopping_) {
    Cancel(Tag(kPoll, id), Tag(kCancelOther));
  }
  watches_.erase(it);
}

void IoUringServer::ArmPoll(WatchId id, Watched& watched) {
  if (watched.armed || stopping_ || (!watched.read && !watched.write)) return;
  watched.armed = true;
  watched.cancel_sent = false;
  ++in_flight_;
  io_uring_sqe* sqe = ring_->NextSqe();
  if (sqe == nullptr) {
    Defer(Tag(kPoll, id), -EAGAIN);  // armed again at the next dispatch
    return;
  }
  io_uring_prep_poll_add(
      sqe, watched.fd,
      (watched.read ? POLLIN | POLLRDHUP : 0) | (watched.write ? POLLOUT : 0));
  io_uring_sqe_set_data64(sqe, Tag(kPoll, id));
}

void IoUringServer::OnPolled(WatchId id, int result) {
  --in_flight_;
  auto it = watches_.find(id);
  if (it == watches_.end()) return;  // unwatched
  Watched& watched = it->second;
  watched.armed = false;
  if (result == -ECANCELED || result == -EAGAIN) {
    ArmPoll(id, watched);  // events changed, or no submission slot
    return;
  }
  // An error of the poll itself is left to the watcher's own I/O to report.
  const unsigned events = result < 0 ? POLLERR : static_cast<unsigned>(result);
  const bool failed = (events & (POLLERR | POLLHUP)) != 0;
  const bool readable =
      watched.read && ((events & (POLLIN | POLLRDHUP)) != 0 || failed);
  const bool writable = watched.write && ((events & POLLOUT) != 0 || failed);
  DescriptorWatcher* watcher = watched.watcher;
  if (readable || writable) watcher->OnReady(readable, writable);
  // The watcher may have ended or changed the watch.
  it = watches_.find(id);
  if (it != watches_.end()) ArmPoll(id, it->second);
}

void IoUringServer::Defer(uint64_t user_data, int result) {
  deferred_.emplace_back(user_data, result);
}

void IoUringServer::Cancel(uint64_t target, uint64_t tag) {
  io_uring_sqe* sqe = ring_->NextSqe();
  if (sqe == nullptr) return;
  io_uring_prep_cancel64(sqe, target, 0);
  io_uring_sqe_set_data64(sqe, tag);
  ++in_flight_;
}

// ---------------------------------------------------------------------------
// Completions

void IoUringServer::OnAccepted(size_t listener_index, int result, bool more) {
  if (!more) --in_flight_;
  Listener* listener = listener_index < listeners_.size()
                           ? listeners_[listener_index].get()
                           : nullptr;
  if (listener == nullptr) {  // closed for the shutdown
    if (result >= 0) ::close(result);
    return;
  }
  if (!more) listener->accept_armed = false;
  if (result >= 0) {
    Adopt(UniqueFd(result), *listener);
  } else if (result != -ECANCELED) {
    absl::Status error = ErrnoStatus(
        -result,
        absl::StrCat("accept on ", listener->socket.endpoint().ToString()));
    if (result == -EMFILE || result == -ENFILE) {
      // Drop the connection that could not be taken, through the
      // descriptor ListenSocket keeps in reserve, so the peer sees a close.
      absl::StatusOr<std::optional<ListenSocket::Accepted>> dropped =
          listener->socket.Accept();
      if (!dropped.ok()) error = dropped.status();
      if (dropped.ok() && dropped->has_value()) {
        Adopt(std::move((*dropped)->fd), *listener);  // a descriptor came free
      }
    }
    logger_.Log(LogLevel::kWarning,
                absl::StrCat(error.message(), "; not accepting for ",
                             absl::FormatDuration(kAcceptPause)));
    listener->paused_until = driver_.Now() + kAcceptPause;
    return;
  }
  if (!listener->accept_armed && !listener->paused_until && !stopping_) {
    ArmAccept(listener_index);
  }
}

void IoUringServer::Adopt(UniqueFd fd, const Listener& listener) {
  const Endpoint& listening = listener.socket.endpoint();
  if (listening.kind == Endpoint::Kind::kTcp) {
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  if (send_buffer_bytes_ > 0) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &send_buffer_bytes_,
                 sizeof(send_buffer_bytes_));
  }
  std::string peer = PeerName(fd.get(), listening);
  const ListenerConfig& config = listener.config;
  const ConnectionId id =
      driver_.Open(*this, PeerInfo{std::move(peer)},
                   config.codec_factory ? config.codec_factory() : nullptr,
                   config.security ? config.security() : nullptr);
  Socket& socket = sockets_[id];
  socket.fd = std::move(fd);
  ArmReceive(id, socket);
}

void IoUringServer::OnReceived(ConnectionId id, int result, uint32_t flags) {
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) --in_flight_;
  std::optional<uint16_t> buffer;
  if (flags & IORING_CQE_F_BUFFER) {
    buffer = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
  }
  auto it = sockets_.find(id);
  if (it == sockets_.end()) {
    if (buffer) buffers_->Recycle(*buffer);
    return;
  }
  Socket& socket = it->second;
  if (!more) socket.receive_armed = false;
  if (result > 0 && buffer && !socket.closed && !socket.end) {
    const absl::string_view bytes = buffers_->Data(*buffer, result);
    if (socket.want_read && socket.held.empty() &&
        socket.read_this_turn < BrokerDriver::kReadBudgetBytes) {
      CountRead(id, socket, bytes.size());
      driver_.OnReceived(id, bytes);  // may pause reading
    } else {
      // Delivered after a pause was asked for, or past this iteration's
      // budget: keep it, in order, for the next.
      socket.held.append(bytes.data(), bytes.size());
      if (socket.held.size() >= kMaxHeldBytes && socket.receive_armed &&
          !socket.receive_cancel_sent) {
        // Enough is waiting: TCP keeps the rest until this is handed over
        // (DeliverHeld arms the receive again once it is).
        socket.receive_cancel_sent = true;
        Cancel(Tag(kReceive, id.value()), Tag(kCancelReceive, id.value()));
      }
    }
  }
  if (buffer) buffers_->Recycle(*buffer);
  if (result == 0) {
    if (!socket.end) socket.end = absl::OkStatus();  // end of stream
  } else if (result < 0 && result != -ECANCELED && result != -ENOBUFS) {
    // ECANCELED: paused or closed. ENOBUFS: every receive buffer was in
    // use; they are back now, and the receive is armed again below.
    if (!socket.end) socket.end = ErrnoStatus(-result, "read");
  }
  if (socket.closed) {
    MaybeFinishClose(id);
  } else if (!more) {
    ScheduleResume(id, socket);  // report the end, or receive again
  }
}

void IoUringServer::OnSent(ConnectionId id, int result) {
  --in_flight_;
  auto it = sockets_.find(id);
  if (it != sockets_.end()) it->second.send_in_flight = false;
  // Reported even for a closed link: it releases the bytes the send read.
  if (result >= 0) {
    driver_.OnWriteDone(id, static_cast<size_t>(result));
  } else {
    driver_.OnWriteDone(id, ErrnoStatus(-result, "write"));
  }
  MaybeFinishClose(id);
}

void IoUringServer::OnCancelDone(uint64_t user_data, int result) {
  if (result != -EALREADY || (user_data >> kOpShift) != kCancelReceive) return;
  // The receive was running and could not be stopped: ask again, so a
  // paused or closed socket really stops receiving.
  const ConnectionId id(user_data & kValueMask);
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  Socket& socket = it->second;
  if (socket.receive_armed && (socket.closed || !socket.want_read)) {
    Cancel(Tag(kReceive, id.value()), user_data);
  }
}

// ---------------------------------------------------------------------------
// Reading, pausing and resuming

void IoUringServer::CountRead(ConnectionId id, Socket& socket, size_t bytes) {
  if (socket.read_this_turn == 0) read_this_turn_.push_back(id);
  socket.read_this_turn += bytes;
}

void IoUringServer::RenewReadBudgets() {
  std::vector<ConnectionId> read;
  read.swap(read_this_turn_);
  for (ConnectionId id : read) {
    auto it = sockets_.find(id);
    if (it == sockets_.end()) continue;
    Socket& socket = it->second;
    socket.read_this_turn = 0;
    // Input held past the budget goes first in the next iteration.
    if (socket.want_read && !socket.held.empty() && !socket.closed) {
      ScheduleResume(id, socket);
    }
  }
}

void IoUringServer::ScheduleResume(ConnectionId id, Socket& socket) {
  if (socket.in_resume_list) return;
  socket.in_resume_list = true;
  resume_list_.push_back(id);
}

void IoUringServer::ResumeScheduled() {
  resuming_now_.clear();
  resuming_now_.swap(resume_list_);
  for (ConnectionId id : resuming_now_) {
    auto it = sockets_.find(id);
    if (it == sockets_.end()) continue;
    it->second.in_resume_list = false;
    if (!it->second.closed) DeliverHeld(id, it->second);
  }
}

void IoUringServer::DeliverHeld(ConnectionId id, Socket& socket) {
  // The driver may pause reading from inside OnReceived(); nothing it does
  // there adds or removes sockets, so `socket` stays valid.
  size_t offset = 0;
  while (socket.want_read && offset < socket.held.size() &&
         socket.read_this_turn < BrokerDriver::kReadBudgetBytes) {
    const size_t n =
        std::min(BrokerDriver::kMaxReceiveBytes, socket.held.size() - offset);
    CountRead(id, socket, n);
    driver_.OnReceived(id, absl::string_view(socket.held).substr(offset, n));
    offset += n;
  }
  socket.held.erase(0, offset);
  // Resumed later: by SetReading(true), or after the turn (RenewReadBudgets).
  if (!socket.want_read || !socket.held.empty()) return;
  if (socket.end) {
    if (!socket.end_reported) {
      socket.end_reported = true;
      if (socket.end->ok()) {
        driver_.OnPeerClosed(id);
      } else {
        driver_.OnError(id, *socket.end);
      }
    }
    return;
  }
  ArmReceive(id, socket);
}

// ---------------------------------------------------------------------------
// LinkIo

void IoUringServer::StartWrite(ConnectionId id, absl::string_view bytes) {
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  Socket& socket = it->second;
  socket.send_in_flight = true;
  ++in_flight_;
  io_uring_sqe* sqe = ring_->NextSqe();
  if (sqe == nullptr) {
    Defer(Tag(kSend, id.value()), -ENOMEM);
    return;
  }
  io_uring_prep_send(sqe, socket.fd.get(), bytes.data(), bytes.size(),
                     MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, Tag(kSend, id.value()));
}

void IoUringServer::SetReading(ConnectionId id, bool reading) {
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  Socket& socket = it->second;
  socket.want_read = reading;
  if (reading) {
    ScheduleResume(id, socket);
  } else if (socket.receive_armed && !socket.receive_cancel_sent) {
    socket.receive_cancel_sent = true;
    Cancel(Tag(kReceive, id.value()), Tag(kCancelReceive, id.value()));
  }
}

void IoUringServer::Close(ConnectionId id) {
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  Socket& socket = it->second;
  socket.closed = true;
  std::string().swap(socket.held);
  if (socket.receive_armed && !socket.receive_cancel_sent) {
    socket.receive_cancel_sent = true;
    Cancel(Tag(kReceive, id.value()), Tag(kCancelReceive, id.value()));
  }
  if (socket.send_in_flight) {
    socket.linger_until = driver_.Now() + kCloseLinger;
    lingering_.push_back(id);
  }
  MaybeFinishClose(id);
}

void IoUringServer::MaybeFinishClose(ConnectionId id) {
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  const Socket& socket = it->second;
  if (!socket.closed || socket.receive_armed || socket.send_in_flight) return;
  // Closing with unread input makes the kernel send a reset, which can
  // overtake the last frame written (a refusal, a Goodbye): read it first.
  for (size_t drained = 0; drained < kMaxDrainOnClose;) {
    const ReadResult read = ReadSome(
        socket.fd.get(),
        absl::MakeSpan(drain_buffer_.get(), BrokerDriver::kMaxReceiveBytes));
    if (read.kind != ReadResult::kData) break;
    drained += read.bytes;
  }
  sockets_.erase(it);
}

}  // namespace manifold
