// The public Broker: every call goes to the BrokerCore behind it.

#include "broker/broker.h"

#include <memory>
#include <utility>

#include "broker/internal/broker_core.h"
#include "broker/internal/native_codec.h"
#include "core/manifold.pb.h"

namespace manifold {

static_assert(kProtocolVersion == wire::PROTOCOL_VERSION_1);

Broker::Broker(BrokerOptions options)
    : core_(std::make_unique<internal::BrokerCore>(std::move(options))) {}

Broker::~Broker() = default;

const BrokerOptions& Broker::options() const { return core_->options(); }

Connection& Broker::Accept(PeerInfo peer, absl::Time now) {
  return core_->Accept(std::move(peer), now,
                       std::make_unique<internal::NativeCodec>(),
                       /*native=*/true);
}

Connection& Broker::Accept(PeerInfo peer, absl::Time now,
                           std::unique_ptr<ProtocolCodec> codec) {
  return core_->Accept(std::move(peer), now, std::move(codec),
                       /*native=*/false);
}

Connection* Broker::FindConnection(ConnectionId id) {
  return core_->FindConnection(id);
}

void Broker::Close(ConnectionId id, absl::string_view reason, absl::Time now) {
  core_->Close(id, reason, now);
}

absl::Status Broker::Admit(ConnectionId id, absl::Time now) {
  return core_->Admit(id, now);
}

absl::Status Broker::Refuse(ConnectionId id, absl::string_view reason,
                            absl::Time now) {
  return core_->Refuse(id, reason, now);
}

void Broker::Process(absl::Time now) { core_->Process(now); }

void Broker::Tick(absl::Time now) { core_->Tick(now); }

std::optional<absl::Time> Broker::NextDeadline() const {
  return core_->NextDeadline();
}

void Broker::TakeChanged(std::vector<ConnectionId>& out) {
  core_->TakeChanged(out);
}

void Broker::Shutdown(absl::Time now) { core_->Shutdown(now); }

bool Broker::shutting_down() const { return core_->shutting_down(); }

size_t Broker::connection_count() const { return core_->connection_count(); }

std::optional<wire::BrokerEvent> Broker::PollEvent() {
  return core_->PollEvent();
}

const BrokerStatistics& Broker::statistics() const {
  return core_->statistics();
}

}  // namespace manifold
