// File: client/session.h
// -----------------------------------------------------------------------------
//
// The client side of Manifold's native protocol as a state machine: no I/O, no
// threads, no clock. The caller moves bytes between the session and a link to
// the broker, passes in the time where time matters, and pulls events out.
// The blocking client (client/client.h) is one such caller; an application
// with its own event loop can be another.
//
// The session
//  - sends Hello as its first output and opens on the broker's Welcome;
//  - encodes operations, each with a fresh op id, which it returns;
//  - matches the broker's Ack, Error, Pong and Response frames to operations
//    by op id and reports each operation's outcome exactly once;
//  - tracks subscriptions (the broker's subscription id -> the caller's
//    handle), counts deliveries against an Unsubscribe's max, and drops
//    deliveries for subscriptions it has already ended;
//  - subscribes with a replay of a durable stream (Replay) and remembers
//    each such subscription's latest stream sequence;
//  - answers the broker's keepalive Ping with Pong by itself;
//  - times requests out at the deadline the caller gave (Tick), even if the
//    broker never answers;
//  - turns every broker status into an absl::Status that names it (see
//    client/errors.h), and ends with exactly one `session::Closed` event;
//  - with `resumable`, outlives its link: after BeginResume() its next
//    output is a Hello that resumes it on a new link, and the two sides send
//    again what the lost link may have dropped (frames are counted both
//    ways), so nothing is lost or repeated; `session::Resumed` says how it
//    went (a broker that no longer knows the session starts a new one). A
//    broker's Goodbye for shutting down does not close a resumable session
//    at once: it closes at the end of the stream unless the caller resumes
//    (to a restarted broker).
//
// Example (a caller that owns a socket `fd`):
//
//   ClientSessionOptions options;
//   options.client_name = "sensor-7";
//   ClientSession session(options);
//   Write(fd, session.TakeOutput());                  // Hello
//   ... read bytes: session.Receive(bytes);
//   while (std::optional<session::Event> e = session.PollEvent()) {
//     if (std::holds_alternative<session::Welcomed>(*e)) {
//       session.Subscribe("room/*", "", /*handle=*/1);
//     } else if (auto* d = std::get_if<session::Delivered>(&*e)) {
//       Show(d->message.topic, d->message.payload);
//     } else if (auto* c = std::get_if<session::Closed>(&*e)) {
//       Report(c->reason);
//     }
//   }
//   Write(fd, session.TakeOutput());                  // Subscribe, Pongs...
//   ... on EOF: session.EndOfStream();  then poll events as above.
//
// Thread safety: none. Call a session from one thread at a time.

#ifndef MANIFOLD_CLIENT_SESSION_H_
#define MANIFOLD_CLIENT_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/message.h"
#include "core/framing.h"
#include "core/manifold.pb.h"

namespace manifold {

struct ClientSessionOptions {
  // Sent in Hello; shown in the broker's events and errors.
  std::string client_name;
  // Credentials sent in Hello for the broker's admission check: a bearer
  // token, or a user name and its password (any may be empty).
  std::string auth_token;
  std::string user;
  std::string password;
  // When true, this session's publishes are not delivered to its own
  // subscriptions.
  bool no_echo = false;
  // Largest frame accepted from the broker; a larger one ends the session
  // with FRAME_TOO_LARGE.
  size_t max_frame_bytes = 64 << 20;
  // Most operations awaiting an answer at once (requests included); past it
  // operations fail with RESOURCE_EXHAUSTED.
  size_t max_pending_operations = 65536;
  // Most unsent output; past it operations fail with RESOURCE_EXHAUSTED until
  // the caller writes some out.
  size_t max_output_bytes = 64 << 20;
  // Ask the broker for a session that outlives its link (see BeginResume).
  bool resumable = false;
  // With `resumable`: the most bytes of sent frames kept in case the link
  // loses them, to send again after a resume. Frames older than that are
  // forgotten; if the broker had not handled them, the resume says so
  // (session::Resumed::frames_lost).
  size_t max_resend_bytes = 8 << 20;
};

// What an operation was; reported with its outcome.
enum class OperationKind {
  kSubscribe,
  kUnsubscribe,
  kPublish,
  kServe,
  kUnserve,
  kRequest,
  kRespond,
  kPing,
  kAckStored,
};

// Returns e.g. "Subscribe".
absl::string_view OperationName(OperationKind kind);

// Options of one publish.
struct PublishOptions {
  Headers headers;
  // Where receivers may send an answer (NATS-style request/reply).
  std::string reply_to;
  // When true the broker acknowledges the publish, and the session reports an
  // OperationDone with the number of subscriptions reached. Otherwise only a
  // failure is reported, as an AsyncError.
  bool ack = false;
};

// Where a subscription starts reading a durable stream (docs/streams.md).
// The subscription first receives what the stream stored from that point,
// then the live messages, with no gap and no duplicate between the two; each
// delivery carries its Message::stream_seq and Message::stream_time.
//
//   Replay{.stream = "orders", .start = Replay::Last{10}}
//   Replay{.start = Replay::Since{now - absl::Minutes(10)}}
struct Replay {
  // Nothing stored: the stream's new messages only (with their sequences).
  struct New {};
  // The first stored message with sequence `seq` or a later one.
  struct FromSeq {
    uint64_t seq = 1;
  };
  // The first message stored at `time` or later (sent in whole ms).
  struct Since {
    absl::Time time;
  };
  // The last `count` stored messages. REQUIRES: count > 0.
  struct Last {
    uint64_t count = 1;
  };
  // The last stored message of each topic (last-value topics).
  struct LastPerTopic {};
  using Start = std::variant<New, FromSeq, Since, Last, LastPerTopic>;

  // The stream to read. Empty: the one stream whose topics the
  // subscription's pattern intersects (the broker answers UNKNOWN_STREAM
  // when there is none, or more than one).
  std::string stream = "";
  Start start = New{};
};

// A durable consumer of a stream (docs/streams.md): a named position the
// broker keeps across reconnects and restarts. Each message it delivers must
// be acknowledged (ClientSession::AckStored, Client::Subscription::Ack), or
// it comes again after `ack_wait`, marked Message::redelivered.
// Subscriptions bound to the same consumer share its messages.
struct ConsumerOptions {
  // 1 to 64 letters, digits, '-' or '_'.
  std::string name;
  // Zero: the broker's default (30 s).
  absl::Duration ack_wait = absl::ZeroDuration();
  // Most messages delivered and not acknowledged at once; 0: the broker's
  // default (1000).
  uint64_t max_in_flight = 0;
};

// Options of one subscription.
struct SubscribeOptions {
  // Non-empty: each message goes to one member of this queue group.
  std::string queue_group;
  // Set: read a durable stream first (see Replay). With `consumer`, where a
  // new consumer starts (an existing one goes on from its position).
  std::optional<Replay> replay;
  // Set: take the messages of this durable consumer of the stream.
  std::optional<ConsumerOptions> consumer;
};

// A subscription the session knows about.
struct SubscriptionInfo {
  uint64_t handle = 0;
  std::string pattern;
  std::string queue_group;
  uint64_t delivered = 0;
  // The Unsubscribe max in effect, 0 for none.
  uint64_t max_messages = 0;
  // The replay it was made with, if any.
  std::optional<Replay> replay;
  // The stream sequence of its latest delivery, or before one the sequence
  // after which it delivers (for Replay::New and Replay::FromSeq; 0
  // otherwise): a caller that must subscribe again (e.g. on a new session)
  // goes on with Replay::FromSeq{last_stream_seq + 1}, losing and repeating
  // nothing.
  uint64_t last_stream_seq = 0;
};

// The events a session reports. Pull them with ClientSession::PollEvent().
namespace session {

// The broker accepted the session; operations may be sent now.
struct Welcomed {
  uint64_t session_id = 0;
  std::string server_name;
  uint64_t max_payload_bytes = 0;
  uint64_t max_frame_bytes = 0;
  // How often the broker pings a quiet session; zero when it does not.
  absl::Duration keepalive_interval = absl::ZeroDuration();
};

// An awaited operation finished: Subscribe, Unsubscribe, Serve, Unserve,
// Ping, or a Publish with ack. Reported exactly once per such operation.
struct OperationDone {
  uint64_t op_id = 0;
  OperationKind kind = OperationKind::kPing;
  // OK, a broker error (client/errors.h), or UNAVAILABLE when the session
  // closed first.
  absl::Status status;
  // Subscribe: the broker's id for the new subscription.
  uint64_t subscription_id = 0;
  // Publish with ack: how many subscriptions received the message.
  uint64_t delivered = 0;
  // Subscribe with a Replay::New or Replay::FromSeq: the stream sequence
  // after which it delivers (SubscriptionInfo::last_stream_seq starts
  // there; 0 for an empty stream); unset otherwise.
  std::optional<uint64_t> stream_seq;
};

// A request finished: the server's answer, or why there is none (see
// RequestFailed() in client/errors.h; DEADLINE_EXCEEDED when the deadline
// passed, UNAVAILABLE when the session closed first). Reported exactly once
// per Request().
struct RequestDone {
  uint64_t op_id = 0;
  absl::StatusOr<Message> reply;
};

// A message for one of the session's subscriptions.
struct Delivered {
  // The handle given to Subscribe().
  uint64_t handle = 0;
  uint64_t subscription_id = 0;
  Message message;
  // True when this delivery reached the Unsubscribe max: the subscription has
  // ended and the session no longer knows it.
  bool last = false;
};

// A request for a topic the session serves. Answer with Respond() or
// Reject().
struct RequestReceived {
  IncomingRequest request;
};

// An operation that nobody awaits failed (a Publish without ack, or a
// Respond), or the broker ended a subscription.
struct AsyncError {
  uint64_t op_id = 0;
  absl::Status status;
  // Set when the error ended one of the session's subscriptions (a replay
  // whose stream was removed or could not be read, permissions that no
  // longer allow it): its id, and the handle given to Subscribe(). The
  // session no longer knows the subscription.
  uint64_t subscription_id = 0;
  uint64_t handle = 0;
};

// After BeginResume(): the broker answered the resuming Hello. With
// `resumed`, the session goes on as if the link had never broken: its
// subscriptions, services and pending operations are as they were. Without,
// the broker no longer had it (`reason` says why: SESSION_EXPIRED,
// SESSION_UNKNOWN after a restart, SESSION_OVERFLOW, ...) and this is a new
// session: every operation that was pending has failed (UNAVAILABLE), the
// session knows no subscriptions, and the caller subscribes and serves
// again. Operations may be sent again either way.
struct Resumed {
  bool resumed = false;
  absl::Status reason;
  uint64_t session_id = 0;
  // Frames this side sent that the broker never handled and that were no
  // longer kept to send again (see ClientSessionOptions::max_resend_bytes).
  uint64_t frames_lost = 0;
};

// The session is over: the broker said goodbye or sent a fatal error, the
// stream ended, a frame was malformed, or the caller called Close(). Always
// the last event, after every pending operation has been reported.
struct Closed {
  absl::Status reason;
};

using Event = std::variant<Welcomed, OperationDone, RequestDone, Delivered,
                           RequestReceived, AsyncError, Closed, Resumed>;

}  // namespace session

class ClientSession {
 public:
  // Starts a session; its first output is the Hello.
  explicit ClientSession(ClientSessionOptions options);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // --- Bytes in -------------------------------------------------------------

  // Hands over bytes read from the broker. They are decoded as events are
  // polled. Ignored once the session is closed.
  void Receive(absl::string_view bytes);

  // The broker's side of the stream ended (EOF or a read error). Events for
  // the frames already received are still reported, then Closed: with the
  // broker's reason if it gave one, else TRUNCATED_FRAME or UNAVAILABLE.
  void EndOfStream(absl::Status why = absl::OkStatus());

  // The link to the broker was lost but the session lives on: the part of a
  // frame that arrived is dropped, unsent output is kept to send again, and
  // the next output is a Hello that resumes the session on a new link (the
  // caller writes it to the new link first). Operations sent meanwhile wait
  // until the broker has answered it (session::Resumed). Returns
  // FAILED_PRECONDITION, changing nothing, when the session cannot resume:
  // it was not opened `resumable`, is not welcomed yet, or is closed.
  absl::Status BeginResume();

  // Returns the next event, or nullopt when there is none until more bytes
  // arrive, time passes, or an operation is sent.
  std::optional<session::Event> PollEvent();

  // --- Bytes out ------------------------------------------------------------

  // Bytes to write to the broker, in order. The view is valid until the next
  // call to a non-const method.
  absl::string_view PendingOutput() const {
    return absl::string_view(output_).substr(output_read_);
  }
  // Output waiting to be sent: PendingOutput() and, while a resume is under
  // way, the operations held until the broker answers it.
  size_t UnsentBytes() const {
    return output_.size() - output_read_ + held_bytes_;
  }
  // Drops the first `n` bytes of PendingOutput(): they were written.
  // REQUIRES: n <= PendingOutput().size().
  void Consume(size_t n);
  // Returns all pending output and drops it from the session.
  std::string TakeOutput();

  // --- Time ------------------------------------------------------------------

  // Fails every request whose deadline is at or before `now` with
  // DEADLINE_EXCEEDED (a later answer from the broker is ignored).
  void Tick(absl::Time now);
  // The earliest request deadline, or nullopt.
  std::optional<absl::Time> NextDeadline() const;

  // --- Operations
  // ------------------------------------------------------------- Each returns
  // the new operation's op id, or an error without sending anything:
  // FAILED_PRECONDITION before the Welcome, UNAVAILABLE once closed,
  // RESOURCE_EXHAUSTED past a limit in ClientSessionOptions, INVALID_ARGUMENT
  // or NOT_FOUND as stated. The broker validates topics, sizes and headers;
  // its verdict comes back as an event.

  // Subscribes to `pattern`; with a non-empty `queue_group` each message goes
  // to one member of the group. `handle` is any value of the caller's choice
  // (e.g. an index into its handler table); deliveries carry it, which lets
  // the caller route them before it learns the subscription id.
  // Outcome: OperationDone with subscription_id.
  absl::StatusOr<uint64_t> Subscribe(absl::string_view pattern,
                                     absl::string_view queue_group,
                                     uint64_t handle);

  // As above with `options`: a queue group, and a replay of a durable
  // stream. A stream the broker does not have fails the operation with
  // UNKNOWN_STREAM, naming it. Returns INVALID_ARGUMENT, sending nothing, for
  // Replay::Last{0} or a Replay::Since time that is not finite.
  absl::StatusOr<uint64_t> Subscribe(absl::string_view pattern,
                                     const SubscribeOptions& options,
                                     uint64_t handle);

  // Ends subscription `subscription_id` at once (max_messages == 0; later
  // deliveries are dropped), or once it has received `max_messages` in all.
  // Returns NOT_FOUND for a subscription the session does not have.
  // Outcome: OperationDone.
  absl::StatusOr<uint64_t> Unsubscribe(uint64_t subscription_id,
                                       uint64_t max_messages = 0);

  // Publishes `payload` on `topic` (which may hold wildcards).
  // Outcome: OperationDone when options.ack, else AsyncError on failure only.
  absl::StatusOr<uint64_t> Publish(absl::string_view topic,
                                   absl::string_view payload,
                                   const PublishOptions& options = {});

  // Claims the literal `topic`: its requests come to this session as
  // RequestReceived. Outcome: OperationDone.
  absl::StatusOr<uint64_t> Serve(absl::string_view topic);
  // Releases a served topic. Outcome: OperationDone.
  absl::StatusOr<uint64_t> Unserve(absl::string_view topic);

  // Asks the server of `topic`, waiting at most `timeout` from `now` (the
  // broker is told the same timeout, capped at its maximum). Outcome:
  // RequestDone. Returns INVALID_ARGUMENT unless timeout > 0.
  absl::StatusOr<uint64_t> Request(absl::string_view topic,
                                   absl::string_view payload,
                                   absl::Duration timeout, absl::Time now,
                                   const Headers& headers = {});

  // Answers request `request_id` with `payload`. Outcome: AsyncError on
  // failure only (e.g. UNKNOWN_REQUEST once the requester gave up).
  absl::StatusOr<uint64_t> Respond(uint64_t request_id,
                                   absl::string_view payload,
                                   const Headers& headers = {});
  // Declines request `request_id`; the requester gets REJECTED with `why`.
  absl::StatusOr<uint64_t> Reject(uint64_t request_id, absl::string_view why);

  // Asks the broker for a Pong; since the broker handles a session's frames
  // in order, the outcome also means everything sent before was handled.
  // Outcome: OperationDone.
  // Acknowledges messages a durable consumer delivered to subscription
  // `subscription_id` (their Message::stream_seq). Returns the operation's
  // id; the broker's Ack (session::Completed) comes once the consumer's new
  // position is durable. NOT_FOUND if the session has no such subscription.
  absl::StatusOr<uint64_t> AckStored(uint64_t subscription_id,
                                     absl::Span<const uint64_t> seqs);

  absl::StatusOr<uint64_t> Ping();

  // Ends the session from this side with `reason`: pending operations fail
  // with UNAVAILABLE, then Closed{reason} is reported. Pending output stays
  // available. Does nothing if already closed.
  void Close(absl::Status reason);

  // --- State -----------------------------------------------------------------

  // Welcomed and not closed.
  bool open() const { return welcomed_ && !closed_; }
  // Between BeginResume() and the broker's answer.
  bool resuming() const { return resuming_; }
  bool closed() const { return closed_; }
  // Why the session closed; OK while it is not closed.
  const absl::Status& close_reason() const { return close_reason_; }
  // The Welcome's values; session_id is 0 before it.
  const session::Welcomed& welcome() const { return welcome_; }
  // The subscription with `subscription_id`, or nullptr.
  const SubscriptionInfo* FindSubscription(uint64_t subscription_id) const;
  size_t subscription_count() const { return subscriptions_.size(); }
  // Operations awaiting an answer, requests included.
  size_t pending_operations() const { return pending_.size(); }
  // Deliveries dropped because their subscription had already ended here.
  uint64_t dropped_deliveries() const { return dropped_deliveries_; }

 private:
  // An operation awaiting the broker's answer.
  struct Pending {
    explicit Pending(OperationKind kind) : kind(kind) {}
    OperationKind kind;
    uint64_t handle = 0;           // Subscribe
    std::string text;              // Subscribe: pattern; Request: topic
    std::string queue_group;       // Subscribe
    std::optional<Replay> replay;  // Subscribe
    absl::Time deadline = absl::InfiniteFuture();  // Request
  };

  absl::Status CheckCanSend() const;
  absl::StatusOr<uint64_t> Send(wire::ClientMessage& message,
                                std::optional<Pending> pending);
  void Encode(const wire::ClientMessage& message);

  bool DecodeOne();
  void Handle(wire::ServerMessage& message);
  void HandleWelcome(const wire::Welcome& welcome);
  void HandleAck(const wire::Ack& ack);
  void HandleError(const wire::Error& error);
  void HandleDeliver(wire::Deliver& deliver);
  void HandleRequest(wire::ServedRequest& request);
  void HandleResponse(wire::Response& response);
  void HandlePong(const wire::Pong& pong);
  void Complete(uint64_t op_id, Pending& pending, absl::Status status);
  void FinishClose(absl::Status reason);

  // Sessions that outlive links.
  void RetainSent(absl::string_view frame);
  void HandleResumeWelcome(const wire::Welcome& welcome);
  // The broker no longer had the session: starts over as a new one.
  void StartOver(const wire::Welcome& welcome);

  const ClientSessionOptions options_;
  FrameDecoder decoder_;
  wire::ServerMessage scratch_;
  std::deque<session::Event> events_;

  std::string output_;
  size_t output_read_ = 0;
  wire::ClientMessage out_scratch_;

  bool welcomed_ = false;
  session::Welcomed welcome_;
  bool input_ended_ = false;
  absl::Status end_of_stream_why_;
  bool closed_ = false;
  absl::Status close_reason_;

  // Frames counted both ways, for resuming: the broker's frames handled (its
  // Welcome is frame 1), and this side's frames sent (its Hello is frame 1),
  // of which those from number resend_first_ on are kept in resend_.
  uint64_t frames_received_ = 0;
  uint64_t frames_sent_ = 0;
  std::deque<std::string> resend_;
  uint64_t resend_first_ = 1;
  size_t resend_bytes_ = 0;
  std::string resume_token_;
  bool resuming_ = false;
  // A resumable session's broker said it is shutting down: the reason the
  // session closes with at the end of the stream, unless it resumes first.
  absl::Status goodbye_;
  // While resuming, frames of operations sent meanwhile are kept in resend_
  // only, not in output_; how many bytes, and from which frame number.
  size_t held_bytes_ = 0;
  uint64_t held_first_ = 0;

  uint64_t last_op_id_ = 0;
  absl::flat_hash_map<uint64_t, Pending> pending_;
  absl::btree_set<std::pair<absl::Time, uint64_t>> request_deadlines_;
  absl::flat_hash_map<uint64_t, SubscriptionInfo> subscriptions_;
  uint64_t dropped_deliveries_ = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_CLIENT_SESSION_H_
