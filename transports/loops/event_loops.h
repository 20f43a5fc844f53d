// File: transports/loops/event_loops.h
// -----------------------------------------------------------------------------
//
// The event loops this build can run the broker on, by name (manifoldd's
// --loop): "epoll" always, "io_uring" and "uv" when the build found liburing
// and libuv (their adapters are optional). Each is a SocketServer
// (transports/sockets/socket_server.h); adding a loop is one entry in
// event_loops.cc, and every program and test that picks a loop by name gets
// it from here.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<SocketServer>> server =
//       MakeSocketServer("epoll", options);
//   if (!server.ok()) Fail(server.status());  // "unknown --loop 'kqueue'..."

#ifndef MANIFOLD_TRANSPORTS_LOOPS_EVENT_LOOPS_H_
#define MANIFOLD_TRANSPORTS_LOOPS_EVENT_LOOPS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "transports/sockets/socket_server.h"

namespace manifold {

// The loop names this build supports, comma-separated, in a fixed order:
// "epoll,io_uring,uv" with every optional library present.
std::string AvailableEventLoops();

// Creates a server on the loop called `loop`. Returns INVALID_ARGUMENT for a
// name this build does not support, or the loop's own setup error (for
// io_uring where the kernel forbids or lacks it: a one-line UNAVAILABLE
// status that says why).
absl::StatusOr<std::unique_ptr<SocketServer>> MakeSocketServer(
    absl::string_view loop, SocketServerOptions options);

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_LOOPS_EVENT_LOOPS_H_
