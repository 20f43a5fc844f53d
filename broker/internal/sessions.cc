// Sessions that outlive their links.
//
// A connection is a link and, until its session moves, the session it
// carries. Two kinds of session outlive their links:
//  - A resumable native session (Hello.resumable). When its link is lost it
//    moves into a ConnectionCore without a link (detached), which keeps its
//    subscriptions, services and requests and queues what the broker sends
//    it, up to session_buffer_bytes, for session_timeout. A Hello with its
//    token moves it into the new link. The broker's stream of frames to it
//    continues where the client says it stopped: written frames are kept
//    (RetainForReplay) in case the link lost them.
//  - A polled session (Bayeux): opened, polled and closed by operations from
//    links (SessionOp), it never has a link of its own. Its deliveries queue
//    in it and go to the link that polls it (FlushPoll). Between polls its
//    client is expected back, so its queue is an output buffer like any
//    connection's (the slow-consumer policy applies); without a poll for
//    session_timeout it expires.

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/internal/broker_core.h"
#include "broker/internal/native_codec.h"
#include "broker/sys_topics.h"
#include "broker/version.h"
#include "core/framing.h"
#include "core/status.h"

namespace manifold::internal {
namespace {

// How many ended sessions the broker remembers, so that a client resuming
// one late learns why it ended rather than just that it is unknown.
constexpr size_t kRememberedEndings = 4096;
// Longest client name a session opened from a link may have.
constexpr size_t kMaxSessionNameBytes = 256;

// The op id an operation carries, for errors about it.
uint64_t OpIdOf(const Operation& op) {
  if (op.kind == Operation::Kind::kPublish) return op.publish.op_id;
  const wire::ClientMessage& m = op.message;
  switch (m.kind_case()) {
    case wire::ClientMessage::kSubscribe:
      return m.subscribe().op_id();
    case wire::ClientMessage::kUnsubscribe:
      return m.unsubscribe().op_id();
    case wire::ClientMessage::kPublish:
      return m.publish().op_id();
    case wire::ClientMessage::kServe:
      return m.serve().op_id();
    case wire::ClientMessage::kUnserve:
      return m.unserve().op_id();
    case wire::ClientMessage::kRequest:
      return m.request().op_id();
    case wire::ClientMessage::kRespond:
      return m.respond().op_id();
    case wire::ClientMessage::kPing:
      return m.ping().op_id();
    default:
      return 0;
  }
}

std::string PrintableName(absl::string_view name) {
  std::string out;
  for (char c : name) {
    if (out.size() == kMaxSessionNameBytes) break;
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out.push_back(c);
  }
  return out;
}

// A token, shortened for messages: enough to recognise, not to reuse.
std::string Abbreviated(absl::string_view token) {
  return token.size() <= 8 ? std::string(token)
                           : absl::StrCat(token.substr(0, 8), "...");
}

}  // namespace

// ---------------------------------------------------------------------------
// Resumable native sessions

void BrokerCore::WelcomeSession(ConnectionCore& c, wire::Welcome& welcome) {
  ConnectionCore* resumed = nullptr;
  absl::StatusOr<std::string> rest = std::string();
  if (!c.resume_token_.empty()) {
    const std::string token = std::move(c.resume_token_);
    c.resume_token_.clear();
    auto it = sessions_.find(token);
    ConnectionCore* old =
        it == sessions_.end() ? nullptr : FindConnection(it->second);
    absl::Status failure;
    if (!c.native_) {
      failure = ProtocolError(wire::SESSION_UNKNOWN,
                              "sessions resume over the native protocol "
                              "(TCP or Unix sockets) only");
    } else if (old == nullptr || !old->resumable_ || old == &c) {
      auto ended = ended_sessions_.find(token);
      failure =
          ended != ended_sessions_.end()
              ? ended->second
              : ProtocolError(wire::SESSION_UNKNOWN,
                              absl::StrCat("no session ", Abbreviated(token),
                                           ": it never existed, or the "
                                           "broker restarted since"));
    } else if (old->user_ != c.user_) {
      // A session keeps the user it was admitted as: its subscriptions and
      // services were allowed for that user's grant.
      failure = ProtocolError(wire::SESSION_UNKNOWN,
                              absl::StrCat("session ", Abbreviated(token),
                                           " belongs to another user"));
    } else {
      rest = StreamFrom(*old, c.resume_received_frames_);
      if (rest.ok()) {
        resumed = old;
      } else {
        // The session cannot go on without a gap: it ends here.
        failure = rest.status();
        if (WireCode(failure) == wire::SESSION_OVERFLOW) {
          ++stats_.session_overflows;
        }
        if (old->linked_) {
          BeginClose(*old, failure, /*tell_peer=*/true);
        } else {
          EndSession(*old, failure);
        }
      }
    }
    if (!failure.ok()) {
      welcome.set_resume_code(WireCode(failure));
      welcome.set_resume_message(std::string(failure.message()));
    }
  }

  if (resumed != nullptr) {
    welcome.set_session_id(resumed->session_id_);
    welcome.set_resume_token(resumed->session_token_);
    welcome.set_resumed(true);
    welcome.set_received_frames(resumed->frames_in_);
  } else {
    if (c.resumable_ && c.native_) {
      c.session_token_ = NewSessionToken(*session_ids_);
      sessions_[c.session_token_] = c.id_;
      welcome.set_resume_token(c.session_token_);
    } else {
      c.resumable_ = false;
    }
    welcome.set_session_id(c.session_id_);
  }
  if (!welcome.resume_token().empty()) {
    welcome.set_session_timeout_ms(options_.session_timeout_ms());
  }
  wire::ServerMessage m;
  *m.mutable_welcome() = welcome;
  Send(c, m);

  if (resumed == nullptr) {
    if (c.resumable_) {
      wire::BrokerEvent event;
      wire::SessionAdded* added = event.mutable_session_added();
      added->set_session_id(c.session_id_);
      added->set_client_name(c.client_name_);
      added->set_peer(c.peer_.address);
      added->set_protocol(std::string(c.protocol()));
      Emit(std::move(event), sys_topics::kSessionAdded);
    }
    return;
  }

  // The Welcome belongs to this link alone; the session's stream goes on
  // after it, from the first frame the client has not handled.
  const uint64_t frames = c.resume_received_frames_;
  const std::string name = c.client_name_;
  MoveSession(*resumed, c);
  if (!name.empty()) c.client_name_ = name;
  c.link_prefix_ = c.outbound_.size();
  c.replay_.clear();
  c.replay_skip_ = 0;
  c.replay_start_frame_ = frames;
  // Where the replay starts: everything before frame `frames` arrived, and
  // `rest` runs from there to the end of the stream.
  const uint64_t stream_end =
      resumed->stream_consumed_ + resumed->outbound_.size() -
      std::min(resumed->link_prefix_, resumed->outbound_.size());
  c.replay_start_ = stream_end - rest->size();
  c.stream_consumed_ = c.replay_start_;
  if (!rest->empty()) {
    c.outbound_.Append(*rest);
    MarkChanged(c);
  }
  ++stats_.sessions_resumed;
  if (resumed->linked_) {
    // Taken over: the old link gets its own last word, then closes.
    resumed->output_discarded_ += resumed->outbound_.size();
    resumed->outbound_.Clear();
    resumed->link_prefix_ = 0;
    BeginClose(*resumed,
               ProtocolError(wire::SESSION_TAKEN_OVER,
                             absl::StrCat("session resumed on another link (",
                                          c.peer_.address, ")")),
               /*tell_peer=*/true);
  } else {
    Destroy(resumed->id_);
  }
}

absl::StatusOr<std::string> BrokerCore::StreamFrom(const ConnectionCore& s,
                                                   uint64_t frames) const {
  if (frames < s.replay_start_frame_) {
    return ProtocolError(
        wire::SESSION_OVERFLOW,
        absl::StrCat("cannot resume after frame ", frames,
                     ": the broker keeps its frames to this session from "
                     "frame ",
                     s.replay_start_frame_ + 1, " on (session_buffer_bytes ",
                     options_.session_buffer_bytes(), ")"));
  }
  std::string data = s.replay_.substr(s.replay_skip_);
  const std::string pending = s.CopyPendingOutput();
  data.append(pending, std::min(s.link_prefix_, pending.size()));
  size_t position = 0;
  for (uint64_t frame = s.replay_start_frame_; frame < frames; ++frame) {
    absl::StatusOr<std::optional<FrameView>> located =
        LocateFrame(absl::string_view(data).substr(position),
                    std::numeric_limits<size_t>::max());
    if (!located.ok() || !located->has_value()) {
      return ProtocolError(wire::INVALID_ARGUMENT,
                           absl::StrCat("cannot resume after frame ", frames,
                                        ": the broker has sent this session ",
                                        frame, " frames"));
    }
    position += (*located)->size;
  }
  return data.substr(position);
}

void BrokerCore::MoveSession(ConnectionCore& from, ConnectionCore& to) {
  to.client_name_ = from.client_name_;
  to.echo_ = from.echo_;
  to.session_id_ = from.session_id_;
  to.session_token_ = std::move(from.session_token_);
  from.session_token_.clear();
  if (!to.session_token_.empty()) sessions_[to.session_token_] = to.id_;
  to.session_binding_ = from.session_binding_;
  to.resumable_ = from.resumable_;
  from.resumable_ = false;
  to.frames_in_ = from.frames_in_;

  for (SubscriptionId id : from.subscriptions_) {
    if (Subscription* sub = index_.Find(id)) sub->connection = &to;
  }
  to.subscriptions_ = std::move(from.subscriptions_);
  from.subscriptions_.clear();
  for (const std::string& topic : from.served_topics_) {
    if (auto it = services_.find(topic); it != services_.end()) {
      it->second.server = &to;
    }
  }
  to.served_topics_ = std::move(from.served_topics_);
  from.served_topics_.clear();
  for (RequestId id : from.awaiting_) {
    if (auto it = requests_.find(id); it != requests_.end()) {
      it->second.requester = &to;
    }
  }
  to.awaiting_ = std::move(from.awaiting_);
  from.awaiting_.clear();
  for (RequestId id : from.serving_) {
    if (auto it = requests_.find(id); it != requests_.end()) {
      it->second.server = &to;
    }
  }
  to.serving_ = std::move(from.serving_);
  from.serving_.clear();
  from.last_topic_epoch_ = 0;
}

bool BrokerCore::Detach(ConnectionCore& c) {
  if (unlinked_ >= options_.max_sessions()) return false;
  // It has no reader now: nobody may wait on it.
  if (!c.waiting_publishers_.empty()) ReleaseWaiting(c);
  ConnectionCore& d = NewUnlinked(c.peer_, std::make_unique<NativeCodec>());
  d.native_ = true;
  MoveSession(c, d);
  // Kept for a resume, which must come from the same user.
  d.user_ = c.user_;
  d.permissions_ = c.permissions_;
  d.replay_ = c.replay_.substr(c.replay_skip_);
  d.replay_start_ = c.replay_start_;
  d.replay_start_frame_ = c.replay_start_frame_;
  d.stream_consumed_ = c.stream_consumed_;
  // What the link had not written yet stays queued in the session (but
  // for bytes that were the link's own, the Welcome of a resume).
  const std::string pending = c.CopyPendingOutput();
  d.outbound_.Append(absl::string_view(pending).substr(
      std::min(c.link_prefix_, pending.size())));
  c.output_discarded_ += c.outbound_.size();
  c.outbound_.Clear();
  c.link_prefix_ = 0;
  c.session_detached_ = true;
  d.detached_ = true;
  d.outbound_limit_ = options_.session_buffer_bytes();
  d.expiry_timer_ =
      timers_.Schedule(now_ + absl::Milliseconds(options_.session_timeout_ms()),
                       TimerKind::kSessionExpiry, d.id_.value());
  if (d.outbound_.size() >= d.outbound_limit_) {
    ++stats_.session_overflows;
    EndSession(
        d, ProtocolError(wire::SESSION_OVERFLOW,
                         absl::StrCat("session ended when its link was lost: ",
                                      d.outbound_.size(),
                                      " bytes waited for it; the limit is ",
                                      options_.session_buffer_bytes())));
  }
  return true;
}

ConnectionCore& BrokerCore::NewUnlinked(const PeerInfo& peer,
                                        std::unique_ptr<ProtocolCodec> codec) {
  const ConnectionId id = connection_ids_.Next();
  auto owned = std::unique_ptr<ConnectionCore>(
      new ConnectionCore(*this, id, peer, std::move(codec), now_));
  ConnectionCore& s = *owned;
  s.linked_ = false;
  s.state_ = ConnectionState::kOpen;
  s.session_id_ = id.value();
  s.outbound_limit_ = options_.max_outbound_bytes();
  connections_.emplace(id, std::move(owned));
  ++unlinked_;
  stats_.detached_sessions = unlinked_;
  ConnectionStart start;
  start.id = id;
  start.server_name = options_.server_name();
  start.server_version = std::string(kBrokerVersion);
  start.max_payload_bytes = options_.max_payload_bytes();
  start.max_frame_bytes = options_.max_frame_bytes();
  start.peer = peer.address;
  s.codec_->Start(start, s.outbound_);
  return s;
}

void BrokerCore::EndOverflowedSession(ConnectionCore& s) {
  ++stats_.session_overflows;
  EndSession(
      s, ProtocolError(wire::SESSION_OVERFLOW,
                       absl::StrCat("session ended while its link was lost: ",
                                    s.outbound_.size(),
                                    " bytes waited for it; the limit is ",
                                    options_.session_buffer_bytes())));
}

void BrokerCore::EndSession(ConnectionCore& s, absl::Status why) {
  if (s.state_ == ConnectionState::kClosing) return;
  // A polled session's codec may tell its client why, in its last poll.
  BeginClose(s, std::move(why), /*tell_peer=*/s.polled_);
}

void BrokerCore::FinishUnlinked(ConnectionCore& s) {
  if (s.poller_.valid()) FlushPoll(s, /*timed_out=*/false, s.close_reason_);
  Destroy(s.id_);
}

void BrokerCore::RememberEnded(const std::string& token,
                               const absl::Status& why) {
  auto [it, inserted] = ended_sessions_.insert_or_assign(token, why);
  if (!inserted) return;
  ended_order_.push_back(token);
  if (ended_order_.size() > kRememberedEndings) {
    ended_sessions_.erase(ended_order_.front());
    ended_order_.pop_front();
  }
}

void BrokerCore::RetainForReplay(ConnectionCore& c, size_t n) {
  const size_t link_bytes = std::min(n, c.link_prefix_);
  c.link_prefix_ -= link_bytes;
  size_t skip = link_bytes;
  size_t take = n - link_bytes;
  if (take == 0) return;
  c.stream_consumed_ += take;
  // The transport wrote what it saw through Peek; look at as much.
  if (replay_chunks_.size() < 1024) replay_chunks_.resize(1024);
  size_t count = 0;
  while (true) {
    count = c.outbound_.Peek(absl::MakeSpan(replay_chunks_));
    size_t covered = 0;
    for (size_t k = 0; k < count; ++k) covered += replay_chunks_[k].size();
    if (covered >= n || count < replay_chunks_.size()) break;
    replay_chunks_.resize(2 * replay_chunks_.size());
  }
  for (size_t k = 0; k < count && take > 0; ++k) {
    absl::string_view chunk = replay_chunks_[k];
    const size_t skipped = std::min(skip, chunk.size());
    chunk.remove_prefix(skipped);
    skip -= skipped;
    const size_t copied = std::min(take, chunk.size());
    c.replay_.append(chunk.data(), copied);
    take -= copied;
  }
  // Keep at most session_buffer_bytes, dropping whole frames from the front
  // (a frame larger than that stays until a later one follows it).
  const size_t limit = options_.session_buffer_bytes();
  while (c.replay_.size() - c.replay_skip_ > limit) {
    absl::StatusOr<std::optional<FrameView>> front =
        LocateFrame(absl::string_view(c.replay_).substr(c.replay_skip_),
                    std::numeric_limits<size_t>::max());
    if (!front.ok() || !front->has_value() ||
        (*front)->size == c.replay_.size() - c.replay_skip_) {
      break;
    }
    c.replay_skip_ += (*front)->size;
    c.replay_start_ += (*front)->size;
    ++c.replay_start_frame_;
  }
  if (c.replay_skip_ >= 64 * 1024 && c.replay_skip_ * 2 >= c.replay_.size()) {
    c.replay_.erase(0, c.replay_skip_);
    c.replay_skip_ = 0;
  }
}

// ---------------------------------------------------------------------------
// Polled sessions (operations from links)

void BrokerCore::DispatchSessionOp(ConnectionCore& link, Operation& op) {
  SessionOp session = std::move(op.session);
  op.session = SessionOp();
  if (link.state_ != ConnectionState::kOpen) {
    ++stats_.protocol_errors;
    BeginClose(link,
               ProtocolError(wire::HANDSHAKE_REQUIRED,
                             "session operation before Hello"),
               /*tell_peer=*/true);
    return;
  }
  if (op.kind == Operation::Kind::kSession) {
    switch (session.kind) {
      case SessionOp::Kind::kOpen:
        OpenSession(link, session);
        return;
      case SessionOp::Kind::kPoll:
        if (ConnectionCore* s = FindSession(link, session, session.op_id)) {
          PollSession(link, *s, session);
        }
        return;
      case SessionOp::Kind::kClose:
        if (ConnectionCore* s = FindSession(link, session, session.op_id)) {
          SendAck(link, session.op_id);
          EndSession(*s, ProtocolError(wire::CONNECTION_CLOSED,
                                       "session closed by its client"));
        }
        return;
      case SessionOp::Kind::kNone:
      default:
        SendError(link, session.op_id,
                  ProtocolError(wire::INTERNAL, "empty session operation"));
        return;
    }
  }
  // An operation acting for a polled session; answered on this link.
  ConnectionCore* s = FindSession(link, session, OpIdOf(op));
  if (s == nullptr) return;
  if (op.kind == Operation::Kind::kMessage && op.message.has_hello()) {
    SendError(link, 0,
              ProtocolError(wire::HANDSHAKE_REQUIRED,
                            "Hello cannot act for another session"));
    return;
  }
  reply_link_ = &link;
  Dispatch(*s, op);
  reply_link_ = nullptr;
}

ConnectionCore* BrokerCore::FindSession(ConnectionCore& link,
                                        const SessionOp& op, uint64_t op_id) {
  auto it = sessions_.find(op.token);
  ConnectionCore* s =
      it == sessions_.end() ? nullptr : FindConnection(it->second);
  if (s == nullptr || !s->polled_ || s->state_ == ConnectionState::kClosing) {
    auto ended = ended_sessions_.find(op.token);
    SendError(
        link, op_id,
        ended != ended_sessions_.end() && s == nullptr
            ? ProtocolError(wire::SESSION_UNKNOWN,
                            absl::StrCat("session ", Abbreviated(op.token),
                                         " ended: ", ended->second.message()))
            : ProtocolError(
                  wire::SESSION_UNKNOWN,
                  absl::StrCat("no session ", Abbreviated(op.token))));
    return nullptr;
  }
  if (!op.binding.empty() && op.binding != s->session_binding_) {
    SendError(link, op_id,
              ProtocolError(wire::SESSION_UNKNOWN,
                            absl::StrCat("session ", Abbreviated(op.token),
                                         " belongs to another client")));
    return nullptr;
  }
  return s;
}

void BrokerCore::OpenSession(ConnectionCore& link, SessionOp& op) {
  if (unlinked_ >= options_.max_sessions()) {
    SendError(link, op.op_id,
              ProtocolError(wire::TOO_MANY_CONNECTIONS,
                            absl::StrCat("broker holds ", unlinked_,
                                         " sessions without a link; the "
                                         "limit is ",
                                         options_.max_sessions())));
    return;
  }
  if (op.codec == nullptr) {
    SendError(link, op.op_id,
              ProtocolError(wire::INTERNAL, "session opened without a codec"));
    return;
  }
  ConnectionCore& s = NewUnlinked(link.peer_, std::move(op.codec));
  s.polled_ = true;
  ++polled_sessions_;
  s.client_name_ = PrintableName(op.client_name);
  // The session acts with the grant of the link that opened it, whichever
  // link later carries its operations.
  s.user_ = link.user_;
  s.permissions_ = link.permissions_;
  s.session_token_ = NewSessionToken(*session_ids_);
  sessions_[s.session_token_] = s.id_;
  s.session_binding_ =
      op.binding.empty() ? NewSessionToken(*session_ids_) : op.binding;
  s.expiry_timer_ =
      timers_.Schedule(now_ + absl::Milliseconds(options_.session_timeout_ms()),
                       TimerKind::kSessionExpiry, s.id_.value());

  wire::ServerMessage m;
  wire::Welcome* welcome = m.mutable_welcome();
  welcome->set_protocol_version(kProtocolVersion);
  welcome->set_session_id(s.session_id_);
  welcome->set_server_name(options_.server_name());
  welcome->set_max_payload_bytes(options_.max_payload_bytes());
  welcome->set_max_frame_bytes(options_.max_frame_bytes());
  welcome->set_resume_token(s.session_token_);
  welcome->set_session_timeout_ms(options_.session_timeout_ms());
  welcome->set_session_binding(s.session_binding_);
  Send(link, m);

  wire::BrokerEvent event;
  wire::SessionAdded* added = event.mutable_session_added();
  added->set_session_id(s.session_id_);
  added->set_client_name(s.client_name_);
  added->set_peer(s.peer_.address);
  added->set_protocol(std::string(s.protocol()));
  for (auto& [key, value] : op.headers) {
    wire::Header* header = added->add_headers();
    header->set_key(std::move(key));
    header->set_value(std::move(value));
  }
  Emit(std::move(event), sys_topics::kSessionAdded);
}

void BrokerCore::PollSession(ConnectionCore& link, ConnectionCore& s,
                             const SessionOp& op) {
  // A newer poll ends an older one, and a link polls one session at a time.
  if (s.poller_.valid()) FlushPoll(s, /*timed_out=*/true, absl::OkStatus());
  if (link.polling_.valid()) {
    if (ConnectionCore* other = FindConnection(link.polling_)) {
      FlushPoll(*other, /*timed_out=*/true, absl::OkStatus());
    }
  }
  s.poller_ = link.id_;
  s.poll_op_id_ = op.op_id;
  link.polling_ = s.id_;
  timers_.Cancel(s.expiry_timer_);
  if (!s.outbound_.empty()) {
    FlushPoll(s, /*timed_out=*/false, absl::OkStatus());
  }
  if (s.poller_ != link.id_) return;  // answered
  if (op.timeout <= absl::ZeroDuration()) {
    FlushPoll(s, /*timed_out=*/true, absl::OkStatus());
    return;
  }
  s.poll_timer_ = timers_.Schedule(
      now_ + std::min(op.timeout,
                      absl::Milliseconds(options_.max_request_timeout_ms())),
      TimerKind::kPoll, s.id_.value());
}

void BrokerCore::FlushPoll(ConnectionCore& s, bool timed_out,
                           const absl::Status& ended) {
  ConnectionCore* link = FindLinked(s.poller_);
  if (link == nullptr || link->state_ == ConnectionState::kClosing) {
    EndPoll(s);
    return;
  }
  if (!timed_out && ended.ok() &&
      link->outbound_.size() >= link->outbound_limit_) {
    // The poller's peer is not reading (a stream that goes on polling):
    // the output stays in the session, whose own bound and slow-consumer
    // policy then act, until the link drains (OnDrained wakes it).
    if (s.stalled_on_ == 0) {
      link->waiting_publishers_.push_back(s.id_);
      s.stalled_on_ = 1;
      s.stalled_since_ = now_;
      ++stats_.publisher_stalls;
      ++stats_.stalled_publishers;
    }
    return;
  }
  PollUpdate update{s.outbound_, s.poll_op_id_, timed_out, ended};
  const bool keep = link->codec_->EncodePoll(update, link->outbound_);
  ++stats_.messages_out;
  if (!s.outbound_.empty()) {
    s.outbound_.Consume(s.outbound_.size());
    if (s.dropping_ || !s.waiting_publishers_.empty()) OnDrained(s);
  }
  MarkChanged(*link);
  if (!keep || timed_out || !ended.ok()) EndPoll(s);
  CloseIfCodecIsDone(*link);
}

void BrokerCore::EndPoll(ConnectionCore& s) {
  if (!s.poller_.valid()) return;
  if (ConnectionCore* link = FindConnection(s.poller_)) {
    if (link->polling_ == s.id_) link->polling_ = ConnectionId();
    // Output held for this link (FlushPoll) now waits for the next poller.
    std::vector<ConnectionId>& waiting = link->waiting_publishers_;
    auto held = std::find(waiting.begin(), waiting.end(), s.id_);
    if (held != waiting.end()) {
      waiting.erase(held);
      if (waiting.empty()) timers_.Cancel(link->stall_timer_);
      if (--s.stalled_on_ == 0) {
        --stats_.stalled_publishers;
        stats_.stalled_ms += absl::ToInt64Milliseconds(now_ - s.stalled_since_);
      }
    }
  }
  s.poller_ = ConnectionId();
  timers_.Cancel(s.poll_timer_);
  if (s.state_ != ConnectionState::kClosing) {
    timers_.Cancel(s.expiry_timer_);
    s.expiry_timer_ = timers_.Schedule(
        now_ + absl::Milliseconds(options_.session_timeout_ms()),
        TimerKind::kSessionExpiry, s.id_.value());
  }
}

void BrokerCore::FlushPollsSlow() {
  // changed_ lists the connections with new output since the transport last
  // looked; FlushPoll adds links to it (skipped here: they are linked).
  for (size_t k = 0; k < changed_.size(); ++k) {
    ConnectionCore* s = FindConnection(changed_[k]);
    if (s == nullptr || s->linked_ || !s->poller_.valid() ||
        s->outbound_.empty() || s->state_ == ConnectionState::kClosing) {
      continue;
    }
    FlushPoll(*s, /*timed_out=*/false, absl::OkStatus());
  }
}

}  // namespace manifold::internal
