#include "client/client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/internal/client_core.h"
#include "client/socket_stream.h"

namespace manifold {

using client_internal::ClientCore;

namespace {

absl::Status ClientGone() {
  return absl::FailedPreconditionError("the client has been destroyed");
}

}  // namespace

// --- Client ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    absl::string_view address, ClientOptions options) {
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  absl::StatusOr<std::unique_ptr<ByteStream>> stream =
      ConnectSocket(address, options.connect_timeout);
  if (!stream.ok()) return stream.status();
  ClientCore::Dialer dial = nullptr;
  if (options.reconnect.enabled) {
    dial = [address = std::string(address)](absl::Duration timeout) {
      return ConnectSocket(address, timeout);
    };
  }
  return Start(*std::move(stream), std::move(options), std::move(dial),
               deadline);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    std::unique_ptr<ByteStream> stream, ClientOptions options) {
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  return Start(std::move(stream), std::move(options), nullptr, deadline);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Dial(Dialer dial,
                                                     ClientOptions options) {
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  absl::StatusOr<std::unique_ptr<ByteStream>> stream =
      dial(options.connect_timeout);
  if (!stream.ok()) return stream.status();
  if (!options.reconnect.enabled) dial = nullptr;
  return Start(*std::move(stream), std::move(options), std::move(dial),
               deadline);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Start(
    std::unique_ptr<ByteStream> stream, ClientOptions options,
    std::function<absl::StatusOr<std::unique_ptr<ByteStream>>(absl::Duration)>
        dial,
    absl::Time deadline) {
  auto core = std::make_shared<ClientCore>(std::move(stream),
                                           std::move(options), std::move(dial));
  if (absl::Status s = core->Start(deadline); !s.ok()) {
    core->Close();
    return s;
  }
  return std::unique_ptr<Client>(new Client(std::move(core)));
}

Client::Client(std::shared_ptr<ClientCore> core) : core_(std::move(core)) {}

Client::~Client() { Close(); }

absl::Status Client::Publish(absl::string_view topic, absl::string_view payload,
                             const PublishOptions& options) {
  return core_->Publish(topic, payload, options).status();
}

absl::StatusOr<uint64_t> Client::PublishConfirmed(
    absl::string_view topic, absl::string_view payload,
    const PublishOptions& options) {
  PublishOptions acked = options;
  acked.ack = true;
  return core_->Publish(topic, payload, acked);
}

absl::StatusOr<std::unique_ptr<Client::Subscription>> Client::Subscribe(
    absl::string_view pattern, MessageHandler handler) {
  return QueueSubscribe(pattern, "", std::move(handler));
}

absl::StatusOr<std::unique_ptr<Client::Subscription>> Client::QueueSubscribe(
    absl::string_view pattern, absl::string_view group,
    MessageHandler handler) {
  SubscribeOptions options;
  options.queue_group = std::string(group);
  return Subscribe(pattern, options, std::move(handler));
}

absl::StatusOr<std::unique_ptr<Client::Subscription>> Client::Subscribe(
    absl::string_view pattern, const SubscribeOptions& options,
    MessageHandler handler) {
  auto state = core_->Subscribe(pattern, options, std::move(handler));
  if (!state.ok()) return state.status();
  return std::unique_ptr<Subscription>(
      new Subscription(core_, *std::move(state)));
}

absl::StatusOr<Message> Client::Request(absl::string_view topic,
                                        absl::string_view payload,
                                        absl::Duration timeout,
                                        const Headers& headers) {
  return core_->Request(topic, payload, timeout, headers);
}

absl::StatusOr<std::unique_ptr<Client::Service>> Client::Serve(
    absl::string_view topic, RequestHandler handler) {
  auto state = core_->Serve(topic, std::move(handler));
  if (!state.ok()) return state.status();
  return std::unique_ptr<Service>(new Service(core_, *std::move(state)));
}

absl::Status Client::Respond(uint64_t request_id, absl::string_view payload,
                             const Headers& headers) {
  return core_->Respond(request_id, payload, headers);
}

absl::Status Client::Reject(uint64_t request_id, absl::string_view why) {
  return core_->Reject(request_id, why);
}

absl::Status Client::Ping(absl::Duration timeout) {
  return core_->Ping(timeout);
}

void Client::Close() { core_->Close(); }

bool Client::connected() const { return core_->connected(); }

absl::Status Client::status() const { return core_->status(); }

uint64_t Client::session_id() const { return core_->welcome().session_id; }

uint64_t Client::reconnects() const { return core_->reconnects(); }

uint64_t Client::sessions_lost() const { return core_->sessions_lost(); }

const session::Welcomed& Client::welcome() const { return core_->welcome(); }

// --- Subscription ------------------------------------------------------------

Client::Subscription::Subscription(
    std::weak_ptr<ClientCore> core,
    std::shared_ptr<client_internal::SubscriptionState> state)
    : core_(std::move(core)), state_(std::move(state)) {}

Client::Subscription::~Subscription() {
  if (std::shared_ptr<ClientCore> core = core_.lock()) {
    core->Unsubscribe(*state_, 0, /*wait=*/false).IgnoreError();
  }
}

absl::StatusOr<Message> Client::Subscription::Next(absl::Duration timeout) {
  std::shared_ptr<ClientCore> core = core_.lock();
  if (core == nullptr) return ClientGone();
  return core->NextMessage(*state_, timeout);
}

absl::Status Client::Subscription::Ack(absl::Span<const uint64_t> seqs,
                                       bool wait) {
  std::shared_ptr<ClientCore> core = core_.lock();
  if (core == nullptr) return ClientGone();
  return core->AckStored(*state_, seqs, wait);
}

absl::Status Client::Subscription::Unsubscribe() {
  std::shared_ptr<ClientCore> core = core_.lock();
  if (core == nullptr) return ClientGone();
  return core->Unsubscribe(*state_, 0, /*wait=*/true);
}

absl::Status Client::Subscription::AutoUnsubscribe(uint64_t max_messages) {
  if (max_messages == 0) {
    return absl::InvalidArgumentError(
        "AutoUnsubscribe needs a positive number of messages");
  }
  std::shared_ptr<ClientCore> core = core_.lock();
  if (core == nullptr) return ClientGone();
  return core->Unsubscribe(*state_, max_messages, /*wait=*/true);
}

uint64_t Client::Subscription::id() const { return state_->id; }
const std::string& Client::Subscription::pattern() const {
  return state_->pattern;
}
const std::string& Client::Subscription::queue_group() const {
  return state_->queue_group;
}

uint64_t Client::Subscription::dropped() const {
  std::shared_ptr<ClientCore> core = core_.lock();
  return core == nullptr ? 0 : core->Dropped(*state_);
}

// --- Service -----------------------------------------------------------------

Client::Service::Service(std::weak_ptr<ClientCore> core,
                         std::shared_ptr<client_internal::ServiceState> state)
    : core_(std::move(core)), state_(std::move(state)) {}

Client::Service::~Service() {
  if (std::shared_ptr<ClientCore> core = core_.lock()) {
    core->Unserve(*state_, /*wait=*/false).IgnoreError();
  }
}

absl::StatusOr<IncomingRequest> Client::Service::Next(absl::Duration timeout) {
  std::shared_ptr<ClientCore> core = core_.lock();
  if (core == nullptr) return ClientGone();
  return core->NextRequest(*state_, timeout);
}

absl::Status Client::Service::Unserve() {
  std::shared_ptr<ClientCore> core = core_.lock();
  if (core == nullptr) return ClientGone();
  return core->Unserve(*state_, /*wait=*/true);
}

const std::string& Client::Service::topic() const { return state_->topic; }

}  // namespace manifold
