// File: broker/protocol_codec.h
// -----------------------------------------------------------------------------
//
// The seam between the Broker and a wire protocol. The Broker reasons in terms
// of the native protocol's messages (`wire::ClientMessage` in,
// `wire::ServerMessage` out); a `ProtocolCodec` turns one connection's bytes
// into those operations and those messages into bytes. The native codec is
// broker/native_codec.h; a NATS codec plugs in the same way, so native and
// NATS clients share topics, subscriptions and services.
//
// Publishes take a zero-copy path: the codec decodes a publish into a
// `PublishOp` of views into the connection's input, and the Broker hands the
// same `SharedMessage` to every recipient's codec, which encodes the shared
// part once per protocol and adds a small per-recipient prefix.
//
// Example (what the Broker does with a codec, simplified):
//
//   Operation op;
//   absl::StatusOr<size_t> used = codec.Decode(input, op);
//   if (!used.ok()) { /* fatal protocol error: close with used.status() */ }
//   if (*used == 0) { /* wait for more bytes */ }
//   if (op.kind == Operation::Kind::kPublish) {
//     SharedMessage message(op.publish, scratch);
//     for (auto& [codec, out, sid] : recipients)
//       codec->EncodeDelivery(message, sid, out);
//   }

#ifndef MANIFOLD_BROKER_PROTOCOL_CODEC_H_
#define MANIFOLD_BROKER_PROTOCOL_CODEC_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/outbound_buffer.h"
#include "core/ids.h"
#include "core/manifold.pb.h"

namespace manifold {

// A message header as views.
struct HeaderView {
  absl::string_view key;
  absl::string_view value;
};

using HeaderViews = absl::InlinedVector<HeaderView, 2>;

// Identifies a codec's slot in SharedMessage's per-protocol encoding cache.
// Each codec type takes a distinct slot.
enum class CodecSlot : uint8_t { kNative = 0, kNats = 1, kBayeux = 2 };
inline constexpr size_t kCodecSlots = 4;

// A decoded publish whose strings point into the connection's input (or into
// the Broker's own storage for messages it publishes itself). Valid until the
// operation has been handled.
struct PublishOp {
  uint64_t op_id = 0;
  absl::string_view topic;
  absl::string_view payload;
  absl::string_view reply_to;
  HeaderViews headers;
  bool ack = false;
  bool no_responders = false;
  // Set by a codec whose wire form marks a message as carrying headers even
  // when the list is empty (NATS HPUB).
  bool has_header_block = false;
  // Set by a codec that has read `payload` as one JSON value (Bayeux's
  // `data`): an encoder that writes JSON may copy it without checking it
  // again.
  bool payload_is_json = false;
  // How the publisher's protocol wrote `topic` and `reply_to`, when it
  // spells names differently from topics (NATS writes "a.b" for "a/b");
  // empty otherwise. An encoder for protocol `spelling` copies these instead
  // of converting the topic back. Same lifetime as `topic`.
  CodecSlot spelling = CodecSlot::kNative;
  absl::string_view spelled_topic;
  absl::string_view spelled_reply_to;
  // Set by the Broker on a stored message it delivers to a subscription
  // that replays a stream: the message's stream sequence (0 otherwise). An
  // encoder may tell its client (Server-Sent Events put it in "id:").
  uint64_t stream_seq = 0;

  // Returns every field to its default, keeping the headers' storage.
  void Reset() {
    // One field at a time: a chained assignment makes the compiler reload
    // what it just stored, which stalls (store forwarding) on this hot path.
    op_id = 0;
    topic = absl::string_view();
    payload = absl::string_view();
    reply_to = absl::string_view();
    headers.clear();
    ack = false;
    no_responders = false;
    has_header_block = false;
    payload_is_json = false;
    spelling = CodecSlot::kNative;
    spelled_topic = absl::string_view();
    spelled_reply_to = absl::string_view();
    stream_seq = 0;
  }
};

class ProtocolCodec;

// For front ends whose clients' sessions span several links (Bayeux over
// HTTP long-polling, where one request subscribes and another waits for
// messages): an operation on a session without a link of its own. Such a
// session is opened, polled and closed from links, and other operations can
// act for it (Operation::session.token). Its deliveries are queued in the
// session and handed to the link that polls it (ProtocolCodec::EncodePoll).
struct SessionOp {
  enum class Kind {
    // Not a session operation. With a `token`, the operation (kPublish or
    // kMessage) acts for that session: its subscriptions, its echo; the
    // broker answers the link (or with Error{op_id} SESSION_UNKNOWN),
    // a Request's Response too, which then ends if the link closes first.
    kNone,
    // Opens a session. Answered with a Welcome whose resume_token is the
    // session's token and session_binding its binding, or an Error{op_id}.
    kOpen,
    // The link takes the session's output: what is queued now, and what
    // comes until the poll ends. Answered through EncodePoll() only (or an
    // Error{op_id} SESSION_UNKNOWN). A newer poll ends an older one.
    kPoll,
    // Ends the session. Answered with Ack{op_id}.
    kClose,
  };
  Kind kind = Kind::kNone;
  uint64_t op_id = 0;
  // The session acted on (all kinds but kOpen).
  std::string token;
  // kOpen: a value later operations must present with the token (a browser
  // cookie); empty asks the broker to make one. Otherwise: the value
  // presented, checked against the session's; empty presents none and is
  // not checked.
  std::string binding;
  // kOpen: encodes the session's deliveries and messages (required); its
  // name, and the headers of the request that opened it (for the
  // SessionAdded event).
  std::unique_ptr<ProtocolCodec> codec;
  std::string client_name;
  std::vector<std::pair<std::string, std::string>> headers;
  // kPoll: how long to wait for output before EncodePoll() says timed_out;
  // zero answers at once.
  absl::Duration timeout;

  bool empty() const { return kind == Kind::kNone && token.empty(); }
};

// One decoded client operation.
struct Operation {
  enum class Kind {
    kPublish,  // `publish` is set
    kMessage,  // `message` holds any other operation
    // Nothing for the broker: the codec handled the input itself (an HTTP
    // request it answers alone, a WebSocket control frame). Allowed in any
    // connection state, before Hello too; the broker then calls
    // ProtocolCodec::EncodeLocal() so the codec can write its answer, and
    // counts an operation error when `local_error` is not OK.
    kLocal,
    // `session` says what to do with which session (SessionOp).
    kSession,
  };
  Kind kind = Kind::kMessage;
  PublishOp publish;
  wire::ClientMessage message;
  // For kLocal: what the codec answered, when that was an error (HTTP 404).
  wire::Code local_error = wire::OK;
  // For kSession, and for kPublish / kMessage acting for another session.
  // The broker empties it after each operation that used it, so codecs that
  // never set it need not touch it.
  SessionOp session;
};

// What a link that polls a session gets (ProtocolCodec::EncodePoll).
struct PollUpdate {
  // The session's output since the last update, as the session's codec
  // wrote it; all of it is taken.
  const OutboundBuffer& output;
  // SessionOp::op_id of the poll.
  uint64_t op_id = 0;
  // The poll is over: its timeout passed, or a newer poll replaced it.
  bool timed_out = false;
  // Not OK once the session has ended (carrying a wire::Code such as
  // SESSION_EXPIRED): the poll's last update.
  absl::Status ended;
};

// A published message on its way to many recipients. Holds the views of the
// publish and, per protocol, the encoded part that every delivery of it shares
// (for the native protocol: the Deliver fields after the subscription id). A
// codec encodes that part on first use; later recipients reuse it.
class SharedMessage {
 public:
  // Reusable storage for the encodings, owned by the caller so that routing a
  // message allocates nothing when its encoding is small.
  using Scratch = std::array<std::string, kCodecSlots>;

  SharedMessage(const PublishOp& publish, Scratch& scratch, uint64_t id = 0)
      : publish_(publish), scratch_(scratch), id_(id) {}
  SharedMessage(const SharedMessage&) = delete;
  SharedMessage& operator=(const SharedMessage&) = delete;

  const PublishOp& publish() const { return publish_; }

  // Tells published messages apart: a different value for each message the
  // broker routes (0 for messages made outside it). A codec that must
  // deliver a message once per connection however many of its
  // subscriptions match (Bayeux) compares it with the last one it encoded.
  uint64_t id() const { return id_; }

  // True when the router knows this message goes to exactly one recipient,
  // so codecs can encode straight into that recipient's buffer.
  bool single_recipient() const { return single_recipient_; }
  void set_single_recipient(bool single) { single_recipient_ = single; }

  // Returns true once a codec has encoded the shared part for `slot`.
  bool encoded(CodecSlot slot) const { return ready_[Index(slot)]; }

  // For codecs: returns `size` bytes to encode the shared part into. Call
  // FinishEncoding() when done.
  char* BeginEncoding(CodecSlot slot, size_t size) {
    std::string& bytes = scratch_[Index(slot)];
    // No clear() first: resizing to the size of the previous message (the
    // common case) then writes nothing.
    bytes.resize(size);
    return bytes.data();
  }
  // Seals the encoding. A large one is moved into shared, reference-counted
  // storage so that recipients' buffers refer to it instead of copying it.
  void FinishEncoding(CodecSlot slot) {
    const std::string& bytes = scratch_[Index(slot)];
    if (bytes.size() >= OutboundBuffer::kCopyThreshold && !single_recipient_) {
      shared_[Index(slot)] = SharedBytes::Copy(bytes);
    }
    ready_[Index(slot)] = true;
  }
  // The encoded shared part. REQUIRES: encoded(slot).
  absl::string_view bytes(CodecSlot slot) const {
    return scratch_[Index(slot)];
  }
  // An offset into the encoded shared part that a codec notes once for all
  // recipients (NATS: where each recipient's sid goes). 0 until set.
  size_t split(CodecSlot slot) const { return splits_[Index(slot)]; }
  void set_split(CodecSlot slot, size_t offset) {
    splits_[Index(slot)] = static_cast<uint32_t>(offset);
  }
  // True when the encoding is appended by reference rather than copied.
  // REQUIRES: encoded(slot).
  bool by_reference(CodecSlot slot) const {
    return !shared_[Index(slot)].empty();
  }
  // Appends the encoded shared part to `out`, by reference when large.
  // REQUIRES: encoded(slot).
  void AppendEncoded(CodecSlot slot, OutboundBuffer& out) const {
    AppendEncodedFrom(slot, 0, out);
  }
  // Appends the encoded shared part from byte `offset` on, by reference when
  // large: for protocols whose per-recipient part sits inside the shared one
  // (NATS writes the subscription's sid after the subject).
  // REQUIRES: encoded(slot), offset <= bytes(slot).size().
  void AppendEncodedFrom(CodecSlot slot, size_t offset,
                         OutboundBuffer& out) const {
    const SharedBytes& shared = shared_[Index(slot)];
    if (!shared.empty()) {
      out.AppendShared(shared, offset);
    } else {
      out.Append(absl::string_view(scratch_[Index(slot)]).substr(offset));
    }
  }

 private:
  static size_t Index(CodecSlot slot) { return static_cast<size_t>(slot); }

  const PublishOp& publish_;
  Scratch& scratch_;
  const uint64_t id_;
  std::array<SharedBytes, kCodecSlots> shared_;
  std::array<bool, kCodecSlots> ready_{};
  std::array<uint32_t, kCodecSlots> splits_{};
  bool single_recipient_ = false;
};

// What the Broker tells a codec when a connection starts.
struct ConnectionStart {
  ConnectionId id;
  std::string server_name;
  std::string server_version;
  uint64_t max_payload_bytes = 0;
  // BrokerOptions::max_frame_bytes: the largest operation Decode() may take.
  uint64_t max_frame_bytes = 0;
  std::string peer;
};

// Translates between one connection's bytes and the Broker's operations.
// One instance per connection; it may keep per-connection state (a NATS codec
// maps NATS subscription ids to Manifold ones).
class ProtocolCodec {
 public:
  virtual ~ProtocolCodec() = default;

  // A short protocol name for events, logs and per-protocol statistics:
  // "native", "nats". It may change while the connection is handshaking
  // (an HTTP connection that upgrades to WebSocket), but not once the
  // broker has welcomed it.
  virtual absl::string_view name() const = 0;

  // The codec's configuration as text, from which a codec that behaves the
  // same can be made again (recorded transcripts keep it, so a replay talks
  // exactly as the live codec did). Empty when there is nothing to say.
  virtual std::string settings() const { return ""; }

  // Called once when the connection is accepted. A codec whose protocol
  // starts with a server greeting (NATS INFO) writes it to `out`.
  virtual void Start(const ConnectionStart& start, OutboundBuffer& out) {}

  // Decodes the operation at the front of `input` into `op`. Returns the
  // number of bytes it used (> 0), or 0 when `input` holds only part of an
  // operation, or a fatal error (carrying a wire::Code) after which the
  // connection closes. `max_frame_bytes` bounds one operation. An error with
  // the code CONNECTION_CLOSED is the peer's orderly goodbye in its own
  // protocol (a WebSocket close): the connection closes the same way, but no
  // protocol error is counted.
  virtual absl::StatusOr<size_t> Decode(absl::string_view input,
                                        size_t max_frame_bytes,
                                        Operation& op) = 0;

  // Encodes a message from the broker (anything but a delivery) onto `out`.
  virtual void Encode(const wire::ServerMessage& message,
                      OutboundBuffer& out) = 0;

  // Encodes one delivery of `message` to `subscription` onto `out`.
  virtual void EncodeDelivery(SharedMessage& message,
                              SubscriptionId subscription,
                              OutboundBuffer& out) = 0;

  // --- For codecs that act on their own (HTTP) -----------------------------
  // The defaults suit a protocol that only translates (native, NATS) and
  // cost such a codec nothing on the broker's hot paths.

  // Writes what the codec answers by itself. Called right after Decode()
  // returned a kLocal operation.
  virtual void EncodeLocal(OutboundBuffer& out) {}

  // How often the broker calls Tick(); asked once, right after Start().
  // InfiniteDuration() (the default) means never.
  virtual absl::Duration tick_interval() const {
    return absl::InfiniteDuration();
  }

  // Called every tick_interval() with the broker's time (which never goes
  // backwards) until the connection closes. May write to `out`. An error
  // (carrying a wire::Code) closes the connection as a failed Decode() does.
  virtual absl::Status Tick(absl::Time now, OutboundBuffer& out) {
    return absl::OkStatus();
  }

  // Whether the broker's keepalive pings go to this connection; asked once,
  // when the handshake completes. A codec whose peer cannot answer them (a
  // one-way Server-Sent Events stream, plain HTTP requests) returns false and
  // watches the link itself in Tick().
  virtual bool wants_keepalive() const { return true; }

  // --- For codecs whose sessions span links (Bayeux) ------------------------

  // Called on a connection that polls a session (SessionOp::kPoll) when the
  // session has output for it or the poll ends (timed out, session over).
  // The codec frames `update.output` for its peer onto `out`. Returns true
  // to go on polling (a stream, such as a WebSocket), false when this answer
  // ends the poll (an HTTP response). Once `timed_out` or `ended`, the poll
  // is over whatever it returns.
  virtual bool EncodePoll(const PollUpdate& update, OutboundBuffer& out) {
    return false;
  }

  // Called when a subscription of this connection starts replaying a stream
  // (Subscribe.replay; not a consumer's member): from now on it receives the
  // stream's stored messages that match `pattern`, each once it is stored,
  // and no live copies. EndedReplay() follows when it ends, however it ends.
  // A codec that delivers a message once per connection however many of its
  // subscriptions match (Bayeux) passes over the live copy another
  // subscription brings of a message the replay will deliver stored.
  virtual void StartedReplay(SubscriptionId subscription,
                             absl::string_view pattern) {}
  virtual void EndedReplay(SubscriptionId subscription) {}

  // True once the codec has written its last bytes (HTTP's "Connection:
  // close"): the broker then closes the connection, without counting an
  // error, as soon as they are flushed. Checked after Encode(),
  // EncodeLocal() and Tick().
  bool wants_close() const { return wants_close_; }

  // --- For codecs that gather a turn's output into one frame ---------------
  // A codec that wraps its protocol in frames of another (NATS inside
  // WebSocket messages) writes fewer, larger frames by leaving one open in
  // the connection's output (OutboundBuffer::OpenFrame()) while the broker
  // works, and closing it when the broker is done. The open frame's bytes
  // count toward BrokerOptions::max_outbound_bytes like any others.

  // Whether the codec may leave a frame open at the end of its calls; asked
  // once, right after the broker has welcomed the connection (Encode() of
  // the Welcome). Before that, and when this is false, every call must leave
  // no frame open.
  virtual bool gathers_output() const { return false; }

  // For a codec whose gathers_output() was true: called when its output
  // holds an open frame at the end of a Broker call (Process, Tick, Close,
  // Admit, Refuse, Shutdown, Accept), before the transport can read that
  // output. Must close the frame. At most once per call per connection.
  virtual void FinishTurn(OutboundBuffer& out) {}

 protected:
  void set_wants_close() { wants_close_ = true; }

 private:
  bool wants_close_ = false;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_PROTOCOL_CODEC_H_
