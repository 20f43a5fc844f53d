// File: examples/tcp_broker/shutdown_signals.h
// -----------------------------------------------------------------------------
//
// SIGINT and SIGTERM start a graceful shutdown of a SocketServer: clients are
// told Goodbye and Run() returns once they are gone. A second signal ends the
// process at once, for when the first is taking too long. SIGPIPE is ignored.
//
// Example:
//
//   InstallShutdownSignals(*server);
//   absl::Status done = server->Run();   // returns after SIGTERM

#ifndef MANIFOLD_EXAMPLES_TCP_BROKER_SHUTDOWN_SIGNALS_H_
#define MANIFOLD_EXAMPLES_TCP_BROKER_SHUTDOWN_SIGNALS_H_

#include "transports/sockets/socket_server.h"

namespace manifold {

// Routes SIGINT and SIGTERM to server.RequestShutdown(). REQUIRES: `server`
// outlives every signal that may arrive (keep it until the process exits).
void InstallShutdownSignals(SocketServer& server);

}  // namespace manifold

#endif  // MANIFOLD_EXAMPLES_TCP_BROKER_SHUTDOWN_SIGNALS_H_
