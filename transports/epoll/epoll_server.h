// File: transports/epoll/epoll_server.h
// -----------------------------------------------------------------------------
//
// A Broker serving TCP and Unix-domain sockets from one epoll loop on the
// calling thread. Everything that talks to the Broker is in BrokerDriver
// (transports/driver/broker_driver.h); this adapter only accepts, reads,
// writes and closes sockets, edge-triggered:
//
//  - reads go to the driver in 64 KiB pieces, at most 256 KiB per socket per
//    loop iteration so one busy peer cannot starve the rest; reading stops
//    while the broker says the connection is full and resumes when it is not;
//  - writes are sendmsg() calls straight from the connection's output buffer
//    (no copy), continued after EAGAIN when epoll reports the socket
//    writable; a peer that reset the connection or went away is closed and its
//    resources released, and nobody else notices;
//  - EINTR is retried, end of stream (including a half-closed peer) and
//    errors close the link, and a connection beyond
//    BrokerOptions::max_connections gets its TOO_MANY_CONNECTIONS error frame
//    before the socket closes;
//  - running out of file descriptors drops the pending connection (see
//    ListenSocket::Accept) and pauses accepting for 100 ms instead of
//    spinning.
//
// Example:
//
//   SocketServerOptions options;
//   absl::StatusOr<std::unique_ptr<EpollServer>> server =
//       EpollServer::Create(options);
//   ListenerConfig tcp;
//   tcp.endpoint = *ParseTcpEndpoint("127.0.0.1:0");
//   absl::StatusOr<Endpoint> bound = (*server)->Listen(tcp);
//   ListenerConfig unix_socket;
//   unix_socket.endpoint = Endpoint::Unix("/tmp/manifold.sock");
//   (*server)->Listen(unix_socket);
//   std::thread loop([&] { (*server)->Run(); });
//   ...
//   (*server)->RequestShutdown();   // clients get Goodbye; Run() returns
//   loop.join();
//
// Thread safety: Run() runs the loop on the calling thread; RequestShutdown()
// may be called from anywhere, including a signal handler.

#ifndef MANIFOLD_TRANSPORTS_EPOLL_EPOLL_SERVER_H_
#define MANIFOLD_TRANSPORTS_EPOLL_EPOLL_SERVER_H_

#include <sys/epoll.h>

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/ids.h"
#include "transports/driver/broker_driver.h"
#include "transports/driver/link_io.h"
#include "transports/epoll/wakeable_epoll.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/listen_socket.h"
#include "transports/sockets/socket_server.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {

class EpollServer final : public SocketServer, private LinkIo {
 public:
  // Creates the epoll instance and the shutdown wake-up descriptor. Returns
  // an error only when the kernel refuses those.
  static absl::StatusOr<std::unique_ptr<EpollServer>> Create(
      SocketServerOptions options = SocketServerOptions());

  // Closes every socket that is still open and removes Unix socket files.
  ~EpollServer() override;

  absl::string_view loop_name() const override { return "epoll"; }
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
  struct Listener {
    ListenSocket socket;
    ListenerConfig config;
    // After an accept error (out of descriptors, memory): the listener is
    // left out of epoll until then, so the loop neither spins nor floods
    // the log.
    std::optional<absl::Time> paused_until;
  };
  struct Socket {
    UniqueFd fd;
    bool want_read = true;      // the driver's SetReading()
    bool readable = false;      // an edge arrived and input may be waiting
    bool hangup_seen = false;   // the peer closed or reset: read to the end
    bool done_reading = false;  // end of stream or an error was reported
    bool in_read_list = false;
  };

  struct Watched {
    int fd = -1;
    DescriptorWatcher* watcher = nullptr;
    uint32_t events = 0;  // 0: left out of epoll
  };

  EpollServer(SocketServerOptions options, WakeableEpoll epoll);

  // LinkIo
  absl::StatusOr<size_t> WriteSome(
      ConnectionId id, absl::Span<const absl::string_view> chunks) override;
  void SetReading(ConnectionId id, bool reading) override;
  void Close(ConnectionId id) override;

  void Dispatch(const epoll_event& event);
  void DispatchWatch(WatchId id, uint32_t events);
  void AcceptAll(size_t listener_index);
  void PauseListener(size_t listener_index);
  // Re-arms paused listeners whose pause is over; returns the end of the
  // earliest pause still running.
  std::optional<absl::Time> ResumeListeners();
  void Adopt(ListenSocket::Accepted accepted, const ListenerConfig& config);
  void ScheduleRead(ConnectionId id, Socket& socket);
  void ReadScheduled();
  void ReadSocket(ConnectionId id, Socket& socket);
  int TimeoutMs(std::optional<absl::Time> wakeup) const;

  const absl::Duration shutdown_timeout_;
  const int send_buffer_bytes_;
  const Logger logger_;
  WakeableEpoll epoll_;
  std::atomic<bool> shutdown_requested_{false};
  BrokerDriver driver_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  absl::flat_hash_map<ConnectionId, Socket> sockets_;
  // Sockets with input to read before the next epoll_wait().
  std::vector<ConnectionId> read_list_;
  std::vector<ConnectionId> reading_now_;
  std::unique_ptr<char[]> read_buffer_;
  absl::flat_hash_map<WatchId, Watched> watches_;
  WatchId next_watch_ = 1;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_EPOLL_EPOLL_SERVER_H_
