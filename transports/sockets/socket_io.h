// File: transports/sockets/socket_io.h
// -----------------------------------------------------------------------------
//
// Non-blocking reads and writes on stream sockets, with the outcomes a
// readiness-based loop has to tell apart: bytes, would-block, end of stream,
// and errors as statuses (interrupted calls are retried). Writes use
// sendmsg(MSG_NOSIGNAL), so a peer that has gone away yields an error instead
// of SIGPIPE, whatever the program's signal setup.
//
// Example (an edge-triggered read handler):
//
//   char buffer[64 * 1024];
//   while (true) {
//     ReadResult r = ReadSome(fd, absl::MakeSpan(buffer));
//     if (r.kind == ReadResult::kData) Handle(buffer, r.bytes);
//     else if (r.kind == ReadResult::kWouldBlock) break;
//     else if (r.kind == ReadResult::kEnd) { PeerClosed(); break; }
//     else { Failed(r.error); break; }
//   }

#ifndef MANIFOLD_TRANSPORTS_SOCKETS_SOCKET_IO_H_
#define MANIFOLD_TRANSPORTS_SOCKETS_SOCKET_IO_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {

// Returns a status for `error` (an errno value) that says what failed:
// "connect to 127.0.0.1:1: Connection refused". The code follows the errno:
// UNAVAILABLE for a peer that reset or went away, ALREADY_EXISTS for an
// address in use, PERMISSION_DENIED, RESOURCE_EXHAUSTED for descriptor and
// memory limits, otherwise INTERNAL.
absl::Status ErrnoStatus(int error, absl::string_view what);

struct ReadResult {
  enum Kind {
    kData,        // `bytes` bytes were read
    kWouldBlock,  // nothing to read now
    kEnd,         // the peer closed its side
    kError,       // `error` says why (e.g. reset by the peer)
  };
  Kind kind = kWouldBlock;
  size_t bytes = 0;
  absl::Status error;
};

// Reads once into `buffer` without blocking (the socket must be
// non-blocking, or readable).
ReadResult ReadSome(int fd, absl::Span<char> buffer);

// Writes a prefix of `chunks` (at most IOV_MAX of them are used) without
// blocking. Returns the bytes written, 0 when the socket takes nothing now,
// or an error (UNAVAILABLE when the peer reset or closed the connection).
absl::StatusOr<size_t> WriteSome(int fd,
                                 absl::Span<const absl::string_view> chunks);

// Writes all of `bytes` to the blocking socket `fd`, retrying after EINTR.
// Returns OK, or the first error ("send: ..."; UNAVAILABLE when the peer
// reset or closed the connection, never SIGPIPE). For clients and tests;
// a broker's loop uses WriteSome().
absl::Status SendAll(int fd, absl::string_view bytes);

// Sets O_NONBLOCK on `fd`.
absl::Status SetNonBlocking(int fd);

// Connects a blocking stream socket to `endpoint`, giving up after
// `timeout`. For clients and tests; brokers accept instead.
absl::StatusOr<UniqueFd> ConnectStream(
    const Endpoint& endpoint, absl::Duration timeout = absl::Seconds(5));

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_SOCKETS_SOCKET_IO_H_
