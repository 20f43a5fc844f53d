#include "broker/nats/nats_codec.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/nats/errors.h"
#include "core/nats/subject.h"
#include "core/nats/writer.h"
#include "core/status.h"

namespace manifold {
namespace {

constexpr CodecSlot kSlot = CodecSlot::kNats;

// The client's IP address from a peer address such as "10.0.0.7:5123" or
// "[::1]:5123"; "" when the peer is not an IP endpoint ("unix:...").
std::string ClientIp(absl::string_view peer) {
  if (!peer.empty() && peer.front() == '[') {
    const size_t close = peer.find(']');
    return close == absl::string_view::npos
               ? std::string()
               : std::string(peer.substr(1, close - 1));
  }
  const size_t colon = peer.rfind(':');
  const absl::string_view host = peer.substr(0, colon);
  if (host.empty()) return std::string();
  for (char c : host) {
    if (!absl::ascii_isdigit(c) && c != '.') return std::string();
  }
  return std::string(host);
}

char* Put(absl::string_view s, char* out) {
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

bool HasHeaders(const PublishOp& publish) {
  return publish.has_header_block || !publish.headers.empty();
}

}  // namespace

std::string NatsSettingsText(const NatsOptions& o) {
  return absl::StrCat("server_id=", o.server_id, ";version=", o.version,
                      ";host=", o.host, ";port=", o.port,
                      ";auth_required=", o.auth_required ? 1 : 0,
                      // Only when set, so recorded settings stay as they were.
                      o.tls_required ? ";tls_required=1" : "",
                      ";max_payload_bytes=", o.max_payload_bytes,
                      ";max_control_line_bytes=", o.max_control_line_bytes);
}

absl::StatusOr<NatsOptions> ParseNatsSettings(absl::string_view text) {
  NatsOptions o;
  for (absl::string_view pair : absl::StrSplit(text, ';', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("NATS setting '", pair, "' is not key=value"));
    }
    const absl::string_view key = pair.substr(0, eq);
    const absl::string_view value = pair.substr(eq + 1);
    bool ok = true;
    if (key == "server_id") {
      o.server_id = std::string(value);
    } else if (key == "version") {
      o.version = std::string(value);
    } else if (key == "host") {
      o.host = std::string(value);
    } else if (key == "port") {
      ok = absl::SimpleAtoi(value, &o.port);
    } else if (key == "auth_required") {
      ok = absl::SimpleAtob(value, &o.auth_required);
    } else if (key == "tls_required") {
      ok = absl::SimpleAtob(value, &o.tls_required);
    } else if (key == "max_payload_bytes") {
      ok = absl::SimpleAtoi(value, &o.max_payload_bytes);
    } else if (key == "max_control_line_bytes") {
      ok = absl::SimpleAtoi(value, &o.max_control_line_bytes);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown NATS setting '", key, "'"));
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "NATS setting '", key, "' has a bad value '", value, "'"));
    }
  }
  return o;
}

NatsCodec::NatsCodec(NatsOptions options)
    : options_(std::move(options)), max_payload_(options_.max_payload_bytes) {}

// ---------------------------------------------------------------------------
// Start

void NatsCodec::Start(const ConnectionStart& start, OutboundBuffer& out) {
  max_payload_ = options_.max_payload_bytes;
  if (start.max_payload_bytes != 0) {
    max_payload_ = std::min<size_t>(max_payload_, start.max_payload_bytes);
  }
  if (start.max_frame_bytes != 0) {
    // One PUB is a control line, "\r\n", the message and "\r\n", and must fit
    // in one broker operation.
    const size_t overhead = options_.max_control_line_bytes + 4;
    max_payload_ =
        std::min<size_t>(max_payload_, start.max_frame_bytes > overhead
                                           ? start.max_frame_bytes - overhead
                                           : 0);
  }
  nats::ServerInfo info;
  info.server_id =
      options_.server_id.empty() ? start.server_name : options_.server_id;
  info.server_name = start.server_name;
  info.version =
      options_.version.empty() ? start.server_version : options_.version;
  info.host = options_.host;
  info.port = options_.port;
  info.headers = true;
  info.auth_required = options_.auth_required;
  info.tls_required = options_.tls_required;
  info.max_payload = max_payload_;
  info.client_id = start.id.value();
  info.client_ip = ClientIp(start.peer);
  std::string line;
  nats::AppendInfo(info, line);
  out.Append(line);
}

// ---------------------------------------------------------------------------
// Decode: NATS commands -> operations

absl::StatusOr<size_t> NatsCodec::Decode(absl::string_view input,
                                         size_t max_frame_bytes,
                                         Operation& op) {
  nats::ParseLimits limits;
  limits.max_control_line_bytes = options_.max_control_line_bytes;
  limits.max_payload_bytes = max_payload_;
  limits.max_command_bytes = max_frame_bytes;
  // command_ is reused: ParseCommand sets every field, and a fresh Command
  // on every call would be cleared twice.
  absl::StatusOr<size_t> used = nats::ParseCommand(input, limits, command_);
  if (used.ok() && *used > 0) {
    if (absl::Status s = Translate(command_, op); !s.ok()) used = s;
  }
  if (!used.ok()) fatal_text_ = nats::NatsErrorText(used.status());
  return used;
}

absl::Status NatsCodec::Translate(const nats::Command& command, Operation& op) {
  in_flight_.kind = InFlight::Kind::kNone;
  if (!connected_ && command.kind != nats::CommandKind::kConnect) {
    return nats::NatsError(
        wire::HANDSHAKE_REQUIRED, nats::kAuthorizationViolation,
        absl::StrCat("NATS ", nats::CommandName(command.kind),
                     " before CONNECT"));
  }
  switch (command.kind) {
    case nats::CommandKind::kConnect:
      return TranslateConnect(command, op);
    case nats::CommandKind::kInfo:
      AnswerLocally("", op);  // servers ignore INFO from clients
      return absl::OkStatus();
    case nats::CommandKind::kPing:
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      op.message.mutable_ping()->set_op_id(NextOpId());
      return absl::OkStatus();
    case nats::CommandKind::kPong:
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      op.message.mutable_pong();
      return absl::OkStatus();
    case nats::CommandKind::kSub:
      TranslateSubscribe(command, op);
      return absl::OkStatus();
    case nats::CommandKind::kUnsub:
      TranslateUnsubscribe(command, op);
      return absl::OkStatus();
    case nats::CommandKind::kPub:
    case nats::CommandKind::kHpub:
      return TranslatePublish(command, op);
  }
  return ProtocolError(wire::INTERNAL, "NATS command of unknown kind");
}

absl::Status NatsCodec::TranslateConnect(const nats::Command& command,
                                         Operation& op) {
  absl::StatusOr<nats::ConnectOptions> options =
      nats::ParseConnectOptions(command.arguments);
  if (!options.ok()) return options.status();
  verbose_ = options->verbose;
  headers_ = options->headers;
  no_responders_ = options->no_responders;
  if (connected_) {
    AnswerLocally(OkIfVerbose(), op);
    return absl::OkStatus();
  }
  connected_ = true;
  op.kind = Operation::Kind::kMessage;
  op.message.Clear();
  wire::Hello* hello = op.message.mutable_hello();
  hello->set_protocol_version(wire::PROTOCOL_VERSION_1);
  hello->set_client_name(options->name);
  hello->set_no_echo(!options->echo);
  // Credentials go to the embedder's admission as given; a refusal is
  // answered as nats-server answers any failed authorization.
  hello->set_auth_token(options->auth_token);
  hello->set_user(options->user);
  hello->set_password(options->pass);
  return absl::OkStatus();
}

void NatsCodec::TranslateSubscribe(const nats::Command& command,
                                   Operation& op) {
  if (by_sid_.contains(command.sid)) {
    AnswerLocally(OkIfVerbose(), op);  // nats-server ignores a reused sid
    return;
  }
  if (!nats::SubjectToTopic(command.subject, nats::SubjectUse::kSubscribe,
                            topic_)
           .ok()) {
    std::string err;
    nats::AppendErr(nats::kInvalidSubject, err);
    AnswerLocally(std::move(err), op);
    return;
  }
  in_flight_.kind = InFlight::Kind::kSub;
  in_flight_.op_id = NextOpId();
  in_flight_.sid.assign(command.sid.data(), command.sid.size());
  in_flight_.subject.assign(command.subject.data(), command.subject.size());
  in_flight_.queue_group.assign(command.queue_group.data(),
                                command.queue_group.size());
  op.kind = Operation::Kind::kMessage;
  op.message.Clear();
  wire::Subscribe* subscribe = op.message.mutable_subscribe();
  subscribe->set_op_id(in_flight_.op_id);
  subscribe->set_pattern(topic_);
  subscribe->set_queue_group(std::string(command.queue_group));
}

void NatsCodec::TranslateUnsubscribe(const nats::Command& command,
                                     Operation& op) {
  auto it = by_sid_.find(command.sid);
  if (it == by_sid_.end()) {
    AnswerLocally(OkIfVerbose(), op);  // nats-server ignores unknown sids
    return;
  }
  in_flight_.kind = InFlight::Kind::kUnsub;
  in_flight_.op_id = NextOpId();
  in_flight_.sid.assign(command.sid.data(), command.sid.size());
  in_flight_.max_messages = command.has_max_messages ? command.max_messages : 0;
  op.kind = Operation::Kind::kMessage;
  op.message.Clear();
  wire::Unsubscribe* unsubscribe = op.message.mutable_unsubscribe();
  unsubscribe->set_op_id(in_flight_.op_id);
  unsubscribe->set_subscription_id(it->second.value());
  unsubscribe->set_max_messages(in_flight_.max_messages);
}

absl::Status NatsCodec::TranslatePublish(const nats::Command& command,
                                         Operation& op) {
  const bool hpub = command.kind == nats::CommandKind::kHpub;
  if (hpub && !headers_) {
    return nats::NatsError(
        wire::INVALID_ARGUMENT, nats::kParserError,
        "NATS HPUB on a connection whose CONNECT did not enable headers");
  }
  PublishOp& publish = op.publish;
  publish.Reset();
  // Publishers mostly repeat their subject: map it again only when it
  // changes.
  if (command.subject != publish_subject_) {
    if (nats::SubjectToTopic(command.subject, nats::SubjectUse::kPublish,
                             publish_topic_)
            .ok()) {
      publish_subject_.assign(command.subject.data(), command.subject.size());
    } else {
      MapOtherPublishSubject(command.subject);
    }
  }
  if (publish_subject_.empty() ||
      (!command.reply_to.empty() &&
       !nats::SubjectToTopic(command.reply_to, nats::SubjectUse::kReply,
                             reply_to_)
            .ok())) {
    std::string err;
    nats::AppendErr(nats::kInvalidPublishSubject, err);
    AnswerLocally(std::move(err), op);
    return absl::OkStatus();
  }
  if (hpub) {
    if (absl::Status s = nats::ParseHeaderBlock(
            command.header_block,
            [&publish](absl::string_view key, absl::string_view value) {
              publish.headers.push_back(HeaderView{key, value});
            });
        !s.ok()) {
      return s;
    }
    publish.has_header_block = !command.header_block.empty();
  }
  in_flight_.kind = InFlight::Kind::kPub;
  in_flight_.op_id = NextOpId();
  op.kind = Operation::Kind::kPublish;
  publish.op_id = in_flight_.op_id;
  publish.topic = publish_topic_;
  publish.payload = command.payload;
  if (!command.reply_to.empty()) publish.reply_to = reply_to_;
  // NATS subscribers get the subjects as written, without mapping back.
  publish.spelling = kSlot;
  publish.spelled_topic = command.subject;
  publish.spelled_reply_to = command.reply_to;
  publish.ack = verbose_;
  publish.no_responders =
      headers_ && no_responders_ && !command.reply_to.empty();
  return absl::OkStatus();
}

void NatsCodec::MapOtherPublishSubject(absl::string_view subject) {
  // JetStream's create subject ends with the consumer's filter, wildcards
  // and all ($JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>).
  if (absl::StartsWith(subject, "$JS.API.CONSUMER.CREATE.") &&
      nats::SubjectToTopic(subject, nats::SubjectUse::kSubscribe,
                           publish_topic_)
          .ok()) {
    publish_subject_.assign(subject.data(), subject.size());
  } else {
    publish_subject_.clear();
  }
}

void NatsCodec::AnswerLocally(std::string answer, Operation& op) {
  op.kind = Operation::Kind::kMessage;
  op.message.Clear();
  if (answer.empty()) {
    op.message.mutable_pong();  // the broker takes a Pong silently
    return;
  }
  local_answer_op_id_ = NextOpId();
  local_answer_ = std::move(answer);
  op.message.mutable_ping()->set_op_id(local_answer_op_id_);
}

std::string NatsCodec::OkIfVerbose() const {
  return verbose_ ? std::string(nats::kOk) : std::string();
}

// ---------------------------------------------------------------------------
// Encode: broker messages -> NATS

void NatsCodec::Encode(const wire::ServerMessage& message,
                       OutboundBuffer& out) {
  switch (message.kind_case()) {
    case wire::ServerMessage::kWelcome:
      if (verbose_) out.Append(nats::kOk);
      break;
    case wire::ServerMessage::kAck:
      EncodeAck(message.ack(), out);
      break;
    case wire::ServerMessage::kError:
      EncodeError(message.error(), out);
      break;
    case wire::ServerMessage::kPong:
      if (local_answer_op_id_ != 0 &&
          message.pong().op_id() == local_answer_op_id_) {
        out.Append(local_answer_);
        local_answer_.clear();
        local_answer_op_id_ = 0;
      } else {
        out.Append(nats::kPong);
      }
      break;
    case wire::ServerMessage::kPing:
      out.Append(nats::kPing);
      break;
    default:
      // Goodbye: nats-server just closes. Service requests and responses
      // never reach NATS connections (they cannot Serve or Request), and
      // deliveries come through EncodeDelivery().
      break;
  }
}

void NatsCodec::EncodeAck(const wire::Ack& ack, OutboundBuffer& out) {
  if (in_flight_.kind == InFlight::Kind::kNone ||
      ack.op_id() != in_flight_.op_id) {
    return;
  }
  switch (in_flight_.kind) {
    case InFlight::Kind::kSub: {
      const SubscriptionId id(ack.subscription_id());
      by_sid_[in_flight_.sid] = id;
      by_id_[id] = SidEntry{in_flight_.sid, 0, 0};
      last_entry_ = nullptr;
      break;
    }
    case InFlight::Kind::kUnsub: {
      auto it = by_sid_.find(in_flight_.sid);
      if (it == by_sid_.end()) break;
      auto entry = by_id_.find(it->second);
      // The broker ends the subscription now unless more messages are due;
      // mirror that so the map holds exactly the live subscriptions.
      if (entry != by_id_.end() &&
          in_flight_.max_messages > entry->second.delivered) {
        entry->second.max_messages = in_flight_.max_messages;
      } else {
        if (entry != by_id_.end()) by_id_.erase(entry);
        last_entry_ = nullptr;
        by_sid_.erase(it);
      }
      break;
    }
    default:
      break;
  }
  in_flight_.kind = InFlight::Kind::kNone;
  if (verbose_) out.Append(nats::kOk);
}

void NatsCodec::EncodeError(const wire::Error& error, OutboundBuffer& out) {
  std::string text;
  if (error.fatal()) {
    text = std::move(fatal_text_);
    fatal_text_.clear();
    if (text.empty()) text = std::string(nats::FatalErrorText(error.code()));
  } else if (error.subscription_id() != 0 &&
             error.code() == wire::PERMISSION_DENIED) {
    // The broker ended a subscription its permissions no longer allow (a
    // reload): nats-server's text for it, and the sid is forgotten.
    std::string subject;
    nats::AppendSubjectForTopic(error.pattern(), subject);
    text = nats::SubscribePermissionsViolation(subject, "");
    auto entry = by_id_.find(SubscriptionId(error.subscription_id()));
    if (entry != by_id_.end()) {
      by_sid_.erase(entry->second.sid);
      by_id_.erase(entry);
      last_entry_ = nullptr;
    }
  } else if (in_flight_.kind != InFlight::Kind::kNone &&
             error.op_id() == in_flight_.op_id) {
    const wire::Code code = error.code();
    if (in_flight_.kind == InFlight::Kind::kSub) {
      if (code == wire::PERMISSION_DENIED) {
        text = nats::SubscribePermissionsViolation(in_flight_.subject,
                                                   in_flight_.queue_group);
      } else {
        text = std::string(code == wire::TOO_MANY_SUBSCRIPTIONS
                               ? nats::kMaximumSubscriptionsExceeded
                               : nats::kInvalidSubject);
      }
    } else if (in_flight_.kind == InFlight::Kind::kPub) {
      if (code == wire::INVALID_TOPIC) {
        text = std::string(nats::kInvalidPublishSubject);
      } else if (code == wire::RESERVED_TOPIC ||
                 code == wire::PERMISSION_DENIED) {
        std::string subject;
        nats::AppendSubjectForTopic(publish_topic_, subject);
        text = nats::PublishPermissionsViolation(subject);
      } else if (code == wire::PAYLOAD_TOO_LARGE) {
        text = std::string(nats::kMaximumPayloadViolation);
      }
    }
    in_flight_.kind = InFlight::Kind::kNone;
  }
  if (text.empty()) text = error.message();
  std::string line;
  nats::AppendErr(text, line);
  out.Append(line);
}

// ---------------------------------------------------------------------------
// Deliveries: MSG / HMSG

void NatsCodec::EncodeDelivery(SharedMessage& message,
                               SubscriptionId subscription,
                               OutboundBuffer& out) {
  // Deliveries come in runs for the same subscription: remember the last.
  if (last_entry_ == nullptr || last_entry_id_ != subscription) {
    auto it = by_id_.find(subscription);
    if (it == by_id_.end()) return;  // not a subscription this codec made
    last_entry_ = &it->second;
    last_entry_id_ = subscription;
  }
  SidEntry& entry = *last_entry_;
  const PublishOp& publish = message.publish();
  const bool hmsg = HasHeaders(publish) && headers_;
  const absl::string_view op = hmsg ? "HMSG " : "MSG ";

  // The shared part is "<subject> <tail>"; the sid goes after the subject.
  // It is cached for clients that take headers. A client that does not gets
  // MSG with the payload only, encoded for it alone.
  const bool cacheable = hmsg || !HasHeaders(publish);
  if (!cacheable || !message.encoded(kSlot)) {
    // A NATS publisher's own spelling needs no mapping.
    const bool spelled =
        publish.spelling == kSlot && !publish.spelled_topic.empty();
    absl::string_view reply_subject = publish.spelled_reply_to;
    if (!spelled && !publish.reply_to.empty()) {
      reply_subject_.clear();
      nats::AppendSubjectForTopic(publish.reply_to, reply_subject_);
      reply_subject = reply_subject_;
    }
    header_block_.clear();
    if (hmsg) nats::AppendHeaderBlock(publish.headers, header_block_);
    const nats::MessageTail tail{reply_subject, hmsg, header_block_,
                                 publish.payload};
    const size_t subject_size = spelled
                                    ? publish.spelled_topic.size()
                                    : nats::SubjectSizeForTopic(publish.topic);
    const auto write_subject = [&](char* p) {
      return spelled ? Put(publish.spelled_topic, p)
                     : nats::WriteSubjectForTopic(publish.topic, p);
    };
    const size_t shared_size = subject_size + tail.size();
    if (!cacheable || message.single_recipient()) {
      // Nobody else needs the shared part: write the whole message in place.
      char* p = out.AppendSpace(op.size() + shared_size + 1 + entry.sid.size());
      p = Put(op, p);
      p = write_subject(p);
      *p++ = ' ';
      p = Put(entry.sid, p);
      tail.Write(p);
    } else {
      char* p = message.BeginEncoding(kSlot, shared_size);
      tail.Write(write_subject(p));
      message.set_split(kSlot, subject_size);
      message.FinishEncoding(kSlot);
    }
  }
  if (cacheable && message.encoded(kSlot)) {
    const absl::string_view shared = message.bytes(kSlot);
    const size_t subject_size = message.split(kSlot);
    const absl::string_view subject = shared.substr(0, subject_size);
    if (message.by_reference(kSlot)) {
      char* p =
          out.AppendSpace(op.size() + subject_size + 1 + entry.sid.size());
      p = Put(op, p);
      p = Put(subject, p);
      *p++ = ' ';
      Put(entry.sid, p);
      message.AppendEncodedFrom(kSlot, subject_size, out);
    } else {
      // Small: one contiguous append.
      char* p =
          out.AppendSpace(op.size() + shared.size() + 1 + entry.sid.size());
      p = Put(op, p);
      p = Put(subject, p);
      *p++ = ' ';
      p = Put(entry.sid, p);
      Put(shared.substr(subject_size), p);
    }
  }
  if (++entry.delivered == entry.max_messages) {
    by_sid_.erase(entry.sid);
    by_id_.erase(subscription);
    last_entry_ = nullptr;
  }
}

}  // namespace manifold
