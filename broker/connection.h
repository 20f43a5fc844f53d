// File: broker/connection.h
// -----------------------------------------------------------------------------
//
// One client's link to the Broker, as the transport sees it. The transport
// owns the socket (or pipe, or in-memory queue); the Broker owns this object.
// They meet through two bounded channels:
//
//   inbound   bytes the transport read from the peer  -> Receive()
//             (bounded: WantsRead() turns false when it is full)
//   outbound  bytes the broker wants written to the peer -> PendingOutput(),
//             Consume() (bounded: the slow-consumer policy applies past
//             BrokerOptions::max_outbound_bytes)
//
// A connection never calls into the transport. The transport learns what to do
// from Broker::TakeChanged() and these accessors:
//
//   - after reading:   conn.Receive(bytes, now); stop reading while
//                      !conn.WantsRead()
//   - to write:        conn.PendingOutput(chunks) -> writev -> conn.Consume(n)
//   - to close:        once conn.ShouldClose(), close the link and call
//                      broker.Close(conn.id(), ...), which destroys this object
//
// Example (inside a transport's read handler):
//
//   Connection* conn = broker.FindConnection(id);
//   char buf[kMaxReceiveBytes];
//   ssize_t n = read(fd, buf, sizeof buf);
//   conn->Receive(absl::string_view(buf, n), now);
//   if (!conn->WantsRead()) PauseReading(fd);
//   ...
//   broker.Process(now);
//
// Time: every `now` given to a connection or its broker is a monotonic time
// (see broker/broker.h); it never goes backwards.
//
// Thread safety: none; a Connection belongs to its Broker's thread.

#ifndef MANIFOLD_BROKER_CONNECTION_H_
#define MANIFOLD_BROKER_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/ids.h"

namespace manifold {

// Where a connection comes from. Shown in events and handed to admission.
struct PeerInfo {
  // E.g. "127.0.0.1:50212", "unix:/run/manifold.sock", "memory:3".
  std::string address;
};

enum class ConnectionState {
  kAwaitingHello,      // accepted; the client has not said Hello yet
  kAwaitingAdmission,  // Hello received; waiting for Broker::Admit/Refuse
  kOpen,               // welcomed
  kClosing,            // the broker is done with it; flushing its last output
};

// The most bytes one Connection::Receive() may carry. A connection takes
// this much beyond its inbound limit, so a transport that reads at most this
// much at a time, and stops reading while WantsRead() is false, never
// overruns it.
inline constexpr size_t kMaxReceiveBytes = 64 * 1024;

// A connection's public face. Made only by Broker::Accept(); the broker owns
// it, and it is valid until Broker::Close() for its id returns.
class Connection {
 public:
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ConnectionId id() const;
  const PeerInfo& peer() const;
  ConnectionState state() const;
  // The name from the client's Hello; empty before it.
  const std::string& client_name() const;
  // Who the embedder admitted it as (Broker::Admit with a Grant); empty
  // otherwise.
  const std::string& user() const;
  // The wire protocol's name: "native", "nats".
  absl::string_view protocol() const;
  // The codec's configuration (ProtocolCodec::settings()).
  std::string codec_settings() const;
  // "conn#7 ('billing')", or "conn#7" before Hello: how errors and events
  // name this connection.
  std::string Describe() const;

  // --- Inbound -----------------------------------------------------------

  // Hands over bytes read from the peer; they are handled by the next
  // Broker::Process(). Ignored once the connection is closing.
  // REQUIRES: bytes.size() <= kMaxReceiveBytes; `now` is not earlier than
  // any time given to this broker before. A transport that keeps calling
  // Receive while WantsRead() is false overruns the inbound limit, and the
  // connection closes with INPUT_OVERFLOW.
  void Receive(absl::string_view bytes, absl::Time now);

  // Returns false while the inbound channel is full (or the connection is
  // closing): the transport should stop reading this peer until the
  // connection shows up in Broker::TakeChanged() with WantsRead() true again.
  bool WantsRead() const;

  // --- Outbound ----------------------------------------------------------

  // Bytes waiting to be written to the peer. A frame a codec is still
  // gathering (NATS over WebSocket) counts only once the broker closes it,
  // which every Broker call does before it returns.
  size_t PendingOutputBytes() const;

  // Fills `chunks` with the front of the pending output and returns how many
  // chunks it filled; write them in order (e.g. with writev). The views stay
  // valid until the next call to Consume() or to any Broker method.
  size_t PendingOutput(absl::Span<absl::string_view> chunks) const;

  // Returns a copy of all pending output, however many slices it spans (for
  // recorders and tests; transports use PendingOutput()).
  std::string CopyPendingOutput() const;

  // Drops the first `n` bytes of pending output: the peer has them.
  // REQUIRES: n <= PendingOutputBytes().
  void Consume(size_t n);

  // Every byte queued for the peer since Accept: written, pending, or
  // discarded when a closing connection did not drain in time. The newest
  // `output_total() - x` bytes of PendingOutput() are the ones queued since
  // output_total() was x (used by transcript recorders).
  uint64_t output_total() const;

  // --- Closing -----------------------------------------------------------

  // Returns true when the transport should close the link and then call
  // Broker::Close(): the broker is done with the connection and its last
  // output has been written (or discarded after BrokerOptions::close_linger).
  bool ShouldClose() const;

  // Why the connection is closing: a status carrying a wire::Code. OK while
  // the connection is not closing.
  const absl::Status& close_reason() const;

 protected:
  // Only the broker makes and destroys connections.
  Connection() = default;
  ~Connection() = default;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_CONNECTION_H_
