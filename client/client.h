// File: client/client.h
// -----------------------------------------------------------------------------
//
// The Manifold client: connect to a broker, publish, subscribe, make requests
// and serve them. Every call blocks until it is done or its timeout passes,
// and every failure is an absl::Status that says what went wrong, with the
// broker's own words when the broker refused (see client/errors.h).
//
// A request (the whole program, but for includes and main):
//
//   absl::StatusOr<std::unique_ptr<Client>> client =
//       Client::Connect("127.0.0.1:24387");  // or "unix:/run/manifold.sock"
//   if (!client.ok()) return client.status();
//   absl::StatusOr<Message> reply =
//       (*client)->Request("time/now", "utc", absl::Seconds(2));
//   if (!reply.ok()) return reply.status();  // e.g. NO_SERVER: no server for
//                                            // topic 'time/now'
//   std::cout << reply->payload << "\n";
//
// A subscription, with a callback (run on the client's callback thread):
//
//   auto sub = (*client)->Subscribe("room/*", [](const Message& m) {
//     std::cout << m.topic << ": " << m.payload << "\n";
//   });
//   if (!sub.ok()) return sub.status();  // e.g. INVALID_PATTERN: ...
//
// or from a durable stream, starting with its last 10 messages:
//
//   SubscribeOptions options;
//   options.replay = Replay{.stream = "orders", .start = Replay::Last{10}};
//   auto orders = (*client)->Subscribe("orders/**", options, [](const Message&
//   m) {
//     std::cout << "#" << m.stream_seq << " " << m.payload << "\n";
//   });
//   if (!orders.ok()) return orders.status();  // e.g. UNKNOWN_STREAM: ...
//
// or pulled, one message at a time:
//
//   auto alerts = (*client)->Subscribe("alerts/**");
//   if (!alerts.ok()) return alerts.status();
//   while (true) {
//     absl::StatusOr<Message> m = (*alerts)->Next(absl::Seconds(1));
//     if (m.ok()) std::cout << m->payload << "\n";
//     else if (!absl::IsDeadlineExceeded(m.status())) return m.status();
//   }
//
// A service:
//
//   auto service = (*client)->Serve(
//       "math/double",
//       [](const IncomingRequest& r) -> absl::StatusOr<std::string> {
//         int n;
//         if (!absl::SimpleAtoi(r.payload, &n)) {
//           return absl::InvalidArgumentError("not a number");  // REJECTED
//         }
//         return absl::StrCat(2 * n);
//       });
//
// Threads: a Client is thread-safe. It runs three threads of its own: one
// reads from the broker, one writes to it, and one runs callbacks (message
// handlers, request handlers, ClientOptions::on_error) one at a time, in
// arrival order. A callback may call any Client method, even a blocking
// Request(); but a slow callback delays the ones behind it, so a callback
// that waits for an answer from a handler of the same Client waits in vain
// until its timeout.
//
// Ownership: the Client::Subscription and Client::Service handles end what
// they stand for when destroyed. They may outlive their Client; they then do
// nothing.

#ifndef MANIFOLD_CLIENT_CLIENT_H_
#define MANIFOLD_CLIENT_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/byte_stream.h"
#include "client/errors.h"
#include "client/message.h"
#include "client/session.h"

namespace manifold {

namespace client_internal {
class ClientCore;
struct SubscriptionState;
struct ServiceState;
}  // namespace client_internal

// The port the bundled broker (manifoldd) listens on by default.
inline constexpr int kDefaultPort = 24387;

struct ClientOptions {
  // Shown in the broker's events and errors, e.g. "billing-7".
  std::string name;
  // Credentials handed to the broker's admission check: a bearer token, or
  // a user name and its password (any may be empty). A broker that refuses
  // them makes Connect() fail with its reason (e.g. "REFUSED: connection
  // refused: bad password").
  std::string auth_token;
  std::string user;
  std::string password;
  // When true, this client's publishes are not delivered to its own
  // subscriptions.
  bool no_echo = false;
  // How long Connect() may take, handshake included.
  absl::Duration connect_timeout = absl::Seconds(5);
  // How long an operation (Subscribe, Serve, Unsubscribe, PublishConfirmed,
  // ...) waits for the broker's answer before it fails with
  // DEADLINE_EXCEEDED.
  absl::Duration operation_timeout = absl::Seconds(5);
  // How long Close() waits for unsent output to reach the broker.
  absl::Duration close_timeout = absl::Seconds(2);
  // Messages a subscription buffers (pulled ones until Next(), callback ones
  // until their handler runs); past it new messages are dropped and counted
  // (Subscription::dropped()) and on_error hears about it. Requests for a
  // served topic are bounded by the same number; past it they are rejected.
  size_t max_buffered_messages = 65536;
  // Unsent bytes past which Publish() and friends wait for the writer.
  size_t max_unsent_bytes = 8 << 20;
  // Called (on the callback thread) with problems nobody else hears about: a
  // Publish the broker refused, messages dropped, the connection lost. Not
  // called for Close() itself.
  std::function<void(const absl::Status&)> on_error;

  // Coming back after a lost connection (Connect(address) only). When
  // enabled, the client asks the broker for a session that outlives its link
  // (docs/sessions.md). If the link breaks, it dials again, waiting between
  // attempts as client/backoff.h says, and resumes the session: nothing sent
  // either way is lost or repeated. If the broker no longer has the session
  // (it restarted, or the session expired or overflowed), the client
  // subscribes and serves again, operations that were waiting fail with
  // UNAVAILABLE, and on_error hears why. Calls made meanwhile wait as they
  // would for a slow broker. A broker that says goodbye (shutting down) or
  // refuses the client ends it as before.
  struct Reconnect {
    bool enabled = false;
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
    // Past this long without a link the client gives up and closes.
    absl::Duration give_up_after = absl::Minutes(5);
    // The jitter's seed; 0 draws one from the operating system.
    uint64_t jitter_seed = 0;
  };
  Reconnect reconnect;
};

// Called for each message of a callback subscription.
using MessageHandler = std::function<void(const Message&)>;
// Called for each request of a served topic. Its value is the answer; an
// error rejects the request (the requester gets REJECTED with the message).
using RequestHandler =
    std::function<absl::StatusOr<std::string>(const IncomingRequest&)>;

class Client {
 public:
  class Subscription;  // what Subscribe() returns; defined below
  class Service;       // what Serve() returns; defined below

  // Connects to the broker at `address` ("host:port" or "unix:/path", see
  // client/socket_stream.h) and completes the handshake. Returns the broker's
  // refusal (e.g. "REFUSED: bad token"), UNAVAILABLE when nothing listens,
  // DEADLINE_EXCEEDED past options.connect_timeout.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      absl::string_view address, ClientOptions options = ClientOptions());

  // As above over a stream the caller opened (e.g. client/memory_stream.h).
  // options.reconnect has nothing to dial again with and is ignored.
  // REQUIRES: stream != nullptr.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      std::unique_ptr<ByteStream> stream,
      ClientOptions options = ClientOptions());

  // Opens a new link to the broker within `timeout`.
  using Dialer = std::function<absl::StatusOr<std::unique_ptr<ByteStream>>(
      absl::Duration timeout)>;
  // As Connect(address) over links `dial` opens: the first one now, and one
  // each time options.reconnect brings the client back. For links the
  // address alone does not describe, e.g. TLS (client/tls_stream.h):
  //
  //   Client::Dial([=](absl::Duration timeout) {
  //     return ConnectTls(address, context, timeout);
  //   }, options);
  //
  // Returns the first dial's error, or the handshake's. REQUIRES: dial.
  static absl::StatusOr<std::unique_ptr<Client>> Dial(
      Dialer dial, ClientOptions options = ClientOptions());

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // Close()s.
  ~Client();

  // --- Publishing ------------------------------------------------------------

  // Sends a message on `topic` (wildcards allowed: "*/alice"). Returns once
  // it is queued for sending; a refusal by the broker goes to
  // ClientOptions::on_error. With options.ack this is PublishConfirmed().
  absl::Status Publish(absl::string_view topic, absl::string_view payload,
                       const PublishOptions& options = PublishOptions());

  // Sends a message and waits until the broker has routed it. Returns how
  // many subscriptions received it, or the broker's refusal (e.g.
  // "RESERVED_TOPIC: ...").
  absl::StatusOr<uint64_t> PublishConfirmed(
      absl::string_view topic, absl::string_view payload,
      const PublishOptions& options = PublishOptions());

  // --- Subscribing -----------------------------------------------------------

  // Subscribes to `pattern` ("*" one segment, "**" any number). With a
  // handler, messages are passed to it; without one, take them with
  // Subscription::Next(). Returns the broker's refusal (e.g.
  // "INVALID_PATTERN: ...") if it has one.
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(
      absl::string_view pattern, MessageHandler handler = nullptr);

  // As Subscribe, as a member of queue group `group`: each message goes to
  // one member of the group.
  absl::StatusOr<std::unique_ptr<Subscription>> QueueSubscribe(
      absl::string_view pattern, absl::string_view group,
      MessageHandler handler = nullptr);

  // As Subscribe, with `options`: a queue group, and a replay of a durable
  // stream (Replay in client/session.h), which delivers what the stream
  // stored from the point it names, then the live messages; each carries
  // Message::stream_seq and Message::stream_time. Returns the broker's
  // refusal, e.g. "UNKNOWN_STREAM: no stream 'orders'", or INVALID_ARGUMENT
  // for a replay that names no start (Replay::Last{0}). With
  // options.reconnect, a subscription that must be made again on a new
  // session goes on after the last message it received.
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(
      absl::string_view pattern, const SubscribeOptions& options,
      MessageHandler handler = nullptr);

  // --- Requests --------------------------------------------------------------

  // Asks the server of `topic` and waits at most `timeout` for the answer.
  // Returns the answer, or (see client/errors.h): NO_SERVER (UNAVAILABLE),
  // TIMED_OUT (DEADLINE_EXCEEDED), SERVER_GONE (ABORTED), REJECTED
  // (FAILED_PRECONDITION), or UNAVAILABLE when the connection is gone.
  absl::StatusOr<Message> Request(absl::string_view topic,
                                  absl::string_view payload,
                                  absl::Duration timeout = absl::Seconds(5),
                                  const Headers& headers = Headers());

  // Serves the literal `topic`: its requests come to `handler`, or, without
  // one, to Service::Next(). So do publishes to it with a reply_to (NATS
  // requests); their answers are published on the reply_to (docs/nats.md).
  // Returns TOPIC_ALREADY_SERVED (naming the holder) if another client
  // serves it.
  absl::StatusOr<std::unique_ptr<Service>> Serve(
      absl::string_view topic, RequestHandler handler = nullptr);

  // Answers (or declines) a request taken with Service::Next(). A request
  // that can no longer be answered (timed out, requester gone) is reported to
  // on_error as UNKNOWN_REQUEST.
  absl::Status Respond(uint64_t request_id, absl::string_view payload,
                       const Headers& headers = Headers());
  absl::Status Reject(uint64_t request_id, absl::string_view why);

  // --- The connection --------------------------------------------------------

  // A round trip to the broker; when it returns OK, the broker has handled
  // everything this client sent before.
  absl::Status Ping(absl::Duration timeout = absl::Seconds(5));

  // Sends what is still unsent (waiting at most options.close_timeout), then
  // closes the connection. Pending calls fail with UNAVAILABLE; callbacks
  // not yet started are dropped; one already running finishes first (unless
  // Close() is called from it). Idempotent.
  void Close();

  // True until the connection is closed or lost.
  bool connected() const;
  // Why the connection ended; OK while connected.
  absl::Status status() const;
  // The broker's id for this connection (as in its events).
  uint64_t session_id() const;
  // With options.reconnect: how many times the link was restored, and how
  // many of those found the session gone (and subscribed again).
  uint64_t reconnects() const;
  uint64_t sessions_lost() const;
  // The broker's name and limits, from its Welcome.
  const session::Welcomed& welcome() const;

 private:
  explicit Client(std::shared_ptr<client_internal::ClientCore> core);
  // `dial` opens a new link for options.reconnect (null: none).
  static absl::StatusOr<std::unique_ptr<Client>> Start(
      std::unique_ptr<ByteStream> stream, ClientOptions options,
      std::function<absl::StatusOr<std::unique_ptr<ByteStream>>(absl::Duration)>
          dial,
      absl::Time deadline);
  std::shared_ptr<client_internal::ClientCore> core_;
};

// A subscription; destroying it unsubscribes.
class Client::Subscription {
 public:
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription();

  // Pull mode: returns the next message, waiting at most `timeout`. Returns
  // DEADLINE_EXCEEDED if none came, OUT_OF_RANGE once the subscription has
  // ended and every message was taken, the broker's error once it ended the
  // subscription (e.g. "UNKNOWN_STREAM: ..." when the stream a replay reads
  // was removed; a callback subscription's goes to on_error), UNAVAILABLE
  // once the connection is gone (after the buffered messages),
  // FAILED_PRECONDITION for a callback subscription.
  absl::StatusOr<Message> Next(absl::Duration timeout);

  // For a subscription bound to a durable consumer
  // (SubscribeOptions::consumer): acknowledges messages by their
  // Message::stream_seq. With `wait`, returns once the consumer's new
  // position is durable (or the broker's refusal); without, once it is
  // queued for sending (a crash may then bring the messages again).
  absl::Status Ack(absl::Span<const uint64_t> seqs, bool wait = true);

  // Ends the subscription now; messages not yet handled are discarded.
  // Waits for the broker's answer.
  absl::Status Unsubscribe();

  // Ends the subscription once it has received `max_messages` in all
  // (immediately if it already has), as NATS's auto-unsubscribe.
  absl::Status AutoUnsubscribe(uint64_t max_messages);

  // The broker's id for this subscription.
  uint64_t id() const;
  const std::string& pattern() const;
  const std::string& queue_group() const;
  // Messages dropped because the buffer was full.
  uint64_t dropped() const;

 private:
  friend class Client;
  Subscription(std::weak_ptr<client_internal::ClientCore> core,
               std::shared_ptr<client_internal::SubscriptionState> state);
  std::weak_ptr<client_internal::ClientCore> core_;
  std::shared_ptr<client_internal::SubscriptionState> state_;
};

// A served topic; destroying it stops serving.
class Client::Service {
 public:
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  ~Service();

  // Pull mode: returns the next request, waiting at most `timeout`; answer it
  // with Client::Respond() or Client::Reject(). Errors as Subscription::Next.
  absl::StatusOr<IncomingRequest> Next(absl::Duration timeout);

  // Stops serving; requests in flight end with SERVER_GONE for their
  // requesters. Waits for the broker's answer.
  absl::Status Unserve();

  const std::string& topic() const;

 private:
  friend class Client;
  Service(std::weak_ptr<client_internal::ClientCore> core,
          std::shared_ptr<client_internal::ServiceState> state);
  std::weak_ptr<client_internal::ClientCore> core_;
  std::shared_ptr<client_internal::ServiceState> state_;
};

}  // namespace manifold

#endif  // MANIFOLD_CLIENT_CLIENT_H_
