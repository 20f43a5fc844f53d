// File: examples/tcp_broker/server_flags.h
// -----------------------------------------------------------------------------
//
// manifoldd's own flags: where to listen, which event loop, how much to log,
// how long a graceful shutdown may take. Together with broker_flags.h they
// make the whole configuration of a running broker.
//
//   --listen=127.0.0.1:24387   TCP, native protocol ("" disables; port 0 picks
//                              a free port)
//   --unix=/run/manifold.sock  a Unix-domain socket, native protocol
//   --loop=epoll               the event loop (see event_loops.h)
//   --log_level=info           error | warning | info | debug
//   --shutdown_timeout=5s      SIGINT/SIGTERM: time to say Goodbye and flush
//
// Example:
//
//   absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
//   for (ListenerConfig& l : config->listeners) server->Listen(l);

#ifndef MANIFOLD_EXAMPLES_TCP_BROKER_SERVER_FLAGS_H_
#define MANIFOLD_EXAMPLES_TCP_BROKER_SERVER_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "transports/sockets/socket_server.h"

namespace manifold {

struct ServerConfig {
  // The --loop name.
  std::string loop;
  // What to listen on, in the order the "listening on" line names them.
  std::vector<ListenerConfig> listeners;
  // Broker limits (broker_flags.h), logging and shutdown.
  SocketServerOptions options;
  // --record: where to write the session's transcript; empty: not recorded.
  std::string record_path;
};

// Builds the configuration from every flag. Returns INVALID_ARGUMENT naming
// the flag at fault: an address that does not parse, no listener at all, or
// a bad broker limit.
absl::StatusOr<ServerConfig> ServerConfigFromFlags();

}  // namespace manifold

#endif  // MANIFOLD_EXAMPLES_TCP_BROKER_SERVER_FLAGS_H_
