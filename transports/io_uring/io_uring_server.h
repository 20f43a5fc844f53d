// File: transports/io_uring/io_uring_server.h
// -----------------------------------------------------------------------------
//
// A Broker serving TCP and Unix-domain sockets from one io_uring on the
// calling thread. Everything that talks to the Broker is in BrokerDriver
// (transports/driver/broker_driver.h); this adapter only submits operations
// and reports their completions, and behaves like the epoll adapter
// (transports/epoll/epoll_server.h) in everything a client can see:
//
//  - each listener has one multishot accept in flight; running out of file
//    descriptors drops the pending connection (ListenSocket::Accept) and
//    pauses that listener for 100 ms;
//  - each socket has one multishot receive in flight, filling buffers from a
//    provided-buffer ring shared by every socket (bounded memory however many
//    connections there are); when the broker says a connection is full the
//    receive is cancelled, bytes the kernel delivered meanwhile are held, and
//    both resume in order when it has caught up;
//  - output is one send() per link at a time of bytes the driver copied out
//    (the driver's kSubmitted style), continued after partial sends;
//  - the loop sleeps in io_uring_enter() until a completion or the driver's
//    next deadline; RequestShutdown() wakes it through an eventfd read;
//  - a closed link's last send may finish for up to a second (a half-closed
//    peer still gets its answers), then its descriptor is closed after the
//    unread input is drained, so the peer sees a FIN rather than a reset.
//
// The ring uses SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them and
// falls back where not (transports/io_uring/internal/ring.h). Where io_uring
// is unavailable (kernel.io_uring_disabled, seccomp, a kernel older than
// 6.0), Create() fails with a one-line UNAVAILABLE status that says which.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<IoUringServer>> server =
//       IoUringServer::Create(SocketServerOptions());
//   if (!server.ok()) Fail(server.status());      // "io_uring is unavailable:"
//   ListenerConfig tcp;
//   tcp.endpoint = *ParseTcpEndpoint("127.0.0.1:0");
//   absl::StatusOr<Endpoint> bound = (*server)->Listen(tcp);
//   std::thread loop([&] { (*server)->Run(); });
//   ...
//   (*server)->RequestShutdown();   // clients get Goodbye; Run() returns
//   loop.join();
//
// Thread safety: Create() and Listen() may run on any thread; Run() binds the
// ring to the thread that calls it. RequestShutdown() may be called from
// anywhere, including a signal handler.

#ifndef MANIFOLD_TRANSPORTS_IO_URING_IO_URING_SERVER_H_
#define MANIFOLD_TRANSPORTS_IO_URING_IO_URING_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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

namespace io_uring_internal {
class BufferRing;
class Ring;
}  // namespace io_uring_internal

class IoUringServer final : public SocketServer, private LinkIo {
 public:
  // Sets up the ring, its receive buffers and the shutdown wake-up
  // descriptor. Returns UNAVAILABLE with a one-line reason where io_uring
  // cannot be used here.
  static absl::StatusOr<std::unique_ptr<IoUringServer>> Create(
      SocketServerOptions options = SocketServerOptions());

  // Tears the ring down and closes every socket still open; removes Unix
  // socket files.
  ~IoUringServer() override;

  absl::string_view loop_name() const override { return "io_uring"; }
  absl::StatusOr<Endpoint> Listen(ListenerConfig config) override;
  absl::Status Run() override;
  void RequestShutdown() override;
  void Wake() override;
  absl::StatusOr<WatchId> Watch(int fd, bool read, bool write,
                                DescriptorWatcher& watcher) override;
  void UpdateWatch(WatchId id, bool read, bool write) override;
  void Unwatch(WatchId id) override;
  BrokerDriver& driver() override { return driver_; }

  // The ring's setup flags, e.g. "SINGLE_ISSUER DEFER_TASKRUN SUBMIT_ALL".
  std::string ring_flags() const;

 private:
  struct Listener {
    ListenSocket socket;
    ListenerConfig config;
    bool accept_armed = false;
    // After an accept error: no accept is armed until then.
    std::optional<absl::Time> paused_until;
  };
  struct Socket {
    UniqueFd fd;
    bool want_read = true;       // the driver's SetReading()
    bool receive_armed = false;  // a multishot receive is in flight
    bool receive_cancel_sent = false;
    bool send_in_flight = false;
    bool send_cancel_sent = false;
    bool closed = false;  // the driver closed the link
    bool in_resume_list = false;
    // Bytes received while reading was paused, or past this iteration's read
    // budget, delivered first on resume.
    std::string held;
    // Input handed to the driver in this iteration; past
    // BrokerDriver::kReadBudgetBytes the rest waits for the next one.
    size_t read_this_turn = 0;
    // End of stream (OK) or the error that ended reading, reported once the
    // held bytes are delivered.
    std::optional<absl::Status> end;
    bool end_reported = false;
    // A closed link whose last send is still in flight: cancel it then.
    std::optional<absl::Time> linger_until;
  };

  // A descriptor of Watch(): one one-shot poll at a time, armed again after
  // each completion with what is wanted then.
  struct Watched {
    int fd = -1;
    DescriptorWatcher* watcher = nullptr;
    bool read = false;
    bool write = false;
    bool armed = false;
    bool cancel_sent = false;  // the armed poll waits for the old events
  };

  IoUringServer(SocketServerOptions options,
                std::unique_ptr<io_uring_internal::Ring> ring,
                std::unique_ptr<io_uring_internal::BufferRing> buffers,
                UniqueFd wake_fd);

  // LinkIo
  WriteStyle write_style() const override { return WriteStyle::kSubmitted; }
  void StartWrite(ConnectionId id, absl::string_view bytes) override;
  void SetReading(ConnectionId id, bool reading) override;
  void Close(ConnectionId id) override;

  // Submissions.
  void ArmWake();
  void ArmAccept(size_t listener_index);
  void ArmReceive(ConnectionId id, Socket& socket);
  void Cancel(uint64_t target, uint64_t tag);
  void ArmPoll(WatchId id, Watched& watched);

  // Completions.
  absl::Status WaitAndDispatch(std::optional<absl::Time> wakeup);
  void Dispatch(uint64_t user_data, int result, uint32_t flags);
  void OnAccepted(size_t listener_index, int result, bool more);
  void OnReceived(ConnectionId id, int result, uint32_t flags);
  void OnSent(ConnectionId id, int result);
  void OnCancelDone(uint64_t user_data, int result);
  void OnPolled(WatchId id, int result);

  void Adopt(UniqueFd fd, const Listener& listener);
  // Counts input handed to the driver in this iteration.
  void CountRead(ConnectionId id, Socket& socket, size_t bytes);
  // After a turn: budgets start again; input held past one is handed over
  // first in the next iteration.
  void RenewReadBudgets();
  void ScheduleResume(ConnectionId id, Socket& socket);
  void ResumeScheduled();
  void DeliverHeld(ConnectionId id, Socket& socket);
  void MaybeFinishClose(ConnectionId id);
  void CloseListeners();
  // Re-arms listeners whose pause is over and cancels overdue sends of
  // closed links; returns the earliest such time still ahead.
  std::optional<absl::Time> RunTimers();
  // After the loop: cancels everything in flight and reaps it (bounded).
  void CancelEverything();
  // For an operation that could not be submitted (no submission slot):
  // reports it as failed with `result` at the next dispatch.
  void Defer(uint64_t user_data, int result);

  const absl::Duration shutdown_timeout_;
  const int send_buffer_bytes_;
  const Logger logger_;
  std::atomic<bool> shutdown_requested_{false};
  bool ran_ = false;
  // Run() is over: operations that complete are not armed again.
  bool stopping_ = false;
  // The driver owns the bytes sends read, so it outlives the ring; the
  // receive buffers too (members are destroyed in reverse order).
  BrokerDriver driver_;
  std::unique_ptr<io_uring_internal::BufferRing> buffers_;
  UniqueFd wake_fd_;
  uint64_t wake_value_ = 0;  // the eventfd read lands here
  std::unique_ptr<io_uring_internal::Ring> ring_;
  // Operations submitted whose last completion has not arrived.
  size_t in_flight_ = 0;
  std::vector<std::unique_ptr<Listener>> listeners_;
  absl::flat_hash_map<ConnectionId, Socket> sockets_;
  // Sockets to resume reading (held bytes first) before the next wait.
  std::vector<ConnectionId> resume_list_;
  // Sockets that handed the driver input in this iteration.
  std::vector<ConnectionId> read_this_turn_;
  std::vector<ConnectionId> resuming_now_;
  // Closed links whose last send may still be running.
  std::vector<ConnectionId> lingering_;
  // Completions made up for operations that could not be submitted.
  std::vector<std::pair<uint64_t, int>> deferred_;
  std::vector<std::pair<uint64_t, int>> deferred_now_;
  absl::flat_hash_map<WatchId, Watched> watches_;
  WatchId next_watch_ = 1;
  // Unread input discarded when a link closes.
  std::unique_ptr<char[]> drain_buffer_;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_IO_URING_IO_URING_SERVER_H_
