// File: client/load/loopback.h
// -----------------------------------------------------------------------------
//
// The load tool only ever talks to a server on this machine: it can saturate
// whatever it targets, so aiming it at another host by mistake would be a
// denial of service. This file turns the --server text into an endpoint and
// refuses anything that is not loopback.
//
// Accepted: "127.x.y.z:PORT", "[::1]:PORT", "localhost:PORT" (any name that
// resolves to a loopback address), and "unix:PATH" (a Unix-domain socket is
// local by construction).
//
// Example:
//
//   absl::StatusOr<Endpoint> target = LoopbackEndpoint("127.0.0.1:4222");
//   if (!target.ok()) { /* print target.status().message() and exit */ }

#ifndef MANIFOLD_CLIENT_LOAD_LOOPBACK_H_
#define MANIFOLD_CLIENT_LOAD_LOOPBACK_H_

#include <sys/socket.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "transports/sockets/endpoint.h"

namespace manifold::load {

// Returns true if `address` is an IPv4 address in 127.0.0.0/8, the IPv6
// loopback ::1, an IPv4-mapped IPv6 loopback (::ffff:127.x.y.z), or a Unix
// socket address.
bool IsLoopback(const sockaddr* address, socklen_t length);

// Parses `server` ("HOST:PORT" or "unix:PATH") and checks that it names this
// machine. Returns INVALID_ARGUMENT naming the problem for text that does not
// parse, and PERMISSION_DENIED ("... is not a loopback address") for any
// other host. Resolves names with getaddrinfo, as connecting would.
absl::StatusOr<Endpoint> LoopbackEndpoint(absl::string_view server);

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_LOOPBACK_H_
