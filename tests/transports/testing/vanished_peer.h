// File: tests/transports/testing/vanished_peer.h
// -----------------------------------------------------------------------------
//
// For tests of socket servers: a subscriber that goes away while the broker
// still has a large message to write to it. Its socket is full when it
// closes, so the server's next write fails (EPIPE on a Unix socket, which
// raises SIGPIPE unless the server guards against it). The server must end
// that connection alone and go on serving everyone else.
//
//   // With a server listening on `unix_socket` and `tcp`:
//   ExpectAVanishedPeerEndsOnlyItsConnection(/*leaver_at=*/unix_socket,
//                                            /*others_at=*/tcp);

#ifndef MANIFOLD_TESTS_TRANSPORTS_TESTING_VANISHED_PEER_H_
#define MANIFOLD_TESTS_TRANSPORTS_TESTING_VANISHED_PEER_H_

#include "transports/sockets/endpoint.h"

namespace manifold::testing {

// Connects a subscriber with a 4 KiB receive buffer at `leaver_at`, a
// publisher and a watcher of connection removals at `others_at`; publishes
// 1 MiB to the subscriber, waits a round trip (its socket is then full),
// closes it, and expects (gtest) the broker to report that subscriber's
// removal and still answer the publisher.
void ExpectAVanishedPeerEndsOnlyItsConnection(const Endpoint& leaver_at,
                                              const Endpoint& others_at);

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TRANSPORTS_TESTING_VANISHED_PEER_H_
