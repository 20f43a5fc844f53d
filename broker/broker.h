// File: broker/broker.h
// -----------------------------------------------------------------------------
//
// The Manifold broker: a deterministic state machine for pub/sub, queue
// groups, request/response services, broker events and statistics.
//
// The Broker does no I/O, starts no threads, reads no clock and draws no
// randomness. Bytes, time and connection events go in as arguments; bytes,
// events and deadlines come out as return values. An embedder (or one of the
// transport adapters in transports/) drives it from its own event loop:
//
//   Broker broker(options);
//
//   // A peer connected:
//   Connection& conn = broker.Accept(PeerInfo{"10.0.0.7:5123"}, now);
//   // Bytes arrived:
//   conn.Receive(bytes, now);
//   // Once per loop iteration, after reading:
//   broker.Process(now);                     // route what arrived
//   broker.Tick(now);                        // fire due timers
//   std::vector<ConnectionId> changed;
//   broker.TakeChanged(changed);             // who has output or news
//   for (ConnectionId id : changed) {
//     Connection* c = broker.FindConnection(id);
//     // write c->PendingOutput(...), then c->Consume(written);
//     // resume reading if c->WantsRead();
//     // if c->ShouldClose(): close the socket, broker.Close(id, "done", now)
//   }
//   // Sleep until I/O or broker.NextDeadline().
//   // The peer hung up:
//   broker.Close(conn.id(), "peer closed the connection", now);
//   // Embedder events (connections, subscriptions, services, admission):
//   while (auto event = broker.PollEvent()) { ... }
//
// Behaviour in brief (docs/ and core/manifold.proto give the details):
//  - Handshake: the first frame must be Hello with a supported protocol
//    version; with require_admission, the embedder Admits or Refuses it.
//  - Pub/sub: patterns with `*` and `**`; publishing to a pattern reaches every
//    intersecting subscription; a connection gets one delivery per matching
//    subscription; queue groups (same pattern and group name) get each message
//    once, round-robin over members that can take it.
//  - Services: one server per literal topic; requests time out, fail at once
//    with no server, and fail with SERVER_GONE when the server leaves.
//  - Events: typed (PollEvent) and on "$sys/..." topics (broker/sys_topics.h).
//  - Limits: every queue and buffer is bounded (broker/options.h); a violation
//    gets a specific error, and at worst that one connection closes.
//
// Thread safety: none. Call a Broker and its Connections from one thread.

#ifndef MANIFOLD_BROKER_BROKER_H_
#define MANIFOLD_BROKER_BROKER_H_

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/connection.h"
#include "broker/options.h"
#include "broker/protocol_codec.h"
#include "broker/statistics.h"
#include "broker/subscription_index.h"
#include "broker/timer_queue.h"
#include "core/ids.h"
#include "core/manifold.pb.h"

namespace manifold {

// The broker's version, sent to clients that ask (e.g. in NATS INFO).
inline constexpr absl::string_view kBrokerVersion = "0.1.0";
// The native protocol version this broker speaks.
inline constexpr uint32_t kProtocolVersion = wire::PROTOCOL_VERSION_1;

class Broker {
 public:
  explicit Broker(BrokerOptions options = BrokerOptions());
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;
  ~Broker();

  const BrokerOptions& options() const { return options_; }

  // --- Connections ---------------------------------------------------------

  // Accepts a new link that speaks the native protocol. Returns the
  // connection, owned by the broker and valid until Close(id) returns. When
  // the broker is full (max_connections) or shutting down, the connection
  // comes back already closing with a fatal error frame queued, so the peer
  // learns why: flush it and close as for any closing connection.
  Connection& Accept(PeerInfo peer, absl::Time now);

  // As above, for a link that speaks the protocol `codec` implements.
  // REQUIRES: codec != nullptr.
  Connection& Accept(PeerInfo peer, absl::Time now,
                     std::unique_ptr<ProtocolCodec> codec);

  // Returns the connection with `id`, or nullptr once it has been closed.
  Connection* FindConnection(ConnectionId id);

  // The transport is done with the link (the peer hung up, an I/O error, or
  // the connection's ShouldClose()). Releases everything the connection held
  // (its requesters are told SERVER_GONE, its subscriptions end) and destroys
  // it. `reason` appears in the ConnectionRemoved event. Unknown ids are
  // ignored.
  void Close(ConnectionId id, absl::string_view reason, absl::Time now);

  // Completes the handshake of a connection waiting for admission.
  // Returns NOT_FOUND if `id` is not waiting for admission.
  absl::Status Admit(ConnectionId id, absl::Time now);

  // Rejects a connection waiting for admission: it gets a fatal REFUSED error
  // naming `reason`, then closes. Returns NOT_FOUND if `id` is not waiting.
  absl::Status Refuse(ConnectionId id, absl::string_view reason,
                      absl::Time now);

  // --- Driving ---------------------------------------------------------------

  // Handles everything received since the last call: decodes operations,
  // routes messages, queues output. Costs O(connections with new input).
  void Process(absl::Time now);

  // Fires every timer due at `now` or earlier: handshake and keepalive checks,
  // request timeouts, close lingers, statistics.
  void Tick(absl::Time now);

  // The earliest time at which Tick() has work, or nullopt if none is
  // scheduled.
  std::optional<absl::Time> NextDeadline() const { return timers_.Next(); }

  // Moves into `out` (replacing its contents) the ids of connections the
  // transport should look at: new output, reading may resume, or closing.
  // Each id appears once; ids of connections closed since are left out.
  void TakeChanged(std::vector<ConnectionId>& out);

  // Tells every client the broker is going away (Goodbye), stops accepting,
  // and closes each connection once its output is flushed. The broker is
  // done when connection_count() reaches 0.
  void Shutdown(absl::Time now);
  bool shutting_down() const { return shutting_down_; }

  // Connections the broker still holds, closing ones included.
  size_t connection_count() const { return connections_.size(); }

  // --- Observing
  // ---------------------------------------------------------------

  // Returns the oldest pending event, or nullopt. Events: connection added /
  // pending / removed, subscription added / removed, service added / removed.
  // (When a connection closes, its subscriptions end without one event each;
  // ConnectionRemoved implies them.) Bounded by max_queued_events.
  std::optional<wire::BrokerEvent> PollEvent();

  // Counters and gauges; cheap to read.
  const BrokerStatistics& statistics() const { return stats_; }

 private:
  friend class Connection;

  struct PendingRequest {
    RequestId id;
    Connection* requester;
    uint64_t requester_op_id;
    Connection* server;
    std::string topic;
    absl::Duration timeout;
    TimerQueue::Key timer;
  };

  struct Service {
    Connection* server;
    absl::btree_set<RequestId> pending;
  };

  // Work lists.
  void MarkReady(Connection& c);
  void MarkChanged(Connection& c);

  // Processing one connection's input.
  void ProcessConnection(Connection& c);
  void Dispatch(Connection& c, Operation& op);
  void HandleHello(Connection& c, const wire::Hello& hello);
  void HandleSubscribe(Connection& c, const wire::Subscribe& subscribe);
  void HandleUnsubscribe(Connection& c, const wire::Unsubscribe& unsubscribe);
  void HandlePublish(Connection& c, const PublishOp& publish);
  void HandleServe(Connection& c, const wire::Serve& serve);
  void HandleUnserve(Connection& c, const wire::Unserve& unserve);
  void HandleRequest(Connection& c, const wire::Request& request);
  void HandleRespond(Connection& c, const wire::Respond& respond);

  // Session lifecycle.
  void Welcome(Connection& c);
  void BeginClose(Connection& c, absl::Status reason, bool tell_peer);
  void ReleaseResources(Connection& c);
  void Destroy(ConnectionId id);
  // Runs what was deferred during the last operation; cheap when nothing was.
  void RunDeferred() {
    if (!to_release_.empty() || !to_unsubscribe_.empty()) RunDeferredSlow();
  }
  void RunDeferredSlow();

  // Routing.
  uint64_t Route(const PublishOp& publish, Connection* publisher);
  // Delivers to the subscriptions on `nodes` (the publish's matches).
  uint64_t RouteTo(absl::Span<SubscriptionNode* const> nodes,
                   const PublishOp& publish, Connection* publisher);
  bool DeliverTo(Subscription& sub, SharedMessage& message,
                 const Connection* publisher);
  bool DeliverToGroup(QueueGroup& group, SharedMessage& message,
                      const Connection* publisher);
  bool HasRoomForDelivery(Connection& c);
  void NotifyNoResponders(Connection& publisher, const PublishOp& publish);
  void RemoveSubscription(Subscription& sub, bool emit_event);

  // Services.
  void RemoveService(const std::string& topic, absl::string_view why,
                     bool emit_event);
  void FinishRequest(RequestId id, wire::RequestStatus status,
                     absl::string_view message, const wire::Respond* respond);

  // Output.
  void Send(Connection& c, const wire::ServerMessage& message);
  void SendError(Connection& c, uint64_t op_id, const absl::Status& status);
  void SendAck(Connection& c, uint64_t op_id, uint64_t subscription_id = 0,
               uint64_t delivered = 0);

  // Timers.
  void FireTimer(const TimerQueue::Timer& timer);
  void CheckKeepalive(Connection& c);

  // Events.
  void Emit(wire::BrokerEvent event, absl::string_view sys_topic);
  void PublishStatistics();

  const BrokerOptions options_;
  absl::Time now_ = absl::UnixEpoch();
  // Accepted connections that are not closing (handshaking ones included).
  size_t live_connections_ = 0;
  bool shutting_down_ = false;

  IdAllocator<ConnectionId> connection_ids_;
  IdAllocator<SubscriptionId> subscription_ids_;
  IdAllocator<RequestId> request_ids_;

  absl::flat_hash_map<ConnectionId, std::unique_ptr<Connection>> connections_;
  std::deque<ConnectionId> ready_;
  std::vector<ConnectionId> changed_;
  // Connections that began closing and still hold resources. Released by
  // RunDeferred() at the end of the current operation, never in the middle of
  // routing a message (which iterates over subscriptions).
  std::vector<ConnectionId> to_release_;
  // Subscriptions that reached max_messages while a message was routed.
  std::vector<SubscriptionId> to_unsubscribe_;

  SubscriptionIndex index_;
  absl::flat_hash_map<std::string, Service> services_;
  absl::flat_hash_map<RequestId, PendingRequest> requests_;
  TimerQueue timers_;
  TimerQueue::Key statistics_timer_;

  std::deque<wire::BrokerEvent> events_;
  BrokerStatistics stats_;

  // Reused on every operation so routing allocates nothing in steady state.
  Operation op_;
  SharedMessage::Scratch encode_scratch_;
  wire::ServerMessage scratch_message_;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_BROKER_H_
