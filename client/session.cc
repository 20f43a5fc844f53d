#include "client/session.h"

#include <algorithm>
#include <limits>
#include <type_traits>
#include <variant>

#include "absl/strings/str_cat.h"
#include "client/errors.h"
#include "core/status.h"

namespace manifold {
namespace {

template <typename WireHeaders>
void CopyHeaders(const Headers& from, WireHeaders* to) {
  for (const auto& [key, value] : from) {
    wire::Header* h = to->Add();
    h->set_key(key);
    h->set_value(value);
  }
}

template <typename WireHeaders>
Headers TakeHeaders(WireHeaders* from) {
  Headers headers;
  headers.reserve(from->size());
  for (wire::Header& h : *from) {
    headers.emplace_back(std::move(*h.mutable_key()),
                         std::move(*h.mutable_value()));
  }
  return headers;
}

uint32_t TimeoutMillis(absl::Duration timeout) {
  // Round up so that a sub-millisecond timeout does not become "the broker's
  // default" (0).
  const int64_t ms = absl::ToInt64Milliseconds(timeout + absl::Milliseconds(1) -
                                               absl::Nanoseconds(1));
  return static_cast<uint32_t>(
      std::clamp<int64_t>(ms, 1, std::numeric_limits<uint32_t>::max()));
}

void SetOpId(wire::ClientMessage& m, uint64_t op_id) {
  switch (m.kind_case()) {
    case wire::ClientMessage::kSubscribe:
      m.mutable_subscribe()->set_op_id(op_id);
      break;
    case wire::ClientMessage::kUnsubscribe:
      m.mutable_unsubscribe()->set_op_id(op_id);
      break;
    case wire::ClientMessage::kPublish:
      m.mutable_publish()->set_op_id(op_id);
      break;
    case wire::ClientMessage::kServe:
      m.mutable_serve()->set_op_id(op_id);
      break;
    case wire::ClientMessage::kUnserve:
      m.mutable_unserve()->set_op_id(op_id);
      break;
    case wire::ClientMessage::kRequest:
      m.mutable_request()->set_op_id(op_id);
      break;
    case wire::ClientMessage::kRespond:
      m.mutable_respond()->set_op_id(op_id);
      break;
    case wire::ClientMessage::kPing:
      m.mutable_ping()->set_op_id(op_id);
      break;
    case wire::ClientMessage::kAckStored:
      m.mutable_ack_stored()->set_op_id(op_id);
      break;
    default:
      break;
  }
}

// The text shown for a request outcome the broker sent without a message.
absl::string_view DefaultRequestMessage(wire::RequestStatus status) {
  switch (status) {
    case wire::NO_SERVER:
      return "nobody serves the topic";
    case wire::TIMED_OUT:
      return "the server did not answer in time";
    case wire::SERVER_GONE:
      return "the server left before answering";
    case wire::REJECTED:
      return "the server declined the request";
    default:
      return "the request failed";
  }
}

// Writes `replay` into its wire form.
void EncodeReplay(const Replay& replay, wire::Replay* out) {
  out->set_stream(replay.stream);
  std::visit(
      [out](const auto& start) {
        using Start = std::decay_t<decltype(start)>;
        if constexpr (std::is_same_v<Start, Replay::New>) {
          // No start: the stream's new messages only.
        } else if constexpr (std::is_same_v<Start, Replay::FromSeq>) {
          out->set_from_seq(start.seq);
        } else if constexpr (std::is_same_v<Start, Replay::Since>) {
          out->set_since_unix_ms(absl::ToUnixMillis(start.time));
        } else if constexpr (std::is_same_v<Start, Replay::Last>) {
          out->set_last(start.count);
        } else {
          out->set_last_per_topic(true);
        }
      },
      replay.start);
}

absl::Status CheckReplay(const Replay& replay) {
  if (const auto* last = std::get_if<Replay::Last>(&replay.start);
      last != nullptr && last->count == 0) {
    return absl::InvalidArgumentError(
        "a replay of the last 0 messages replays nothing: ask for at least "
        "one, or subscribe without a replay");
  }
  if (const auto* since = std::get_if<Replay::Since>(&replay.start);
      since != nullptr && (since->time == absl::InfinitePast() ||
                           since->time == absl::InfiniteFuture())) {
    return absl::InvalidArgumentError(
        "a replay since an infinite time has no start: give a finite time");
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view OperationName(OperationKind kind) {
  switch (kind) {
    case OperationKind::kSubscribe:
      return "Subscribe";
    case OperationKind::kUnsubscribe:
      return "Unsubscribe";
    case OperationKind::kPublish:
      return "Publish";
    case OperationKind::kServe:
      return "Serve";
    case OperationKind::kUnserve:
      return "Unserve";
    case OperationKind::kRequest:
      return "Request";
    case OperationKind::kRespond:
      return "Respond";
    case OperationKind::kPing:
      return "Ping";
    case OperationKind::kAckStored:
      return "AckStored";
  }
  return "operation";
}

ClientSession::ClientSession(ClientSessionOptions options)
    : options_(std::move(options)),
      decoder_(
          FrameDecoder::Options{.max_frame_bytes = options_.max_frame_bytes}) {
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  wire::Hello* hello = m.mutable_hello();
  hello->set_protocol_version(wire::PROTOCOL_VERSION_1);
  hello->set_client_name(options_.client_name);
  hello->set_auth_token(options_.auth_token);
  hello->set_user(options_.user);
  hello->set_password(options_.password);
  hello->set_no_echo(options_.no_echo);
  hello->set_resumable(options_.resumable);
  Encode(m);
}

// --- Bytes in ----------------------------------------------------------------

void ClientSession::Receive(absl::string_view bytes) {
  if (closed_ || input_ended_) return;
  decoder_.Append(bytes);
}

void ClientSession::EndOfStream(absl::Status why) {
  if (input_ended_) return;
  input_ended_ = true;
  end_of_stream_why_ = std::move(why);
}

std::optional<session::Event> ClientSession::PollEvent() {
  while (events_.empty() && !closed_ && DecodeOne()) {
  }
  if (events_.empty() && !closed_ && input_ended_) {
    // Every complete frame has been handled and none said why the stream
    // ended.
    absl::Status reason = decoder_.CheckEndOfStream();
    if (reason.ok() && !goodbye_.ok()) {
      reason = goodbye_;
    } else if (reason.ok()) {
      reason = end_of_stream_why_.ok()
                   ? absl::UnavailableError("connection closed by the broker")
                   : end_of_stream_why_;
    } else {
      reason = absl::UnavailableError(
          absl::StrCat("connection closed by the broker in the middle of a "
                       "frame: ",
                       reason.message()));
    }
    FinishClose(std::move(reason));
  }
  if (events_.empty()) return std::nullopt;
  session::Event event = std::move(events_.front());
  events_.pop_front();
  return event;
}

bool ClientSession::DecodeOne() {
  absl::StatusOr<bool> got = decoder_.Next(scratch_);
  if (!got.ok()) {
    FinishClose(BrokerError(
        WireCode(got.status()),
        absl::StrCat("the broker sent a bad frame: ", got.status().message())));
    return false;
  }
  if (!*got) return false;
  ++frames_received_;
  Handle(scratch_);
  return true;
}

void ClientSession::Handle(wire::ServerMessage& m) {
  switch (m.kind_case()) {
    case wire::ServerMessage::kWelcome:
      HandleWelcome(m.welcome());
      break;
    case wire::ServerMessage::kAck:
      HandleAck(m.ack());
      break;
    case wire::ServerMessage::kError:
      HandleError(m.error());
      break;
    case wire::ServerMessage::kDeliver:
      HandleDeliver(*m.mutable_deliver());
      break;
    case wire::ServerMessage::kRequest:
      HandleRequest(*m.mutable_request());
      break;
    case wire::ServerMessage::kResponse:
      HandleResponse(*m.mutable_response());
      break;
    case wire::ServerMessage::kPing: {
      // Keepalive: answer at once, whatever else is going on.
      wire::ClientMessage& pong = out_scratch_;
      pong.Clear();
      pong.mutable_pong()->set_op_id(m.ping().op_id());
      Encode(pong);
      break;
    }
    case wire::ServerMessage::kPong:
      HandlePong(m.pong());
      break;
    case wire::ServerMessage::kGoodbye:
      // A broker that shuts down is about to lose the session anyway; a
      // resumable session can still come back (to a restarted broker, as a
      // new session). It ends with this reason unless the caller resumes.
      if (options_.resumable && welcomed_ &&
          m.goodbye().code() == wire::SHUTTING_DOWN) {
        goodbye_ = BrokerError(m.goodbye().code(), m.goodbye().message());
        break;
      }
      FinishClose(BrokerError(m.goodbye().code(), m.goodbye().message()));
      break;
    default:
      // A frame kind from a newer protocol version: ignore it, as the
      // protocol's versioning rules ask.
      break;
  }
}

void ClientSession::HandleWelcome(const wire::Welcome& w) {
  if (resuming_) {
    HandleResumeWelcome(w);
    return;
  }
  if (welcomed_) {
    FinishClose(
        BrokerError(wire::INTERNAL, "the broker sent a second Welcome"));
    return;
  }
  welcomed_ = true;
  welcome_.session_id = w.session_id();
  welcome_.server_name = w.server_name();
  welcome_.max_payload_bytes = w.max_payload_bytes();
  welcome_.max_frame_bytes = w.max_frame_bytes();
  welcome_.keepalive_interval = absl::Milliseconds(w.keepalive_interval_ms());
  resume_token_ = w.resume_token();
  events_.push_back(welcome_);
}

// --- Resuming ----------------------------------------------------------------

absl::Status ClientSession::BeginResume() {
  if (!options_.resumable || !welcomed_ || closed_ || resume_token_.empty()) {
    return absl::FailedPreconditionError(
        !options_.resumable ? "the session was not opened resumable"
        : closed_           ? "the session is closed"
        : !welcomed_        ? "the session has not been welcomed yet"
                            : "the broker gave the session no resume token");
  }
  decoder_.Reset();
  input_ended_ = false;
  end_of_stream_why_ = absl::OkStatus();
  goodbye_ = absl::OkStatus();
  if (!resuming_) {
    resuming_ = true;
    held_first_ = frames_sent_ + 1;
    held_bytes_ = 0;
  }
  // Whatever was unsent is kept in resend_ and goes again after the
  // broker's answer, with what the link may have dropped.
  output_.clear();
  output_read_ = 0;
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  wire::Hello* hello = m.mutable_hello();
  hello->set_protocol_version(wire::PROTOCOL_VERSION_1);
  hello->set_client_name(options_.client_name);
  hello->set_auth_token(options_.auth_token);
  hello->set_user(options_.user);
  hello->set_password(options_.password);
  hello->set_no_echo(options_.no_echo);
  hello->set_resumable(true);
  hello->set_resume_token(resume_token_);
  hello->set_received_frames(frames_received_);
  AppendFrame(m, &output_);  // the link's own frame: not counted
  return absl::OkStatus();
}

void ClientSession::RetainSent(absl::string_view frame) {
  resend_.emplace_back(frame);
  resend_bytes_ += frame.size();
  // Forget the oldest frames past the bound, but never held ones: they
  // have not been sent at all.
  const uint64_t keep_from = resuming_ ? held_first_ : frames_sent_;
  while (resend_bytes_ > options_.max_resend_bytes && resend_.size() > 1 &&
         resend_first_ < keep_from) {
    resend_bytes_ -= resend_.front().size();
    resend_.pop_front();
    ++resend_first_;
  }
}

void ClientSession::HandleResumeWelcome(const wire::Welcome& w) {
  resuming_ = false;
  if (!w.resumed()) {
    StartOver(w);
    return;
  }
  --frames_received_;  // this Welcome belongs to the link, not the session
  const uint64_t handled = w.received_frames();
  session::Resumed resumed;
  resumed.resumed = true;
  resumed.session_id = w.session_id();
  if (handled + 1 < resend_first_) {
    resumed.frames_lost = resend_first_ - handled - 1;
  }
  // Frames the broker handled are done with; the rest go again, in order.
  while (!resend_.empty() && resend_first_ <= handled) {
    resend_bytes_ -= resend_.front().size();
    resend_.pop_front();
    ++resend_first_;
  }
  output_.clear();
  output_read_ = 0;
  for (const std::string& frame : resend_) output_.append(frame);
  held_bytes_ = 0;
  events_.push_back(std::move(resumed));
}

void ClientSession::StartOver(const wire::Welcome& w) {
  session::Resumed resumed;
  resumed.resumed = false;
  resumed.reason =
      w.resume_code() != wire::OK
          ? BrokerError(w.resume_code(), w.resume_message())
          : absl::UnavailableError("the broker started a new session");
  resumed.session_id = w.session_id();
  // Held operations were never sent; they belonged to the old session.
  if (frames_sent_ >= held_first_ && held_bytes_ > 0) {
    resumed.frames_lost = frames_sent_ - held_first_ + 1;
  }
  std::vector<uint64_t> ids;
  ids.reserve(pending_.size());
  for (const auto& [op_id, pending] : pending_) ids.push_back(op_id);
  std::sort(ids.begin(), ids.end());
  const absl::Status gone = absl::UnavailableError(
      absl::StrCat("the session was lost before the broker answered: ",
                   resumed.reason.message()));
  for (uint64_t op_id : ids) {
    Complete(op_id, pending_.find(op_id)->second, gone);
  }
  pending_.clear();
  request_deadlines_.clear();
  subscriptions_.clear();
  // The new session's streams: the resuming Hello and this Welcome are
  // their first frames.
  frames_sent_ = 1;
  frames_received_ = 1;
  resend_.clear();
  resend_bytes_ = 0;
  resend_first_ = 2;
  held_bytes_ = 0;
  output_.clear();
  output_read_ = 0;
  welcome_.session_id = w.session_id();
  welcome_.server_name = w.server_name();
  welcome_.max_payload_bytes = w.max_payload_bytes();
  welcome_.max_frame_bytes = w.max_frame_bytes();
  welcome_.keepalive_interval = absl::Milliseconds(w.keepalive_interval_ms());
  resume_token_ = w.resume_token();
  events_.push_back(std::move(resumed));
}

void ClientSession::HandleAck(const wire::Ack& ack) {
  auto it = pending_.find(ack.op_id());
  // An ack nobody waits for (e.g. for an operation the session already failed
  // when it closed) carries no news.
  if (it == pending_.end()) return;
  Pending pending = std::move(it->second);
  pending_.erase(it);
  session::OperationDone done;
  done.op_id = ack.op_id();
  done.kind = pending.kind;
  done.subscription_id = ack.subscription_id();
  done.delivered = ack.delivered();
  if (pending.kind == OperationKind::kSubscribe) {
    SubscriptionInfo& sub = subscriptions_[ack.subscription_id()];
    sub.handle = pending.handle;
    sub.pattern = std::move(pending.text);
    sub.queue_group = std::move(pending.queue_group);
    sub.replay = std::move(pending.replay);
    if (ack.has_stream_seq()) {
      done.stream_seq = ack.stream_seq();
      sub.last_stream_seq = ack.stream_seq();
    }
  }
  events_.push_back(std::move(done));
}

void ClientSession::HandleError(const wire::Error& error) {
  absl::Status status = BrokerError(error.code(), error.message());
  auto it = error.op_id() == 0 ? pending_.end() : pending_.find(error.op_id());
  if (it != pending_.end()) {
    Pending pending = std::move(it->second);
    pending_.erase(it);
    Complete(error.op_id(), pending, status);
  } else if (!error.fatal()) {
    session::AsyncError async{error.op_id(), status};
    if (auto sub = subscriptions_.find(error.subscription_id());
        error.subscription_id() != 0 && sub != subscriptions_.end()) {
      // The broker ended the subscription: later deliveries for it would be
      // stale.
      async.subscription_id = error.subscription_id();
      async.handle = sub->second.handle;
      subscriptions_.erase(sub);
    }
    events_.push_back(std::move(async));
  }
  if (error.fatal()) FinishClose(std::move(status));
}

void ClientSession::HandleDeliver(wire::Deliver& d) {
  auto it = subscriptions_.find(d.subscription_id());
  if (it == subscriptions_.end()) {
    // Sent before the broker handled our Unsubscribe, or past a max.
    ++dropped_deliveries_;
    return;
  }
  SubscriptionInfo& sub = it->second;
  session::Delivered delivered;
  delivered.handle = sub.handle;
  delivered.subscription_id = d.subscription_id();
  delivered.message.topic = std::move(*d.mutable_topic());
  delivered.message.payload = std::move(*d.mutable_payload());
  delivered.message.headers = TakeHeaders(d.mutable_headers());
  delivered.message.reply_to = std::move(*d.mutable_reply_to());
  delivered.message.stream_seq = d.stream_seq();
  delivered.message.stream_time = absl::FromUnixMillis(d.stream_time_unix_ms());
  delivered.message.redelivered = d.redelivered();
  if (d.stream_seq() != 0) sub.last_stream_seq = d.stream_seq();
  ++sub.delivered;
  if (sub.max_messages != 0 && sub.delivered >= sub.max_messages) {
    delivered.last = true;
    subscriptions_.erase(it);
  }
  events_.push_back(std::move(delivered));
}

void ClientSession::HandleRequest(wire::ServedRequest& r) {
  session::RequestReceived received;
  IncomingRequest& request = received.request;
  request.id = r.request_id();
  request.topic = std::move(*r.mutable_topic());
  request.payload = std::move(*r.mutable_payload());
  request.headers = TakeHeaders(r.mutable_headers());
  request.timeout = absl::Milliseconds(r.timeout_ms());
  request.requester_session_id = r.requester_session_id();
  events_.push_back(std::move(received));
}

void ClientSession::HandleResponse(wire::Response& r) {
  auto it = pending_.find(r.op_id());
  // Already timed out here, or the session closed: the answer is too late.
  if (it == pending_.end() || it->second.kind != OperationKind::kRequest) {
    return;
  }
  Pending pending = std::move(it->second);
  pending_.erase(it);
  request_deadlines_.erase({pending.deadline, r.op_id()});
  session::RequestDone done;
  done.op_id = r.op_id();
  if (r.status() == wire::REQUEST_OK) {
    Message reply;
    reply.topic = std::move(pending.text);
    reply.payload = std::move(*r.mutable_payload());
    reply.headers = TakeHeaders(r.mutable_headers());
    done.reply = std::move(reply);
  } else {
    done.reply = RequestFailed(
        r.status(), r.message().empty() ? DefaultRequestMessage(r.status())
                                        : absl::string_view(r.message()));
  }
  events_.push_back(std::move(done));
}

void ClientSession::HandlePong(const wire::Pong& pong) {
  auto it = pending_.find(pong.op_id());
  if (it == pending_.end() || it->second.kind != OperationKind::kPing) return;
  pending_.erase(it);
  session::OperationDone done;
  done.op_id = pong.op_id();
  done.kind = OperationKind::kPing;
  events_.push_back(std::move(done));
}

void ClientSession::Complete(uint64_t op_id, Pending& pending,
                             absl::Status status) {
  if (pending.kind == OperationKind::kRequest) {
    request_deadlines_.erase({pending.deadline, op_id});
    events_.push_back(session::RequestDone{op_id, std::move(status)});
  } else {
    session::OperationDone done;
    done.op_id = op_id;
    done.kind = pending.kind;
    done.status = std::move(status);
    events_.push_back(std::move(done));
  }
}

// --- Bytes out ---------------------------------------------------------------

void ClientSession::Encode(const wire::ClientMessage& message) {
  ++frames_sent_;
  if (options_.resumable) {
    std::string frame = EncodeFrame(message);
    RetainSent(frame);
    if (resuming_) {
      // Sent once the broker has answered the resume, after what the lost
      // link may have dropped.
      held_bytes_ += frame.size();
      return;
    }
    if (output_read_ > 0 && output_read_ >= output_.size() / 2) {
      output_.erase(0, output_read_);
      output_read_ = 0;
    }
    output_.append(frame);
    return;
  }
  if (output_read_ > 0 && output_read_ >= output_.size() / 2) {
    output_.erase(0, output_read_);
    output_read_ = 0;
  }
  AppendFrame(message, &output_);
}

void ClientSession::Consume(size_t n) {
  output_read_ += n;
  if (output_read_ == output_.size()) {
    output_.clear();
    output_read_ = 0;
  }
}

std::string ClientSession::TakeOutput() {
  std::string out;
  if (output_read_ == 0) {
    out.swap(output_);
  } else {
    out = output_.substr(output_read_);
    output_.clear();
  }
  output_read_ = 0;
  return out;
}

// --- Time --------------------------------------------------------------------

void ClientSession::Tick(absl::Time now) {
  while (!request_deadlines_.empty() &&
         request_deadlines_.begin()->first <= now) {
    const uint64_t op_id = request_deadlines_.begin()->second;
    request_deadlines_.erase(request_deadlines_.begin());
    auto it = pending_.find(op_id);
    if (it == pending_.end()) continue;
    std::string topic = std::move(it->second.text);
    pending_.erase(it);
    events_.push_back(session::RequestDone{
        op_id, RequestFailed(wire::TIMED_OUT,
                             absl::StrCat("no answer for the request to '",
                                          topic, "' before its deadline"))});
  }
}

std::optional<absl::Time> ClientSession::NextDeadline() const {
  if (request_deadlines_.empty()) return std::nullopt;
  return request_deadlines_.begin()->first;
}

// --- Operations --------------------------------------------------------------

absl::Status ClientSession::CheckCanSend() const {
  if (closed_) {
    return absl::UnavailableError(
        absl::StrCat("the session is closed: ", close_reason_.message()));
  }
  if (!welcomed_) {
    return absl::FailedPreconditionError(
        "the session is not open yet: wait for the broker's Welcome");
  }
  if (UnsentBytes() >= options_.max_output_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the session holds ", UnsentBytes(),
        " bytes of unsent output; the limit is ", options_.max_output_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ClientSession::Send(wire::ClientMessage& message,
                                             std::optional<Pending> pending) {
  if (pending.has_value() &&
      pending_.size() >= options_.max_pending_operations) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the session has ", pending_.size(),
                     " operations awaiting an answer; the limit is ",
                     options_.max_pending_operations));
  }
  const uint64_t op_id = ++last_op_id_;
  SetOpId(message, op_id);
  Encode(message);
  if (pending.has_value()) {
    if (pending->kind == OperationKind::kRequest &&
        pending->deadline != absl::InfiniteFuture()) {
      request_deadlines_.insert({pending->deadline, op_id});
    }
    pending_.emplace(op_id, *std::move(pending));
  }
  return op_id;
}

absl::StatusOr<uint64_t> ClientSession::Subscribe(absl::string_view pattern,
                                                  absl::string_view queue_group,
                                                  uint64_t handle) {
  SubscribeOptions options;
  options.queue_group = std::string(queue_group);
  return Subscribe(pattern, options, handle);
}

absl::StatusOr<uint64_t> ClientSession::Subscribe(
    absl::string_view pattern, const SubscribeOptions& options,
    uint64_t handle) {
  if (options.replay.has_value()) {
    if (absl::Status s = CheckReplay(*options.replay); !s.ok()) return s;
  }
  if (absl::Status s = CheckCanSend(); !s.ok()) return s;
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  wire::Subscribe* sub = m.mutable_subscribe();
  sub->set_pattern(std::string(pattern));
  sub->set_queue_group(options.queue_group);
  if (options.replay.has_value()) {
    EncodeReplay(*options.replay, sub->mutable_replay());
  }
  if (options.consumer.has_value()) {
    wire::ConsumerOptions* c = sub->mutable_consumer();
    c->set_name(options.consumer->name);
    c->set_ack_wait_ms(static_cast<uint64_t>(std::max<int64_t>(
        0, absl::ToInt64Milliseconds(options.consumer->ack_wait))));
    c->set_max_in_flight(options.consumer->max_in_flight);
  }
  Pending pending(OperationKind::kSubscribe);
  pending.handle = handle;
  pending.text = std::string(pattern);
  pending.queue_group = options.queue_group;
  pending.replay = options.replay;
  return Send(m, std::move(pending));
}

absl::StatusOr<uint64_t> ClientSession::AckStored(
    uint64_t subscription_id, absl::Span<const uint64_t> seqs) {
  if (absl::Status s = CheckCanSend(); !s.ok()) return s;
  if (!subscriptions_.contains(subscription_id)) {
    return absl::NotFoundError(absl::StrCat(
        "no subscription sub#", subscription_id, " in this session"));
  }
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  m.mutable_ack_stored()->set_subscription_id(subscription_id);
  for (uint64_t seq : seqs) m.mutable_ack_stored()->add_seqs(seq);
  return Send(m, Pending(OperationKind::kAckStored));
}

absl::StatusOr<uint64_t> ClientSession::Unsubscribe(uint64_t subscription_id,
                                                    uint64_t max_messages) {
  if (absl::Status s = CheckCanSend(); !s.ok()) return s;
  auto it = subscriptions_.find(subscription_id);
  if (it == subscriptions_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "no subscription sub#", subscription_id, " in this session"));
  }
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  m.mutable_unsubscribe()->set_subscription_id(subscription_id);
  m.mutable_unsubscribe()->set_max_messages(max_messages);
  absl::StatusOr<uint64_t> op = Send(m, Pending(OperationKind::kUnsubscribe));
  if (!op.ok()) return op;
  // Mirror the broker: it ends the subscription at once unless the max lies
  // ahead.
  if (max_messages > it->second.delivered) {
    it->second.max_messages = max_messages;
  } else {
    subscriptions_.erase(it);
  }
  return op;
}

absl::StatusOr<uint64_t> ClientSession::Publish(absl::string_view topic,
                                                absl::string_view payload,
                                                const PublishOptions& options) {
  if (absl::Status s = CheckCanSend(); !s.ok()) return s;
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  wire::Publish* p = m.mutable_publish();
  p->set_topic(std::string(topic));
  p->set_payload(std::string(payload));
  CopyHeaders(options.headers, p->mutable_headers());
  p->set_reply_to(options.reply_to);
  p->set_ack(options.ack);
  return Send(m, options.ack ? std::optional<Pending>(OperationKind::kPublish)
                             : std::nullopt);
}

absl::StatusOr<uint64_t> ClientSession::Serve(absl::string_view topic) {
  if (absl::Status s = CheckCanSend(); !s.ok()) return s;
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  m.mutable_serve()->set_topic(std::string(topic));
  return Send(m, Pending(OperationKind::kServe));
}

absl::StatusOr<uint64_t> ClientSession::Unserve(absl::string_view topic) {
  if (absl::Status s = CheckCanSend(); !s.ok()) return s;
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  m.mutable_unserve()->set_topic(std::string(topic));
  return Send(m, Pending(OperationKind::kUnserve));
}

absl::StatusOr<uint64_t> ClientSession::Request(absl::string_view topic,
                                                absl::string_view payload,
                                                absl::Duration timeout,
                                                absl::Time now,
                                                const Headers& headers) {
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a request's timeout must be positive, not ",
                     absl::FormatDuration(timeout)));
  }
  if (absl::Status s = CheckCanSend(); !s.ok()) return s;
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  wire::Request* r = m.mutable_request();
  r->set_topic(std::string(topic));
  r->set_payload(std::string(payload));
  CopyHeaders(headers, r->mutable_headers());
  r->set_timeout_ms(TimeoutMillis(timeout));
  Pending pending(OperationKind::kRequest);
  pending.text = std::string(topic);
  if (timeout != absl::InfiniteDuration()) pending.deadline = now + timeout;
  return Send(m, std::move(pending));
}

absl::StatusOr<uint64_t> ClientSession::Respond(uint64_t request_id,
                                                absl::string_view payload,
                                                const Headers& headers) {
  if (absl::Status s = CheckCanSend(); !s.ok()) return s;
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  wire::Respond* r = m.mutable_respond();
  r->set_request_id(request_id);
  r->set_payload(std::string(payload));
  CopyHeaders(headers, r->mutable_headers());
  r->set_status(wire::REQUEST_OK);
  return Send(m, std::nullopt);
}

absl::StatusOr<uint64_t> ClientSession::Reject(uint64_t request_id,
                                               absl::string_view why) {
  if (absl::Status s = CheckCanSend(); !s.ok()) return s;
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  wire::Respond* r = m.mutable_respond();
  r->set_request_id(request_id);
  r->set_status(wire::REJECTED);
  r->set_message(std::string(why));
  return Send(m, std::nullopt);
}

absl::StatusOr<uint64_t> ClientSession::Ping() {
  if (absl::Status s = CheckCanSend(); !s.ok()) return s;
  wire::ClientMessage& m = out_scratch_;
  m.Clear();
  m.mutable_ping();
  return Send(m, Pending(OperationKind::kPing));
}

// --- Closing -----------------------------------------------------------------

void ClientSession::Close(absl::Status reason) {
  FinishClose(std::move(reason));
}

void ClientSession::FinishClose(absl::Status reason) {
  if (closed_) return;
  closed_ = true;
  resuming_ = false;
  held_bytes_ = 0;
  if (reason.ok()) reason = absl::CancelledError("the session was closed");
  close_reason_ = reason;
  // Report in op id order, so the outcome is the same on every run.
  std::vector<uint64_t> ids;
  ids.reserve(pending_.size());
  for (const auto& [op_id, pending] : pending_) ids.push_back(op_id);
  std::sort(ids.begin(), ids.end());
  const absl::Status gone = absl::UnavailableError(absl::StrCat(
      "the connection closed before the broker answered: ", reason.message()));
  for (uint64_t op_id : ids)
    Complete(op_id, pending_.find(op_id)->second, gone);
  pending_.clear();
  request_deadlines_.clear();
  subscriptions_.clear();
  events_.push_back(session::Closed{std::move(reason)});
}

const SubscriptionInfo* ClientSession::FindSubscription(
    uint64_t subscription_id) const {
  auto it = subscriptions_.find(subscription_id);
  return it == subscriptions_.end() ? nullptr : &it->second;
}

}  // namespace manifold
