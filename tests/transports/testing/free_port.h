// File: tests/transports/testing/free_port.h
// -----------------------------------------------------------------------------
//
// For tests that start a server which cannot bind port 0 and report its port
// (redis-server): a loopback TCP port nobody listens on right now. Another
// process may take it before the server does; tests accept that small race.
//
//   const uint16_t port = FreeLoopbackPort();
//   ChildProcess::Start("/usr/bin/redis-server",
//                       {"--port", absl::StrCat(port), "--bind", "127.0.0.1"});

#ifndef MANIFOLD_TESTS_TRANSPORTS_TESTING_FREE_PORT_H_
#define MANIFOLD_TESTS_TRANSPORTS_TESTING_FREE_PORT_H_

#include <cstdint>

namespace manifold::testing {

// Returns a port on 127.0.0.1 that was free when asked (the kernel's choice
// for a socket bound to port 0, then closed).
uint16_t FreeLoopbackPort();

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TRANSPORTS_TESTING_FREE_PORT_H_
