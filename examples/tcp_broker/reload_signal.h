// File: examples/tcp_broker/reload_signal.h
// -----------------------------------------------------------------------------
//
// SIGHUP asks manifoldd to reload its configuration. The handler only sets a
// flag and wakes the loop (SocketServer::Wake); the loop's thread takes the
// request in DriverOptions::before_turn and does the work there.
//
// Example:
//
//   options.driver.before_turn = [&](BrokerDriver& driver) {
//     if (TakeReloadRequest()) Reload(driver);
//   };
//   ... create the server ...
//   InstallReloadSignal(*server);

#ifndef MANIFOLD_EXAMPLES_TCP_BROKER_RELOAD_SIGNAL_H_
#define MANIFOLD_EXAMPLES_TCP_BROKER_RELOAD_SIGNAL_H_

#include "transports/sockets/socket_server.h"

namespace manifold {

// Routes SIGHUP to a reload request and server.Wake(). REQUIRES: `server`
// outlives every signal that may arrive.
void InstallReloadSignal(SocketServer& server);

// Whether a reload was asked for since the last call; clears the request.
bool TakeReloadRequest();

}  // namespace manifold

#endif  // MANIFOLD_EXAMPLES_TCP_BROKER_RELOAD_SIGNAL_H_
