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
//   conn->Receive(absl::string_view(buf, n), now);
//   if (!conn->WantsRead()) PauseReading(fd);
//   ...
//   broker.Process(now);

#ifndef MANIFOLD_BROKER_CONNECTION_H_
#define MANIFOLD_BROKER_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/btree_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "broker/outbound_buffer.h"
#include "broker/protocol_codec.h"
#include "broker/subscription_index.h"
#include "broker/timer_queue.h"
#include "core/ids.h"

namespace manifold {

class Broker;

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

class Connection {
 public:
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  ConnectionId id() const { return id_; }
  const PeerInfo& peer() const { return peer_; }
  ConnectionState state() const { return state_; }
  // The name from the client's Hello; empty before it.
  const std::string& client_name() const { return client_name_; }
  // The wire protocol's name: "native", "nats".
  absl::string_view protocol() const { return codec_->name(); }
  // The codec's configuration (ProtocolCodec::settings()).
  std::string codec_settings() const { return codec_->settings(); }
  // "conn#7 ('billing')", or "conn#7" before Hello: how errors and events
  // name this connection.
  std::string Describe() const;

  // --- Inbound -----------------------------------------------------------

  // Hands over bytes read from the peer; they are handled by the next
  // Broker::Process(). Ignored once the connection is closing. A transport
  // that keeps calling Receive while WantsRead() is false overruns the inbound
  // limit, and the connection closes with INPUT_OVERFLOW.
  void Receive(absl::string_view bytes, absl::Time now);

  // Returns false while the inbound channel is full (or the connection is
  // closing): the transport should stop reading this peer until the
  // connection shows up in Broker::TakeChanged() with WantsRead() true again.
  bool WantsRead() const;

  // --- Outbound ----------------------------------------------------------

  // Bytes waiting to be written to the peer.
  size_t PendingOutputBytes() const { return outbound_.size(); }

  // Fills `chunks` with the front of the pending output and returns how many
  // chunks it filled; write them in order (e.g. with writev). The views stay
  // valid until the next call to Consume() or to any Broker method.
  size_t PendingOutput(absl::Span<absl::string_view> chunks) const {
    return outbound_.Peek(chunks);
  }

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
  uint64_t output_total() const {
    return output_consumed_ + output_discarded_ + outbound_.size();
  }

  // --- Closing -----------------------------------------------------------

  // Returns true when the transport should close the link and then call
  // Broker::Close(): the broker is done with the connection and its last
  // output has been written (or discarded after BrokerOptions::close_linger).
  bool ShouldClose() const {
    return state_ == ConnectionState::kClosing && outbound_.empty();
  }

  // Why the connection is closing: a status carrying a wire::Code. OK while
  // the connection is not closing.
  const absl::Status& close_reason() const { return close_reason_; }

 private:
  friend class Broker;

  Connection(Broker& broker, ConnectionId id, PeerInfo peer,
             std::unique_ptr<ProtocolCodec> codec, absl::Time now);

  absl::string_view unread_input() const {
    return absl::string_view(inbound_).substr(inbound_read_);
  }
  void DropReadInput();

  // Touched for every delivery; kept together at the front so that fan-out to
  // many connections costs as few cache lines as possible.
  ConnectionState state_ = ConnectionState::kAwaitingHello;
  bool echo_ = true;
  // codec_ is the broker's NativeCodec: deliveries skip the virtual call.
  bool native_ = false;
  bool in_ready_list_ = false;
  bool in_changed_list_ = false;
  OutboundBuffer outbound_;
  std::unique_ptr<ProtocolCodec> codec_;

  Broker& broker_;
  const ConnectionId id_;
  const PeerInfo peer_;
  absl::Status close_reason_;

  // Inbound channel: bytes received, [inbound_read_, size) not yet handled.
  std::string inbound_;
  size_t inbound_read_ = 0;
  // Process() stopped because the unread input is one incomplete operation;
  // reading must go on until it is complete even past max_inbound_bytes.
  bool awaiting_rest_of_frame_ = false;
  bool read_paused_ = false;  // WantsRead() was reported false

  // The last topic this connection published to and its routing result, valid
  // while the index's cache epoch is unchanged (see Broker::HandlePublish).
  std::string last_topic_;
  absl::Span<SubscriptionNode* const> last_topic_nodes_;
  uint64_t last_topic_epoch_ = 0;

  // Session, from Hello (echo_ is with the hot fields above).
  std::string client_name_;
  std::string auth_token_;  // kept only until admission
  bool announced_ = false;  // ConnectionAdded or ConnectionPending was emitted
  bool live_ = false;       // counted in Broker::live_connections_

  // What this connection holds, ordered so cleanup is deterministic.
  absl::btree_set<SubscriptionId> subscriptions_;
  absl::btree_set<std::string> served_topics_;
  absl::btree_set<RequestId> awaiting_;  // requests it made
  absl::btree_set<RequestId> serving_;   // requests it must answer

  // Timers.
  TimerQueue::Key handshake_timer_;
  TimerQueue::Key keepalive_timer_;
  TimerQueue::Key linger_timer_;
  absl::Time last_input_;
  uint64_t output_consumed_ = 0;
  uint64_t output_discarded_ = 0;
  uint32_t pings_outstanding_ = 0;
  uint64_t pings_sent_ = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_CONNECTION_H_
