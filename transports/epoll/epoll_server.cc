#include "transports/epoll/epoll_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

// epoll_event.data.u64 tags: sockets carry their connection id (< 2^63);
// listeners carry this bit and their index.
constexpr uint64_t kListenerTag = uint64_t{1} << 63;
// Watched descriptors (SocketServer::Watch) carry this bit and their id.
constexpr uint64_t kWatchTag = uint64_t{1} << 62;

// Level-triggered: a watcher that reads only part of its input is called
// again in the next iteration.
uint32_t WatchEvents(bool read, bool write) {
  uint32_t events = 0;
  if (read) events |= EPOLLIN | EPOLLRDHUP;
  if (write) events |= EPOLLOUT;
  return events;
}

constexpr int kMaxEvents = 256;
// Bytes read from one socket per loop iteration before the driver's turn
// (the rule all loops follow: BrokerDriver::kReadBudgetBytes).
constexpr size_t kReadBudgetBytes = BrokerDriver::kReadBudgetBytes;
// Connections taken from one listener per loop iteration.
constexpr int kAcceptBudget = 256;
// How long a listener rests after accept() failed.
constexpr absl::Duration kAcceptPause = absl::Milliseconds(100);
// Unread input discarded before close(), so the peer gets a FIN (and the
// error frame before it) rather than a reset.
constexpr size_t kMaxDrainOnClose = 256 * 1024;

}  // namespace

absl::StatusOr<std::unique_ptr<EpollServer>> EpollServer::Create(
    SocketServerOptions options) {
  absl::StatusOr<WakeableEpoll> epoll = WakeableEpoll::Create();
  if (!epoll.ok()) return epoll.status();
  return std::unique_ptr<EpollServer>(
      new EpollServer(std::move(options), *std::move(epoll)));
}

EpollServer::EpollServer(SocketServerOptions options, WakeableEpoll epoll)
    : shutdown_timeout_(options.shutdown_timeout),
      send_buffer_bytes_(options.send_buffer_bytes),
      logger_(options.driver.logger),
      epoll_(std::move(epoll)),
      driver_(std::move(options.broker), std::move(options.driver)),
      read_buffer_(new char[BrokerDriver::kMaxReceiveBytes]) {}

EpollServer::~EpollServer() = default;

absl::StatusOr<Endpoint> EpollServer::Listen(ListenerConfig config) {
  absl::StatusOr<ListenSocket> socket = ListenSocket::Open(config.endpoint);
  if (!socket.ok()) return socket.status();
  // Level-triggered: the accept budget may stop early.
  if (absl::Status s =
          epoll_.Add(socket->fd(), EPOLLIN, kListenerTag | listeners_.size());
      !s.ok()) {
    return s;
  }
  const Endpoint bound = socket->endpoint();
  logger_.Log(LogLevel::kInfo, absl::StrCat("listening on ", bound.ToString(),
                                            " (", config.display_label(), ")"));
  listeners_.push_back(std::make_unique<Listener>(
      Listener{std::move(*socket), std::move(config), std::nullopt}));
  return bound;
}

void EpollServer::RequestShutdown() {
  // Async-signal-safe: a lock-free store and a write().
  shutdown_requested_.store(true, std::memory_order_relaxed);
  epoll_.Wake();
}

void EpollServer::Wake() {
  // Async-signal-safe: a write().
  epoll_.Wake();
}

absl::Status EpollServer::Run() {
  bool shutting_down = false;
  std::optional<absl::Time> wakeup = driver_.RunTurn();
  epoll_event events[kMaxEvents];
  while (true) {
    if (!shutting_down && shutdown_requested_.load(std::memory_order_relaxed)) {
      shutting_down = true;
      listeners_.clear();  // stop accepting; Unix socket files go away
      driver_.Shutdown(shutdown_timeout_);
      wakeup = driver_.RunTurn();
    }
    if (shutting_down && driver_.ShutdownDone(wakeup)) break;
    if (std::optional<absl::Time> resume = ResumeListeners()) {
      if (!wakeup || *resume < *wakeup) wakeup = resume;
    }
    const int timeout = read_list_.empty() ? TimeoutMs(wakeup) : 0;
    // A Wake() ends the wait with no event: the loop then checks
    // shutdown_requested_.
    absl::StatusOr<int> n = epoll_.Wait(absl::MakeSpan(events), timeout);
    if (!n.ok()) return n.status();
    for (int i = 0; i < *n; ++i) Dispatch(events[i]);
    ReadScheduled();
    wakeup = driver_.RunTurn();
  }
  logger_.Log(LogLevel::kInfo, "shut down");
  return absl::OkStatus();
}

int EpollServer::TimeoutMs(std::optional<absl::Time> wakeup) const {
  if (!wakeup) return -1;
  const absl::Duration wait = *wakeup - driver_.Now();
  if (wait <= absl::ZeroDuration()) return 0;
  // Round up: waking a little early would only spin until the deadline.
  return static_cast<int>(std::min<int64_t>(
      absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))),
      3600 * 1000));
}

void EpollServer::Dispatch(const epoll_event& event) {
  const uint64_t token = event.data.u64;
  if (token & kListenerTag) {
    AcceptAll(static_cast<size_t>(token & ~kListenerTag));
    return;
  }
  if (token & kWatchTag) {
    DispatchWatch(token & ~kWatchTag, event.events);
    return;
  }
  const ConnectionId id(token);
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  Socket& socket = it->second;
  if (event.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    socket.hangup_seen = true;
  }
  if ((event.events & EPOLLERR) && !socket.want_read && !socket.done_reading) {
    // Not reading, so the read path will not see the error: fetch it here.
    int error = 0;
    socklen_t length = sizeof(error);
    ::getsockopt(socket.fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      socket.done_reading = true;
      driver_.OnError(id, ErrnoStatus(error, "socket"));
      return;
    }
  }
  if (event.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    socket.readable = true;
    ScheduleRead(id, socket);
  }
  if (event.events & EPOLLOUT) driver_.OnWritable(id);
}

absl::StatusOr<WatchId> EpollServer::Watch(int fd, bool read, bool write,
                                           DescriptorWatcher& watcher) {
  const WatchId id = next_watch_++;
  const uint32_t events = WatchEvents(read, write);
  if (events != 0) {
    if (absl::Status s = epoll_.Add(fd, events, kWatchTag | id); !s.ok()) {
      return s;
    }
  }
  watches_[id] = Watched{fd, &watcher, events};
  return id;
}

void EpollServer::UpdateWatch(WatchId id, bool read, bool write) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  Watched& watched = it->second;
  const uint32_t events = WatchEvents(read, write);
  if (events == watched.events) return;
  // A descriptor that waits for nothing leaves epoll, which would otherwise
  // keep reporting its hang-up.
  absl::Status s;
  if (events == 0) {
    s = epoll_.Remove(watched.fd);
  } else if (watched.events == 0) {
    s = epoll_.Add(watched.fd, events, kWatchTag | id);
  } else {
    s = epoll_.Modify(watched.fd, events, kWatchTag | id);
  }
  if (!s.ok()) {
    logger_.Log(LogLevel::kWarning,
                absl::StrCat("watching a descriptor: ", s.message()));
    return;
  }
  watched.events = events;
}

void EpollServer::Unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  if (it->second.events != 0) epoll_.Remove(it->second.fd).IgnoreError();
  watches_.erase(it);
}

void EpollServer::DispatchWatch(WatchId id, uint32_t events) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;  // unwatched earlier in this batch
  const Watched& watched = it->second;
  const bool failed = (events & (EPOLLERR | EPOLLHUP)) != 0;
  const bool readable = (watched.events & EPOLLIN) &&
                        ((events & (EPOLLIN | EPOLLRDHUP)) != 0 || failed);
  const bool writable =
      (watched.events & EPOLLOUT) && ((events & EPOLLOUT) != 0 || failed);
  if (readable || writable) watched.watcher->OnReady(readable, writable);
}

void EpollServer::AcceptAll(size_t listener_index) {
  if (listener_index >= listeners_.size()) return;
  Listener& listener = *listeners_[listener_index];
  for (int i = 0; i < kAcceptBudget; ++i) {
    absl::StatusOr<std::optional<ListenSocket::Accepted>> accepted =
        listener.socket.Accept();
    if (!accepted.ok()) {
      logger_.Log(
          LogLevel::kWarning,
          absl::StrCat(accepted.status().message(), "; not accepting for ",
                       absl::FormatDuration(kAcceptPause)));
      PauseListener(listener_index);
      return;
    }
    if (!accepted->has_value()) return;
    Adopt(std::move(**accepted), listener.config);
  }
}

void EpollServer::PauseListener(size_t listener_index) {
  Listener& listener = *listeners_[listener_index];
  epoll_.Modify(listener.socket.fd(), 0, kListenerTag | listener_index)
      .IgnoreError();
  listener.paused_until = driver_.Now() + kAcceptPause;
}

std::optional<absl::Time> EpollServer::ResumeListeners() {
  std::optional<absl::Time> next;
  const absl::Time now = driver_.Now();
  for (size_t i = 0; i < listeners_.size(); ++i) {
    Listener& listener = *listeners_[i];
    if (!listener.paused_until) continue;
    if (*listener.paused_until > now) {
      if (!next || *listener.paused_until < *next) next = listener.paused_until;
      continue;
    }
    listener.paused_until.reset();
    epoll_.Modify(listener.socket.fd(), EPOLLIN, kListenerTag | i)
        .IgnoreError();
  }
  return next;
}

void EpollServer::Adopt(ListenSocket::Accepted accepted,
                        const ListenerConfig& config) {
  if (send_buffer_bytes_ > 0) {
    ::setsockopt(accepted.fd.get(), SOL_SOCKET, SO_SNDBUF, &send_buffer_bytes_,
                 sizeof(send_buffer_bytes_));
  }
  const ConnectionId id =
      driver_.Open(*this, PeerInfo{std::move(accepted.peer)},
                   config.codec_factory ? config.codec_factory() : nullptr,
                   config.security ? config.security() : nullptr);
  Socket& socket = sockets_[id];
  socket.fd = std::move(accepted.fd);
  if (absl::Status s =
          epoll_.Add(socket.fd.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                     id.value());
      !s.ok()) {
    socket.done_reading = true;
    driver_.OnError(id, s);
  }
}

void EpollServer::ScheduleRead(ConnectionId id, Socket& socket) {
  if (socket.in_read_list) return;
  socket.in_read_list = true;
  read_list_.push_back(id);
}

void EpollServer::ReadScheduled() {
  reading_now_.clear();
  reading_now_.swap(read_list_);
  for (ConnectionId id : reading_now_) {
    auto it = sockets_.find(id);
    if (it == sockets_.end()) continue;
    it->second.in_read_list = false;
    ReadSocket(id, it->second);
  }
}

void EpollServer::ReadSocket(ConnectionId id, Socket& socket) {
  // The driver may pause reading from inside OnReceived(); nothing it does
  // there adds or removes sockets, so `socket` stays valid.
  size_t budget = kReadBudgetBytes;
  while (socket.want_read && socket.readable && !socket.done_reading) {
    if (budget == 0) {
      ScheduleRead(id, socket);  // more next iteration, after the others
      return;
    }
    const ReadResult read = ReadSome(
        socket.fd.get(),
        absl::MakeSpan(read_buffer_.get(), BrokerDriver::kMaxReceiveBytes));
    switch (read.kind) {
      case ReadResult::kData:
        driver_.OnReceived(id,
                           absl::string_view(read_buffer_.get(), read.bytes));
        budget -= std::min(budget, read.bytes);
        // A short read emptied the socket. New input raises a new edge, so
        // skip the read that would only say EAGAIN, unless the peer hung up
        // (its end-of-stream may already be queued behind this data).
        if (read.bytes < BrokerDriver::kMaxReceiveBytes &&
            !socket.hangup_seen) {
          socket.readable = false;
        }
        break;
      case ReadResult::kWouldBlock:
        socket.readable = false;
        break;
      case ReadResult::kEnd:
        socket.done_reading = true;
        driver_.OnPeerClosed(id);
        break;
      case ReadResult::kError:
        socket.done_reading = true;
        driver_.OnError(id, read.error);
        break;
    }
  }
}

absl::StatusOr<size_t> EpollServer::WriteSome(
    ConnectionId id, absl::Span<const absl::string_view> chunks) {
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return absl::NotFoundError("no such socket");
  return ::manifold::WriteSome(it->second.fd.get(), chunks);
}

void EpollServer::SetReading(ConnectionId id, bool reading) {
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  Socket& socket = it->second;
  socket.want_read = reading;
  // Edge-triggered: input that arrived while paused raised no new edge.
  if (reading && socket.readable && !socket.done_reading) {
    ScheduleRead(id, socket);
  }
}

void EpollServer::Close(ConnectionId id) {
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  // Closing with unread input makes the kernel send a reset, which can
  // overtake the last frame we wrote (a refusal, a Goodbye): read it first.
  const int fd = it->second.fd.get();
  for (size_t drained = 0; drained < kMaxDrainOnClose;) {
    const ReadResult read = ReadSome(
        fd, absl::MakeSpan(read_buffer_.get(), BrokerDriver::kMaxReceiveBytes));
    if (read.kind != ReadResult::kData) break;
    drained += read.bytes;
  }
  sockets_.erase(it);  // closing the descriptor also removes it from epoll
}

}  // namespace manifold
