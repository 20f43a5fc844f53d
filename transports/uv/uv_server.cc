#include "transports/uv/uv_server.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "transports/sockets/sigpipe_blocked.h"
#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

// Connections taken from one listener per callback.
constexpr int kAcceptBudget = 256;
// How long a listener rests after accept() failed.
constexpr absl::Duration kAcceptPause = absl::Milliseconds(100);
// Unread input discarded before close(), so the peer gets a FIN (and the
// error frame before it) rather than a reset.
constexpr size_t kMaxDrainOnClose = 256 * 1024;

absl::Status UvError(int error, absl::string_view what) {
  // libuv's errors are negated errno values on Unix.
  return ErrnoStatus(-error, what);
}

void CloseIfOpen(uv_handle_t* handle) {
  // A handle that was never initialized has no loop.
  if (handle->loop != nullptr && !uv_is_closing(handle)) {
    uv_close(handle, nullptr);
  }
}

}  // namespace

struct UvServer::Listener {
  UvServer* server = nullptr;
  // Reset when the listener closes, which also removes a Unix socket file.
  std::optional<ListenSocket> socket;
  ListenerConfig config;
  uv_poll_t poll{};
  uv_timer_t pause{};  // re-arms `poll` after an accept error
  int open_handles = 2;
};

struct UvServer::Link {
  UvServer* server = nullptr;
  ConnectionId id;
  union Handle {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h{};
  uv_write_t write{};
  size_t write_size = 0;
  bool reading = true;
  bool done_reading = false;  // end of stream or an error was reported
  // Input handed to the driver since the last turn; past
  // BrokerDriver::kReadBudgetBytes reading stops until the turn is over.
  size_t read_this_turn = 0;
  bool over_budget = false;
};

struct UvServer::Watched {
  UvServer* server = nullptr;
  WatchId id = 0;
  DescriptorWatcher* watcher = nullptr;
  uv_poll_t poll{};
  bool read = false;
  bool write = false;
};

absl::StatusOr<std::unique_ptr<UvServer>> UvServer::Create(
    SocketServerOptions options) {
  UniqueFd wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd.valid()) return ErrnoStatus(errno, "eventfd");
  const int wake = wake_fd.get();
  std::unique_ptr<UvServer> server(
      new UvServer(std::move(options), std::move(wake_fd)));
  if (int error = uv_loop_init(&server->loop_); error != 0) {
    return UvError(error, "uv_loop_init");
  }
  server->loop_open_ = true;
  uv_timer_init(&server->loop_, &server->timer_);
  uv_prepare_init(&server->loop_, &server->prepare_);
  uv_check_init(&server->loop_, &server->check_);
  if (int error = uv_poll_init(&server->loop_, &server->wake_, wake);
      error != 0) {
    return UvError(error, "uv_poll_init");
  }
  for (uv_handle_t* handle : {reinterpret_cast<uv_handle_t*>(&server->timer_),
                              reinterpret_cast<uv_handle_t*>(&server->prepare_),
                              reinterpret_cast<uv_handle_t*>(&server->check_),
                              reinterpret_cast<uv_handle_t*>(&server->wake_)}) {
    handle->data = server.get();
  }
  return server;
}

UvServer::UvServer(SocketServerOptions options, UniqueFd wake_fd)
    : shutdown_timeout_(options.shutdown_timeout),
      send_buffer_bytes_(options.send_buffer_bytes),
      logger_(options.driver.logger),
      wake_fd_(std::move(wake_fd)),
      driver_(std::move(options.broker), std::move(options.driver)),
      read_buffer_(new char[BrokerDriver::kMaxReceiveBytes]) {}

UvServer::~UvServer() {
  if (!loop_open_) return;
  CloseHandles();
  uv_loop_close(&loop_);
}

absl::StatusOr<Endpoint> UvServer::Listen(ListenerConfig config) {
  absl::StatusOr<ListenSocket> socket = ListenSocket::Open(config.endpoint);
  if (!socket.ok()) return socket.status();
  auto listener = std::make_unique<Listener>();
  listener->server = this;
  if (int error = uv_poll_init(&loop_, &listener->poll, socket->fd());
      error != 0) {
    return UvError(error, "uv_poll_init");
  }
  uv_timer_init(&loop_, &listener->pause);
  listener->poll.data = listener.get();
  listener->pause.data = listener.get();
  const Endpoint bound = socket->endpoint();
  listener->socket.emplace(*std::move(socket));
  listener->config = std::move(config);
  logger_.Log(LogLevel::kInfo,
              absl::StrCat("listening on ", bound.ToString(), " (",
                           listener->config.display_label(), ")"));
  listeners_.push_back(listener.release());
  return bound;
}

void UvServer::RequestShutdown() {
  // Async-signal-safe: a lock-free store and a write().
  shutdown_requested_.store(true, std::memory_order_relaxed);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(wake_fd_.get(), &one, sizeof(one));
}

void UvServer::Wake() {
  // Async-signal-safe: a write().
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(wake_fd_.get(), &one, sizeof(one));
}

// ---------------------------------------------------------------------------
// The loop

absl::Status UvServer::Run() {
  if (ran_) return absl::FailedPreconditionError("Run() was called before");
  ran_ = true;
  SigpipeBlocked sigpipe_blocked;
  uv_poll_start(&wake_, UV_READABLE, WakeCallback);
  for (Listener* listener : listeners_) {
    uv_poll_start(&listener->poll, UV_READABLE, ListenerCallback);
  }
  uv_prepare_start(&prepare_, PrepareCallback);
  uv_check_start(&check_, CheckCallback);
  Turn();
  if (!stopped_) uv_run(&loop_, UV_RUN_DEFAULT);
  CloseHandles();
  if (!stopped_) return absl::InternalError("the libuv loop ended by itself");
  logger_.Log(LogLevel::kInfo, "shut down");
  return absl::OkStatus();
}

void UvServer::Turn() {
  dirty_ = false;
  if (stopped_) return;
  if (!shutting_down_ && shutdown_requested_.load(std::memory_order_relaxed)) {
    BeginShutdown();
  }
  std::optional<absl::Time> wakeup = driver_.RunTurn();
  while (!failed_writes_.empty()) {
    std::vector<std::pair<ConnectionId, absl::Status>> failed;
    failed.swap(failed_writes_);
    for (auto& [id, status] : failed) driver_.OnWriteDone(id, status);
    wakeup = driver_.RunTurn();
  }
  RenewReadBudgets();
  if (shutting_down_ && driver_.ShutdownDone(wakeup)) {
    StopLoop();
    return;
  }
  ArmTimer(wakeup);
}

void UvServer::RenewReadBudgets() {
  std::vector<ConnectionId> read;
  read.swap(read_this_turn_);
  for (ConnectionId id : read) {
    auto it = links_.find(id);
    if (it == links_.end()) continue;
    Link& link = *it->second;
    link.read_this_turn = 0;
    if (!link.over_budget) continue;
    link.over_budget = false;
    if (!link.reading || link.done_reading) continue;  // the driver paused it
    if (const int error =
            uv_read_start(&link.h.stream, AllocCallback, ReadCallback);
        error != 0) {
      link.done_reading = true;
      failed_writes_.emplace_back(id, UvError(error, "uv_read_start"));
      dirty_ = true;
    }
  }
}

void UvServer::BeginShutdown() {
  shutting_down_ = true;
  for (Listener* listener : listeners_) CloseListener(listener);
  listeners_.clear();  // stop accepting; Unix socket files go away
  driver_.Shutdown(shutdown_timeout_);
}

void UvServer::ArmTimer(std::optional<absl::Time> wakeup) {
  if (!wakeup) {
    uv_timer_stop(&timer_);
    return;
  }
  // libuv counts from the time it cached at the start of this iteration.
  uv_update_time(&loop_);
  const absl::Duration wait =
      std::max(absl::ZeroDuration(), *wakeup - driver_.Now());
  // Round up: waking a little early would only spin until the deadline.
  const int64_t ms = std::min<int64_t>(
      absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))),
      3600 * 1000);
  uv_timer_start(&timer_, TimerCallback, static_cast<uint64_t>(ms), 0);
}

void UvServer::StopLoop() {
  stopped_ = true;
  uv_timer_stop(&timer_);
  uv_prepare_stop(&prepare_);
  uv_check_stop(&check_);
  uv_poll_stop(&wake_);
  uv_stop(&loop_);
}

void UvServer::CloseHandles() {
  for (Listener* listener : listeners_) CloseListener(listener);
  listeners_.clear();
  for (auto& [id, link] : links_) {
    uv_close(&link->h.handle, LinkClosedCallback);
  }
  links_.clear();
  for (auto& [id, watched] : watches_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&watched->poll),
             WatchClosedCallback);
  }
  watches_.clear();
  CloseIfOpen(reinterpret_cast<uv_handle_t*>(&timer_));
  CloseIfOpen(reinterpret_cast<uv_handle_t*>(&prepare_));
  CloseIfOpen(reinterpret_cast<uv_handle_t*>(&check_));
  CloseIfOpen(reinterpret_cast<uv_handle_t*>(&wake_));
  // Runs the close callbacks; returns once no handle is left.
  uv_run(&loop_, UV_RUN_DEFAULT);
}

// ---------------------------------------------------------------------------
// Watched descriptors

absl::StatusOr<WatchId> UvServer::Watch(int fd, bool read, bool write,
                                        DescriptorWatcher& watcher) {
  auto watched = std::make_unique<Watched>();
  watched->server = this;
  watched->id = next_watch_++;
  watched->watcher = &watcher;
  watched->read = read;
  watched->write = write;
  if (int error = uv_poll_init(&loop_, &watched->poll, fd); error != 0) {
    return UvError(error, "uv_poll_init");
  }
  watched->poll.data = watched.get();
  if (absl::Status s = StartWatch(*watched); !s.ok()) {
    uv_close(reinterpret_cast<uv_handle_t*>(&watched.release()->poll),
             WatchClosedCallback);
    return s;
  }
  const WatchId id = watched->id;
  watches_[id] = watched.release();
  return id;
}

absl::Status UvServer::StartWatch(Watched& watched) {
  const int events = (watched.read ? UV_READABLE | UV_DISCONNECT : 0) |
                     (watched.write ? UV_WRITABLE : 0);
  if (events == 0) {
    uv_poll_stop(&watched.poll);
    return absl::OkStatus();
  }
  if (int error = uv_poll_start(&watched.poll, events, WatchCallback);
      error != 0) {
    return UvError(error, "uv_poll_start");
  }
  return absl::OkStatus();
}

void UvServer::UpdateWatch(WatchId id, bool read, bool write) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  Watched& watched = *it->second;
  if (watched.read == read && watched.write == write) return;
  watched.read = read;
  watched.write = write;
  if (absl::Status s = StartWatch(watched); !s.ok()) {
    logger_.Log(LogLevel::kWarning,
                absl::StrCat("watching a descriptor: ", s.message()));
  }
}

void UvServer::Unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  // Closing stops the poll at once; the memory goes in the close callback.
  uv_close(reinterpret_cast<uv_handle_t*>(&it->second->poll),
           WatchClosedCallback);
  watches_.erase(it);
}

void UvServer::OnWatchReady(Watched& watched, int status, int events) {
  const bool failed = status < 0 || (events & UV_DISCONNECT) != 0;
  const bool readable = watched.read && ((events & UV_READABLE) != 0 || failed);
  const bool writable =
      watched.write && ((events & UV_WRITABLE) != 0 || status < 0);
  if (readable || writable) watched.watcher->OnReady(readable, writable);
  // What the watcher did (bytes handed to a Broker, output queued) gets a
  // turn before the loop sleeps.
  dirty_ = true;
}

// ---------------------------------------------------------------------------
// Listeners

void UvServer::OnListenerReadable(Listener& listener) {
  for (int i = 0; i < kAcceptBudget; ++i) {
    absl::StatusOr<std::optional<ListenSocket::Accepted>> accepted =
        listener.socket->Accept();
    if (!accepted.ok()) {
      logger_.Log(
          LogLevel::kWarning,
          absl::StrCat(accepted.status().message(), "; not accepting for ",
                       absl::FormatDuration(kAcceptPause)));
      PauseListener(listener);
      return;
    }
    if (!accepted->has_value()) return;
    Adopt(std::move(**accepted), listener.config);
  }
}

void UvServer::PauseListener(Listener& listener) {
  uv_poll_stop(&listener.poll);
  uv_timer_start(&listener.pause, PauseOverCallback,
                 absl::ToInt64Milliseconds(kAcceptPause), 0);
}

void UvServer::CloseListener(Listener* listener) {
  // Close the poll handle before the descriptor: libuv forgets the
  // descriptor number at once, before a new socket can reuse it.
  uv_close(reinterpret_cast<uv_handle_t*>(&listener->poll),
           ListenerClosedCallback);
  uv_close(reinterpret_cast<uv_handle_t*>(&listener->pause),
           ListenerClosedCallback);
  listener->socket.reset();
}

void UvServer::Adopt(ListenSocket::Accepted accepted,
                     const ListenerConfig& config) {
  if (send_buffer_bytes_ > 0) {
    ::setsockopt(accepted.fd.get(), SOL_SOCKET, SO_SNDBUF, &send_buffer_bytes_,
                 sizeof(send_buffer_bytes_));
  }
  auto link = std::make_unique<Link>();
  link->server = this;
  int error;
  if (config.endpoint.kind == Endpoint::Kind::kTcp) {
    error = uv_tcp_init(&loop_, &link->h.tcp);
    if (error == 0) error = uv_tcp_open(&link->h.tcp, accepted.fd.get());
  } else {
    error = uv_pipe_init(&loop_, &link->h.pipe, 0);
    if (error == 0) error = uv_pipe_open(&link->h.pipe, accepted.fd.get());
  }
  link->h.handle.data = link.get();
  if (error != 0) {
    logger_.Log(LogLevel::kWarning,
                absl::StrCat("dropped the connection from ", accepted.peer,
                             ": ", uv_strerror(error)));
    if (link->h.handle.loop != nullptr) {
      uv_close(&link->h.handle, LinkClosedCallback);
      link.release();  // freed by the close callback
    }
    return;  // `accepted.fd` closes the descriptor
  }
  accepted.fd.release();  // the handle owns the descriptor now
  const ConnectionId id =
      driver_.Open(*this, PeerInfo{std::move(accepted.peer)},
                   config.codec_factory ? config.codec_factory() : nullptr,
                   config.security ? config.security() : nullptr);
  link->id = id;
  Link* raw = link.release();
  links_[id] = raw;
  dirty_ = true;
  error = uv_read_start(&raw->h.stream, AllocCallback, ReadCallback);
  if (error != 0) {
    raw->done_reading = true;
    driver_.OnError(id, UvError(error, "uv_read_start"));
  }
}

// ---------------------------------------------------------------------------
// Links

void UvServer::OnReceived(Link& link, ssize_t nread, const uv_buf_t* buffer) {
  if (nread == 0) return;  // nothing this time (EAGAIN)
  dirty_ = true;
  if (nread > 0) {
    // The driver may pause reading from inside OnReceived().
    driver_.OnReceived(
        link.id, absl::string_view(buffer->base, static_cast<size_t>(nread)));
    if (link.read_this_turn == 0) read_this_turn_.push_back(link.id);
    link.read_this_turn += static_cast<size_t>(nread);
    if (link.read_this_turn >= BrokerDriver::kReadBudgetBytes && link.reading &&
        !link.over_budget) {
      // Enough for one iteration: the driver's turn (and its writes) comes
      // first. libuv stops its read loop for this stream at once.
      link.over_budget = true;
      uv_read_stop(&link.h.stream);
    }
    return;
  }
  link.done_reading = true;
  link.reading = false;
  uv_read_stop(&link.h.stream);
  if (nread == UV_EOF) {
    driver_.OnPeerClosed(link.id);
  } else {
    driver_.OnError(link.id, UvError(static_cast<int>(nread), "read"));
  }
}

void UvServer::OnWritten(Link& link, int status) {
  dirty_ = true;
  // Reported even for a closed link (the write was cancelled): it releases
  // the bytes the write read.
  if (status == 0) {
    driver_.OnWriteDone(link.id, link.write_size);
  } else {
    driver_.OnWriteDone(link.id, UvError(status, "write"));
  }
}

void UvServer::StartWrite(ConnectionId id, absl::string_view bytes) {
  auto it = links_.find(id);
  if (it == links_.end()) return;
  Link& link = *it->second;
  uv_buf_t buffer = uv_buf_init(const_cast<char*>(bytes.data()),
                                static_cast<unsigned int>(bytes.size()));
  link.write_size = bytes.size();
  link.write.data = &link;
  // libuv writes at once what the socket takes and the rest when it can.
  const int error =
      uv_write(&link.write, &link.h.stream, &buffer, 1, WriteCallback);
  if (error != 0) failed_writes_.emplace_back(id, UvError(error, "write"));
}

void UvServer::SetReading(ConnectionId id, bool reading) {
  auto it = links_.find(id);
  if (it == links_.end()) return;
  Link& link = *it->second;
  if (link.done_reading || link.reading == reading) return;
  link.reading = reading;
  if (!reading) {
    uv_read_stop(&link.h.stream);
    return;
  }
  if (link.over_budget) return;  // RenewReadBudgets() starts it after the turn
  const int error = uv_read_start(&link.h.stream, AllocCallback, ReadCallback);
  if (error != 0) {
    link.done_reading = true;
    // Reported as a failed write so the driver closes the link after
    // this turn (it must not be called back from inside one).
    failed_writes_.emplace_back(id, UvError(error, "uv_read_start"));
  }
}

void UvServer::Close(ConnectionId id) {
  auto it = links_.find(id);
  if (it == links_.end()) return;
  Link* link = it->second;
  links_.erase(it);
  // Closing with unread input makes the kernel send a reset, which can
  // overtake the last frame written (a refusal, a Goodbye): read it first.
  uv_os_fd_t fd;
  if (uv_fileno(&link->h.handle, &fd) == 0) {
    for (size_t drained = 0; drained < kMaxDrainOnClose;) {
      const ReadResult read = ReadSome(
          fd,
          absl::MakeSpan(read_buffer_.get(), BrokerDriver::kMaxReceiveBytes));
      if (read.kind != ReadResult::kData) break;
      drained += read.bytes;
    }
  }
  // A write still queued is cancelled: WriteCallback reports it first.
  uv_close(&link->h.handle, LinkClosedCallback);
}

// ---------------------------------------------------------------------------
// Trampolines

void UvServer::AllocCallback(uv_handle_t* handle, size_t suggested,
                             uv_buf_t* buffer) {
  Link* link = static_cast<Link*>(handle->data);
  // Reads are handed to the driver before the next one starts, so every
  // link shares one buffer.
  *buffer = uv_buf_init(link->server->read_buffer_.get(),
                        BrokerDriver::kMaxReceiveBytes);
}

void UvServer::ReadCallback(uv_stream_t* stream, ssize_t nread,
                            const uv_buf_t* buffer) {
  Link* link = static_cast<Link*>(stream->data);
  link->server->OnReceived(*link, nread, buffer);
}

void UvServer::WriteCallback(uv_write_t* request, int status) {
  Link* link = static_cast<Link*>(request->data);
  link->server->OnWritten(*link, status);
}

void UvServer::ListenerCallback(uv_poll_t* poll, int status, int events) {
  Listener* listener = static_cast<Listener*>(poll->data);
  if (!listener->socket) return;
  if (status < 0) {
    listener->server->logger_.Log(
        LogLevel::kWarning,
        absl::StrCat("listener failed: ", uv_strerror(status)));
    listener->server->PauseListener(*listener);
    return;
  }
  listener->server->OnListenerReadable(*listener);
}

void UvServer::PauseOverCallback(uv_timer_t* timer) {
  Listener* listener = static_cast<Listener*>(timer->data);
  if (!listener->socket) return;
  uv_poll_start(&listener->poll, UV_READABLE, ListenerCallback);
}

void UvServer::WakeCallback(uv_poll_t* poll, int status, int events) {
  UvServer* server = static_cast<UvServer*>(poll->data);
  uint64_t count;
  [[maybe_unused]] ssize_t ignored =
      ::read(server->wake_fd_.get(), &count, sizeof(count));
  server->Turn();  // starts a shutdown, runs DriverOptions::before_turn
}

void UvServer::TimerCallback(uv_timer_t* timer) {
  static_cast<UvServer*>(timer->data)->Turn();
}

void UvServer::PrepareCallback(uv_prepare_t* prepare) {
  // Write completions run before the loop polls; let the driver act on them
  // before it sleeps.
  UvServer* server = static_cast<UvServer*>(prepare->data);
  if (server->dirty_) server->Turn();
}

void UvServer::CheckCallback(uv_check_t* check) {
  UvServer* server = static_cast<UvServer*>(check->data);
  if (server->dirty_) server->Turn();
}

void UvServer::WatchCallback(uv_poll_t* poll, int status, int events) {
  Watched* watched = static_cast<Watched*>(poll->data);
  watched->server->OnWatchReady(*watched, status, events);
}

void UvServer::WatchClosedCallback(uv_handle_t* handle) {
  delete static_cast<Watched*>(handle->data);
}

void UvServer::LinkClosedCallback(uv_handle_t* handle) {
  delete static_cast<Link*>(handle->data);
}

void UvServer::ListenerClosedCallback(uv_handle_t* handle) {
  Listener* listener = static_cast<Listener*>(handle->data);
  if (--listener->open_handles == 0) delete listener;
}

}  // namespace manifold
