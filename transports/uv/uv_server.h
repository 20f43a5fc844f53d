// File: transports/uv/uv_server.h
// -----------------------------------------------------------------------------
//
// A Broker serving TCP and Unix-domain sockets from one libuv loop on the
// calling thread. Everything that talks to the Broker is in BrokerDriver
// (transports/driver/broker_driver.h); this adapter only moves bytes between
// libuv handles and the driver, and behaves like the epoll adapter
// (transports/epoll/epoll_server.h) in everything a client can see:
//
//  - listeners are ListenSocket descriptors watched with a uv_poll_t, so
//    binding, stale Unix socket files and running out of file descriptors
//    (the pending connection is dropped, the listener rests 100 ms) work as
//    they do on every loop;
//  - each accepted socket becomes a uv_tcp_t or uv_pipe_t handle read with
//    uv_read_start(); reading stops (uv_read_stop) while the broker says the
//    connection is full;
//  - output is one uv_write() per link at a time of bytes the driver copied
//    out (the driver's kSubmitted style); libuv finishes partial writes;
//  - a uv_timer_t wakes the loop at the driver's next deadline; a uv_prepare_t
//    and a uv_check_t give the driver its turn after I/O callbacks;
//  - RequestShutdown() writes to an eventfd the loop watches;
//  - a closed link's unread input is drained before its handle closes, so
//    the peer sees a FIN rather than a reset.
//
// libuv writes with writev(), which raises SIGPIPE on a vanished peer: Run()
// blocks SIGPIPE on its thread (and consumes any raised) so the loop sees
// EPIPE instead, whatever the program's signal setup.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<UvServer>> server =
//       UvServer::Create(SocketServerOptions());
//   ListenerConfig unix_socket;
//   unix_socket.endpoint = Endpoint::Unix("/tmp/manifold.sock");
//   (*server)->Listen(unix_socket);
//   std::thread loop([&] { (*server)->Run(); });
//   ...
//   (*server)->RequestShutdown();   // clients get Goodbye; Run() returns
//   loop.join();
//
// Thread safety: Run() runs the loop on the calling thread; Listen() only
// before it. RequestShutdown() may be called from anywhere, including a
// signal handler.

#ifndef MANIFOLD_TRANSPORTS_UV_UV_SERVER_H_
#define MANIFOLD_TRANSPORTS_UV_UV_SERVER_H_

#include <uv.h>

#include <atomic>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/ids.h"
#include "transports/driver/broker_driver.h"
#include "transports/driver/link_io.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/listen_socket.h"
#include "transports/sockets/socket_server.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {

class UvServer final : public SocketServer, private LinkIo {
 public:
  // Initializes the loop, its timer and the shutdown wake-up descriptor.
  // Returns an error only when libuv or the kernel refuses those.
  static absl::StatusOr<std::unique_ptr<UvServer>> Create(
      SocketServerOptions options = SocketServerOptions());

  // Closes every handle that is still open and the loop; removes Unix socket
  // files.
  ~UvServer() override;

  absl::string_view loop_name() const override { return "uv"; }
  absl::StatusOr<Endpoint> Listen(ListenerConfig config) override;
  absl::Status Run() override;
  void RequestShutdown() override;
  void Wake() override;
  absl::StatusOr<WatchId> Watch(int fd, bool read, bool write,
                                DescriptorWatcher& watcher) override;
  void UpdateWatch(WatchId id, bool read, bool write) override;
  void Unwatch(WatchId id) override;
  BrokerDriver& driver() override { return driver_; }

 private:
  struct Listener;
  struct Link;
  struct Watched;

  UvServer(SocketServerOptions options, UniqueFd wake_fd);

  // LinkIo
  WriteStyle write_style() const override { return WriteStyle::kSubmitted; }
  void StartWrite(ConnectionId id, absl::string_view bytes) override;
  void SetReading(ConnectionId id, bool reading) override;
  void Close(ConnectionId id) override;

  // libuv callbacks: trampolines to the members below.
  static void AllocCallback(uv_handle_t* handle, size_t suggested,
                            uv_buf_t* buffer);
  static void ReadCallback(uv_stream_t* stream, ssize_t nread,
                           const uv_buf_t* buffer);
  static void WriteCallback(uv_write_t* request, int status);
  static void ListenerCallback(uv_poll_t* poll, int status, int events);
  static void PauseOverCallback(uv_timer_t* timer);
  static void WakeCallback(uv_poll_t* poll, int status, int events);
  static void TimerCallback(uv_timer_t* timer);
  static void PrepareCallback(uv_prepare_t* prepare);
  static void CheckCallback(uv_check_t* check);
  static void WatchCallback(uv_poll_t* poll, int status, int events);
  static void WatchClosedCallback(uv_handle_t* handle);
  static void LinkClosedCallback(uv_handle_t* handle);
  static void ListenerClosedCallback(uv_handle_t* handle);

  void OnListenerReadable(Listener& listener);
  void OnWatchReady(Watched& watched, int status, int events);
  // Starts or stops the poll of `watched` for what it wants.
  absl::Status StartWatch(Watched& watched);
  // After a turn: links that used their read budget are read again.
  void RenewReadBudgets();
  void OnReceived(Link& link, ssize_t nread, const uv_buf_t* buffer);
  void OnWritten(Link& link, int status);

  void Adopt(ListenSocket::Accepted accepted, const ListenerConfig& config);
  void PauseListener(Listener& listener);
  void CloseListener(Listener* listener);
  // Gives the driver its turn (and starts or ends the shutdown), then arms
  // the timer for the next one.
  void Turn();
  void BeginShutdown();
  void ArmTimer(std::optional<absl::Time> wakeup);
  void StopLoop();
  // Closes every handle and runs the loop until their callbacks are done.
  void CloseHandles();

  const absl::Duration shutdown_timeout_;
  const int send_buffer_bytes_;
  const Logger logger_;
  UniqueFd wake_fd_;
  std::atomic<bool> shutdown_requested_{false};
  // The driver owns the bytes uv_write() reads, so it outlives the handles.
  BrokerDriver driver_;
  uv_loop_t loop_{};
  uv_timer_t timer_{};
  uv_prepare_t prepare_{};
  uv_check_t check_{};
  uv_poll_t wake_{};
  bool ran_ = false;
  bool loop_open_ = false;
  // An I/O callback reported something since the driver's last turn.
  bool dirty_ = false;
  bool shutting_down_ = false;
  bool stopped_ = false;
  std::vector<Listener*> listeners_;  // freed by their close callbacks
  absl::flat_hash_map<ConnectionId, Link*> links_;
  // uv_write() calls that failed at once, reported after the turn.
  std::vector<std::pair<ConnectionId, absl::Status>> failed_writes_;
  // Links that handed the driver input since the last turn.
  std::vector<ConnectionId> read_this_turn_;
  std::unique_ptr<char[]> read_buffer_;
  // Descriptors of Watch(); freed by their close callbacks.
  absl::flat_hash_map<WatchId, Watched*> watches_;
  WatchId next_watch_ = 1;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_UV_UV_SERVER_H_
