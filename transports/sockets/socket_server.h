// File: transports/sockets/socket_server.h
// -----------------------------------------------------------------------------
//
// A broker serving listening sockets from one event loop. Each socket adapter
// (transports/epoll now; io_uring and libuv next) implements SocketServer, so
// a program such as manifoldd picks a loop by name and drives them all alike.
//
// A listener carries its own codec factory: the native protocol by default, or
// another ProtocolCodec (a NATS front end) for every connection accepted on
// it. Native and other clients then share one Broker.
//
// A component that is not a Broker client (the cluster link to Redis) runs
// connections of its own on the same loop, with no thread of its own: the
// loop watches their descriptors (Watch(); OutboundConnection in
// transports/sockets/outbound_connection.h connects and moves bytes over
// it), and BrokerDriver::SetTurnHook lets it act in every turn.
//
// Example:
//
//   SocketServerOptions options;
//   options.broker.max_connections = 1000;
//   std::unique_ptr<SocketServer> server = ...;   // e.g. EpollServer::Create
//   ListenerConfig native;
//   native.endpoint = *ParseTcpEndpoint("127.0.0.1:0");
//   absl::StatusOr<Endpoint> bound = server->Listen(native);  // real port
//   ListenerConfig nats;                          // another protocol, same bus
//   nats.endpoint = *ParseTcpEndpoint("127.0.0.1:4222");
//   nats.codec_factory = [] { return MakeNatsCodec(); };
//   nats.label = "nats";
//   server->Listen(nats);
//   ListenerConfig secure = native;               // TLS on another port
//   secure.endpoint = *ParseTcpEndpoint("127.0.0.1:4443");
//   secure.security = TlsLinkSecurityFactory(tls_contexts);
//   server->Listen(secure);
//   // From a signal handler or another thread: server->RequestShutdown();
//   absl::Status done = server->Run();   // returns after the shutdown

#ifndef MANIFOLD_TRANSPORTS_SOCKETS_SOCKET_SERVER_H_
#define MANIFOLD_TRANSPORTS_SOCKETS_SOCKET_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/options.h"
#include "broker/protocol_codec.h"
#include "transports/driver/broker_driver.h"
#include "transports/driver/link_security.h"
#include "transports/sockets/endpoint.h"

namespace manifold {

// A descriptor the loop watches for a component that is not a Broker client,
// such as an outbound connection (transports/sockets/outbound_connection.h).
class DescriptorWatcher {
 public:
  virtual ~DescriptorWatcher() = default;
  // The descriptor is ready for what the watch asked: readable (input, end
  // of stream or an error waiting) and/or writable. Level-triggered: called
  // again in later iterations while it stays ready. May call UpdateWatch()
  // or Unwatch() on its own watch.
  virtual void OnReady(bool readable, bool writable) = 0;
};

// Names a watch of SocketServer::Watch(); never reused by a server.
using WatchId = uint64_t;

// Makes the codec for one new connection.
using CodecFactory = std::function<std::unique_ptr<ProtocolCodec>()>;

// One listener of a SocketServer.
struct ListenerConfig {
  Endpoint endpoint;
  // Makes the codec for each connection accepted here; empty means the
  // native protocol.
  CodecFactory codec_factory;
  // Names the listener in logs and in the "listening on" line; empty means
  // the endpoint's kind ("tcp", "unix").
  std::string label;
  // Makes the security layer (TLS: transports/tls/tls_link_security.h) of
  // each connection accepted here; empty means plain bytes.
  LinkSecurityFactory security;

  absl::string_view display_label() const {
    return label.empty() ? endpoint.kind_name() : absl::string_view(label);
  }
};

struct SocketServerOptions {
  BrokerOptions broker;
  DriverOptions driver;
  // How long a graceful shutdown may take before the remaining links are
  // closed regardless of unwritten output.
  absl::Duration shutdown_timeout = absl::Seconds(5);
  // SO_SNDBUF for accepted sockets; 0 keeps the system's default. Small
  // values make partial writes common (tests use that).
  int send_buffer_bytes = 0;
};

class SocketServer {
 public:
  virtual ~SocketServer() = default;

  // The event loop's name, e.g. "epoll".
  virtual absl::string_view loop_name() const = 0;

  // Starts listening on `config.endpoint`. Returns where it is bound (the
  // real port when port 0 was asked), or an error naming the endpoint (in
  // use, not resolvable, a live Unix socket). REQUIRES: Run() has not
  // started.
  virtual absl::StatusOr<Endpoint> Listen(ListenerConfig config) = 0;

  // Runs the loop until a shutdown asked for with RequestShutdown() is over:
  // the listeners close (Unix socket files are removed), every client is told
  // Goodbye, and the loop waits until all connections have closed or
  // SocketServerOptions::shutdown_timeout has passed. Returns OK then, or the
  // error that stopped the loop. Call it once.
  virtual absl::Status Run() = 0;

  // Asks Run() to shut down gracefully. Safe from any thread and from a
  // signal handler; repeated calls change nothing.
  virtual void RequestShutdown() = 0;

  // Makes Run() take a turn soon even when nothing else happens, so that
  // DriverOptions::before_turn sees what a signal handler or another thread
  // asked for (a configuration reload). Safe from any thread and from a
  // signal handler.
  virtual void Wake() = 0;

  // Watches `fd` (not owned; non-blocking) on the loop's thread and calls
  // `watcher` (not owned) when it is ready for reading (`read`) or writing
  // (`write`). Call it and the two below on the loop's thread (inside
  // TurnHook or watcher calls) or while Run() is not running. The caller
  // keeps `fd` open until Unwatch(). Returns an error when the loop refuses
  // the descriptor.
  virtual absl::StatusOr<WatchId> Watch(int fd, bool read, bool write,
                                        DescriptorWatcher& watcher) = 0;
  // Changes what watch `id` waits for. Unknown ids are ignored.
  virtual void UpdateWatch(WatchId id, bool read, bool write) = 0;
  // Ends watch `id`: its watcher is not called again, and its descriptor
  // may be closed right after. Unknown ids are ignored (after Run() the loop
  // may already have let it go).
  virtual void Unwatch(WatchId id) = 0;

  // The driver and its Broker. Use only on the loop's thread (e.g. inside
  // DriverOptions::on_event), or while Run() is not running.
  virtual BrokerDriver& driver() = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_SOCKETS_SOCKET_SERVER_H_
