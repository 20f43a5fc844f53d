// File: transports/memory/memory_broker.h
// -----------------------------------------------------------------------------
//
// A Broker for clients in the same process: it runs on a background thread,
// and each client talks to it through a MemoryLink, a thread-safe duplex byte
// pipe carrying the same native frames a socket would. Handy for embedding a
// bus in one program (as t2_bus's memory mode) and for tests that want a real
// broker without sockets.
//
// Every queue is bounded: a link buffers at most 256 KiB in each direction. A
// client that writes faster than the broker reads waits in Write(); a client
// that does not read its link is a slow consumer like any other (the
// BrokerOptions policy applies).
//
// Example:
//
//   MemoryBroker broker;
//   std::unique_ptr<MemoryLink> link = broker.Connect("sensor-7");
//   wire::ClientMessage hello;
//   hello.mutable_hello()->set_protocol_version(1);
//   link->Write(EncodeFrame(hello));
//   absl::StatusOr<std::string> bytes =
//       link->Read(absl::Now() + absl::Seconds(1));   // the Welcome frame
//   ...
//   link.reset();            // closes the link; the broker drops the session
//
// Thread safety: MemoryBroker::Connect and every MemoryLink method may be
// called from any thread.

#ifndef MANIFOLD_TRANSPORTS_MEMORY_MEMORY_BROKER_H_
#define MANIFOLD_TRANSPORTS_MEMORY_MEMORY_BROKER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/options.h"
#include "broker/protocol_codec.h"
#include "transports/driver/link_security.h"

namespace manifold {

namespace memory_internal {
class Doorbell;
class MemoryLoop;
class MemoryPipe;
}  // namespace memory_internal

class MemoryLink;

// Runs a Broker on a background thread for clients in the same process.
class MemoryBroker {
 public:
  // Starts the broker's thread.
  explicit MemoryBroker(BrokerOptions options = BrokerOptions());
  MemoryBroker(const MemoryBroker&) = delete;
  MemoryBroker& operator=(const MemoryBroker&) = delete;
  // Shuts the broker down gracefully (Broker::Shutdown: every client is sent
  // Goodbye), waits until each link's last output is queued for its client
  // or BrokerOptions::close_linger passes, then joins the thread. Links that
  // outlive the broker read what was queued for them, then UNAVAILABLE.
  ~MemoryBroker();

  // Opens an in-process connection to the broker, named "memory:<peer_name>"
  // in events. The broker accepts it on its thread (bytes written meanwhile
  // wait in the link), speaking the protocol `codec` implements (another
  // front end, e.g. HttpCodec), or the native one when it is null. With
  // `security` (e.g. MakeTlsLinkSecurity, transports/tls), the link's bytes
  // pass through it as a socket's would: the client then speaks TLS on the
  // link. Thread-safe.
  std::unique_ptr<MemoryLink> Connect(
      absl::string_view peer_name,
      std::unique_ptr<ProtocolCodec> codec = nullptr,
      std::unique_ptr<LinkSecurity> security = nullptr);

 private:
  std::shared_ptr<memory_internal::Doorbell> doorbell_;
  std::unique_ptr<memory_internal::MemoryLoop> loop_;
  std::thread thread_;
};

// The client's end of an in-process connection: a thread-safe duplex byte
// pipe.
class MemoryLink {
 public:
  MemoryLink(const MemoryLink&) = delete;
  MemoryLink& operator=(const MemoryLink&) = delete;
  // Closes the link.
  ~MemoryLink();

  // Queues bytes for the broker; blocks while the link's inbound queue is
  // full. Concurrent writes do not interleave. Returns an UNAVAILABLE error
  // once the link is closed.
  absl::Status Write(absl::string_view bytes);

  // Waits until bytes from the broker are available or `deadline` passes.
  // Returns the available bytes (any amount), an empty string at the
  // deadline, or an UNAVAILABLE error once the broker closed the link and
  // everything it sent has been read (or once Close() was called).
  absl::StatusOr<std::string> Read(absl::Time deadline);

  // Closes the link from the client's side: the broker sees the peer hang up
  // (after the bytes already written), and blocked Write() and Read() calls
  // return UNAVAILABLE.
  void Close();

 private:
  friend class MemoryBroker;
  explicit MemoryLink(std::shared_ptr<memory_internal::MemoryPipe> pipe);

  std::shared_ptr<memory_internal::MemoryPipe> pipe_;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_MEMORY_MEMORY_BROKER_H_
