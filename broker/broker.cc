// The public Broker: every call goes to the BrokerCore behind it, and every
// call that can write to connections ends their turn (FinishTurns()).

#include "broker/broker.h"

#include <memory>
#include <utility>

#include "broker/internal/broker_core.h"
#include "broker/internal/native_codec.h"
#include "broker/protocol_codec.h"
#include "core/manifold.pb.h"

namespace manifold {

static_assert(kProtocolVersion == wire::PROTOCOL_VERSION_1);

Broker::Broker(BrokerOptions options)
    : core_(std::make_unique<internal::BrokerCore>(std::move(options),
                                                   nullptr)) {}

Broker::Broker(BrokerOptions options,
               std::unique_ptr<SessionIdSource> session_ids)
    : core_(std::make_unique<internal::BrokerCore>(std::move(options),
                                                   std::move(session_ids))) {}

Broker::~Broker() = default;

const BrokerOptions& Broker::options() const { return core_->options(); }

Connection& Broker::Accept(PeerInfo peer, absl::Time now) {
  Connection& c = core_->Accept(std::move(peer), now,
                                std::make_unique<internal::NativeCodec>(),
                                /*native=*/true);
  core_->FinishTurns();
  return c;
}

Connection& Broker::Accept(PeerInfo peer, absl::Time now,
                           std::unique_ptr<ProtocolCodec> codec) {
  Connection& c = core_->Accept(std::move(peer), now, std::move(codec),
                                /*native=*/false);
  core_->FinishTurns();
  return c;
}

Connection* Broker::FindConnection(ConnectionId id) {
  return core_->FindLinked(id);
}

void Broker::Close(ConnectionId id, absl::string_view reason, absl::Time now) {
  core_->Close(id, reason, now);
  core_->FinishTurns();
}

absl::Status Broker::Admit(ConnectionId id, absl::Time now) {
  absl::Status admitted = core_->Admit(id, Grant(), now);
  core_->FinishTurns();
  return admitted;
}

absl::Status Broker::Admit(ConnectionId id, Grant grant, absl::Time now) {
  absl::Status admitted = core_->Admit(id, std::move(grant), now);
  core_->FinishTurns();
  return admitted;
}

void Broker::Regrant(absl::FunctionRef<std::shared_ptr<const PermissionSet>(
                         absl::string_view user)>
                         permissions_of,
                     absl::Time now) {
  core_->Regrant(permissions_of, now);
  core_->FinishTurns();
}

absl::Status Broker::Refuse(ConnectionId id, absl::string_view reason,
                            absl::Time now) {
  return Refuse(id, reason, now, absl::ZeroDuration());
}

absl::Status Broker::Refuse(ConnectionId id, absl::string_view reason,
                            absl::Time now, absl::Duration delay) {
  absl::Status refused = core_->Refuse(id, reason, now, delay);
  core_->FinishTurns();
  return refused;
}

void Broker::Process(absl::Time now) {
  core_->Process(now);
  core_->FinishTurns();
}

void Broker::Tick(absl::Time now) {
  core_->Tick(now);
  core_->FinishTurns();
}

std::optional<absl::Time> Broker::NextDeadline() const {
  return core_->NextDeadline();
}

void Broker::TakeChanged(std::vector<ConnectionId>& out) {
  core_->TakeChanged(out);
}

void Broker::Shutdown(absl::Time now) {
  core_->Shutdown(now);
  core_->FinishTurns();
}

bool Broker::shutting_down() const { return core_->shutting_down(); }

size_t Broker::connection_count() const { return core_->connection_count(); }

std::optional<wire::BrokerEvent> Broker::PollEvent() {
  return core_->PollEvent();
}

namespace {

HeaderViews ToViews(const Broker::MessageOptions& options) {
  HeaderViews views;
  for (const auto& [key, value] : options.headers) {
    views.push_back(HeaderView{key, value});
  }
  return views;
}

}  // namespace

absl::StatusOr<uint64_t> Broker::Publish(absl::string_view topic,
                                         absl::string_view payload,
                                         absl::Time now,
                                         const MessageOptions& options) {
  PublishOp publish;
  publish.topic = topic;
  publish.payload = payload;
  publish.reply_to = options.reply_to;
  publish.headers = ToViews(options);
  return core_->PublishFromEmbedder(publish, now);
}

absl::StatusOr<uint64_t> Broker::Publish(absl::string_view topic,
                                         absl::string_view payload,
                                         absl::Time now) {
  return Publish(topic, payload, now, MessageOptions());
}

absl::StatusOr<RequestId> Broker::Request(absl::string_view topic,
                                          absl::string_view payload,
                                          absl::Duration timeout,
                                          absl::Time now,
                                          const MessageOptions& options) {
  const HeaderViews headers = ToViews(options);
  return core_->RequestFromEmbedder(topic, payload, headers, timeout, now);
}

absl::StatusOr<RequestId> Broker::Request(absl::string_view topic,
                                          absl::string_view payload,
                                          absl::Duration timeout,
                                          absl::Time now) {
  return Request(topic, payload, timeout, now, MessageOptions());
}

std::optional<wire::Response> Broker::PollResponse() {
  return core_->PollResponse();
}

absl::Status Broker::OpenStreams(StreamStorage* file_storage,
                                 std::vector<RecoveredStream> held,
                                 absl::Time now) {
  absl::Status s = core_->OpenStreams(file_storage, std::move(held), now);
  core_->FinishTurns();
  return s;
}

void Broker::SetWallTime(absl::Time wall_now) { core_->SetWallTime(wall_now); }

absl::StatusOr<wire::StreamInfo> Broker::AddStream(
    const wire::StreamConfig& config, absl::Time now) {
  absl::StatusOr<wire::StreamInfo> info = core_->AddStream(config, now);
  core_->FinishTurns();
  return info;
}

wire::StreamList Broker::ListStreams() const { return core_->ListStreams(); }

const BrokerStatistics& Broker::statistics() const {
  return core_->statistics();
}

void Broker::ReportTlsStatistics(TlsStatistics tls) {
  core_->set_tls_statistics(std::move(tls));
}

void Broker::AttachCluster(ClusterLink* link) { core_->AttachCluster(link); }

absl::StatusOr<uint64_t> Broker::PublishFromCluster(const PublishOp& publish,
                                                    absl::Time now) {
  absl::StatusOr<uint64_t> delivered =
      core_->PublishFromEmbedder(publish, now, /*to_cluster=*/false);
  core_->FinishTurns();
  return delivered;
}

void Broker::ReportClusterEvent(wire::BrokerEvent event, absl::Time now) {
  core_->ReportClusterEvent(std::move(event), now);
  core_->FinishTurns();
}

void Broker::ReportClusterStatistics(const ClusterStatistics& cluster) {
  core_->set_cluster_statistics(cluster);
}

void Broker::ServiceClaimed(absl::string_view topic, const absl::Status& result,
                            absl::Time now) {
  core_->ServiceClaimed(topic, result, now);
  core_->FinishTurns();
}

void Broker::ServiceTakenOver(absl::string_view topic, absl::string_view why,
                              absl::Time now) {
  core_->ServiceTakenOver(topic, why, now);
  core_->FinishTurns();
}

void Broker::RequestFromCluster(absl::string_view origin,
                                const ClusterCall& call, absl::Time now) {
  core_->RequestFromCluster(origin, call, now);
  core_->FinishTurns();
}

void Broker::AnswerFromCluster(uint64_t call_id, wire::RequestStatus status,
                               absl::string_view message,
                               const wire::Respond* respond, absl::Time now) {
  core_->AnswerFromCluster(call_id, status, message, respond, now);
  core_->FinishTurns();
}

}  // namespace manifold
