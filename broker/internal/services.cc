// The Broker's request/response services: one server per literal topic,
// requests routed to it with a broker-assigned id, and exactly one Response
// for every Request: the server's answer, or a status saying why not.

#include <algorithm>

#include "absl/base/optimization.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/internal/broker_core.h"
#include "broker/internal/message_checks.h"
#include "broker/internal/statistics_proto.h"
#include "broker/sys_topics.h"
#include "core/headers.h"
#include "core/status.h"
#include "core/topic.h"

namespace manifold::internal {
namespace {

// How a rejected request is told to a requester that asked by publishing
// (the headers of the NATS service framework's error replies).
constexpr absl::string_view kServiceErrorHeader = "Nats-Service-Error";
constexpr absl::string_view kServiceErrorCodeHeader = "Nats-Service-Error-Code";
constexpr absl::string_view kRejectedCode = "500";
// Longest rejection message copied into kServiceErrorHeader.
constexpr size_t kMaxErrorHeaderBytes = 256;

// `text` as a header value: at most kMaxErrorHeaderBytes, control
// characters (a line break would end the header) as spaces.
std::string HeaderSafe(absl::string_view text) {
  std::string value(text.substr(0, kMaxErrorHeaderBytes));
  for (char& ch : value) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
  }
  return value;
}

// Gives `served` its payload and headers.
void FillRequest(wire::ServedRequest& served, absl::string_view payload,
                 absl::Span<const HeaderView> headers) {
  served.set_payload(std::string(payload));
  for (const HeaderView& h : headers) {
    wire::Header* header = served.add_headers();
    header->set_key(std::string(h.key));
    header->set_value(std::string(h.value));
  }
}

}  // namespace

absl::Duration BrokerCore::RequestTimeout(uint32_t timeout_ms) const {
  return timeout_ms == 0
             ? absl::Milliseconds(options_.default_request_timeout_ms())
             : std::min(absl::Milliseconds(timeout_ms),
                        absl::Milliseconds(options_.max_request_timeout_ms()));
}

void BrokerCore::HandleServe(ConnectionCore& c, const wire::Serve& serve) {
  const std::string& topic = serve.topic();
  if (absl::Status s = ValidateTopic(topic, TopicRole::kLiteral, topic_limits_);
      !s.ok()) {
    SendError(c, serve.op_id(), s);
    return;
  }
  if (IsReserved(topic)) {
    SendError(c, serve.op_id(),
              ProtocolError(wire::RESERVED_TOPIC,
                            absl::StrCat("topic '", topic,
                                         "' is reserved for the broker")));
    return;
  }
  if (ABSL_PREDICT_FALSE(c.permissions_ != nullptr) &&
      !Permitted(c, AccessOperation::kServe, topic, serve.op_id())) {
    return;
  }
  if (auto it = services_.find(topic); it != services_.end()) {
    const ConnectionCore& holder = *it->second.server;
    SendError(
        c, serve.op_id(),
        ProtocolError(wire::TOPIC_ALREADY_SERVED,
                      absl::StrCat("topic '", topic, "' is already served by ",
                                   &holder == &c ? "this connection"
                                                 : holder.Describe())));
    return;
  }
  if (auto claim = claims_.find(topic); claim != claims_.end()) {
    const ConnectionCore* claimant = FindConnection(claim->second.connection);
    SendError(c, serve.op_id(),
              ProtocolError(
                  wire::TOPIC_ALREADY_SERVED,
                  absl::StrCat("topic '", topic, "' is being claimed for ",
                               claimant == &c        ? "this connection"
                               : claimant != nullptr ? claimant->Describe()
                                                     : "another connection")));
    return;
  }
  size_t held = c.served_topics_.size();
  for (const auto& [claimed, claim] : claims_)
    held += claim.connection == c.id_;
  if (held >= options_.max_services_per_connection()) {
    SendError(
        c, serve.op_id(),
        ProtocolError(
            wire::TOO_MANY_SERVICES,
            absl::StrCat("connection serves ", held, " topics; the limit is ",
                         options_.max_services_per_connection())));
    return;
  }
  if (cluster_ != nullptr) {
    // One server per topic cluster-wide: granted once the cluster's
    // registry says no other node holds it (ServiceClaimed).
    if (!cluster_->ClaimService(topic)) {
      SendError(c, serve.op_id(),
                ProtocolError(wire::CLUSTER_UNAVAILABLE,
                              absl::StrCat("cannot serve '", topic,
                                           "' now: the cluster's registry "
                                           "(Redis) is unreachable, so no "
                                           "node can make sure it is the "
                                           "only server; try again when the "
                                           "cluster is back")));
      return;
    }
    claims_[topic] = PendingClaim{c.id_, serve.op_id()};
    return;
  }
  GrantService(c, topic, serve.op_id());
}

void BrokerCore::GrantService(ConnectionCore& c, const std::string& topic,
                              uint64_t op_id) {
  services_[topic].server = &c;
  c.served_topics_.insert(topic);
  ++stats_.services;
  SendAck(c, op_id);

  wire::BrokerEvent event;
  event.mutable_service_added()->set_session_id(c.session_id_);
  event.mutable_service_added()->set_topic(topic);
  Emit(std::move(event), sys_topics::kServiceAdded);
}

void BrokerCore::HandleUnserve(ConnectionCore& c,
                               const wire::Unserve& unserve) {
  const std::string& topic = unserve.topic();
  if (auto claim = claims_.find(topic); claim != claims_.end() &&
                                        claim->second.connection == c.id_ &&
                                        !claim->second.unserve) {
    claim->second.unserve = true;
    claim->second.unserve_op_id = unserve.op_id();
    return;
  }
  if (!c.served_topics_.contains(topic)) {
    SendError(c, unserve.op_id(),
              ProtocolError(wire::NOT_SERVING,
                            absl::StrCat("this connection does not serve '",
                                         topic.substr(0, 64), "'")));
    return;
  }
  SendAck(c, unserve.op_id());
  c.served_topics_.erase(topic);
  RemoveService(
      topic,
      absl::StrCat("server ", c.Describe(), " stopped serving '", topic, "'"),
      /*emit_event=*/true);
}

void BrokerCore::RemoveService(const std::string& topic, absl::string_view why,
                               bool emit_event, bool release_claim) {
  auto it = services_.find(topic);
  if (it == services_.end()) return;
  Service service = std::move(it->second);
  services_.erase(it);
  --stats_.services;
  if (cluster_ != nullptr && release_claim) cluster_->ReleaseService(topic);
  for (RequestId id : service.pending) {
    FinishRequest(id, wire::SERVER_GONE, why, nullptr);
  }
  if (emit_event) {
    wire::BrokerEvent event;
    event.mutable_service_removed()->set_session_id(
        service.server->session_id_);
    event.mutable_service_removed()->set_topic(topic);
    Emit(std::move(event), sys_topics::kServiceRemoved);
  }
}

void BrokerCore::HandleRequest(ConnectionCore& session,
                               const wire::Request& request) {
  // A request made for a polled session is answered on the link that made
  // it, as every other operation acting for a session is: the link's
  // protocol (an HTTP exchange, a WebSocket) waits for it there.
  ConnectionCore& c = reply_link_ != nullptr ? *reply_link_ : session;
  // The session's grant rules (a polled session acts with the grant of the
  // link that opened it). A malformed topic is StartRequest's to report.
  if (ABSL_PREDICT_FALSE(session.permissions_ != nullptr) &&
      ValidateTopic(request.topic(), TopicRole::kLiteral, topic_limits_).ok() &&
      !Permitted(session, AccessOperation::kRequest, request.topic(),
                 request.op_id())) {
    return;
  }
  if (c.awaiting_.size() >= options_.max_pending_requests_per_connection() &&
      (services_.contains(request.topic()) || cluster_ != nullptr)) {
    SendError(
        c, request.op_id(),
        ProtocolError(
            wire::TOO_MANY_PENDING_REQUESTS,
            absl::StrCat("connection has ", c.awaiting_.size(),
                         " requests in flight; the limit is ",
                         options_.max_pending_requests_per_connection())));
    return;
  }
  StartRequest(RequesterKind::kConnection, &c, request.op_id(), request);
}

void BrokerCore::StartRequest(RequesterKind kind, ConnectionCore* requester,
                              uint64_t op_id, const wire::Request& request) {
  const std::string& topic = request.topic();
  wire::ServerMessage m;
  wire::Response* response = m.mutable_response();
  response->set_op_id(op_id);
  if (absl::Status s = ValidateTopic(topic, TopicRole::kLiteral, topic_limits_);
      !s.ok()) {
    if (kind == RequesterKind::kConnection) {
      SendError(*requester, op_id, s);
    }
    return;
  }
  if (absl::Status s = CheckSizeAndHeaders(request.payload(), request.headers(),
                                           options_.max_payload_bytes());
      !s.ok()) {
    if (kind == RequesterKind::kConnection) {
      SendError(*requester, op_id, s);
    }
    return;
  }
  // Stream management ($sys/streams/...); who may ask is the requester's
  // permission to request on that topic.
  if (ABSL_PREDICT_FALSE(absl::StartsWith(topic, "$sys/streams/")) &&
      HandleStreamRequest(kind, requester, op_id, topic, request.payload())) {
    return;
  }
  if (topic == sys_topics::kStatisticsTopic) {
    response->set_status(wire::REQUEST_OK);
    wire::Statistics statistics = StatisticsToProto(stats_, options_);
    if (!streams_.empty()) {
      *statistics.mutable_streams() = ListStreams().streams();
    }
    response->set_payload(statistics.SerializeAsString());
    Answer(kind, requester, m);
    return;
  }
  if (topic == sys_topics::kConnectionsTopic) {
    response->set_status(wire::REQUEST_OK);
    response->set_payload(ListConnections().SerializeAsString());
    Answer(kind, requester, m);
    return;
  }
  PendingRequest pending;
  pending.requester_kind = kind;
  pending.requester = requester;
  pending.requester_op_id = op_id;
  pending.timeout = RequestTimeout(request.timeout_ms());
  auto service = services_.find(topic);
  if (service == services_.end()) {
    if (cluster_ != nullptr) {
      absl::InlinedVector<HeaderView, 4> headers;
      for (const wire::Header& h : request.headers()) {
        headers.push_back({h.key(), h.value()});
      }
      if (ForwardRequest(std::move(pending), topic, request.payload(),
                         headers) != nullptr) {
        return;
      }
    }
    response->set_status(wire::NO_SERVER);
    response->set_message(absl::StrCat("no server for topic '", topic, "'"));
    Answer(kind, requester, m);
    return;
  }
  wire::ServedRequest& served =
      RecordRequest(topic, service->second, std::move(pending));
  served.set_payload(request.payload());
  *served.mutable_headers() = request.headers();
  Send(*service->second.server, scratch_message_);
}

BrokerCore::PendingRequest* BrokerCore::ForwardRequest(
    PendingRequest pending, absl::string_view topic, absl::string_view payload,
    absl::Span<const HeaderView> headers) {
  const RequestId id = request_ids_.Next();
  ClusterCall call;
  call.call_id = id.value();
  call.topic = topic;
  call.payload = payload;
  call.headers = headers;
  call.timeout_ms =
      static_cast<uint32_t>(absl::ToInt64Milliseconds(pending.timeout));
  call.requester_session_id =
      pending.requester != nullptr ? pending.requester->session_id_ : 0;
  const absl::string_view node = cluster_->ForwardRequest(call);
  if (node.empty()) return nullptr;
  pending.id = id;
  pending.server = nullptr;
  pending.remote_node.assign(node.data(), node.size());
  pending.topic.assign(topic.data(), topic.size());
  pending.timer =
      timers_.Schedule(now_ + pending.timeout, TimerKind::kRequest, id.value());
  if (pending.requester != nullptr) pending.requester->awaiting_.insert(id);
  if (pending.requester_kind == RequesterKind::kEmbedder) ++embedder_requests_;
  ++stats_.requests;
  ++stats_.requests_in_flight;
  PendingRequest& recorded = requests_[id];
  recorded = std::move(pending);
  return &recorded;
}

wire::ServedRequest& BrokerCore::RecordRequest(const std::string& topic,
                                               Service& service,
                                               PendingRequest pending) {
  const RequestId id = request_ids_.Next();
  ConnectionCore& server = *service.server;
  pending.id = id;
  pending.server = &server;
  pending.topic = topic;
  pending.timer =
      timers_.Schedule(now_ + pending.timeout, TimerKind::kRequest, id.value());
  ConnectionCore* requester = pending.requester;
  if (requester != nullptr) requester->awaiting_.insert(id);
  if (pending.requester_kind == RequesterKind::kEmbedder) ++embedder_requests_;
  server.serving_.insert(id);
  service.pending.insert(id);
  ++stats_.requests;
  ++stats_.requests_in_flight;

  wire::ServerMessage& m = scratch_message_;
  m.Clear();
  wire::ServedRequest* served = m.mutable_request();
  served->set_request_id(id.value());
  served->set_topic(topic);
  served->set_timeout_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(pending.timeout)));
  served->set_requester_session_id(requester != nullptr ? requester->session_id_
                                                        : 0);
  requests_[id] = std::move(pending);
  return *served;
}

bool BrokerCore::RefuseRequestByPublish(ConnectionCore& c,
                                        const PublishOp& publish) {
  if (c.awaiting_.size() < options_.max_pending_requests_per_connection() ||
      !services_.contains(publish.topic)) {
    return false;
  }
  SendError(c, publish.op_id,
            ProtocolError(
                wire::TOO_MANY_PENDING_REQUESTS,
                absl::StrCat("connection has ", c.awaiting_.size(),
                             " requests in flight; the limit is ",
                             options_.max_pending_requests_per_connection())));
  return true;
}

bool BrokerCore::RequestByPublish(ConnectionCore& c, const PublishOp& publish) {
  // Looked up again, after routing: delivering may have closed connections,
  // but services only go when the operation is over (RunDeferred).
  auto service = services_.find(publish.topic);
  if (service == services_.end() && cluster_ == nullptr) return false;
  // The broker publishes the answer, so a client could not have the broker
  // write on its own topics ($sys/...) this way.
  if (IsReserved(publish.reply_to)) return false;
  PendingRequest pending;
  pending.requester_kind = RequesterKind::kPublisher;
  pending.requester = &c;
  pending.requester_op_id = publish.op_id;
  pending.timeout = absl::Milliseconds(options_.default_request_timeout_ms());
  // Where the answer is published; copied only for a request that is made
  // (in a cluster most publishes with a reply subject are not one).
  auto reply_to = [&publish](PendingRequest& request) {
    request.reply_to.assign(publish.reply_to.data(), publish.reply_to.size());
    request.reply_spelling = publish.spelling;
    request.spelled_reply_to.assign(publish.spelled_reply_to.data(),
                                    publish.spelled_reply_to.size());
  };
  if (service == services_.end()) {
    // Served on another node, maybe (a NATS request to a native service).
    PendingRequest* forwarded = ForwardRequest(
        std::move(pending), publish.topic, publish.payload, publish.headers);
    if (forwarded == nullptr) return false;
    reply_to(*forwarded);
    return true;
  }
  reply_to(pending);
  wire::ServedRequest& served =
      RecordRequest(service->first, service->second, std::move(pending));
  FillRequest(served, publish.payload, publish.headers);
  Send(*service->second.server, scratch_message_);
  return true;
}

void BrokerCore::Answer(RequesterKind kind, ConnectionCore* requester,
                        wire::ServerMessage& message) {
  switch (kind) {
    case RequesterKind::kConnection:
      Send(*requester, message);
      return;
    case RequesterKind::kEmbedder:
      embedder_responses_.push_back(std::move(*message.mutable_response()));
      return;
    case RequesterKind::kPublisher:
      return;  // answered by PublishAnswer(), or not at all
    case RequesterKind::kCluster:
      return;  // answered through the cluster link by FinishRequest()
  }
}

wire::ConnectionList BrokerCore::ListConnections() const {
  // Bounded so that the answer stays a reasonable message however many
  // clients are connected; `truncated` says when something was left out.
  constexpr size_t kMaxListedConnections = 1000;
  constexpr size_t kMaxListedSubscriptions = 100;
  std::vector<ConnectionId> ids;
  ids.reserve(connections_.size());
  for (const auto& [id, c] : connections_) {
    if (c->state_ != ConnectionState::kClosing) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  wire::ConnectionList list;
  list.set_total_connections(ids.size());
  for (ConnectionId id : ids) {
    if (static_cast<size_t>(list.connections_size()) == kMaxListedConnections) {
      list.set_truncated(true);
      break;
    }
    const ConnectionCore& c = *connections_.at(id);
    wire::ConnectionInfo* info = list.add_connections();
    info->set_session_id(c.session_id_);
    info->set_client_name(c.client_name_);
    info->set_peer(c.peer_.address);
    info->set_protocol(std::string(c.protocol()));
    info->set_user(c.user_);
    info->set_state(!c.linked_ ? (c.polled_ ? "polled" : "detached")
                    : c.state_ == ConnectionState::kOpen ? "open"
                    : c.state_ == ConnectionState::kAwaitingAdmission
                        ? "awaiting_admission"
                        : "handshaking");
    info->set_total_subscriptions(c.subscriptions_.size());
    for (SubscriptionId sub_id : c.subscriptions_) {
      if (static_cast<size_t>(info->subscriptions_size()) ==
          kMaxListedSubscriptions) {
        list.set_truncated(true);
        break;
      }
      const Subscription* sub = index_.Find(sub_id);
      if (sub == nullptr) continue;
      wire::SubscriptionInfo* s = info->add_subscriptions();
      s->set_subscription_id(sub_id.value());
      s->set_pattern(sub->pattern);
      s->set_queue_group(sub->queue_group);
      s->set_delivered(sub->delivered);
    }
    for (const std::string& served : c.served_topics_) {
      info->add_served_topics(served);
    }
    info->set_pending_output_bytes(c.outbound_.size());
  }
  return list;
}

void BrokerCore::HandleRespond(ConnectionCore& c,
                               const wire::Respond& respond) {
  const RequestId id(respond.request_id());
  auto it = requests_.find(id);
  if (it == requests_.end() || it->second.server != &c) {
    SendError(c, respond.op_id(),
              ProtocolError(wire::UNKNOWN_REQUEST,
                            absl::StrCat(id.ToString(),
                                         " is not awaiting an answer from "
                                         "this connection (unknown, already "
                                         "answered, timed out, or its "
                                         "requester left)")));
    return;
  }
  if (respond.status() != wire::REQUEST_OK &&
      respond.status() != wire::REJECTED) {
    SendError(c, respond.op_id(),
              ProtocolError(
                  wire::INVALID_ARGUMENT,
                  absl::StrCat("a response's status must be "
                               "REQUEST_OK or REJECTED, not ",
                               wire::RequestStatus_Name(respond.status()))));
    return;
  }
  if (absl::Status s = CheckSizeAndHeaders(respond.payload(), respond.headers(),
                                           options_.max_payload_bytes());
      !s.ok()) {
    SendError(c, respond.op_id(), s);
    return;
  }
  FinishRequest(id, respond.status(), respond.message(), &respond);
}

void BrokerCore::FinishRequest(RequestId id, wire::RequestStatus status,
                               absl::string_view message,
                               const wire::Respond* respond) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  PendingRequest request = std::move(it->second);
  requests_.erase(it);
  --stats_.requests_in_flight;
  timers_.Cancel(request.timer);
  if (request.requester != nullptr) request.requester->awaiting_.erase(id);
  if (request.requester_kind == RequesterKind::kEmbedder) --embedder_requests_;
  if (request.server != nullptr) {
    request.server->serving_.erase(id);
    if (auto service = services_.find(request.topic);
        service != services_.end()) {
      service->second.pending.erase(id);
    }
  }
  if (request.requester_kind == RequesterKind::kCluster) {
    if (cluster_ != nullptr) {
      cluster_->AnswerRequest(request.reply_to, request.requester_op_id, status,
                              message, respond);
    }
    return;
  }

  if (request.requester_kind == RequesterKind::kPublisher) {
    // As with NATS request/reply: a publisher hears only an answer; when
    // none comes (timed out, server gone) its client times out by itself.
    if (respond != nullptr) PublishAnswer(request, status, message, *respond);
    return;
  }
  wire::ServerMessage& m = scratch_message_;
  m.Clear();
  wire::Response* response = m.mutable_response();
  response->set_op_id(request.requester_op_id);
  response->set_status(status);
  response->set_message(std::string(message));
  if (respond != nullptr) {
    response->set_payload(respond->payload());
    *response->mutable_headers() = respond->headers();
  }
  Answer(request.requester_kind, request.requester, m);
}

void BrokerCore::PublishAnswer(const PendingRequest& request,
                               wire::RequestStatus status,
                               absl::string_view message,
                               const wire::Respond& respond) {
  PublishOp answer;
  answer.topic = request.reply_to;
  answer.payload = respond.payload();
  for (const wire::Header& h : respond.headers()) {
    answer.headers.push_back({h.key(), h.value()});
  }
  // A rejection is told as the NATS service framework tells an error, so
  // that NATS clients (ServiceError.isServiceError in nats.js) recognise it.
  std::string why;
  if (status == wire::REJECTED) {
    why = HeaderSafe(message.empty() ? absl::string_view("rejected") : message);
    answer.headers.push_back({kServiceErrorHeader, why});
    answer.headers.push_back({kServiceErrorCodeHeader, kRejectedCode});
  }
  answer.spelling = request.reply_spelling;
  answer.spelled_topic = request.spelled_reply_to;
  Route(answer, nullptr);
}

// ---------------------------------------------------------------------------
// Services across nodes (ClusterLink)

void BrokerCore::ServiceClaimed(absl::string_view topic,
                                const absl::Status& result, absl::Time now) {
  Advance(now);
  origin_ = nullptr;
  const std::string key(topic);
  auto it = claims_.find(key);
  if (it == claims_.end()) {
    if (result.ok() && cluster_ != nullptr && !services_.contains(key)) {
      cluster_->ReleaseService(topic);
    }
    return;
  }
  const PendingClaim claim = it->second;
  claims_.erase(it);
  ConnectionCore* c = FindConnection(claim.connection);
  if (c == nullptr || c->state_ == ConnectionState::kClosing) {
    // The client left while the cluster was asked: nobody serves it.
    if (result.ok() && cluster_ != nullptr) cluster_->ReleaseService(topic);
    return;
  }
  if (result.ok()) {
    GrantService(*c, key, claim.op_id);
  } else {
    SendError(
        *c, claim.op_id,
        ProtocolError(absl::IsAlreadyExists(result) ? wire::TOPIC_ALREADY_SERVED
                                                    : wire::CLUSTER_UNAVAILABLE,
                      result.message()));
  }
  if (claim.unserve) {
    // The Unserve that came while the cluster was asked, in its turn.
    wire::Unserve unserve;
    unserve.set_op_id(claim.unserve_op_id);
    unserve.set_topic(key);
    HandleUnserve(*c, unserve);
  }
  RunDeferred();
  FlushPolls();
}

void BrokerCore::ServiceTakenOver(absl::string_view topic,
                                  absl::string_view why, absl::Time now) {
  Advance(now);
  origin_ = nullptr;
  const std::string key(topic);
  auto it = services_.find(key);
  if (it == services_.end()) return;
  ConnectionCore& server = *it->second.server;
  server.served_topics_.erase(key);
  RemoveService(key, why, /*emit_event=*/true, /*release_claim=*/false);
  SendError(server, 0,
            ProtocolError(wire::SERVICE_TAKEN_OVER,
                          absl::StrCat("this connection no longer serves '",
                                       topic, "': ", why)));
  RunDeferred();
  FlushPolls();
}

void BrokerCore::RequestFromCluster(absl::string_view origin,
                                    const ClusterCall& call, absl::Time now) {
  Advance(now);
  origin_ = nullptr;
  if (cluster_ == nullptr) return;
  const std::string topic(call.topic);
  auto service = services_.find(topic);
  if (service == services_.end()) {
    cluster_->AnswerRequest(origin, call.call_id, wire::NO_SERVER,
                            absl::StrCat("no server for topic '", topic, "'"),
                            nullptr);
    return;
  }
  if (call.payload.size() > options_.max_payload_bytes()) {
    cluster_->AnswerRequest(
        origin, call.call_id, wire::REJECTED,
        absl::StrCat("payload of ", call.payload.size(),
                     " bytes is over the serving node's limit of ",
                     options_.max_payload_bytes()),
        nullptr);
    return;
  }
  PendingRequest pending;
  pending.requester_kind = RequesterKind::kCluster;
  pending.requester = nullptr;
  pending.requester_op_id = call.call_id;
  pending.reply_to.assign(origin.data(), origin.size());
  pending.timeout = RequestTimeout(call.timeout_ms);
  wire::ServedRequest& served =
      RecordRequest(service->first, service->second, std::move(pending));
  FillRequest(served, call.payload, call.headers);
  Send(*service->second.server, scratch_message_);
  RunDeferred();
  FlushPolls();
}

void BrokerCore::AnswerFromCluster(uint64_t call_id, wire::RequestStatus status,
                                   absl::string_view message,
                                   const wire::Respond* respond,
                                   absl::Time now) {
  Advance(now);
  origin_ = nullptr;
  auto it = requests_.find(RequestId(call_id));
  if (it == requests_.end() || it->second.server != nullptr) return;
  if (status == wire::TIMED_OUT) ++stats_.requests_timed_out;
  FinishRequest(it->first, status, message, respond);
  RunDeferred();
  FlushPolls();
}

}  // namespace manifold::internal
