// File: client/internal/client_core.h
// -----------------------------------------------------------------------------
//
// Not a public header: the machinery behind client/client.h. A ClientCore owns
// one ClientSession, the ByteStream it talks over, and three threads:
//
//   reader      Read() -> session.Receive() -> route the session's events:
//               complete waiting calls, queue messages and requests; with
//               ClientOptions::reconnect, dials again when the link breaks
//               and resumes the session on the new link
//   writer      session output -> Write(), in order, one write at a time
//   callbacks   runs message and request handlers and on_error, in order
//
// Everything shared is guarded by one mutex, `mu_` (an AwaitMutex: a
// std::mutex that ThreadSanitizer understands, with absl::Mutex-style waiting
// for conditions; see await_mutex.h). No user code runs on the reader or
// writer thread, and no user code runs with `mu_` held, so a callback may call
// back into the client (even make a blocking Request).

#ifndef MANIFOLD_CLIENT_INTERNAL_CLIENT_CORE_H_
#define MANIFOLD_CLIENT_INTERNAL_CLIENT_CORE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/byte_stream.h"
#include "client/client.h"
#include "client/internal/await_mutex.h"
#include "client/session.h"

namespace manifold::client_internal {

// One subscription's local side. Fields below `handler` are guarded by the
// owning core's mutex.
struct SubscriptionState {
  uint64_t handle = 0;  // our key, known before the broker's id
  std::string pattern;
  std::string queue_group;
  std::optional<Replay> replay;  // as subscribed
  MessageHandler handler;        // null in pull mode

  uint64_t id = 0;  // the broker's, once acknowledged
  // Unsubscribe() was called: nothing more is handed out.
  bool cancelled = false;
  // The Unsubscribe max was reached, or the broker ended the subscription
  // (`end_status` says why): what is buffered is still handed out.
  bool ended = false;
  absl::Status end_status;
  // The connection is gone.
  bool closed = false;
  std::deque<Message> queue;  // pull mode
  // With a replay: the stream sequence of the latest delivery, or before one
  // the sequence its Ack said it delivers after; `placed` once either came
  // (0 is a position: an empty stream). Subscribing again for a lost session
  // goes on from the next one.
  uint64_t last_stream_seq = 0;
  bool placed = false;
  // The durable consumer it is bound to, if any: bound again on a new
  // session (the broker keeps the consumer's position).
  std::optional<ConsumerOptions> consumer;
  uint64_t dropped = 0;
  bool dropping = false;  // an overflow has been reported and not yet ended
};

// One served topic's local side; fields below `handler` as above.
struct ServiceState {
  std::string topic;
  RequestHandler handler;  // null in pull mode

  bool active = true;
  bool closed = false;
  std::deque<IncomingRequest> queue;  // pull mode
};

class ClientCore : public std::enable_shared_from_this<ClientCore> {
 public:
  // Opens a new link to the broker within a timeout.
  using Dialer = std::function<absl::StatusOr<std::unique_ptr<ByteStream>>(
      absl::Duration)>;

  // `dial` may be null: the client then cannot reconnect.
  ClientCore(std::unique_ptr<ByteStream> stream, ClientOptions options,
             Dialer dial);
  ClientCore(const ClientCore&) = delete;
  ClientCore& operator=(const ClientCore&) = delete;
  ~ClientCore();

  // Starts the threads and waits until the broker welcomes the session or
  // `deadline` passes. On error the caller must Close().
  absl::Status Start(absl::Time deadline);
  void Close();

  absl::StatusOr<uint64_t> Publish(absl::string_view topic,
                                   absl::string_view payload,
                                   const PublishOptions& options);
  absl::StatusOr<std::shared_ptr<SubscriptionState>> Subscribe(
      absl::string_view pattern, const SubscribeOptions& options,
      MessageHandler handler);
  // Acknowledges a durable consumer's messages (ClientSession::AckStored);
  // with `wait`, until the broker says the position is durable.
  absl::Status AckStored(SubscriptionState& state,
                         absl::Span<const uint64_t> seqs, bool wait);
  absl::Status Unsubscribe(SubscriptionState& state, uint64_t max_messages,
                           bool wait);
  absl::StatusOr<Message> NextMessage(SubscriptionState& state,
                                      absl::Duration timeout);
  uint64_t Dropped(const SubscriptionState& state);

  absl::StatusOr<Message> Request(absl::string_view topic,
                                  absl::string_view payload,
                                  absl::Duration timeout,
                                  const Headers& headers);
  absl::StatusOr<std::shared_ptr<ServiceState>> Serve(absl::string_view topic,
                                                      RequestHandler handler);
  absl::Status Unserve(ServiceState& state, bool wait);
  absl::StatusOr<IncomingRequest> NextRequest(ServiceState& state,
                                              absl::Duration timeout);
  absl::Status Respond(uint64_t request_id, absl::string_view payload,
                       const Headers& headers);
  absl::Status Reject(uint64_t request_id, absl::string_view why);
  absl::Status Ping(absl::Duration timeout);

  bool connected();
  absl::Status status();
  const session::Welcomed& welcome() const { return welcome_; }
  uint64_t reconnects();
  uint64_t sessions_lost();

 private:
  // A call waiting for its operation's outcome; lives on the caller's stack.
  struct Waiter {
    bool done = false;
    absl::Status status;
    uint64_t subscription_id = 0;
    uint64_t delivered = 0;
    absl::StatusOr<Message> reply;
  };

  // Work for the callback thread.
  struct Task {
    std::shared_ptr<SubscriptionState> subscription;
    Message message;
    std::shared_ptr<ServiceState> service;
    IncomingRequest request;
    absl::Status error;
  };

  using Encoder = absl::FunctionRef<absl::StatusOr<uint64_t>(ClientSession&)>;

  absl::Status CheckUsable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Encodes one operation (waiting first while too much output is unsent)
  // and registers `waiter` for its outcome.
  absl::StatusOr<uint64_t> Submit(Encoder encode, Waiter* waiter)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for `waiter`; on timeout forgets it and says which operation the
  // broker left unanswered.
  absl::Status Await(uint64_t op_id, Waiter& waiter, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void ReadLoop();
  void WriteLoop();
  void CallbackLoop();

  // Takes every event out of the session and acts on it.
  void RouteEvents() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnOperationDone(session::OperationDone& done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnDelivered(session::Delivered& delivered)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnRequest(IncomingRequest& request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnAsyncError(session::AsyncError& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnClosed(const absl::Status& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The broker answered a resume; a session it no longer had subscribes and
  // serves again.
  void OnResumed(const session::Resumed& resumed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The link broke (`why`) and the session may outlive it.
  bool ShouldReconnect() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Dials again with backoff until a new link is up, and resumes the session
  // on it; or, when the client closes or gives up, ends the session's input
  // (it then closes saying why).
  void Reconnect(const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportError(absl::Status error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool WriterHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasRoomForOutput() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool OutputFlushed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasTask() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ClientOptions options_;
  const Dialer dial_;
  session::Welcomed welcome_;  // written once, before Start() returns

  mutable AwaitMutex mu_;
  // The current link; replaced by Reconnect(). Threads use a copy taken
  // under mu_, so a link they are blocked on stays alive.
  std::shared_ptr<ByteStream> stream_ ABSL_GUARDED_BY(mu_);
  // Between losing a link and handing the session a new one: the writer
  // waits.
  bool reconnecting_ ABSL_GUARDED_BY(mu_) = false;
  // Counts links replaced, so a writer whose link broke can tell when the
  // reader has put a new one in place.
  uint64_t link_generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t sessions_lost_ ABSL_GUARDED_BY(mu_) = 0;
  // Subscribe operations sent again for a lost session: op id -> handle.
  absl::flat_hash_map<uint64_t, uint64_t> resubscribing_ ABSL_GUARDED_BY(mu_);
  ClientSession session_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool close_started_ ABSL_GUARDED_BY(mu_) = false;
  bool close_finished_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_callbacks_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<uint64_t, Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  uint64_t last_handle_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, std::shared_ptr<SubscriptionState>>
      subscriptions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<ServiceState>> services_
      ABSL_GUARDED_BY(mu_);
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  size_t queued_messages_ ABSL_GUARDED_BY(mu_) = 0;  // tasks_ minus errors
  size_t queued_errors_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread reader_;
  std::thread writer_;
  std::thread callbacks_;
};

}  // namespace manifold::client_internal

#endif  // MANIFOLD_CLIENT_INTERNAL_CLIENT_CORE_H_
