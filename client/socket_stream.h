// File: client/socket_stream.h
// -----------------------------------------------------------------------------
//
// Byte streams over TCP and Unix-domain sockets, from an address string:
//
//   "127.0.0.1:24387"      TCP; the host may be a name ("localhost:24387") or
//   "[::1]:24387"          an IPv6 literal in brackets
//   "unix:/run/mf.sock"    a Unix-domain stream socket
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<ByteStream>> stream =
//       ConnectSocket("unix:/tmp/manifold.sock", absl::Seconds(5));
//   if (!stream.ok()) return stream.status();  // e.g. "cannot connect to
//                                              // unix:/tmp/...: No such file"

#ifndef MANIFOLD_CLIENT_SOCKET_STREAM_H_
#define MANIFOLD_CLIENT_SOCKET_STREAM_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/byte_stream.h"

namespace manifold {

// Connects to `address` (see the file comment), waiting at most `timeout`.
// Returns the stream, or: INVALID_ARGUMENT for an address that does not
// parse, NOT_FOUND for a host name that does not resolve, UNAVAILABLE when
// the connection is refused or fails, DEADLINE_EXCEEDED when it takes longer
// than `timeout`. Each message names the address.
absl::StatusOr<std::unique_ptr<ByteStream>> ConnectSocket(
    absl::string_view address, absl::Duration timeout);

}  // namespace manifold

#endif  // MANIFOLD_CLIENT_SOCKET_STREAM_H_
