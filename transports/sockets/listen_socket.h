// File: transports/sockets/listen_socket.h
// -----------------------------------------------------------------------------
//
// A listening TCP or Unix-domain socket for a broker, loop-agnostic: epoll,
// io_uring and libuv adapters all open their listeners here and accept from
// them (or hand fd() to their own accept machinery).
//
//  - TCP: SO_REUSEADDR, so a restarted broker binds while old connections sit
//    in TIME_WAIT; port 0 binds a free port, which endpoint() reports.
//  - Unix: a stale socket file (left by a broker that died; nobody accepts on
//    it) is removed first; a live one, or a path that is not a socket, is an
//    error. The file is removed again when the ListenSocket goes away, if it
//    is still the one this socket created.
//  - Accepted sockets are non-blocking and close-on-exec; TCP ones have
//    TCP_NODELAY (the broker writes whole frames and batches by itself).
//
// Example:
//
//   absl::StatusOr<ListenSocket> listener =
//       ListenSocket::Open(*ParseTcpEndpoint("127.0.0.1:0"));
//   if (!listener.ok()) return listener.status();  // e.g. address in use
//   printf("listening on %s\n", listener->endpoint().ToString().c_str());
//   while (true) {
//     absl::StatusOr<std::optional<ListenSocket::Accepted>> a =
//         listener->Accept();
//     if (!a.ok()) { Log(a.status()); break; }
//     if (!a->has_value()) break;          // nothing pending
//     Serve(std::move((*a)->fd), (*a)->peer);
//   }

#ifndef MANIFOLD_TRANSPORTS_SOCKETS_LISTEN_SOCKET_H_
#define MANIFOLD_TRANSPORTS_SOCKETS_LISTEN_SOCKET_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {

class ListenSocket {
 public:
  // A connection taken off the listen queue.
  struct Accepted {
    UniqueFd fd;
    // The peer's address for PeerInfo: "127.0.0.1:50212", "unix:<path>".
    std::string peer;
  };

  // Opens a non-blocking listening socket on `endpoint`. Errors name the
  // endpoint: "cannot listen on 127.0.0.1:24387: Address already in use"
  // (ALREADY_EXISTS), "cannot listen on /run/m.sock: another process is
  // listening there" (ALREADY_EXISTS), a path that is not a socket
  // (FAILED_PRECONDITION), an unresolvable host (NOT_FOUND).
  static absl::StatusOr<ListenSocket> Open(const Endpoint& endpoint,
                                           int backlog = 4096);

  ListenSocket(ListenSocket&& other) noexcept;
  ListenSocket& operator=(ListenSocket&& other) noexcept;
  ListenSocket(const ListenSocket&) = delete;
  ListenSocket& operator=(const ListenSocket&) = delete;
  // Closes the socket and removes a Unix socket's file (see file comment).
  ~ListenSocket();

  int fd() const { return fd_.get(); }
  // Where the socket is bound; for TCP port 0, with the port it got.
  const Endpoint& endpoint() const { return endpoint_; }

  // Takes one connection off the listen queue. Returns nullopt when none is
  // pending. When the process is out of file descriptors, the pending
  // connection is accepted and closed at once (through a descriptor held in
  // reserve for this) and RESOURCE_EXHAUSTED is returned, so the peer sees a
  // prompt close and a level-triggered loop does not spin.
  absl::StatusOr<std::optional<Accepted>> Accept();

 private:
  ListenSocket(UniqueFd fd, Endpoint endpoint, UniqueFd reserve);
  void RemoveSocketFile();

  UniqueFd fd_;
  Endpoint endpoint_;
  // A spare descriptor (/dev/null) released when accept() hits EMFILE.
  UniqueFd reserve_;
  // Identity of the Unix socket file created, to remove only our own.
  dev_t file_device_ = 0;
  ino_t file_inode_ = 0;
  bool owns_file_ = false;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_SOCKETS_LISTEN_SOCKET_H_
