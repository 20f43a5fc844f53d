#include "client/internal/client_core.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/backoff.h"
#include "client/errors.h"
#include "core/manifold.pb.h"

namespace manifold::client_internal {
namespace {

// Errors waiting for on_error beyond this many are dropped: a flood of
// identical failures is better summarised by the first ones.
constexpr size_t kMaxQueuedErrors = 64;
// How long the reader sleeps in Read() at most, so it notices request
// deadlines even while the broker is silent.
constexpr absl::Duration kReaderWakeup = absl::Milliseconds(250);
// How long a failed write waits for the reader to find the broker's reason.
constexpr absl::Duration kReaderGrace = absl::Seconds(1);

ClientSessionOptions SessionOptions(const ClientOptions& options,
                                    bool can_reconnect) {
  ClientSessionOptions session;
  session.resumable = can_reconnect;
  session.client_name = options.name;
  session.auth_token = options.auth_token;
  session.user = options.user;
  session.password = options.password;
  session.no_echo = options.no_echo;
  // The client applies its own, blocking, limit on unsent output
  // (max_unsent_bytes); the reader thread must always be able to answer a
  // ping.
  session.max_output_bytes = std::numeric_limits<size_t>::max();
  return session;
}

absl::Status NotConnected(const absl::Status& reason) {
  return absl::UnavailableError(
      absl::StrCat("not connected: ", reason.message()));
}

}  // namespace

ClientCore::ClientCore(std::unique_ptr<ByteStream> stream,
                       ClientOptions options, Dialer dial)
    : options_(std::move(options)),
      dial_(options_.reconnect.enabled ? std::move(dial) : nullptr),
      stream_(std::move(stream)),
      session_(SessionOptions(options_, dial_ != nullptr)) {}

ClientCore::~ClientCore() {
  Close();
  // The last reference can be dropped by the callback thread itself (a
  // callback that destroyed its Client); it cannot join itself.
  if (callbacks_.joinable()) {
    if (callbacks_.get_id() == std::this_thread::get_id()) {
      callbacks_.detach();
    } else {
      callbacks_.join();
    }
  }
}

// --- Lifecycle ---------------------------------------------------------------

absl::Status ClientCore::Start(absl::Time deadline) {
  reader_ = std::thread([this] { ReadLoop(); });
  writer_ = std::thread([this] { WriteLoop(); });
  // The callback thread keeps the core alive until it has finished, so a
  // callback may destroy the Client that runs it.
  callbacks_ = std::thread([self = shared_from_this()]() mutable {
    self->CallbackLoop();
    self.reset();
  });

  AwaitMutexLock lock(&mu_);
  auto answered = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return session_.open() || session_.closed();
  };
  mu_.AwaitWithDeadline(answered, deadline);
  if (session_.closed()) return session_.close_reason();
  if (!session_.open()) {
    return absl::DeadlineExceededError(
        absl::StrCat("the broker at ", stream_->peer(),
                     " did not answer the handshake in time"));
  }
  welcome_ = session_.welcome();
  return absl::OkStatus();
}

void ClientCore::Close() {
  const bool on_callback_thread =
      callbacks_.get_id() == std::this_thread::get_id();
  std::shared_ptr<ByteStream> link;
  {
    AwaitMutexLock lock(&mu_);
    if (close_started_) {
      // A callback that closes while another thread is closing must not wait:
      // that thread is about to wait for the callback thread.
      if (!on_callback_thread) {
        mu_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return close_finished_;
        });
      }
      return;
    }
    close_started_ = true;
    // Give what is still unsent a chance to reach the broker.
    mu_.AwaitWithTimeout(
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return OutputFlushed(); },
        options_.close_timeout);
    session_.Close(absl::CancelledError("the client closed the connection"));
    RouteEvents();
    stop_callbacks_ = true;
    link = stream_;
  }
  link->Close();
  if (reader_.joinable()) reader_.join();
  if (writer_.joinable()) writer_.join();
  if (callbacks_.joinable() && !on_callback_thread) callbacks_.join();
  AwaitMutexLock lock(&mu_);
  close_finished_ = true;
}

bool ClientCore::connected() {
  AwaitMutexLock lock(&mu_);
  return session_.open() && !close_started_;
}

absl::Status ClientCore::status() {
  AwaitMutexLock lock(&mu_);
  return session_.close_reason();
}

uint64_t ClientCore::reconnects() {
  AwaitMutexLock lock(&mu_);
  return reconnects_;
}

uint64_t ClientCore::sessions_lost() {
  AwaitMutexLock lock(&mu_);
  return sessions_lost_;
}

// --- Threads -----------------------------------------------------------------

void ClientCore::ReadLoop() {
  while (true) {
    std::shared_ptr<ByteStream> link;
    {
      AwaitMutexLock lock(&mu_);
      link = stream_;
    }
    absl::StatusOr<std::string> bytes = link->Read(absl::Now() + kReaderWakeup);
    AwaitMutexLock lock(&mu_);
    if (bytes.ok()) {
      session_.Receive(*bytes);
    } else {
      // Whole frames that arrived before the break count; a goodbye or a
      // fatal error among them ends the session here.
      RouteEvents();
      if (session_.closed()) return;
      if (ShouldReconnect()) {
        Reconnect(bytes.status());
      } else {
        session_.EndOfStream(bytes.status());
      }
    }
    session_.Tick(absl::Now());
    RouteEvents();
    if (session_.closed()) return;
  }
}

void ClientCore::WriteLoop() {
  AwaitMutexLock lock(&mu_);
  while (true) {
    mu_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return WriterHasWork();
    });
    if (session_.closed()) return;
    std::string out = session_.TakeOutput();
    std::shared_ptr<ByteStream> link = stream_;
    const uint64_t generation = link_generation_;
    writing_ = true;
    mu_.Unlock();
    absl::Status written = link->Write(out);
    mu_.Lock();
    writing_ = false;
    if (!written.ok() && dial_ != nullptr && !close_started_) {
      // The reader finds the link broken too (closing it makes sure) and
      // puts a new one in place; what this write lost goes again after the
      // resume.
      link->Close();
      mu_.Await([this, generation]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return link_generation_ != generation || session_.closed();
      });
      continue;
    }
    if (!written.ok()) {
      // The broker usually closed on purpose and said why in its last frames,
      // which the reader is about to decode; its reason beats ours.
      auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return session_.closed();
      };
      mu_.AwaitWithTimeout(closed, kReaderGrace);
      if (!session_.closed()) {
        session_.Close(written);
        RouteEvents();
      }
      return;
    }
  }
}

void ClientCore::CallbackLoop() {
  while (true) {
    Task task;
    {
      AwaitMutexLock lock(&mu_);
      auto has_task = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return HasTask();
      };
      mu_.Await(has_task);
      if (stop_callbacks_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
      if (task.subscription != nullptr || task.service != nullptr) {
        --queued_messages_;
      } else {
        --queued_errors_;
      }
      // Unsubscribed or unserved since the task was queued: drop it.
      if (task.subscription != nullptr && task.subscription->cancelled) {
        continue;
      }
      if (task.service != nullptr && !task.service->active) continue;
      if (task.subscription != nullptr) task.subscription->dropping = false;
    }
    if (task.subscription != nullptr) {
      task.subscription->handler(task.message);
    } else if (task.service != nullptr) {
      absl::StatusOr<std::string> answer = task.service->handler(task.request);
      // A failure here means the connection is gone; nobody is left to tell.
      if (answer.ok()) {
        Respond(task.request.id, *answer, {}).IgnoreError();
      } else {
        Reject(task.request.id, answer.status().message()).IgnoreError();
      }
    } else if (options_.on_error) {
      options_.on_error(task.error);
    }
  }
}

bool ClientCore::WriterHasWork() const {
  return (!session_.PendingOutput().empty() && !reconnecting_) ||
         session_.closed();
}

bool ClientCore::ShouldReconnect() const {
  return dial_ != nullptr && !close_started_ && session_.open();
}

void ClientCore::Reconnect(const absl::Status& why) {
  reconnecting_ = true;
  ++link_generation_;
  stream_->Close();  // wakes a writer blocked on it
  const std::string peer = stream_->peer();
  Backoff backoff({.initial = options_.reconnect.initial_backoff,
                   .max = options_.reconnect.max_backoff,
                   .seed = options_.reconnect.jitter_seed});
  const absl::Time give_up = absl::Now() + options_.reconnect.give_up_after;
  absl::Status last = why;
  bool linked = false;
  while (!close_started_) {
    const absl::Duration wait = backoff.Next();
    if (absl::Now() + wait > give_up) break;
    // Sleeps, but not past a Close().
    mu_.AwaitWithTimeout(
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return close_started_; },
        wait);
    if (close_started_) break;
    mu_.Unlock();
    absl::StatusOr<std::unique_ptr<ByteStream>> dialed =
        dial_(options_.connect_timeout);
    mu_.Lock();
    if (!dialed.ok()) {
      last = dialed.status();
      continue;
    }
    if (close_started_ || !session_.BeginResume().ok()) {
      (*dialed)->Close();
      break;
    }
    stream_ = std::shared_ptr<ByteStream>(*std::move(dialed));
    ++reconnects_;
    linked = true;
    break;
  }
  reconnecting_ = false;
  ++link_generation_;
  if (linked) return;
  session_.EndOfStream(
      close_started_
          ? why
          : absl::UnavailableError(absl::StrCat(
                "lost the connection to ", peer, " (", why.message(),
                ") and could not reach it again within ",
                absl::FormatDuration(options_.reconnect.give_up_after), ": ",
                last.message())));
}

bool ClientCore::HasRoomForOutput() const {
  return session_.PendingOutput().size() < options_.max_unsent_bytes ||
         session_.closed() || close_started_;
}

bool ClientCore::OutputFlushed() const {
  return (session_.PendingOutput().empty() && !writing_) || session_.closed();
}

bool ClientCore::HasTask() const { return !tasks_.empty() || stop_callbacks_; }

// --- Routing the session's events --------------------------------------------

void ClientCore::RouteEvents() {
  while (std::optional<session::Event> event = session_.PollEvent()) {
    if (auto* done = std::get_if<session::OperationDone>(&*event)) {
      OnOperationDone(*done);
    } else if (auto* done = std::get_if<session::RequestDone>(&*event)) {
      auto it = waiters_.find(done->op_id);
      if (it == waiters_.end()) continue;  // the caller gave up
      it->second->reply = std::move(done->reply);
      it->second->done = true;
      waiters_.erase(it);
    } else if (auto* delivered = std::get_if<session::Delivered>(&*event)) {
      OnDelivered(*delivered);
    } else if (auto* received =
                   std::get_if<session::RequestReceived>(&*event)) {
      OnRequest(received->request);
    } else if (auto* error = std::get_if<session::AsyncError>(&*event)) {
      OnAsyncError(*error);
    } else if (auto* closed = std::get_if<session::Closed>(&*event)) {
      OnClosed(closed->reason);
    } else if (auto* resumed = std::get_if<session::Resumed>(&*event)) {
      OnResumed(*resumed);
    }
  }
}

void ClientCore::OnOperationDone(session::OperationDone& done) {
  // A replay of new messages starts after the sequence its Ack names: the
  // position to go on from should the session be lost before a delivery.
  if (done.kind == OperationKind::kSubscribe && done.status.ok() &&
      done.stream_seq.has_value()) {
    if (const SubscriptionInfo* info =
            session_.FindSubscription(done.subscription_id)) {
      auto state = subscriptions_.find(info->handle);
      if (state != subscriptions_.end() && !state->second->placed) {
        state->second->last_stream_seq = *done.stream_seq;
        state->second->placed = true;
      }
    }
  }
  if (auto again = resubscribing_.find(done.op_id);
      again != resubscribing_.end()) {
    const uint64_t handle = again->second;
    resubscribing_.erase(again);
    auto state = subscriptions_.find(handle);
    if (!done.status.ok()) {
      if (state != subscriptions_.end()) {
        ReportError(absl::Status(
            done.status.code(),
            absl::StrCat(
                "could not subscribe again to '", state->second->pattern,
                "' after the session was lost: ", done.status.message())));
      }
      return;
    }
    if (state != subscriptions_.end() && !state->second->cancelled) {
      state->second->id = done.subscription_id;
    } else if (!session_.closed()) {
      session_.Unsubscribe(done.subscription_id).IgnoreError();
    }
    return;
  }
  auto it = waiters_.find(done.op_id);
  if (it != waiters_.end()) {
    Waiter& waiter = *it->second;
    waiter.status = std::move(done.status);
    waiter.subscription_id = done.subscription_id;
    waiter.delivered = done.delivered;
    waiter.done = true;
    waiters_.erase(it);
    return;
  }
  // Nobody waits any more (the call timed out). A subscription made after
  // its caller gave up must not linger at the broker.
  if (done.kind == OperationKind::kSubscribe && done.status.ok() &&
      !session_.closed()) {
    if (const SubscriptionInfo* info =
            session_.FindSubscription(done.subscription_id)) {
      subscriptions_.erase(info->handle);
    }
    session_.Unsubscribe(done.subscription_id).IgnoreError();
  } else if (!done.status.ok() && !session_.closed()) {
    ReportError(std::move(done.status));
  }
}

void ClientCore::OnDelivered(session::Delivered& delivered) {
  auto it = subscriptions_.find(delivered.handle);
  if (it == subscriptions_.end()) return;
  std::shared_ptr<SubscriptionState> state = it->second;
  if (delivered.message.stream_seq != 0) {
    state->last_stream_seq = delivered.message.stream_seq;
    state->placed = true;
  }
  if (delivered.last) {
    state->ended = true;
    subscriptions_.erase(it);
  }
  const bool full = state->handler
                        ? queued_messages_ >= options_.max_buffered_messages
                        : state->queue.size() >= options_.max_buffered_messages;
  if (full) {
    ++state->dropped;
    if (!state->dropping) {
      state->dropping = true;
      ReportError(absl::ResourceExhaustedError(absl::StrCat(
          "dropping messages for the subscription to '", state->pattern, "': ",
          options_.max_buffered_messages, " are waiting to be handled")));
    }
    return;
  }
  if (state->handler) {
    Task task;
    task.subscription = std::move(state);
    task.message = std::move(delivered.message);
    tasks_.push_back(std::move(task));
    ++queued_messages_;
  } else {
    state->dropping = false;
    state->queue.push_back(std::move(delivered.message));
  }
}

void ClientCore::OnAsyncError(session::AsyncError& error) {
  auto it = error.subscription_id == 0 ? subscriptions_.end()
                                       : subscriptions_.find(error.handle);
  if (it == subscriptions_.end()) {
    ReportError(std::move(error.status));
    return;
  }
  // The broker ended the subscription. A pulled one says why from Next(),
  // after what is buffered; a handler has only on_error to hear it.
  std::shared_ptr<SubscriptionState> state = it->second;
  subscriptions_.erase(it);
  state->ended = true;
  state->end_status = error.status;
  if (state->handler) ReportError(std::move(error.status));
}

void ClientCore::OnRequest(IncomingRequest& request) {
  auto it = services_.find(request.topic);
  if (it == services_.end() || !it->second->active) {
    session_
        .Reject(request.id, absl::StrCat("this client no longer serves '",
                                         request.topic, "'"))
        .IgnoreError();
    return;
  }
  ServiceState& state = *it->second;
  const bool full = state.handler
                        ? queued_messages_ >= options_.max_buffered_messages
                        : state.queue.size() >= options_.max_buffered_messages;
  if (full) {
    session_
        .Reject(request.id, absl::StrCat("the server of '", request.topic,
                                         "' is overloaded: ",
                                         options_.max_buffered_messages,
                                         " requests are waiting"))
        .IgnoreError();
    return;
  }
  if (state.handler) {
    Task task;
    task.service = it->second;
    task.request = std::move(request);
    tasks_.push_back(std::move(task));
    ++queued_messages_;
  } else {
    state.queue.push_back(std::move(request));
  }
}

void ClientCore::OnResumed(const session::Resumed& resumed) {
  if (resumed.resumed) {
    if (resumed.frames_lost > 0) {
      ReportError(absl::DataLossError(
          absl::StrCat("resumed the session, but ", resumed.frames_lost,
                       " operations sent before the link broke were lost")));
    }
    return;
  }
  ++sessions_lost_;
  ReportError(absl::UnavailableError(absl::StrCat(
      "the broker no longer had this client's session (",
      resumed.reason.message(), "); subscribing and serving again")));
  resubscribing_.clear();
  for (auto& [handle, state] : subscriptions_) {
    if (state->cancelled || state->ended) continue;
    state->id = 0;
    SubscribeOptions options;
    options.queue_group = state->queue_group;
    options.replay = state->replay;
    options.consumer = state->consumer;
    // A replaying subscription goes on after the last message it received,
    // so the new session repeats and skips nothing the stream still holds.
    if (options.replay.has_value() && state->placed) {
      options.replay->start = Replay::FromSeq{state->last_stream_seq + 1};
    }
    absl::StatusOr<uint64_t> op =
        session_.Subscribe(state->pattern, options, handle);
    if (op.ok()) {
      resubscribing_[*op] = handle;
    } else {
      ReportError(op.status());
    }
  }
  for (auto& [topic, state] : services_) {
    if (!state->active) continue;
    if (absl::Status s = session_.Serve(topic).status(); !s.ok()) {
      ReportError(s);
    }
  }
}

void ClientCore::OnClosed(const absl::Status& reason) {
  for (auto& [handle, state] : subscriptions_) state->closed = true;
  for (auto& [topic, state] : services_) state->closed = true;
  subscriptions_.clear();
  services_.clear();
  // Waiters were completed by the session's events before this one.
  if (!close_started_) {
    ReportError(absl::UnavailableError(absl::StrCat(
        "lost the connection to ", stream_->peer(), ": ", reason.message())));
  }
}

void ClientCore::ReportError(absl::Status error) {
  if (!options_.on_error || queued_errors_ >= kMaxQueuedErrors) return;
  Task task;
  task.error = std::move(error);
  tasks_.push_back(std::move(task));
  ++queued_errors_;
}

// --- Operations --------------------------------------------------------------

absl::Status ClientCore::CheckUsable() {
  if (close_started_) return absl::UnavailableError("the client is closed");
  if (session_.closed()) return NotConnected(session_.close_reason());
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ClientCore::Submit(Encoder encode, Waiter* waiter) {
  if (absl::Status s = CheckUsable(); !s.ok()) return s;
  auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return HasRoomForOutput();
  };
  if (!mu_.AwaitWithTimeout(has_room, options_.operation_timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("the broker at ", stream_->peer(), " is not reading: ",
                     session_.PendingOutput().size(), " bytes are unsent"));
  }
  if (absl::Status s = CheckUsable(); !s.ok()) return s;
  absl::StatusOr<uint64_t> op = encode(session_);
  if (op.ok() && waiter != nullptr) waiters_[*op] = waiter;
  return op;
}

absl::Status ClientCore::Await(uint64_t op_id, Waiter& waiter,
                               absl::string_view what) {
  if (!mu_.AwaitWithTimeout([&waiter] { return waiter.done; },
                            options_.operation_timeout)) {
    waiters_.erase(op_id);
    return absl::DeadlineExceededError(
        absl::StrCat("the broker did not answer ", what, " within ",
                     absl::FormatDuration(options_.operation_timeout)));
  }
  return waiter.status;
}

absl::StatusOr<uint64_t> ClientCore::Publish(absl::string_view topic,
                                             absl::string_view payload,
                                             const PublishOptions& options) {
  AwaitMutexLock lock(&mu_);
  Waiter waiter;
  absl::StatusOr<uint64_t> op = Submit(
      [&](ClientSession& s) { return s.Publish(topic, payload, options); },
      options.ack ? &waiter : nullptr);
  if (!op.ok() || !options.ack) return op;
  if (absl::Status s = Await(*op, waiter, "a publish"); !s.ok()) return s;
  return waiter.delivered;
}

absl::StatusOr<std::shared_ptr<SubscriptionState>> ClientCore::Subscribe(
    absl::string_view pattern, const SubscribeOptions& options,
    MessageHandler handler) {
  auto state = std::make_shared<SubscriptionState>();
  state->pattern = std::string(pattern);
  state->queue_group = options.queue_group;
  state->replay = options.replay;
  state->consumer = options.consumer;
  state->handler = std::move(handler);

  AwaitMutexLock lock(&mu_);
  state->handle = ++last_handle_;
  Waiter waiter;
  absl::StatusOr<uint64_t> op = Submit(
      [&](ClientSession& s) {
        return s.Subscribe(pattern, options, state->handle);
      },
      &waiter);
  if (!op.ok()) return op.status();
  // Registered before the answer: deliveries may follow the Ack at once.
  subscriptions_[state->handle] = state;
  if (absl::Status s = Await(*op, waiter, "a subscribe"); !s.ok()) {
    subscriptions_.erase(state->handle);
    return s;
  }
  state->id = waiter.subscription_id;
  return state;
}

absl::Status ClientCore::AckStored(SubscriptionState& state,
                                   absl::Span<const uint64_t> seqs, bool wait) {
  AwaitMutexLock lock(&mu_);
  if (state.cancelled || state.ended) {
    return absl::FailedPreconditionError(
        "the subscription has ended; its messages come again to the "
        "consumer's other subscribers");
  }
  Waiter waiter;
  absl::StatusOr<uint64_t> op =
      Submit([&](ClientSession& s) { return s.AckStored(state.id, seqs); },
             wait ? &waiter : nullptr);
  if (!op.ok()) return op.status();
  if (!wait) return absl::OkStatus();
  return Await(*op, waiter, "an acknowledgement");
}

absl::Status ClientCore::Unsubscribe(SubscriptionState& state,
                                     uint64_t max_messages, bool wait) {
  AwaitMutexLock lock(&mu_);
  if (state.cancelled || state.ended) return absl::OkStatus();
  if (!wait && (close_started_ || session_.closed())) return absl::OkStatus();
  Waiter waiter;
  absl::StatusOr<uint64_t> op = Submit(
      [&](ClientSession& s) { return s.Unsubscribe(state.id, max_messages); },
      wait ? &waiter : nullptr);
  if (!op.ok()) return op.status();
  if (max_messages == 0) {
    state.cancelled = true;
    state.queue.clear();
    subscriptions_.erase(state.handle);
  } else if (session_.FindSubscription(state.id) == nullptr) {
    // The max was reached already.
    state.ended = true;
    subscriptions_.erase(state.handle);
  }
  if (!wait) return absl::OkStatus();
  return Await(*op, waiter, "an unsubscribe");
}

absl::StatusOr<Message> ClientCore::NextMessage(SubscriptionState& state,
                                                absl::Duration timeout) {
  if (state.handler) {
    return absl::FailedPreconditionError(
        "Next() is for subscriptions without a handler");
  }
  AwaitMutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !state.queue.empty() || state.cancelled || state.ended ||
           state.closed;
  };
  mu_.AwaitWithTimeout(ready, timeout);
  if (!state.queue.empty()) {
    Message m = std::move(state.queue.front());
    state.queue.pop_front();
    return m;
  }
  if (state.ended && !state.end_status.ok()) return state.end_status;
  if (state.cancelled || state.ended) {
    return absl::OutOfRangeError(
        absl::StrCat("the subscription to '", state.pattern, "' has ended"));
  }
  if (state.closed) return NotConnected(session_.close_reason());
  return absl::DeadlineExceededError(
      absl::StrCat("no message on '", state.pattern, "' within ",
                   absl::FormatDuration(timeout)));
}

uint64_t ClientCore::Dropped(const SubscriptionState& state) {
  AwaitMutexLock lock(&mu_);
  return state.dropped;
}

absl::StatusOr<Message> ClientCore::Request(absl::string_view topic,
                                            absl::string_view payload,
                                            absl::Duration timeout,
                                            const Headers& headers) {
  AwaitMutexLock lock(&mu_);
  Waiter waiter;
  const absl::Time now = absl::Now();
  absl::StatusOr<uint64_t> op = Submit(
      [&](ClientSession& s) {
        return s.Request(topic, payload, timeout, now, headers);
      },
      &waiter);
  if (!op.ok()) return op.status();
  const absl::Time deadline = now + timeout;
  while (!waiter.done) {
    if (!mu_.AwaitWithDeadline([&waiter] { return waiter.done; }, deadline)) {
      // The session fails the request at exactly `deadline`.
      session_.Tick(std::max(absl::Now(), deadline));
      RouteEvents();
    }
  }
  return std::move(waiter.reply);
}

absl::StatusOr<std::shared_ptr<ServiceState>> ClientCore::Serve(
    absl::string_view topic, RequestHandler handler) {
  auto state = std::make_shared<ServiceState>();
  state->topic = std::string(topic);
  state->handler = std::move(handler);

  AwaitMutexLock lock(&mu_);
  if (services_.contains(topic)) {
    return BrokerError(wire::TOPIC_ALREADY_SERVED,
                       absl::StrCat("topic '", topic,
                                    "' is already served by this connection"));
  }
  Waiter waiter;
  absl::StatusOr<uint64_t> op =
      Submit([&](ClientSession& s) { return s.Serve(topic); }, &waiter);
  if (!op.ok()) return op.status();
  services_[state->topic] = state;
  if (absl::Status s = Await(*op, waiter, "a serve"); !s.ok()) {
    services_.erase(state->topic);
    return s;
  }
  return state;
}

absl::Status ClientCore::Unserve(ServiceState& state, bool wait) {
  AwaitMutexLock lock(&mu_);
  if (!state.active) return absl::OkStatus();
  state.active = false;
  state.queue.clear();
  if (auto it = services_.find(state.topic);
      it != services_.end() && it->second.get() == &state) {
    services_.erase(it);
  }
  if (!wait && (close_started_ || session_.closed())) return absl::OkStatus();
  Waiter waiter;
  absl::StatusOr<uint64_t> op =
      Submit([&](ClientSession& s) { return s.Unserve(state.topic); },
             wait ? &waiter : nullptr);
  if (!op.ok()) return op.status();
  if (!wait) return absl::OkStatus();
  return Await(*op, waiter, "an unserve");
}

absl::StatusOr<IncomingRequest> ClientCore::NextRequest(
    ServiceState& state, absl::Duration timeout) {
  if (state.handler) {
    return absl::FailedPreconditionError(
        "Next() is for services without a handler");
  }
  AwaitMutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !state.queue.empty() || !state.active || state.closed;
  };
  mu_.AwaitWithTimeout(ready, timeout);
  if (!state.queue.empty()) {
    IncomingRequest r = std::move(state.queue.front());
    state.queue.pop_front();
    return r;
  }
  if (state.closed) return NotConnected(session_.close_reason());
  if (!state.active) {
    return absl::OutOfRangeError(
        absl::StrCat("this client no longer serves '", state.topic, "'"));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no request for '", state.topic, "' within ",
                   absl::FormatDuration(timeout)));
}

absl::Status ClientCore::Respond(uint64_t request_id, absl::string_view payload,
                                 const Headers& headers) {
  AwaitMutexLock lock(&mu_);
  return Submit(
             [&](ClientSession& s) {
               return s.Respond(request_id, payload, headers);
             },
             nullptr)
      .status();
}

absl::Status ClientCore::Reject(uint64_t request_id, absl::string_view why) {
  AwaitMutexLock lock(&mu_);
  return Submit([&](ClientSession& s) { return s.Reject(request_id, why); },
                nullptr)
      .status();
}

absl::Status ClientCore::Ping(absl::Duration timeout) {
  AwaitMutexLock lock(&mu_);
  Waiter waiter;
  absl::StatusOr<uint64_t> op =
      Submit([](ClientSession& s) { return s.Ping(); }, &waiter);
  if (!op.ok()) return op.status();
  if (!mu_.AwaitWithTimeout([&waiter] { return waiter.done; }, timeout)) {
    waiters_.erase(*op);
    return absl::DeadlineExceededError(
        absl::StrCat("the broker did not answer a ping within ",
                     absl::FormatDuration(timeout)));
  }
  return waiter.status;
}

}  // namespace manifold::client_internal
