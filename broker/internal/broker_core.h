// File: broker/internal/broker_core.h
// -----------------------------------------------------------------------------
//
// The broker's state and logic behind the public `Broker` (broker/broker.h),
// which forwards every call here. Split across files by job: broker_core.cc
// (connections, handshake, input, timers, events), routing.cc (pub/sub),
// services.cc (request/response), sessions.cc (sessions that outlive their
// links: resuming, detaching, polling) and embedder.cc (publishing and
// requesting without a connection).
//
// Not API: include broker/broker.h instead.

#ifndef MANIFOLD_BROKER_INTERNAL_BROKER_CORE_H_
#define MANIFOLD_BROKER_INTERNAL_BROKER_CORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "broker/cluster_link.h"
#include "broker/connection.h"
#include "broker/internal/connection_core.h"
#include "broker/internal/streams.h"
#include "broker/internal/subscription_index.h"
#include "broker/internal/timer_queue.h"
#include "broker/options.h"
#include "broker/protocol_codec.h"
#include "broker/session_id_source.h"
#include "broker/statistics.h"
#include "broker/storage/memory_stream_storage.h"
#include "broker/storage/stream_storage.h"
#include "core/ids.h"
#include "core/manifold.pb.h"
#include "core/topic.h"

namespace manifold::internal {

class BrokerCore {
 public:
  // `session_ids` may be null: a source seeded with
  // options.session_id_seed() is used then.
  BrokerCore(BrokerOptions options,
             std::unique_ptr<SessionIdSource> session_ids);
  BrokerCore(const BrokerCore&) = delete;
  BrokerCore& operator=(const BrokerCore&) = delete;
  ~BrokerCore();

  // The calls of broker/broker.h, with the same contracts.
  const BrokerOptions& options() const { return options_; }
  ConnectionCore& Accept(PeerInfo peer, absl::Time now,
                         std::unique_ptr<ProtocolCodec> codec, bool native);
  ConnectionCore* FindConnection(ConnectionId id);
  // FindConnection() for transports: sessions without a link are not theirs.
  ConnectionCore* FindLinked(ConnectionId id) {
    ConnectionCore* c = FindConnection(id);
    return c != nullptr && c->linked_ ? c : nullptr;
  }
  void Close(ConnectionId id, absl::string_view reason, absl::Time now);
  absl::Status Admit(ConnectionId id, Grant grant, absl::Time now);
  absl::Status Refuse(ConnectionId id, absl::string_view reason, absl::Time now,
                      absl::Duration delay);
  void Regrant(absl::FunctionRef<
                   std::shared_ptr<const PermissionSet>(absl::string_view user)>
                   permissions_of,
               absl::Time now);
  void Process(absl::Time now);
  void Tick(absl::Time now);
  // Now, while the broker's own memory storage has finished work to
  // collect (a replay reads it in steps, one per turn, so as not to hold up
  // the others); otherwise the next timer.
  std::optional<absl::Time> NextDeadline() const {
    if (ABSL_PREDICT_FALSE(memory_storage_ != nullptr) &&
        memory_storage_->has_completions()) {
      return now_;
    }
    return timers_.Next();
  }
  void TakeChanged(std::vector<ConnectionId>& out);
  // Ends the turn of the Broker call that just ran: closes the frames that
  // codecs which gather output left open (ProtocolCodec::FinishTurn), so
  // the transport finds whole frames. Every public Broker call ends with it.
  void FinishTurns() {
    if (ABSL_PREDICT_FALSE(!gathering_.empty())) FinishTurnsSlow();
  }
  void Shutdown(absl::Time now);
  bool shutting_down() const { return shutting_down_; }
  size_t connection_count() const { return connections_.size() - unlinked_; }
  std::optional<wire::BrokerEvent> PollEvent();
  const BrokerStatistics& statistics() const { return stats_; }
  void set_tls_statistics(TlsStatistics tls) { stats_.tls = std::move(tls); }

  // The embedder's own publishes and requests (embedder.cc); the contracts
  // of Broker::Publish, Broker::Request and Broker::PollResponse.
  // `to_cluster`: whether the message also goes to the cluster link (false
  // for what came from it: Broker::PublishFromCluster).
  absl::StatusOr<uint64_t> PublishFromEmbedder(const PublishOp& publish,
                                               absl::Time now,
                                               bool to_cluster = true);
  absl::StatusOr<RequestId> RequestFromEmbedder(
      absl::string_view topic, absl::string_view payload,
      absl::Span<const HeaderView> headers, absl::Duration timeout,
      absl::Time now);
  std::optional<wire::Response> PollResponse();

  // Durable streams (streams.cc); the contracts of Broker::OpenStreams,
  // SetWallTime, AddStream and ListStreams.
  absl::Status OpenStreams(StreamStorage* file_storage,
                           std::vector<RecoveredStream> held, absl::Time now);
  void SetWallTime(absl::Time wall) {
    wall_now_ms_ = absl::ToUnixMillis(wall);
    wall_set_ = true;
  }
  absl::StatusOr<wire::StreamInfo> AddStream(const wire::StreamConfig& config,
                                             absl::Time now);
  wire::StreamList ListStreams() const;

  // The cluster (cluster.cc); the contracts of Broker::AttachCluster,
  // ReportClusterEvent and ReportClusterStatistics.
  void AttachCluster(ClusterLink* link);
  void ReportClusterEvent(wire::BrokerEvent event, absl::Time now);
  void set_cluster_statistics(const ClusterStatistics& cluster) {
    stats_.cluster = cluster;
  }
  // Services across nodes (services.cc); the contracts of
  // Broker::ServiceClaimed, ServiceTakenOver, RequestFromCluster and
  // AnswerFromCluster.
  void ServiceClaimed(absl::string_view topic, const absl::Status& result,
                      absl::Time now);
  void ServiceTakenOver(absl::string_view topic, absl::string_view why,
                        absl::Time now);
  void RequestFromCluster(absl::string_view origin, const ClusterCall& call,
                          absl::Time now);
  void AnswerFromCluster(uint64_t call_id, wire::RequestStatus status,
                         absl::string_view message,
                         const wire::Respond* respond, absl::Time now);

 private:
  friend class ConnectionCore;

  // Who waits for a request's answer.
  enum class RequesterKind {
    kConnection,  // a client: a Response{op_id} on its session
    kEmbedder,    // Broker::Request: a Response for PollResponse()
    // A publish with reply_to to a served topic (a NATS request): the answer
    // is published on reply_to; no answer (timeout, server gone) is silence.
    kPublisher,
    // Another node (ClusterLink::ForwardRequest there): the answer goes
    // back through ClusterLink::AnswerRequest; requester_op_id is the
    // node's call id, reply_to the node's name.
    kCluster,
  };

  struct PendingRequest {
    RequestId id;
    RequesterKind requester_kind = RequesterKind::kConnection;
    ConnectionCore* requester;  // kConnection and kPublisher
    uint64_t requester_op_id;
    // kPublisher: where the answer is published, and how the publisher's
    // protocol spelled it (PublishOp::spelling, spelled_reply_to).
    std::string reply_to;
    std::string spelled_reply_to;
    CodecSlot reply_spelling = CodecSlot::kNative;
    // Null when the server is on another node (`remote_node`).
    ConnectionCore* server;
    std::string remote_node;
    std::string topic;
    absl::Duration timeout;
    TimerQueue::Key timer;
  };

  struct Service {
    ConnectionCore* server;
    absl::btree_set<RequestId> pending;
  };

  // A Serve waiting for the cluster link's claim (ClaimService).
  struct PendingClaim {
    ConnectionId connection;
    uint64_t op_id;
    // The connection sent Unserve for the topic meanwhile: answered after
    // the Serve, as if the claim had been granted (or refused) at once.
    bool unserve = false;
    uint64_t unserve_op_id = 0;
  };

  // Time only moves forward: a `now` earlier than one seen before counts as
  // the latest seen.
  void Advance(absl::Time now) {
    if (now > now_) now_ = now;
  }

  // Work lists.
  void MarkReady(ConnectionCore& c);
  void MarkChanged(ConnectionCore& c);
  void FinishTurnsSlow();

  // Processing one connection's input.
  void ProcessConnection(ConnectionCore& c);
  void Dispatch(ConnectionCore& c, Operation& op);
  void HandleHello(ConnectionCore& c, const wire::Hello& hello);
  // The user owning the live polled session `hello` claims
  // (Hello.session_token with its binding); empty when it claims none.
  std::string SessionUserOf(const wire::Hello& hello);
  void HandleSubscribe(ConnectionCore& c, const wire::Subscribe& subscribe);
  void HandleUnsubscribe(ConnectionCore& c,
                         const wire::Unsubscribe& unsubscribe);
  void HandleUnsubscribeByPattern(ConnectionCore& c,
                                  const wire::Unsubscribe& unsubscribe);
  void HandlePublish(ConnectionCore& c, const PublishOp& publish);
  // A publish to a reserved ("$...") topic: served when it is JetStream's
  // API or an ack, else refused with RESERVED_TOPIC. Out of line: the
  // publish path stays as it was.
  ABSL_ATTRIBUTE_NOINLINE void HandleReservedPublish(ConnectionCore& c,
                                                     const PublishOp& publish);
  void HandleServe(ConnectionCore& c, const wire::Serve& serve);
  // Makes `c` the server of `topic` and acknowledges Serve{op_id}.
  void GrantService(ConnectionCore& c, const std::string& topic,
                    uint64_t op_id);
  // Whether `topic` has a server, here or (as far as the cluster link
  // knows to ask) claimed by this node.
  bool ServedOrClaimed(const std::string& topic) const {
    return services_.contains(topic) || claims_.contains(topic);
  }
  void HandleUnserve(ConnectionCore& c, const wire::Unserve& unserve);
  void HandleRequest(ConnectionCore& c, const wire::Request& request);
  // What every kind of requester shares: validates, answers the broker's own
  // topics and NO_SERVER at once, or routes the request to its server.
  // `requester` is the connection for kConnection, else null.
  void StartRequest(RequesterKind kind, ConnectionCore* requester,
                    uint64_t op_id, const wire::Request& request);
  // Hands `response` (its op_id already the requester's) to whoever waits.
  void Answer(RequesterKind kind, ConnectionCore* requester,
              wire::ServerMessage& response);
  void HandleRespond(ConnectionCore& c, const wire::Respond& respond);
  // A publish with reply_to (HandlePublish): whether it must be refused
  // because its topic is served and `c` already has
  // max_pending_requests_per_connection requests in flight.
  // Closes `c` with a fatal REFUSED error naming `reason`.
  void SendRefusal(ConnectionCore& c, absl::string_view reason);
  bool RefuseRequestByPublish(ConnectionCore& c, const PublishOp& publish);
  // Makes `publish` (it has a reply_to) a request to the server of its
  // topic, if the topic is served. Returns whether it did.
  bool RequestByPublish(ConnectionCore& c, const PublishOp& publish);
  // Records `pending` (requester fields and timeout set by the caller) as a
  // request in flight to the server of `service` (on `topic`), and returns
  // the ServedRequest to send it, in scratch_message_, without its payload
  // and headers: the caller adds them and sends scratch_message_ to the
  // server.
  wire::ServedRequest& RecordRequest(const std::string& topic, Service& service,
                                     PendingRequest pending);
  // A request's timeout: `timeout_ms` (0: the default) within the limit.
  absl::Duration RequestTimeout(uint32_t timeout_ms) const;
  // Sends `pending` (requester fields and timeout set) for `topic`, which no
  // connection here serves, to the node whose server holds it, and records
  // it. Returns the recorded request, or null when no node serves the topic
  // (nothing recorded).
  PendingRequest* ForwardRequest(PendingRequest pending,
                                 absl::string_view topic,
                                 absl::string_view payload,
                                 absl::Span<const HeaderView> headers);
  // Publishes the server's answer to a kPublisher request on its reply_to.
  void PublishAnswer(const PendingRequest& request, wire::RequestStatus status,
                     absl::string_view message, const wire::Respond& respond);
  // The answer to a request on $sys/connections.
  wire::ConnectionList ListConnections() const;

  // Session lifecycle.
  void Welcome(ConnectionCore& c);
  void BeginClose(ConnectionCore& c, absl::Status reason, bool tell_peer);
  // Closes `c` with SLOW_CONSUMER, saying how much output is waiting.
  void CloseSlowConsumer(ConnectionCore& c);
  void ReleaseResources(ConnectionCore& c);
  void Destroy(ConnectionId id);
  // Runs what was deferred during the last operation; cheap when nothing was.
  void RunDeferred() {
    if (!to_release_.empty() || !to_unsubscribe_.empty()) RunDeferredSlow();
  }
  void RunDeferredSlow();

  // Routing.
  uint64_t Route(const PublishOp& publish, ConnectionCore* publisher);
  // Delivers to the subscriptions on `nodes` (the publish's matches).
  uint64_t RouteTo(absl::Span<SubscriptionNode* const> nodes,
                   const PublishOp& publish, ConnectionCore* publisher);
  // kFiltered: some subscription has a receive filter (filtered_
  // subscriptions_ > 0), so each delivery asks it; otherwise the question
  // is compiled out of the routing loop.
  template <bool kFiltered>
  uint64_t DeliverToNodes(absl::Span<SubscriptionNode* const> nodes,
                          SharedMessage& message,
                          const ConnectionCore* publisher);
  template <bool kFiltered = true>
  bool DeliverTo(Subscription& sub, SharedMessage& message,
                 const ConnectionCore* publisher);
  template <bool kFiltered>
  bool DeliverToGroup(QueueGroup& group, SharedMessage& message,
                      const ConnectionCore* publisher);
  bool HasRoomForDelivery(ConnectionCore& c);

  // Flow control (the backpressure policy). The connection whose operation
  // is being handled (origin_) sent something to `c`, which is over its
  // high-water mark: origin_ stops being read until `c` drains.
  void HoldBack(ConnectionCore& c);
  // `c` drained below its low-water mark, or is closing: the connections
  // waiting on it go on.
  void ReleaseWaiting(ConnectionCore& c);
  // ConnectionCore::Consume() took `c` below its low-water mark.
  void OnDrained(ConnectionCore& c);
  // `c` kept others waiting past max_stall.
  void OnStallTimeout(ConnectionCore& c);
  void NotifyNoResponders(ConnectionCore& publisher, const PublishOp& publish);
  // `reason`: why the broker ended it, for the event; empty when the client
  // did.
  void RemoveSubscription(Subscription& sub, bool emit_event,
                          absl::string_view reason = "");

  // Access control (access.cc), for connections admitted with permissions;
  // callers test ConnectionCore::permissions_ first, so unchecked
  // connections never get here. Each returns true when the operation may go
  // on, or answers PERMISSION_DENIED for `op_id` and returns false.
  bool PublishPermitted(ConnectionCore& c, const PublishOp& publish);
  bool Permitted(ConnectionCore& c, AccessOperation operation,
                 absl::string_view topic, uint64_t op_id);
  // Checks what `c` holds against its (new) permissions; see
  // Broker::Regrant.
  void RecheckHoldings(ConnectionCore& c);

  // Services.
  // Ends the service of `topic` (its requests get SERVER_GONE) and, unless
  // `release_claim` is false, tells the cluster link it is free.
  void RemoveService(const std::string& topic, absl::string_view why,
                     bool emit_event, bool release_claim = true);
  void FinishRequest(RequestId id, wire::RequestStatus status,
                     absl::string_view message, const wire::Respond* respond);

  // Output.
  void Send(ConnectionCore& c, const wire::ServerMessage& message);
  // Begins an orderly close when the codec has written its last bytes.
  void CloseIfCodecIsDone(ConnectionCore& c) {
    if (ABSL_PREDICT_FALSE(c.codec_->wants_close())) CloseDoneCodec(c);
  }
  void CloseDoneCodec(ConnectionCore& c);
  void SendError(ConnectionCore& c, uint64_t op_id, const absl::Status& status);
  void SendAck(ConnectionCore& c, uint64_t op_id, uint64_t subscription_id = 0,
               uint64_t delivered = 0,
               std::optional<uint64_t> stream_seq = std::nullopt);

  // Sessions that outlive links (sessions.cc).
  // At Welcome: resumes the session the Hello named, or makes the link's
  // own session resumable when asked; writes the Welcome.
  void WelcomeSession(ConnectionCore& c, wire::Welcome& welcome);
  // Where the broker's stream to `session` continues for a client that has
  // handled `frames` of its frames: the bytes from there on. An error
  // (SESSION_OVERFLOW, INVALID_ARGUMENT) when they are no longer all held.
  absl::StatusOr<std::string> StreamFrom(const ConnectionCore& session,
                                         uint64_t frames) const;
  // Moves who the client is (subscriptions, services, requests, name,
  // token, counters) from `from` to `to`; the stream is the caller's.
  void MoveSession(ConnectionCore& from, ConnectionCore& to);
  // A resumable session's link is lost: the session moves into a new
  // session without a link, which waits session_timeout for its client.
  // Returns false (the session then ends with the link) when max_sessions
  // sessions already wait.
  bool Detach(ConnectionCore& c);
  ConnectionCore& NewUnlinked(const PeerInfo& peer,
                              std::unique_ptr<ProtocolCodec> codec);
  // Ends a session without a link, with `why` (carrying a wire::Code).
  void EndSession(ConnectionCore& s, absl::Status why);
  // Ends detached session `s` whose waiting output reached
  // session_buffer_bytes, with SESSION_OVERFLOW its client sees on resume.
  void EndOverflowedSession(ConnectionCore& s);
  // A session without a link was released: answers its poll, destroys it.
  void FinishUnlinked(ConnectionCore& s);
  void RememberEnded(const std::string& token, const absl::Status& why);
  // ConnectionCore::Consume() of a resumable session: keeps what was
  // written for a resume.
  void RetainForReplay(ConnectionCore& c, size_t n);
  // Operations on sessions from links (Bayeux).
  void DispatchSessionOp(ConnectionCore& link, Operation& op);
  ConnectionCore* FindSession(ConnectionCore& link, const SessionOp& op,
                              uint64_t op_id);
  void OpenSession(ConnectionCore& link, SessionOp& op);
  void PollSession(ConnectionCore& link, ConnectionCore& s,
                   const SessionOp& op);
  // Gives the poller of `s` the output of `s`; ends the poll when it was
  // answered for good, timed out or the session ended.
  void FlushPoll(ConnectionCore& s, bool timed_out, const absl::Status& ended);
  void EndPoll(ConnectionCore& s);
  // Flushes every polled session with new output to its poller. Called at
  // the end of each call that can have produced output.
  void FlushPolls() {
    if (polled_sessions_ > 0) FlushPollsSlow();
  }
  void FlushPollsSlow();

  // Durable streams (streams.cc).
  // Whether anything of streams needs looking after this turn.
  bool StreamsActive() const {
    return !streams_.empty() || !file_lane_.in_flight.empty() ||
           !memory_lane_.in_flight.empty() || !pending_acks_.empty() ||
           !file_lane_.gathering_answers.empty() ||
           !memory_lane_.gathering_answers.empty();
  }
  // Checks `config` (and bounds a memory stream): an error naming the
  // problem, with the wire code to answer.
  absl::Status CheckStreamConfig(wire::StreamConfig& config) const;
  StreamStorage* StorageFor(wire::StorageKind kind);
  StorageLane& LaneOf(const Stream& s);
  // Creates or changes a stream; the write goes with this turn's batch.
  absl::StatusOr<Stream*> PutStream(wire::StreamConfig config);
  // Takes `stream`'s messages out of the batch being gathered (a purge or
  // removal in the same turn).
  void DropGathered(StorageLane& lane, const std::string& stream);
  // Ends subscription `id` (replaying a stream, or bound to a durable
  // consumer) whose stream or consumer was removed: its connection gets an
  // UNKNOWN_STREAM error naming `why`; `reason` goes into the event.
  void EndStoredSubscription(SubscriptionId id, absl::string_view why,
                             absl::string_view reason);
  // Removes durable consumer `name` of `stream` (and, with the lane's next
  // batch, its stored state); its bound subscriptions end with an error.
  // Returns false when there is no such consumer.
  bool RemoveConsumer(Stream& stream, const std::string& name);
  // Answers a request on $sys/streams/...; false for any other topic.
  bool HandleStreamRequest(RequesterKind kind, ConnectionCore* requester,
                           uint64_t op_id, absl::string_view topic,
                           absl::string_view payload);
  // The wall clock in Unix milliseconds: the embedder's, else now_.
  int64_t WallNowMs() const {
    return wall_set_ ? wall_now_ms_ : absl::ToUnixMillis(now_);
  }
  // The time to store a message of `s` with: the wall clock, never before
  // the stream's latest.
  int64_t StampFor(Stream& s);
  // Stores `publish` in every stream that captures it. Returns true when
  // an answer to the publisher (its Ack, the JetStream-style reply on
  // reply_to when `js_reply`) now waits for the storage, or was refused.
  bool CaptureForStreams(ConnectionCore* publisher, const PublishOp& publish,
                         uint64_t delivered, bool js_reply);
  void FailPublish(ConnectionCore& publisher, const PublishOp& publish,
                   const absl::Status& why, bool js_reply);
  // Answers a publish with a reply subject to a stored topic as JetStream
  // does (jetstream.cc): a PubAck once durable, or an error.
  void PublishStreamReply(const PendingAck& ack);
  void FinishAck(uint64_t ack_id);
  // Writes each lane's gathered batch unless one is in flight.
  void FlushStorage();
  // Takes what the storages finished and acts on it.
  void CollectStorage();
  void OnBatchDone(StorageLane& lane, BatchDone& done);
  void OnReadDone(StorageLane& lane, ReadDone& done);
  void SendStreamAnswer(PendingAnswer& a);
  void ScheduleStreamTimer();
  void OnStreamTimer();
  absl::StatusOr<Stream*> StreamForReplay(const wire::Subscribe& subscribe);
  // For Replay.if_stored: the stream (the named one, if named) one of whose
  // patterns covers every topic the subscription's pattern matches; null
  // when there is none.
  Stream* StreamStoringAll(const wire::Subscribe& subscribe);
  // The Ack.stream_seq of a subscription replaying `replay` of `stream`:
  // the sequence after which it delivers, for a start from a sequence or
  // of new messages only.
  static std::optional<uint64_t> ReplayPosition(const Stream& stream,
                                                const wire::Replay& replay);
  void StartReplay(Stream& stream, const wire::Replay& replay,
                   Subscription& sub);
  // Asks the storage for the cursor's next messages, unless it has some
  // or has caught up.
  void ReadMore(Stream& stream, ReplayCursor& cursor);
  ReplayCursor* FindCursor(const std::string& stream_name, SubscriptionId id,
                           Stream** stream);
  // Delivers what the cursor read while its connection has room.
  void DeliverReady(Stream& stream, ReplayCursor& cursor);
  void PumpCursors();
  // Drops the cursors of subscriptions that ended.
  void SweepCursors();
  // Durable consumers (consumers.cc).
  // Checks a Subscribe that binds to a durable consumer of `stream`.
  absl::Status CheckConsumer(const Stream& stream,
                             const wire::Subscribe& subscribe) const;
  // Returns consumer `name` of `stream`, created (delivering `pattern`,
  // from `start`, with the default limits) when there is none.
  Consumer& OpenConsumer(Stream& stream, const std::string& name,
                         absl::string_view pattern, const wire::Replay& start);
  // Sets the consumer's ack_wait and bound on what is in flight (0: the
  // default), to be written when they change.
  void SetConsumerLimits(Stream& stream, Consumer& c, uint64_t ack_wait_ms,
                         uint64_t max_in_flight);
  // Binds `sub` to the consumer, creating it at the replay's start.
  void BindConsumer(Stream& stream, const wire::Subscribe& subscribe,
                    Subscription& sub);
  // Recreates a consumer the storage held.
  void RestoreConsumer(Stream& stream, const wire::ConsumerState& state);
  void HandleAckStored(ConnectionCore& c, const wire::AckStored& ack);
  // Delivers what the consumer can now: redeliveries, then what it read,
  // then reads more.
  void PumpConsumer(Stream& stream, Consumer& consumer);
  // For a push consumer: the subscription its next message goes to, of
  // those matching its deliver topic (of its deliver group, when it has
  // one) for which `usable` holds, taken in turn (`take_turn` false: the
  // turn stays); nullptr when none.
  Subscription* PushTarget(Consumer& consumer,
                           absl::FunctionRef<bool(const Subscription&)> usable,
                           bool take_turn = true);
  void OnConsumerRead(StorageLane& lane, ReadDone& done);
  void OnConsumerTimer(uint64_t id);
  // For an ephemeral consumer whose interest check is due: false when
  // nobody has used it (bound, pulled or subscribed to its deliver topic)
  // for its inactive_threshold, and it is to be removed; otherwise true, and
  // the next check is set.
  bool CheckInterest(Consumer& consumer);
  // Starts the interest checks of an ephemeral consumer (just created or
  // restored): unused from the first check on, it goes after its threshold.
  void WatchInterest(Consumer& consumer);
  // A bound subscription ended: what it had not acknowledged goes to the
  // others.
  void LeaveConsumer(SubscriptionId id);
  void MarkDirty(Stream& stream, Consumer& consumer);
  // Moves the consumer's ack floor over the acknowledged sequences that now
  // follow it, and marks it to be written when it moved.
  void RaiseAckFloor(Stream& stream, Consumer& consumer);
  // Queues stored message `seq` for subscription `sub` of `c`: natively with
  // its sequence, time and `redelivered`; in other protocols as a plain
  // delivery. `reply_to` (a JetStream ack subject) goes with it when set.
  void DeliverStored(ConnectionCore& c, SubscriptionId sub, uint64_t seq,
                     const wire::StoredMessage& stored, bool redelivered,
                     absl::string_view reply_to = {});
  // Makes the consumer's timer fire at `when` at the latest. A timer that
  // finds nothing due sets itself again (ScheduleConsumerTimer), so acks
  // never need to move it.
  void ArmConsumerTimer(Consumer& consumer, absl::Time when);
  // Sets the consumer's timer to its earliest deadline: an ack_wait, a pull
  // request's expiry or heartbeat. Looks at every message in flight.
  void ScheduleConsumerTimer(Consumer& consumer);

  // NATS JetStream's API for streams and consumers (jetstream.cc,
  // docs/nats.md).
  // Serves a publish to "$JS/API/..." or "$JS/ACK/..." from `c`; false for
  // any other topic.
  bool HandleJetStream(ConnectionCore& c, const PublishOp& publish);
  // Serves $JS.API.<api> (`api` as a topic: "CONSUMER/INFO/S/C").
  void HandleJetStreamApi(ConnectionCore& c, const PublishOp& publish,
                          absl::string_view api);
  JetStreamAnswer JetStreamAccountInfo() const;
  // STREAM.NAMES, or STREAM.LIST when !names; `body` may name a subject.
  JetStreamAnswer JetStreamStreams(absl::string_view body, bool names) const;
  JetStreamAnswer JetStreamStreamInfo(absl::string_view stream) const;
  // CONSUMER.CREATE and DURABLE.CREATE: `subject_name` and `subject_filter`
  // (a pattern) are what the subject gave after the stream, if anything.
  JetStreamAnswer JetStreamCreateConsumer(ConnectionCore& c,
                                          absl::string_view body,
                                          absl::string_view stream,
                                          absl::string_view subject_name,
                                          absl::string_view subject_filter);
  // CONSUMER.NAMES, or CONSUMER.LIST when !names.
  JetStreamAnswer JetStreamConsumers(absl::string_view stream, bool names);
  JetStreamAnswer JetStreamConsumerRequest(ConnectionCore& c,
                                           const PublishOp& request,
                                           JetStreamVerb verb,
                                           absl::string_view stream,
                                           absl::string_view name);
  // OK when `c`'s permissions allow `operation` on `topic` (to receive what
  // a consumer's pattern matches; to remove a consumer); otherwise the
  // denial, counted.
  absl::Status MayJetStream(ConnectionCore& c, AccessOperation operation,
                            absl::string_view topic);
  void HandleJetStreamAck(const PublishOp& publish, absl::string_view ack);
  // A subscriber answered flow-control request `topic` ("$JS/FC/..."): if
  // it is the one consumer's awaiting an answer, what it covers counts as
  // taken, and pushing goes on.
  void HandleFlowControlAnswer(absl::string_view topic);
  // Counts `bytes` pushed by flow-controlled consumer `c` to `to`, and sends
  // `to` a flow-control request when half the window is unanswered and none
  // awaits an answer.
  void CountPushed(const Stream& stream, Consumer& c, Subscription& to,
                   size_t bytes);
  // Answers a JetStream API request on its reply topic.
  void AnswerJetStream(const PublishOp& request, absl::string_view json);
  // Routes `payload` to reply topic `topic`, spelled `spelled_topic` in the
  // protocol `spelling` of the request it answers.
  void PublishReply(absl::string_view topic, CodecSlot spelling,
                    absl::string_view spelled_topic, absl::string_view payload);
  // Whether a subscription now takes what push consumer `c` delivers
  // (JetStream's push_bound).
  bool PushBound(Consumer& c) {
    return !c.state.deliver_topic().empty() &&
           PushTarget(
               c, [](const Subscription&) { return true; },
               /*take_turn=*/false) != nullptr;
  }
  // Queues a pull request (MSG.NEXT) on `consumer` for `c`.
  void PullFromConsumer(ConnectionCore& c, const PublishOp& request,
                        Stream& stream, Consumer& consumer);
  // The reply subject, as a topic, of a message `seq` a pull request or a
  // push consumer's subscription gets:
  // where its ack goes ("$JS/ACK/<stream>/<consumer>/...").
  std::string JetStreamAckTopic(const Stream& stream, const Consumer& c,
                                uint64_t seq, int64_t time_unix_ms,
                                bool redelivered) const;
  // Delivers a status message ("NATS/1.0 <code> <description>", then the
  // headers `more`) on `topic` to `sub`.
  void SendStatus(Subscription& sub, absl::string_view topic,
                  absl::string_view code, absl::string_view description,
                  absl::Span<const HeaderView> more = {},
                  absl::string_view reply_to = {});
  // For a push consumer with an idle heartbeat: sets the next one (a
  // message pushed puts it off).
  void PutOffPushHeartbeat(Consumer& consumer);
  // Sends a push consumer's idle heartbeat to a subscriber of its deliver
  // topic, if it has one, and sets the next.
  void SendPushHeartbeat(Consumer& consumer);
  // Delivers a status message ("NATS/1.0 <code> <description>") to a pull
  // request's inbox.
  void SendPullStatus(const PullRequest& pull, absl::string_view code,
                      absl::string_view description);
  // Answers the pull requests that do not wait, and drops them.
  void AnswerNoWaitPulls(Consumer& c);
  // Answers the pull requests whose time is up, and sends the heartbeats
  // due.
  void ExpirePulls(Consumer& c);
  void AfterStreamsTurn() {
    if (ABSL_PREDICT_FALSE(StreamsActive())) {
      FlushStorage();
      CollectStorage();
    }
  }

  // The cluster (cluster.cc). A subscription `sub` began (+1) or ended
  // (-1): the link hears of the first and the last of each pattern and
  // queue group.
  void CountInterest(const Subscription& sub, int delta);

  // Timers.
  void FireTimer(const TimerQueue::Timer& timer);
  void CheckKeepalive(ConnectionCore& c);

  // Events.
  void Emit(wire::BrokerEvent event, absl::string_view sys_topic);
  void PublishStatistics();

  const BrokerOptions options_;
  // From options_, in the forms the code uses.
  const TopicLimits topic_limits_;
  const bool backpressure_;
  // Under backpressure: stalled publishers resume when the output they wait
  // on is below this; past hard_outbound_limit_ a connection is closed with
  // SLOW_CONSUMER whatever the policy (each stalled publisher may add one
  // message past the high-water mark, so this bounds what they add).
  const size_t resume_outbound_bytes_;
  const size_t hard_outbound_limit_;
  // The connection whose operation is being handled, or nullptr (timers,
  // the embedder's calls).
  ConnectionCore* origin_ = nullptr;
  absl::Time now_ = absl::UnixEpoch();
  // Accepted connections that are not closing (handshaking ones included).
  size_t live_connections_ = 0;
  bool shutting_down_ = false;

  // Sessions that outlive links, by token (linked or not); sessions without
  // a link right now, and those of them that links poll.
  std::unique_ptr<SessionIdSource> session_ids_;
  absl::flat_hash_map<std::string, ConnectionId> sessions_;
  size_t unlinked_ = 0;
  size_t polled_sessions_ = 0;
  // Why recent sessions ended, by token, so a late resume can say so;
  // bounded, oldest forgotten first.
  absl::flat_hash_map<std::string, absl::Status> ended_sessions_;
  std::deque<std::string> ended_order_;
  // While an operation acts for a session (Operation::session.token): the
  // link it came on, which gets the answers (Ack, Error).
  ConnectionCore* reply_link_ = nullptr;

  // Broker::Request's answers waiting for PollResponse(), and how many of
  // its requests are in flight.
  std::deque<wire::Response> embedder_responses_;
  size_t embedder_requests_ = 0;
  IdAllocator<RequestId> embedder_request_ids_;

  IdAllocator<ConnectionId> connection_ids_;
  IdAllocator<SubscriptionId> subscription_ids_;
  IdAllocator<RequestId> request_ids_;

  absl::flat_hash_map<ConnectionId, std::unique_ptr<ConnectionCore>>
      connections_;
  std::deque<ConnectionId> ready_;
  std::vector<ConnectionId> changed_;
  // The connections in changed_ whose codec gathers output (their frames
  // are closed by FinishTurns()).
  std::vector<ConnectionId> gathering_;
  // Connections that began closing and still hold resources. Released by
  // RunDeferred() at the end of the current operation, never in the middle of
  // routing a message (which iterates over subscriptions).
  std::vector<ConnectionId> to_release_;
  // Subscriptions that reached max_messages while a message was routed.
  std::vector<SubscriptionId> to_unsubscribe_;

  SubscriptionIndex index_;
  // Subscriptions with a receive filter (Subscription::filter) or replaying
  // a stream, broker-wide, plus one while a cluster link is attached: when
  // non-zero, routing takes the checked path.
  size_t filtered_subscriptions_ = 0;
  absl::flat_hash_map<std::string, Service> services_;
  // Serves waiting for the cluster's claim, by topic.
  absl::flat_hash_map<std::string, PendingClaim> claims_;
  absl::flat_hash_map<RequestId, PendingRequest> requests_;
  TimerQueue timers_;
  TimerQueue::Key statistics_timer_;

  std::deque<wire::BrokerEvent> events_;
  BrokerStatistics stats_;

  // RetainForReplay()'s view of a connection's output.
  std::vector<absl::string_view> replay_chunks_;
  // SharedMessage::id() of the last message routed.
  uint64_t last_message_id_ = 0;
  // Durable streams, by name; the storages' lanes (the memory one serves
  // memory streams with a storage of the broker's own).
  absl::flat_hash_map<std::string, std::unique_ptr<Stream>> streams_;
  std::unique_ptr<MemoryStreamStorage> memory_storage_;
  StorageLane file_lane_;
  StorageLane memory_lane_;
  absl::flat_hash_map<uint64_t, PendingAck> pending_acks_;
  uint64_t last_ack_id_ = 0;
  uint64_t last_batch_id_ = 0;
  uint64_t last_read_id_ = 0;
  int64_t wall_now_ms_ = 0;
  bool wall_set_ = false;
  absl::Time last_sync_ = absl::InfinitePast();
  TimerQueue::Key streams_timer_;
  // PumpCursors() has consumers and replays to serve: a subscriber drained,
  // or a new subscription may take a push consumer's messages.
  bool cursors_waiting_ = false;
  bool cursors_to_sweep_ = false;
  // The last number in a name given to an ephemeral consumer ("eph<n>").
  uint64_t last_ephemeral_consumer_ = 0;
  // PushTarget()'s scratch, kept for its capacity.
  std::vector<Subscription*> push_candidates_;
  bool storage_failing_ = false;
  std::vector<StorageCompletion> storage_done_;
  // The stream that captures each recently published literal topic (null:
  // none); cleared whenever streams change.
  absl::flat_hash_map<std::string, Stream*> capture_cache_;
  // Durable consumers: by Consumer::id, and by bound subscription; those
  // whose state is to be written with the next batch.
  absl::flat_hash_map<uint64_t, std::pair<std::string, std::string>>
      consumer_ids_;
  absl::flat_hash_map<SubscriptionId, std::pair<std::string, std::string>>
      consumer_members_;
  std::vector<std::pair<std::string, std::string>> dirty_consumers_;
  uint64_t last_consumer_id_ = 0;
  // JetStream API requests served, and those answered with an error.
  uint64_t jetstream_requests_ = 0;
  uint64_t jetstream_errors_ = 0;

  // The cluster link (null: not in a cluster), and how many subscriptions
  // each pattern and queue group has while one is attached.
  ClusterLink* cluster_ = nullptr;
  absl::flat_hash_map<std::pair<std::string, std::string>, uint32_t>
      cluster_interest_;

  // Reused on every operation so routing allocates nothing in steady state.
  Operation op_;
  SharedMessage::Scratch encode_scratch_;
  wire::ServerMessage scratch_message_;
};

}  // namespace manifold::internal

#endif  // MANIFOLD_BROKER_INTERNAL_BROKER_CORE_H_
