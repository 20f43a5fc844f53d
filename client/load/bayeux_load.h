// File: client/load/bayeux_load.h
// -----------------------------------------------------------------------------
//
// The load tool's Bayeux long-polling client: `manifold bench pubsub|fanout
// --protocol bayeux` against any Bayeux server on this machine (manifoldd
// --http's /cometd, Faye's Node.js server), speaking raw HTTP/1.1 keep-alive
// (client/load/http_link.h) and reading answers with a SAX parser
// (client/load/bayeux_reply.h), so that the client spends little CPU per
// message.
//
//  - Every subscriber is its own Bayeux client: it handshakes (keeping the
//    session cookie, e.g. BAYEUX_BROWSER, when the server sets one),
//    subscribes to the run's channel and loops /meta/connect on its own
//    connection, one connect in flight. `advice.reconnect` is followed:
//    "retry" polls again, "handshake" handshakes and subscribes again (what
//    was published meanwhile shows as lost), "none" ends the run with an
//    error.
//  - One publisher client handshakes, keeps one /meta/connect in flight on a
//    connection of its own (a server may end a session that does not poll),
//    and posts batches of up to kBayeuxBatch publish messages over
//    kBayeuxLanes lanes: each lane its own keep-alive connection with one
//    POST in flight, so a lane's messages reach the server in order. Every
//    message of a batch must be answered `successful`.
//  - The publisher stays at most `window` messages (default 4000) ahead of
//    the slowest subscriber.
//  - Each message's data is {"l": lane, "s": sequence within the lane,
//    "p": padding of `payload_bytes` bytes}; every subscriber checks it gets
//    every sequence of every lane exactly once and in order.
//  - Received msgs/s counts the messages of all subscribers together, from
//    the first publish to the last arrival.
//
// The subscribers run in one event loop thread, the publisher in another.
//
// Example:
//
//   LoadOptions options;
//   options.scenario = Scenario::kFanOut;
//   options.bayeux_path = "/cometd";
//   options.server = "127.0.0.1:8080";
//   options.subscribers = 64;
//   absl::StatusOr<LoadReport> report = RunLoad(options);  // load_runner.h

#ifndef MANIFOLD_CLIENT_LOAD_BAYEUX_LOAD_H_
#define MANIFOLD_CLIENT_LOAD_BAYEUX_LOAD_H_

#include "absl/status/statusor.h"
#include "client/load/load_options.h"
#include "transports/sockets/endpoint.h"

namespace manifold::load {

// Publish lanes (connections with one POST in flight each) and publish
// messages per POST.
inline constexpr int kBayeuxLanes = 8;
inline constexpr int kBayeuxBatch = 100;
// The default window, in messages ahead of the slowest subscriber.
inline constexpr uint64_t kBayeuxWindow = 4000;

// Runs `options` (resolved, with a non-empty bayeux_path) against the
// Bayeux server at `endpoint`. Returns an error naming the client when the
// server refuses a handshake, subscription or poll, answers other than HTTP
// 200 with JSON, or closes a connection; FAILED_PRECONDITION in a build
// without http-parser and RapidJSON.
absl::StatusOr<LoadReport> RunBayeuxLoad(const LoadOptions& options,
                                         const Endpoint& endpoint);

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_BAYEUX_LOAD_H_
