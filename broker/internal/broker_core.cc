// The Broker's lifecycle: accepting and closing connections, the handshake,
// processing input, timers and events. Routing is in broker_routing.cc and
// services in broker_services.cc.

#include "broker/internal/broker_core.h"

#include <algorithm>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "broker/internal/statistics_proto.h"
#include "broker/sys_topics.h"
#include "broker/version.h"
#include "core/status.h"

namespace manifold::internal {
namespace {

// Longest client name accepted in Hello.
constexpr size_t kMaxClientNameBytes = 256;
// An inbound buffer holds up to max_inbound_bytes of queued reads plus one
// read more (64 KiB at most from the transports), and std::string doubles as
// it grows: a buffer with more capacity than twice that grew for one large
// frame, and is released once empty so an idle connection does not keep it.
// Anything smaller stays: a busy publisher refills it every turn, and
// releasing it would cost an allocation, page faults and a copy per turn.
size_t MaxKeptInboundCapacity(const BrokerOptions& options) {
  return 2 * (options.max_inbound_bytes() + 64 * 1024);
}

absl::string_view OperationName(const wire::ClientMessage& m) {
  switch (m.kind_case()) {
    case wire::ClientMessage::kHello:
      return "hello";
    case wire::ClientMessage::kSubscribe:
      return "subscribe";
    case wire::ClientMessage::kUnsubscribe:
      return "unsubscribe";
    case wire::ClientMessage::kPublish:
      return "publish";
    case wire::ClientMessage::kServe:
      return "serve";
    case wire::ClientMessage::kUnserve:
      return "unserve";
    case wire::ClientMessage::kRequest:
      return "request";
    case wire::ClientMessage::kRespond:
      return "respond";
    case wire::ClientMessage::kPing:
      return "ping";
    case wire::ClientMessage::kPong:
      return "pong";
    case wire::ClientMessage::kAckStored:
      return "ack_stored";
    default:
      return "unknown";
  }
}

bool IsPrintable(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
  });
}

}  // namespace

BrokerCore::BrokerCore(BrokerOptions options,
                       std::unique_ptr<SessionIdSource> session_ids)
    : options_(std::move(options)),
      topic_limits_{.max_length = options_.max_topic_length(),
                    .max_depth = options_.max_topic_depth()},
      backpressure_(options_.slow_consumer_policy() ==
                    BrokerOptions::BACKPRESSURE),
      resume_outbound_bytes_(options_.max_outbound_bytes() *
                             options_.resume_outbound_percent() / 100),
      hard_outbound_limit_(2 * options_.max_outbound_bytes() +
                           options_.max_frame_bytes()),
      session_ids_(session_ids != nullptr
                       ? std::move(session_ids)
                       : SeededSessionIdSource(options_.session_id_seed())) {
  if (options_.statistics_interval_ms() > 0) {
    statistics_timer_ = timers_.Schedule(
        now_ + absl::Milliseconds(options_.statistics_interval_ms()),
        TimerKind::kStatistics, 0);
  }
}

BrokerCore::~BrokerCore() {
  // Connections refer to subscriptions and services; drop them first.
  connections_.clear();
}

// ---------------------------------------------------------------------------
// Connections

ConnectionCore& BrokerCore::Accept(PeerInfo peer, absl::Time now,
                                   std::unique_ptr<ProtocolCodec> codec,
                                   bool native) {
  Advance(now);
  const ConnectionId id = connection_ids_.Next();
  auto owned = std::unique_ptr<ConnectionCore>(
      new ConnectionCore(*this, id, std::move(peer), std::move(codec), now));
  ConnectionCore& c = *owned;
  c.native_ = native;
  c.outbound_limit_ = options_.max_outbound_bytes();
  c.session_id_ = id.value();
  connections_.emplace(id, std::move(owned));

  ConnectionStart start;
  start.id = id;
  start.server_name = options_.server_name();
  start.server_version = std::string(kBrokerVersion);
  start.max_payload_bytes = options_.max_payload_bytes();
  start.max_frame_bytes = options_.max_frame_bytes();
  start.peer = c.peer().address;
  c.codec_->Start(start, c.outbound_);
  if (!c.outbound_.empty()) MarkChanged(c);

  // Connections mid-handshake count toward the limit, or a flood of silent
  // peers could exceed it.
  if (shutting_down_ || live_connections_ >= options_.max_connections()) {
    ++stats_.connections_refused;
    BeginClose(
        c,
        shutting_down_
            ? ProtocolError(wire::SHUTTING_DOWN, "broker is shutting down")
            : ProtocolError(
                  wire::TOO_MANY_CONNECTIONS,
                  absl::StrCat("broker has ", options_.max_connections(),
                               " connections; the limit is ",
                               options_.max_connections())),
        /*tell_peer=*/true);
    RunDeferred();
    return c;
  }
  ++stats_.connections_accepted;
  ++live_connections_;
  c.live_ = true;
  c.handshake_timer_ = timers_.Schedule(
      now + absl::Milliseconds(options_.handshake_timeout_ms()),
      TimerKind::kHandshake, id.value());
  c.codec_tick_interval_ = c.codec_->tick_interval();
  if (c.codec_tick_interval_ > absl::ZeroDuration() &&
      c.codec_tick_interval_ != absl::InfiniteDuration()) {
    c.codec_timer_ = timers_.Schedule(now_ + c.codec_tick_interval_,
                                      TimerKind::kCodecTick, id.value());
  }
  return c;
}

ConnectionCore* BrokerCore::FindConnection(ConnectionId id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second.get();
}

void BrokerCore::Close(ConnectionId id, absl::string_view reason,
                       absl::Time now) {
  Advance(now);
  ConnectionCore* c = FindLinked(id);
  if (c == nullptr) return;
  if (c->state_ != ConnectionState::kClosing) {
    // The link is gone, not the client: a resumable session waits for it.
    if (c->resumable_ && c->state_ == ConnectionState::kOpen &&
        !shutting_down_) {
      Detach(*c);
    }
    absl::Status why = ProtocolError(wire::CONNECTION_CLOSED, reason);
    if (!c->unread_input().empty()) {
      why =
          ProtocolError(wire::TRUNCATED_FRAME,
                        absl::StrCat(reason, " with ", c->unread_input().size(),
                                     " bytes of an unfinished operation"));
    }
    BeginClose(*c, why, /*tell_peer=*/false);
  }
  RunDeferred();
  Destroy(id);
  FlushPolls();
}

absl::Status BrokerCore::Admit(ConnectionId id, Grant grant, absl::Time now) {
  Advance(now);
  ConnectionCore* c = FindConnection(id);
  if (c == nullptr || c->state_ != ConnectionState::kAwaitingAdmission ||
      c->refusal_.has_value()) {
    return absl::NotFoundError(
        absl::StrCat(id.ToString(), " is not waiting for admission"));
  }
  c->user_ = std::move(grant.user);
  c->permissions_ = std::move(grant.permissions);
  Welcome(*c);
  // Operations the client sent after Hello have waited; handle them now.
  if (!c->unread_input().empty()) MarkReady(*c);
  RunDeferred();
  FlushPolls();
  return absl::OkStatus();
}

absl::Status BrokerCore::Refuse(ConnectionId id, absl::string_view reason,
                                absl::Time now, absl::Duration delay) {
  Advance(now);
  ConnectionCore* c = FindConnection(id);
  if (c == nullptr || c->state_ != ConnectionState::kAwaitingAdmission ||
      c->refusal_.has_value()) {
    return absl::NotFoundError(
        absl::StrCat(id.ToString(), " is not waiting for admission"));
  }
  if (delay > absl::ZeroDuration()) {
    // The handshake timer sends the refusal (FireTimer).
    c->refusal_ = std::string(reason);
    timers_.Cancel(c->handshake_timer_);
    c->handshake_timer_ =
        timers_.Schedule(now_ + delay, TimerKind::kHandshake, id.value());
    return absl::OkStatus();
  }
  SendRefusal(*c, reason);
  RunDeferred();
  return absl::OkStatus();
}

void BrokerCore::SendRefusal(ConnectionCore& c, absl::string_view reason) {
  ++stats_.connections_refused;
  BeginClose(c,
             ProtocolError(wire::REFUSED,
                           absl::StrCat("connection refused: ", reason)),
             /*tell_peer=*/true);
}

void BrokerCore::Welcome(ConnectionCore& c) {
  c.state_ = ConnectionState::kOpen;
  c.auth_token_.clear();
  timers_.Cancel(c.handshake_timer_);
  if (options_.keepalive_interval_ms() > 0 && c.codec_->wants_keepalive()) {
    c.keepalive_timer_ = timers_.Schedule(
        now_ + absl::Milliseconds(options_.keepalive_interval_ms()),
        TimerKind::kKeepalive, c.id_.value());
  }
  ++stats_.connections;
  ++stats_.connections_by_protocol[std::string(c.protocol())];

  wire::Welcome welcome;
  welcome.set_protocol_version(kProtocolVersion);
  welcome.set_server_name(options_.server_name());
  welcome.set_max_payload_bytes(options_.max_payload_bytes());
  welcome.set_max_frame_bytes(options_.max_frame_bytes());
  welcome.set_keepalive_interval_ms(
      static_cast<uint32_t>(options_.keepalive_interval_ms()));
  // Sends it, and brings a resumed session's stream after it.
  WelcomeSession(c, welcome);
  if (c.codec_->gathers_output()) {
    c.gathers_output_ = true;
    // Already changed (the Welcome): list it now, MarkChanged() will not.
    if (c.in_changed_list_) gathering_.push_back(c.id_);
  }

  c.announced_ = true;
  wire::BrokerEvent event;
  wire::ConnectionAdded* added = event.mutable_connection_added();
  added->set_session_id(c.session_id_);
  added->set_client_name(c.client_name_);
  added->set_peer(c.peer_.address);
  added->set_protocol(std::string(c.protocol()));
  added->set_resumed(welcome.resumed());
  added->set_user(c.user_);
  Emit(std::move(event), sys_topics::kConnectionAdded);
}

void BrokerCore::BeginClose(ConnectionCore& c, absl::Status reason,
                            bool tell_peer) {
  if (c.state_ == ConnectionState::kClosing) return;
  const bool was_open = c.state_ == ConnectionState::kOpen;
  if (tell_peer) {
    // Not scratch_message_: a caller may be in the middle of filling it.
    wire::ServerMessage m;
    if (WireCode(reason) == wire::SHUTTING_DOWN) {
      m.mutable_goodbye()->set_code(wire::SHUTTING_DOWN);
      m.mutable_goodbye()->set_message(std::string(reason.message()));
    } else {
      wire::Error* error = m.mutable_error();
      error->set_code(WireCode(reason));
      error->set_message(std::string(reason.message()));
      error->set_fatal(true);
    }
    c.codec_->Encode(m, c.outbound_);
    ++stats_.messages_out;
  }
  const bool was_live = c.live_;
  c.state_ = ConnectionState::kClosing;
  c.close_reason_ = std::move(reason);
  if (was_open && c.linked_) {
    --stats_.connections;
    auto by_protocol =
        stats_.connections_by_protocol.find(std::string(c.protocol()));
    if (by_protocol != stats_.connections_by_protocol.end()) {
      --by_protocol->second;
    }
  }
  if (was_live) {
    c.live_ = false;
    --live_connections_;
  }
  c.inbound_.clear();
  c.inbound_read_ = 0;
  // Nobody waits on a connection that is going away.
  if (!c.waiting_publishers_.empty()) ReleaseWaiting(c);
  // A session it polled is no longer polled.
  if (c.polling_.valid()) {
    if (ConnectionCore* polled = FindConnection(c.polling_)) EndPoll(*polled);
    c.polling_ = ConnectionId();
  }
  timers_.Cancel(c.handshake_timer_);
  timers_.Cancel(c.keepalive_timer_);
  timers_.Cancel(c.codec_timer_);
  c.linger_timer_ =
      timers_.Schedule(now_ + absl::Milliseconds(options_.close_linger_ms()),
                       TimerKind::kLinger, c.id_.value());
  to_release_.push_back(c.id_);
  MarkChanged(c);
}

void BrokerCore::CloseSlowConsumer(ConnectionCore& c) {
  ++stats_.slow_consumer_disconnects;
  BeginClose(c,
             ProtocolError(wire::SLOW_CONSUMER,
                           absl::StrCat("slow consumer: ", c.outbound_.size(),
                                        " bytes unread; the limit is ",
                                        options_.max_outbound_bytes())),
             /*tell_peer=*/true);
}

void BrokerCore::ReleaseResources(ConnectionCore& c) {
  // Requests this connection made: nobody is waiting for the answers now.
  for (RequestId id : c.awaiting_) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    PendingRequest& request = it->second;
    timers_.Cancel(request.timer);
    if (request.server != nullptr) {
      request.server->serving_.erase(id);
      if (auto service = services_.find(request.topic);
          service != services_.end()) {
        service->second.pending.erase(id);
      }
    }
    requests_.erase(it);
    --stats_.requests_in_flight;
  }
  c.awaiting_.clear();

  // Services it provided: their waiting requesters get SERVER_GONE.
  const absl::btree_set<std::string> served = std::move(c.served_topics_);
  c.served_topics_.clear();
  for (const std::string& topic : served) {
    RemoveService(topic, absl::StrCat("server ", c.Describe(), " disconnected"),
                  /*emit_event=*/true);
  }

  // Subscriptions end silently; ConnectionRemoved implies them.
  for (SubscriptionId id : c.subscriptions_) {
    if (Subscription* sub = index_.Find(id)) RemoveSubscription(*sub, false);
  }
  c.subscriptions_.clear();

  if (c.announced_) {
    wire::BrokerEvent event;
    wire::ConnectionRemoved* removed = event.mutable_connection_removed();
    removed->set_session_id(c.session_id_);
    removed->set_client_name(c.client_name_);
    removed->set_code(WireCode(c.close_reason_));
    removed->set_reason(std::string(c.close_reason_.message()));
    removed->set_detached(c.session_detached_);
    Emit(std::move(event), sys_topics::kConnectionRemoved);
  }

  // A session that outlives links ends here unless it moved on.
  if (!c.session_token_.empty()) {
    sessions_.erase(c.session_token_);
    RememberEnded(c.session_token_, c.close_reason_);
    wire::BrokerEvent event;
    wire::SessionRemoved* removed = event.mutable_session_removed();
    removed->set_session_id(c.session_id_);
    removed->set_client_name(c.client_name_);
    removed->set_code(WireCode(c.close_reason_));
    removed->set_reason(std::string(c.close_reason_.message()));
    c.session_token_.clear();
    Emit(std::move(event), sys_topics::kSessionRemoved);
  }
}

void BrokerCore::RunDeferredSlow() {
  // Releasing or unsubscribing can publish $sys events, whose deliveries can
  // close further (slow) connections: loop until nothing is left.
  while (!to_release_.empty() || !to_unsubscribe_.empty()) {
    if (!to_unsubscribe_.empty()) {
      std::vector<SubscriptionId> expired = std::move(to_unsubscribe_);
      to_unsubscribe_.clear();
      for (SubscriptionId id : expired) {
        if (Subscription* sub = index_.Find(id)) {
          sub->connection->subscriptions_.erase(id);
          RemoveSubscription(*sub, /*emit_event=*/true);
        }
      }
      continue;
    }
    const ConnectionId id = to_release_.front();
    to_release_.erase(to_release_.begin());
    if (ConnectionCore* c = FindConnection(id)) {
      ReleaseResources(*c);
      // No transport closes a session without a link: it goes now.
      if (!c->linked_) FinishUnlinked(*c);
    }
  }
}

void BrokerCore::Destroy(ConnectionId id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  ConnectionCore& c = *it->second;
  timers_.Cancel(c.linger_timer_);
  timers_.Cancel(c.stall_timer_);
  if (!c.linked_) {
    timers_.Cancel(c.expiry_timer_);
    timers_.Cancel(c.poll_timer_);
    --unlinked_;
    stats_.detached_sessions = unlinked_;
    if (c.polled_) --polled_sessions_;
  }
  if (c.stalled_on_ > 0) {
    // The connections it waited on still list it; they skip ids that are
    // gone when they drain.
    --stats_.stalled_publishers;
    stats_.stalled_ms += absl::ToInt64Milliseconds(now_ - c.stalled_since_);
  }
  connections_.erase(it);  // ready_ and changed_ skip ids that are gone
}

void BrokerCore::Shutdown(absl::Time now) {
  Advance(now);
  if (shutting_down_) return;
  shutting_down_ = true;
  timers_.Cancel(statistics_timer_);
  std::vector<ConnectionId> ids;
  ids.reserve(connections_.size());
  for (auto& [id, c] : connections_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  // Sessions without a link end first, so that links polling them get
  // their last answers before their Goodbyes.
  for (ConnectionId id : ids) {
    ConnectionCore& c = *connections_[id];
    if (!c.linked_) {
      EndSession(c,
                 ProtocolError(wire::SHUTTING_DOWN, "broker is shutting down"));
    }
  }
  RunDeferred();
  FlushPolls();
  for (ConnectionId id : ids) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    BeginClose(*it->second,
               ProtocolError(wire::SHUTTING_DOWN, "broker is shutting down"),
               /*tell_peer=*/true);
  }
  RunDeferred();
}

// ---------------------------------------------------------------------------
// Work lists

void BrokerCore::MarkReady(ConnectionCore& c) {
  if (c.in_ready_list_) return;
  c.in_ready_list_ = true;
  ready_.push_back(c.id_);
}

void BrokerCore::MarkChanged(ConnectionCore& c) {
  if (c.in_changed_list_) return;
  c.in_changed_list_ = true;
  changed_.push_back(c.id_);
  if (c.gathers_output_) gathering_.push_back(c.id_);
}

void BrokerCore::FinishTurnsSlow() {
  // A connection stays listed until the transport takes the changes, since
  // MarkChanged() lists it only once; drop the ones that are gone.
  size_t kept = 0;
  for (ConnectionId id : gathering_) {
    ConnectionCore* c = FindConnection(id);
    if (c == nullptr) continue;
    if (c->outbound_.frame_open()) c->codec_->FinishTurn(c->outbound_);
    gathering_[kept++] = id;
  }
  gathering_.resize(kept);
}

void BrokerCore::TakeChanged(std::vector<ConnectionId>& out) {
  FinishTurns();
  gathering_.clear();
  out.clear();
  for (ConnectionId id : changed_) {
    if (ConnectionCore* c = FindConnection(id)) {
      c->in_changed_list_ = false;
      // Sessions without a link have no transport (FlushPolls hands their
      // output to their pollers).
      if (c->linked_) out.push_back(id);
    }
  }
  changed_.clear();
}

// ---------------------------------------------------------------------------
// Processing input

void BrokerCore::Process(absl::Time now) {
  Advance(now);
  // What the storages finished since the last turn (acks, replays).
  if (ABSL_PREDICT_FALSE(StreamsActive())) CollectStorage();
  while (!ready_.empty()) {
    const ConnectionId id = ready_.front();
    ready_.pop_front();
    ConnectionCore* c = FindConnection(id);
    if (c == nullptr) continue;
    c->in_ready_list_ = false;
    ProcessConnection(*c);
  }
  // Everything stored this turn goes to the storage as one batch.
  AfterStreamsTurn();
  RunDeferred();
  FlushPolls();
}

void BrokerCore::ProcessConnection(ConnectionCore& c) {
  size_t handled = 0;
  bool more = false;
  while (c.state_ != ConnectionState::kClosing &&
         c.state_ != ConnectionState::kAwaitingAdmission &&
         c.stalled_on_ == 0) {
    const absl::string_view input = c.unread_input();
    if (input.empty()) break;
    if (handled == options_.frames_per_turn()) {
      more = true;  // let the others have a turn
      break;
    }
    absl::StatusOr<size_t> used =
        c.codec_->Decode(input, options_.max_frame_bytes(), op_);
    if (!used.ok()) {
      // CONNECTION_CLOSED: the peer said goodbye in its own protocol.
      if (WireCode(used.status()) != wire::CONNECTION_CLOSED) {
        ++stats_.protocol_errors;
      }
      BeginClose(c, used.status(), /*tell_peer=*/true);
      break;
    }
    if (*used == 0) {
      c.awaiting_rest_of_frame_ = true;
      break;
    }
    c.awaiting_rest_of_frame_ = false;
    ++stats_.messages_in;
    ++c.frames_in_;  // before Dispatch: a resume replaces the count
    ++handled;
    origin_ = &c;
    Dispatch(c, op_);  // op_'s views point into c.inbound_: consume after
    origin_ = nullptr;
    c.inbound_read_ += *used;
    RunDeferred();
  }
  if (c.state_ != ConnectionState::kClosing) {
    c.DropReadInput();
    if (c.inbound_.empty() &&
        c.inbound_.capacity() > MaxKeptInboundCapacity(options_)) {
      std::string().swap(c.inbound_);
    }
    if (more && c.stalled_on_ == 0) MarkReady(c);
    if (c.read_paused_ && c.WantsRead()) {
      c.read_paused_ = false;
      MarkChanged(c);
    }
  }
}

void BrokerCore::Dispatch(ConnectionCore& c, Operation& op) {
  // Operations on or for sessions without a link (Bayeux); never set by the
  // native and NATS codecs.
  if (ABSL_PREDICT_FALSE(op.kind == Operation::Kind::kSession ||
                         !op.session.token.empty())) {
    DispatchSessionOp(c, op);
    return;
  }
  if (op.kind == Operation::Kind::kPublish) {
    if (c.state_ != ConnectionState::kOpen) {
      ++stats_.protocol_errors;
      BeginClose(c,
                 ProtocolError(wire::HANDSHAKE_REQUIRED,
                               "operation 'publish' before Hello"),
                 /*tell_peer=*/true);
      return;
    }
    HandlePublish(c, op.publish);
    return;
  }
  if (op.kind == Operation::Kind::kLocal) {
    if (op.local_error != wire::OK) ++stats_.operation_errors;
    c.codec_->EncodeLocal(c.outbound_);
    MarkChanged(c);
    CloseIfCodecIsDone(c);
    return;
  }
  const wire::ClientMessage& m = op.message;
  if (m.kind_case() == wire::ClientMessage::kHello) {
    HandleHello(c, m.hello());
    return;
  }
  if (c.state_ != ConnectionState::kOpen) {
    ++stats_.protocol_errors;
    BeginClose(c,
               ProtocolError(wire::HANDSHAKE_REQUIRED,
                             absl::StrCat("operation '", OperationName(m),
                                          "' before Hello")),
               /*tell_peer=*/true);
    return;
  }
  switch (m.kind_case()) {
    case wire::ClientMessage::kSubscribe:
      HandleSubscribe(c, m.subscribe());
      break;
    case wire::ClientMessage::kUnsubscribe:
      HandleUnsubscribe(c, m.unsubscribe());
      break;
    case wire::ClientMessage::kPublish: {
      // A publish the fast path did not take (unusual field layout).
      const wire::Publish& p = m.publish();
      PublishOp& publish = op.publish;
      publish.Reset();
      publish.op_id = p.op_id();
      publish.topic = p.topic();
      publish.payload = p.payload();
      publish.reply_to = p.reply_to();
      publish.ack = p.ack();
      publish.no_responders = p.no_responders();
      for (const wire::Header& h : p.headers()) {
        publish.headers.push_back({h.key(), h.value()});
      }
      HandlePublish(c, publish);
      break;
    }
    case wire::ClientMessage::kServe:
      HandleServe(c, m.serve());
      break;
    case wire::ClientMessage::kUnserve:
      HandleUnserve(c, m.unserve());
      break;
    case wire::ClientMessage::kRequest:
      HandleRequest(c, m.request());
      break;
    case wire::ClientMessage::kRespond:
      HandleRespond(c, m.respond());
      break;
    case wire::ClientMessage::kPing: {
      wire::ServerMessage& reply = scratch_message_;
      reply.Clear();
      reply.mutable_pong()->set_op_id(m.ping().op_id());
      Send(c, reply);
      break;
    }
    case wire::ClientMessage::kPong:
      // Any input already counts as liveness (ConnectionCore::Receive).
      break;
    case wire::ClientMessage::kAckStored:
      HandleAckStored(c, m.ack_stored());
      break;
    default:
      ++stats_.protocol_errors;
      BeginClose(
          c,
          ProtocolError(wire::MALFORMED_MESSAGE, "frame carries no operation"),
          /*tell_peer=*/true);
  }
}

void BrokerCore::HandleHello(ConnectionCore& c, const wire::Hello& hello) {
  if (c.state_ != ConnectionState::kAwaitingHello) {
    ++stats_.protocol_errors;
    BeginClose(c,
               ProtocolError(wire::HANDSHAKE_REQUIRED,
                             "second Hello on this connection"),
               /*tell_peer=*/true);
    return;
  }
  if (hello.protocol_version() != kProtocolVersion) {
    ++stats_.protocol_errors;
    BeginClose(c,
               ProtocolError(
                   wire::UNSUPPORTED_VERSION,
                   absl::StrCat("protocol version ", hello.protocol_version(),
                                " is not supported; this broker "
                                "speaks version ",
                                kProtocolVersion)),
               /*tell_peer=*/true);
    return;
  }
  if (hello.client_name().size() > kMaxClientNameBytes ||
      !IsPrintable(hello.client_name())) {
    ++stats_.protocol_errors;
    BeginClose(
        c,
        ProtocolError(wire::INVALID_ARGUMENT,
                      absl::StrCat("client name must be at most ",
                                   kMaxClientNameBytes, " printable bytes")),
        /*tell_peer=*/true);
    return;
  }
  c.client_name_ = hello.client_name();
  c.echo_ = !hello.no_echo();
  // Sessions that outlive this link: set up at Welcome (after admission).
  c.resumable_ = hello.resumable() || !hello.resume_token().empty();
  c.resume_token_ = hello.resume_token();
  c.resume_received_frames_ = hello.received_frames();
  if (!options_.require_admission()) {
    Welcome(c);
    return;
  }
  c.state_ = ConnectionState::kAwaitingAdmission;
  c.auth_token_ = hello.auth_token();
  c.announced_ = true;
  wire::BrokerEvent event;
  wire::ConnectionPending* pending = event.mutable_connection_pending();
  pending->set_session_id(c.session_id_);
  pending->set_client_name(c.client_name_);
  pending->set_auth_token(c.auth_token_);
  pending->set_peer(c.peer_.address);
  pending->set_user(hello.user());
  pending->set_password(hello.password());
  pending->set_session_user(SessionUserOf(hello));
  Emit(std::move(event), /*sys_topic=*/"");
}

std::string BrokerCore::SessionUserOf(const wire::Hello& hello) {
  if (hello.session_token().empty()) return "";
  auto it = sessions_.find(hello.session_token());
  if (it == sessions_.end()) return "";
  ConnectionCore* s = FindConnection(it->second);
  // As FindSession checks the operations the link will bring: a binding
  // presented must be the session's.
  if (s == nullptr || !s->polled_ || s->state_ == ConnectionState::kClosing ||
      (!hello.session_binding().empty() &&
       hello.session_binding() != s->session_binding_)) {
    return "";
  }
  return s->user_;
}

// ---------------------------------------------------------------------------
// Output

void BrokerCore::Send(ConnectionCore& c, const wire::ServerMessage& message) {
  if (c.state_ == ConnectionState::kClosing) return;
  // A session whose link was lost has no reader: past its buffer it ends.
  if (ABSL_PREDICT_FALSE(c.detached_) &&
      c.outbound_.size() >= c.outbound_limit_) {
    EndOverflowedSession(c);
    return;
  }
  // Replies are never dropped (that would break the protocol), but a peer
  // that does not read them cannot make the broker buffer without bound.
  if (backpressure_) {
    if (c.outbound_.size() >= hard_outbound_limit_) {
      CloseSlowConsumer(c);
      return;
    }
    // Nothing is dropped: whoever caused this reply waits until it drains.
    if (c.outbound_.size() >= options_.max_outbound_bytes()) HoldBack(c);
  } else if (c.outbound_.size() >
             options_.max_outbound_bytes() + options_.max_frame_bytes()) {
    CloseSlowConsumer(c);
    return;
  }
  c.codec_->Encode(message, c.outbound_);
  ++stats_.messages_out;
  MarkChanged(c);
  CloseIfCodecIsDone(c);
}

void BrokerCore::CloseDoneCodec(ConnectionCore& c) {
  BeginClose(c,
             ProtocolError(wire::CONNECTION_CLOSED,
                           absl::StrCat(c.protocol(),
                                        " connection done: closed after the "
                                        "last response")),
             /*tell_peer=*/false);
}

void BrokerCore::SendError(ConnectionCore& c, uint64_t op_id,
                           const absl::Status& status) {
  ++stats_.operation_errors;
  wire::ServerMessage& m = scratch_message_;
  m.Clear();
  wire::Error* error = m.mutable_error();
  error->set_op_id(op_id);
  error->set_code(WireCode(status));
  error->set_message(std::string(status.message()));
  Send(reply_link_ != nullptr ? *reply_link_ : c, m);
}

void BrokerCore::SendAck(ConnectionCore& c, uint64_t op_id,
                         uint64_t subscription_id, uint64_t delivered,
                         std::optional<uint64_t> stream_seq) {
  wire::ServerMessage& m = scratch_message_;
  m.Clear();
  wire::Ack* ack = m.mutable_ack();
  ack->set_op_id(op_id);
  ack->set_subscription_id(subscription_id);
  ack->set_delivered(delivered);
  if (stream_seq.has_value()) ack->set_stream_seq(*stream_seq);
  Send(reply_link_ != nullptr ? *reply_link_ : c, m);
}

// ---------------------------------------------------------------------------
// Timers

void BrokerCore::Tick(absl::Time now) {
  Advance(now);
  while (std::optional<TimerQueue::Timer> timer = timers_.PopDue(now_)) {
    FireTimer(*timer);
    RunDeferred();
  }
  FlushPolls();
}

void BrokerCore::FireTimer(const TimerQueue::Timer& timer) {
  if (timer.kind == TimerKind::kStatistics) {
    statistics_timer_ = timers_.Schedule(
        now_ + absl::Milliseconds(options_.statistics_interval_ms()),
        TimerKind::kStatistics, 0);
    PublishStatistics();
    return;
  }
  if (timer.kind == TimerKind::kStreams) {
    OnStreamTimer();
    return;
  }
  if (timer.kind == TimerKind::kConsumer) {
    OnConsumerTimer(timer.target);
    return;
  }
  if (timer.kind == TimerKind::kRequest) {
    auto it = requests_.find(RequestId(timer.target));
    if (it == requests_.end()) return;
    it->second.timer = TimerQueue::Key();  // fired; nothing to cancel
    ++stats_.requests_timed_out;
    FinishRequest(
        it->first, wire::TIMED_OUT,
        absl::StrCat(
            it->second.server != nullptr
                ? absl::StrCat("server ", it->second.server->Describe())
                : absl::StrCat("the server on node ", it->second.remote_node),
            " did not answer '", it->second.topic, "' within ",
            absl::FormatDuration(it->second.timeout)),
        nullptr);
    return;
  }
  ConnectionCore* c = FindConnection(ConnectionId(timer.target));
  if (c == nullptr) return;
  switch (timer.kind) {
    case TimerKind::kHandshake:
      c->handshake_timer_ = TimerQueue::Key();
      if (c->refusal_.has_value()) {
        SendRefusal(*c, *c->refusal_);
        break;
      }
      ++stats_.protocol_errors;
      BeginClose(*c,
                 ProtocolError(
                     wire::HANDSHAKE_TIMEOUT,
                     c->state_ == ConnectionState::kAwaitingAdmission
                         ? absl::StrCat("not admitted within ",
                                        absl::FormatDuration(absl::Milliseconds(
                                            options_.handshake_timeout_ms())))
                         : absl::StrCat("no Hello within ",
                                        absl::FormatDuration(absl::Milliseconds(
                                            options_.handshake_timeout_ms())))),
                 /*tell_peer=*/true);
      break;
    case TimerKind::kKeepalive:
      c->keepalive_timer_ = TimerQueue::Key();
      CheckKeepalive(*c);
      break;
    case TimerKind::kStall:
      c->stall_timer_ = TimerQueue::Key();
      OnStallTimeout(*c);
      break;
    case TimerKind::kCodecTick: {
      c->codec_timer_ = TimerQueue::Key();
      if (c->state_ == ConnectionState::kClosing) break;
      const size_t before = c->outbound_.size();
      absl::Status ticked = c->codec_->Tick(now_, c->outbound_);
      if (!ticked.ok()) {
        if (WireCode(ticked) != wire::CONNECTION_CLOSED) {
          ++stats_.protocol_errors;
        }
        BeginClose(*c, std::move(ticked), /*tell_peer=*/true);
        break;
      }
      if (c->outbound_.size() != before) MarkChanged(*c);
      CloseIfCodecIsDone(*c);
      if (c->state_ != ConnectionState::kClosing) {
        c->codec_timer_ =
            timers_.Schedule(now_ + c->codec_tick_interval_,
                             TimerKind::kCodecTick, c->id_.value());
      }
      break;
    }
    case TimerKind::kSessionExpiry:
      c->expiry_timer_ = TimerQueue::Key();
      ++stats_.sessions_expired;
      EndSession(*c, ProtocolError(
                         wire::SESSION_EXPIRED,
                         absl::StrCat("session expired: no link for ",
                                      absl::FormatDuration(absl::Milliseconds(
                                          options_.session_timeout_ms())))));
      break;
    case TimerKind::kPoll:
      c->poll_timer_ = TimerQueue::Key();
      FlushPoll(*c, /*timed_out=*/true, absl::OkStatus());
      break;
    case TimerKind::kLinger:
      // The peer did not drain its last output in time: drop it so the
      // transport closes the link now.
      c->linger_timer_ = TimerQueue::Key();
      c->output_discarded_ += c->outbound_.size();
      c->outbound_.Clear();
      MarkChanged(*c);
      break;
    default:
      break;
  }
}

void BrokerCore::CheckKeepalive(ConnectionCore& c) {
  if (c.state_ != ConnectionState::kOpen) return;
  const absl::Duration interval =
      absl::Milliseconds(options_.keepalive_interval_ms());
  if (now_ - c.last_input_ < interval) {
    c.keepalive_timer_ = timers_.Schedule(c.last_input_ + interval,
                                          TimerKind::kKeepalive, c.id_.value());
    return;
  }
  if (c.pings_outstanding_ >= options_.keepalive_max_missed()) {
    ++stats_.keepalive_disconnects;
    // A dead link, not a client gone: a resumable session waits for it,
    // and the error is for the link alone.
    if (c.resumable_ && !shutting_down_) Detach(c);
    BeginClose(c,
               ProtocolError(wire::KEEPALIVE_TIMEOUT,
                             absl::StrCat("no answer to ", c.pings_outstanding_,
                                          " keepalive pings in a row")),
               /*tell_peer=*/true);
    return;
  }
  wire::ServerMessage& m = scratch_message_;
  m.Clear();
  m.mutable_ping()->set_op_id(++c.pings_sent_);
  Send(c, m);
  ++c.pings_outstanding_;
  c.keepalive_timer_ =
      timers_.Schedule(now_ + interval, TimerKind::kKeepalive, c.id_.value());
}

// ---------------------------------------------------------------------------
// Flow control

void BrokerCore::HoldBack(ConnectionCore& c) {
  ConnectionCore* publisher = origin_;
  if (publisher == nullptr || publisher->state_ == ConnectionState::kClosing) {
    return;  // the broker's own messages have no sender to slow down
  }
  // One entry per stall: a message that reaches `c` through several
  // subscriptions stalls its publisher once.
  if (!c.waiting_publishers_.empty() &&
      c.waiting_publishers_.back() == publisher->id_) {
    return;
  }
  if (c.waiting_publishers_.empty()) {
    c.holding_since_ = now_;
    c.stall_timer_ =
        timers_.Schedule(now_ + absl::Milliseconds(options_.max_stall_ms()),
                         TimerKind::kStall, c.id_.value());
  }
  c.waiting_publishers_.push_back(publisher->id_);
  if (publisher->stalled_on_++ == 0) {
    publisher->stalled_since_ = now_;
    ++stats_.publisher_stalls;
    ++stats_.stalled_publishers;
    MarkChanged(*publisher);  // the transport stops reading it
  }
}

void BrokerCore::ReleaseWaiting(ConnectionCore& c) {
  timers_.Cancel(c.stall_timer_);
  std::vector<ConnectionId> waiting = std::move(c.waiting_publishers_);
  c.waiting_publishers_.clear();
  for (ConnectionId id : waiting) {
    ConnectionCore* publisher = FindConnection(id);
    if (publisher == nullptr || --publisher->stalled_on_ > 0) continue;
    --stats_.stalled_publishers;
    stats_.stalled_ms +=
        absl::ToInt64Milliseconds(now_ - publisher->stalled_since_);
    // Handle what it sent meanwhile, and let the transport read it again.
    if (!publisher->unread_input().empty()) MarkReady(*publisher);
    MarkChanged(*publisher);
  }
}

void BrokerCore::OnDrained(ConnectionCore& c) {
  c.dropping_ = false;
  if (!c.waiting_publishers_.empty()) ReleaseWaiting(c);
}

void BrokerCore::OnStallTimeout(ConnectionCore& c) {
  if (c.waiting_publishers_.empty()) return;
  ++stats_.stall_timeouts;
  const absl::Duration held = now_ - c.holding_since_;
  const size_t waiting = c.waiting_publishers_.size();
  wire::BrokerEvent event;
  wire::SlowConsumer* slow = event.mutable_slow_consumer();
  slow->set_session_id(c.session_id_);
  slow->set_client_name(c.client_name_);
  slow->set_pending_bytes(c.outbound_.size());
  slow->set_stalled_publishers(waiting);
  slow->set_stalled_ms(absl::ToInt64Milliseconds(held));
  if (options_.drop_after_max_stall()) {
    // It keeps its connection and loses deliveries until it catches up.
    slow->set_action(wire::SlowConsumer::DROPPING);
    c.dropping_ = true;
    ReleaseWaiting(c);
  } else {
    slow->set_action(wire::SlowConsumer::DISCONNECTED);
    ++stats_.slow_consumer_disconnects;
    BeginClose(
        c,
        ProtocolError(
            wire::SLOW_CONSUMER,
            absl::StrCat(
                "slow consumer: kept ", waiting, " connection(s) waiting for ",
                absl::FormatDuration(absl::Trunc(held, absl::Milliseconds(1))),
                " with ", c.outbound_.size(), " bytes unread; the limit is ",
                options_.max_outbound_bytes())),
        /*tell_peer=*/true);
  }
  Emit(std::move(event), sys_topics::kSlowConsumer);
}

// ---------------------------------------------------------------------------
// Events

void BrokerCore::Emit(wire::BrokerEvent event, absl::string_view sys_topic) {
  if (!sys_topic.empty() && !index_.Match(sys_topic).empty()) {
    const std::string payload = event.SerializeAsString();
    PublishOp publish;
    publish.topic = sys_topic;
    publish.payload = payload;
    Route(publish, nullptr);
  }
  if (options_.max_queued_events() == 0) return;
  if (events_.size() >= options_.max_queued_events()) {
    events_.pop_front();
    ++stats_.dropped_events;
  }
  events_.push_back(std::move(event));
}

std::optional<wire::BrokerEvent> BrokerCore::PollEvent() {
  if (events_.empty()) return std::nullopt;
  wire::BrokerEvent event = std::move(events_.front());
  events_.pop_front();
  return event;
}

void BrokerCore::PublishStatistics() {
  if (index_.Match(sys_topics::kStatisticsTopic).empty()) return;
  wire::BrokerEvent event;
  *event.mutable_statistics() = StatisticsToProto(stats_, options_);
  if (!streams_.empty()) {
    *event.mutable_statistics()->mutable_streams() = ListStreams().streams();
  }
  const std::string payload = event.SerializeAsString();
  PublishOp publish;
  publish.topic = sys_topics::kStatisticsTopic;
  publish.payload = payload;
  Route(publish, nullptr);
}

}  // namespace manifold::internal
