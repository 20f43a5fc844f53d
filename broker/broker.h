// File: broker/broker.h
// -----------------------------------------------------------------------------
//
// The Manifold broker: a deterministic state machine for pub/sub, queue
// groups, request/response services, broker events and statistics.
//
// The Broker does no I/O, starts no threads, reads no clock and draws no
// randomness. Bytes, time and connection events go in as arguments; bytes,
// events and deadlines come out as return values. An embedder (or one of the
// transport adapters in transports/, which do all of this for you) drives it
// from its own event loop. The whole sequence, once per loop iteration:
//
//   Broker broker(options);
//   loop {
//     // 1. Wait for I/O, at most until broker.NextDeadline(); read only
//     //    connections whose WantsRead() is true (that is backpressure).
//     // 2. A peer connected (keep its id with the socket):
//     Connection& conn = broker.Accept(PeerInfo{"10.0.0.7:5123"}, now);
//     // 3. Bytes arrived (at most kMaxReceiveBytes per call), or the peer
//     //    hung up:
//     conn.Receive(bytes, now);
//     broker.Close(conn.id(), "peer closed the connection", now);
//     // 4. Let the broker work: route what arrived, fire due timers.
//     broker.Process(now);
//     broker.Tick(now);
//     // 5. Serve the connections that changed: write, resume, close.
//     broker.TakeChanged(changed);
//     for (ConnectionId id : changed) {
//       Connection* c = broker.FindConnection(id);
//       // write c->PendingOutput(chunks), then c->Consume(written);
//       // if c->ShouldClose(): close the socket, broker.Close(id, why, now)
//     }
//     // 6. Optionally, events (connections, subscriptions, admission):
//     while (auto event = broker.PollEvent()) { ... }
//   }
//
// examples/custom_event_loop is this sequence in a complete poll() loop.
//
// Time: every `now` is a monotonic time (std::chrono::steady_clock, or a fake
// clock in tests), never the wall clock, so deadlines do not move when the
// system clock is stepped. `now` never goes backwards: a time earlier than
// one given before counts as the latest given.
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
//  - Sessions: a session is who the client is, a connection is a link. A
//    native client that asks for a resumable session (Hello.resumable)
//    keeps it for session_timeout after its link is lost (subscriptions,
//    services, requests, and what is sent to it meanwhile, up to
//    session_buffer_bytes) and resumes it, losing nothing, with its token
//    (docs/sessions.md). A codec whose clients' sessions span many requests
//    (HTTP long-polling) keeps them the same way through ProtocolCodec's
//    SessionOp, as the Bayeux front end does (broker/http/bayeux.h); a
//    request made for such a session is answered on the link that made it.
//    Tokens come from a SessionIdSource.
//  - Durable streams: topics a stream captures are stored through the
//    embedder's StreamStorage (broker/storage/stream_storage.h), one batch
//    per turn; acks wait for durability; subscriptions replay, and durable
//    consumers keep their position (docs/streams.md).
//  - Cluster: with a ClusterLink attached (AttachCluster; ClusterRouter in
//    broker/cluster/ joins nodes over Redis), the link hears of local
//    interest and publishes, picks which node's members of a queue group
//    take each message, and delivers what other nodes sent
//    (PublishFromCluster). A topic is served by one server cluster-wide.
//  - The embedder can publish and make requests itself, without a
//    connection (Publish, Request, PollResponse).
//  - Events: typed (PollEvent) and on "$sys/..." topics (broker/sys_topics.h).
//  - Limits: every queue and buffer is bounded (broker/options.proto); a
//    violation gets a specific error, and at worst that one connection closes.
//
// Thread safety: none. Call a Broker and its Connections from one thread.

#ifndef MANIFOLD_BROKER_BROKER_H_
#define MANIFOLD_BROKER_BROKER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/cluster_link.h"
#include "broker/connection.h"
#include "broker/options.h"
#include "broker/permissions.h"
#include "broker/session_id_source.h"
#include "broker/statistics.h"
#include "broker/storage/stream_storage.h"
#include "broker/version.h"
#include "core/ids.h"

namespace manifold {

namespace wire {
// core/manifold.proto; include core/manifold.pb.h to read events.
class BrokerEvent;
class Response;
class StreamConfig;
class StreamInfo;
class StreamList;
}  // namespace wire
namespace internal {
class BrokerCore;
}  // namespace internal

// The codec seam (broker/protocol_codec.h): include it to write a codec.
class ProtocolCodec;

class Broker {
 public:
  // REQUIRES: `options` within the limits broker/options.proto states (its
  // (min) values); manifoldd and the transcript runner check them for you.
  explicit Broker(BrokerOptions options = BrokerOptions());
  // As above; `session_ids` makes the tokens that name sessions outliving
  // their links (see broker/session_id_source.h). Null: a generator seeded
  // with options.session_id_seed(), predictable, for tests only.
  Broker(BrokerOptions options, std::unique_ptr<SessionIdSource> session_ids);
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;
  ~Broker();

  const BrokerOptions& options() const;

  // --- Connections ---------------------------------------------------------

  // Accepts a new link that speaks the native protocol. Returns the
  // connection, owned by the broker and valid until Close(id) returns. When
  // the broker is full (max_connections) or shutting down, the connection
  // comes back already closing with a fatal error frame queued, so the peer
  // learns why: flush it and close as for any closing connection.
  Connection& Accept(PeerInfo peer, absl::Time now);

  // As above, for a link that speaks the protocol `codec` implements. Takes
  // ownership of `codec`. REQUIRES: codec != nullptr.
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

  // As above, as `grant.user` (shown in ConnectionAdded events and
  // $sys/connections), with every later publish, subscribe, serve and
  // request of the connection checked against `grant.permissions`
  // (broker/permissions.h states the rules; nullptr: nothing is checked, as
  // for Admit(id, now)). A violation is answered with a non-fatal
  // PERMISSION_DENIED error naming the operation and the topic; the
  // connection stays open. Sessions without a link that the connection
  // opens (Bayeux) act with its grant; a resume (Hello.resume_token) is
  // refused when the session was admitted as another user.
  // Returns NOT_FOUND if `id` is not waiting for admission.
  absl::Status Admit(ConnectionId id, Grant grant, absl::Time now);

  // Gives every admitted connection (and session) new permissions, as a
  // reloaded configuration says: `permissions_of(user)` for the user it was
  // admitted as (nullptr: unchecked from now on). Later operations are
  // checked against them. What a connection already holds is checked again:
  // a subscription the new permissions do not allow ends (the client gets a
  // non-fatal PERMISSION_DENIED Error naming it, with its subscription_id,
  // and a SubscriptionRemoved event with the reason follows), and so does a
  // service (its pending requests get SERVER_GONE, a ServiceRemoved event
  // follows); the receive filters of the others are rebuilt. Nobody is
  // disconnected. Connections still waiting for admission are not touched.
  void Regrant(absl::FunctionRef<
                   std::shared_ptr<const PermissionSet>(absl::string_view user)>
                   permissions_of,
               absl::Time now);

  // Rejects a connection waiting for admission: it gets a fatal REFUSED error
  // naming `reason`, then closes. Returns NOT_FOUND if `id` is not waiting.
  absl::Status Refuse(ConnectionId id, absl::string_view reason,
                      absl::Time now);

  // As above, but the refusal is sent only once `delay` has passed (the
  // connection holds on, unadmitted, meanwhile): slows down a client that
  // guesses credentials without a thread or timer of the embedder's. The
  // delay replaces the handshake timeout. A later Admit or Refuse of `id`
  // returns NOT_FOUND. A delay of zero or less refuses at once.
  absl::Status Refuse(ConnectionId id, absl::string_view reason, absl::Time now,
                      absl::Duration delay);

  // --- Driving ---------------------------------------------------------------

  // Handles everything received since the last call: decodes operations,
  // routes messages, queues output. Costs O(connections with new input).
  void Process(absl::Time now);

  // Fires every timer due at `now` or earlier: handshake and keepalive checks,
  // request timeouts, close lingers, statistics.
  void Tick(absl::Time now);

  // The earliest time at which Tick() has work, or nullopt if none is
  // scheduled.
  std::optional<absl::Time> NextDeadline() const;

  // Moves into `out` (replacing its contents) the ids of connections the
  // transport should look at: new output, reading may resume, or closing.
  // Each id appears once; ids of connections closed since are left out.
  void TakeChanged(std::vector<ConnectionId>& out);

  // Tells every client the broker is going away (Goodbye), stops accepting,
  // and closes each connection once its output is flushed. The broker is
  // done when connection_count() reaches 0.
  void Shutdown(absl::Time now);
  bool shutting_down() const;

  // Connections the broker still holds, closing ones included. Sessions
  // without a link are not connections.
  size_t connection_count() const;

  // --- The embedder's own messages -------------------------------------------

  // Headers of a message, and for Publish where an answer may go.
  struct MessageOptions {
    std::vector<std::pair<std::string, std::string>> headers;
    std::string reply_to;
  };

  // Publishes `payload` on `topic` (wildcards allowed, as for clients) as
  // the broker's embedder, without a connection: every subscription that
  // matches receives it, whatever its client's protocol, with reply_to (a
  // literal topic) as its reply address when set. Unlike a client's
  // publish, one with reply_to to a served topic is not a request to its
  // server (use Request). Returns how many subscriptions received it, or
  // the error a client would get: INVALID_TOPIC, RESERVED_TOPIC,
  // PAYLOAD_TOO_LARGE, INVALID_ARGUMENT.
  // The embedder is never stalled: under the backpressure policy a
  // subscriber past its high-water mark still takes the message (up to its
  // hard limit, where it is disconnected).
  absl::StatusOr<uint64_t> Publish(absl::string_view topic,
                                   absl::string_view payload, absl::Time now,
                                   const MessageOptions& options);
  absl::StatusOr<uint64_t> Publish(absl::string_view topic,
                                   absl::string_view payload, absl::Time now);

  // Asks the service of the literal `topic` (or the broker itself, for
  // "$sys/stats" and "$sys/connections"), waiting at most `timeout` (zero:
  // the broker's default; capped at its maximum). Returns the request's id;
  // its answer comes, exactly once, from PollResponse() as a Response whose
  // op_id is that id: the service's answer, or NO_SERVER (at once),
  // TIMED_OUT, SERVER_GONE, REJECTED. Fails with INVALID_TOPIC,
  // PAYLOAD_TOO_LARGE, INVALID_ARGUMENT, or TOO_MANY_PENDING_REQUESTS when
  // max_pending_requests_per_connection requests and untaken answers
  // already wait. options.reply_to is ignored.
  absl::StatusOr<RequestId> Request(absl::string_view topic,
                                    absl::string_view payload,
                                    absl::Duration timeout, absl::Time now,
                                    const MessageOptions& options);
  absl::StatusOr<RequestId> Request(absl::string_view topic,
                                    absl::string_view payload,
                                    absl::Duration timeout, absl::Time now);

  // Returns the oldest answer to the embedder's requests not yet taken, or
  // nullopt. Include core/manifold.pb.h to call it.
  std::optional<wire::Response> PollResponse();

  // --- Durable streams (docs/streams.md) -------------------------------------
  //
  // A stream stores the messages published to the topics it captures, in
  // `storage` (broker/storage/stream_storage.h): the embedder's
  // `file_storage` for STORAGE_FILE streams, a memory storage of the
  // broker's own for STORAGE_MEMORY ones. Everything the storage is asked to
  // do goes out as one batch per turn (at the end of Process), with at most
  // two batches written and not yet finished (the storage queues the second
  // while it works on the first); what it finished comes back at the start
  // of the next Process, so an embedder whose storage works on another
  // thread runs a turn when it says so.
  // A publish with `ack` to a captured topic is acknowledged once its batch
  // is durable, or answered STORAGE_UNAVAILABLE; a NATS publish with a reply
  // subject (nobody serving the topic) gets a JetStream-style answer,
  // {"stream":"S","seq":N}, on it. A Subscribe with `replay` gets the
  // stream's stored messages, then its new ones, in order.

  // Recreates the streams `file_storage` held (what its Load() returned) and
  // makes it the storage of file streams. Call once, before the first
  // Accept. `file_storage` may be null: only memory streams can then be
  // created. Not owned; must outlive the broker. Returns DATA_LOSS when
  // what it held is not a valid stream.
  absl::Status OpenStreams(StreamStorage* file_storage,
                           std::vector<RecoveredStream> held, absl::Time now);

  // The wall-clock time now, which stored messages are stamped with (a
  // stream's times never go backwards). The Broker reads no clock; call this
  // each turn when streams are used. Until it is called, `now` is used.
  void SetWallTime(absl::Time wall_now);

  // Creates a stream, or changes one (not its storage kind), as a request on
  // "$sys/streams/add" would; for streams a configuration file declares.
  // Returns what the stream holds, or the error naming what is wrong
  // (INVALID_ARGUMENT, INVALID_PATTERN, STORAGE_UNAVAILABLE without a file
  // storage). The write is durable after a later turn.
  absl::StatusOr<wire::StreamInfo> AddStream(const wire::StreamConfig& config,
                                             absl::Time now);

  // Every stream and what it holds, by name.
  wire::StreamList ListStreams() const;

  // --- Cluster (docs/cluster.md) ---------------------------------------------
  //
  // A broker joined to others (ClusterRouter, broker/cluster/) tells its
  // ClusterLink what its clients subscribe to and publish, and delivers what
  // arrives from the other nodes.

  // Makes `link` this broker's cluster link (nullptr: none), and reports to
  // it every pattern already subscribed. Not owned; must stay valid until
  // detached. With no link attached the broker pays one untaken branch per
  // publish.
  void AttachCluster(ClusterLink* link);

  // Delivers a message from another node to this node's subscribers (and
  // streams), as Publish does for the embedder, but does not hand it back
  // to the cluster link. Returns how many subscriptions received it, or the
  // error a client's publish would get (INVALID_TOPIC, RESERVED_TOPIC,
  // PAYLOAD_TOO_LARGE, INVALID_ARGUMENT).
  absl::StatusOr<uint64_t> PublishFromCluster(const PublishOp& publish,
                                              absl::Time now);

  // Emits a cluster event (a BrokerEvent whose kind is one of the cluster_*
  // ones) through PollEvent() and on its "$sys/cluster/..." topic
  // (broker/sys_topics.h). Other kinds are ignored.
  void ReportClusterEvent(wire::BrokerEvent event, absl::Time now);

  // Replaces statistics().cluster, as ReportTlsStatistics does for TLS.
  void ReportClusterStatistics(const ClusterStatistics& cluster);

  // Services across nodes: with a link attached, a Serve is granted only
  // once the link claimed the topic cluster-wide (ClusterLink::ClaimService),
  // and a request for a topic no connection of this node serves goes to the
  // node whose server holds it (ClusterLink::ForwardRequest).

  // The link's answer to ClaimService(topic): OK grants the Serve waiting
  // for it (the link must then hear ReleaseService when it ends; if the
  // client left meanwhile, the broker releases the topic at once);
  // ALREADY_EXISTS fails it with TOPIC_ALREADY_SERVED, any other error with
  // CLUSTER_UNAVAILABLE, each with `result`'s message.
  void ServiceClaimed(absl::string_view topic, const absl::Status& result,
                      absl::Time now);

  // The cluster gave `topic`, which a server of this node held, to another
  // node (this node's claim was lost). Its requests in flight get
  // SERVER_GONE, its server a SERVICE_TAKEN_OVER error naming `why`.
  void ServiceTakenOver(absl::string_view topic, absl::string_view why,
                        absl::Time now);

  // A request node `origin` forwarded for a topic a server of this node
  // holds. Exactly one ClusterLink::AnswerRequest(origin, call.call_id, ...)
  // follows: the server's answer, or NO_SERVER (at once, when the topic is
  // not served here), TIMED_OUT or SERVER_GONE.
  void RequestFromCluster(absl::string_view origin, const ClusterCall& call,
                          absl::Time now);

  // The answer to a request this node forwarded (ForwardRequest's
  // call.call_id): the server's when `respond` is not null, else `status`
  // with `message`. Ignored when the request is no longer waiting (it timed
  // out, or its requester left).
  void AnswerFromCluster(uint64_t call_id, wire::RequestStatus status,
                         absl::string_view message,
                         const wire::Respond* respond, absl::Time now);

  // --- Observing -------------------------------------------------------------

  // Returns the oldest pending event, or nullopt. Events: connection added /
  // pending / removed, subscription added / removed, service added / removed.
  // (When a connection closes, its subscriptions end without one event each;
  // ConnectionRemoved implies them.) Bounded by max_queued_events.
  // Include core/manifold.pb.h to call it.
  std::optional<wire::BrokerEvent> PollEvent();

  // Counters and gauges; cheap to read. The reference stays valid for the
  // broker's lifetime.
  const BrokerStatistics& statistics() const;

  // Replaces statistics().tls with `tls`: the transport's TLS counters,
  // which the broker cannot count itself, so that they reach "$sys/stats",
  // the HTTP /stats and /metrics answers and `manifold stats` with the
  // broker's own. Cheap; call it whenever the counters change.
  void ReportTlsStatistics(TlsStatistics tls);

 private:
  std::unique_ptr<internal::BrokerCore> core_;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_BROKER_H_
