// The Broker's pub/sub: subscribing, publishing and routing a message to its
// subscribers and queue groups.

#include <algorithm>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "broker/internal/broker_core.h"
#include "broker/internal/message_checks.h"
#include "broker/internal/native_codec.h"
#include "broker/sys_topics.h"
#include "core/headers.h"
#include "core/status.h"
#include "core/topic.h"

namespace manifold::internal {
namespace {

// Longest queue group name accepted.
constexpr size_t kMaxQueueGroupBytes = 256;

absl::Status ValidateQueueGroup(absl::string_view group) {
  if (group.size() > kMaxQueueGroupBytes) {
    return ProtocolError(
        wire::INVALID_ARGUMENT,
        absl::StrCat("queue group is ", group.size(),
                     " bytes long; the limit is ", kMaxQueueGroupBytes));
  }
  for (unsigned char c : group) {
    if (c <= 0x20 || c >= 0x7f) {
      return ProtocolError(
          wire::INVALID_ARGUMENT,
          absl::StrCat("queue group '", group.substr(0, 64),
                       "' contains a space or non-printable character"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void BrokerCore::HandleSubscribe(ConnectionCore& c,
                                 const wire::Subscribe& subscribe) {
  const uint64_t op_id = subscribe.op_id();
  if (absl::Status s = ValidateTopic(subscribe.pattern(),
                                     TopicRole::kSubscription, topic_limits_);
      !s.ok()) {
    SendError(c, op_id, s);
    return;
  }
  if (absl::Status s = ValidateQueueGroup(subscribe.queue_group()); !s.ok()) {
    SendError(c, op_id, s);
    return;
  }
  if (c.subscriptions_.size() >= options_.max_subscriptions_per_connection()) {
    SendError(c, op_id,
              ProtocolError(
                  wire::TOO_MANY_SUBSCRIPTIONS,
                  absl::StrCat("connection has ", c.subscriptions_.size(),
                               " subscriptions; the limit is ",
                               options_.max_subscriptions_per_connection())));
    return;
  }
  std::shared_ptr<const PermissionSet::ReceiveFilter> filter;
  if (ABSL_PREDICT_FALSE(c.permissions_ != nullptr)) {
    if (!Permitted(c, AccessOperation::kSubscribe, subscribe.pattern(),
                   op_id)) {
      return;
    }
    filter = c.permissions_->FilterFor(subscribe.pattern());
  }
  Stream* replayed = nullptr;
  // A replay only if a stream stores all the pattern matches: otherwise an
  // ordinary subscription (see Replay.if_stored).
  const bool plain_unless_stored = ABSL_PREDICT_FALSE(
      subscribe.has_replay() && subscribe.replay().if_stored() &&
      !subscribe.has_consumer() && StreamStoringAll(subscribe) == nullptr);
  if (ABSL_PREDICT_FALSE((subscribe.has_replay() || subscribe.has_consumer()) &&
                         !plain_unless_stored)) {
    if (!subscribe.queue_group().empty()) {
      SendError(c, op_id,
                ProtocolError(wire::INVALID_ARGUMENT,
                              "a subscription that replays a stream cannot "
                              "be in a queue group"));
      return;
    }
    absl::StatusOr<Stream*> stream = StreamForReplay(subscribe);
    if (!stream.ok()) {
      SendError(c, op_id, stream.status());
      return;
    }
    replayed = *stream;
    if (subscribe.has_consumer()) {
      if (absl::Status s = CheckConsumer(*replayed, subscribe); !s.ok()) {
        SendError(c, op_id, s);
        return;
      }
    }
  }
  const SubscriptionId id = subscription_ids_.Next();
  if (ABSL_PREDICT_FALSE(filter != nullptr || replayed != nullptr)) {
    ++filtered_subscriptions_;
  }
  Subscription& sub =
      index_.Add(id, &c, subscribe.pattern(), subscribe.queue_group());
  sub.filter = std::move(filter);
  sub.stream_only = replayed != nullptr;
  if (ABSL_PREDICT_FALSE(cluster_ != nullptr)) CountInterest(sub, +1);
  c.subscriptions_.insert(id);
  ++stats_.subscriptions;
  // It may take a push consumer's messages: consumers are served at the end
  // of the turn.
  if (ABSL_PREDICT_FALSE(!streams_.empty())) cursors_waiting_ = true;
  SendAck(c, op_id, id.value(), /*delivered=*/0,
          replayed != nullptr && !subscribe.has_consumer()
              ? ReplayPosition(*replayed, subscribe.replay())
              : std::nullopt);
  // After the Ack, so that the client knows the id its replay arrives on.
  if (ABSL_PREDICT_FALSE(replayed != nullptr)) {
    if (subscribe.has_consumer()) {
      BindConsumer(*replayed, subscribe, sub);
    } else {
      c.codec_->StartedReplay(id, sub.pattern);
      StartReplay(*replayed, subscribe.replay(), sub);
    }
  }

  wire::BrokerEvent event;
  wire::SubscriptionAdded* added = event.mutable_subscription_added();
  added->set_session_id(c.session_id_);
  added->set_subscription_id(id.value());
  added->set_pattern(subscribe.pattern());
  added->set_queue_group(subscribe.queue_group());
  added->set_spelling(subscribe.spelling());
  Emit(std::move(event), sys_topics::kSubscriptionAdded);
}

void BrokerCore::HandleUnsubscribe(ConnectionCore& c,
                                   const wire::Unsubscribe& unsubscribe) {
  if (unsubscribe.subscription_id() == 0 && !unsubscribe.pattern().empty()) {
    HandleUnsubscribeByPattern(c, unsubscribe);
    return;
  }
  const SubscriptionId id(unsubscribe.subscription_id());
  Subscription* sub = index_.Find(id);
  if (!c.subscriptions_.contains(id) || sub == nullptr) {
    SendError(c, unsubscribe.op_id(),
              ProtocolError(wire::UNKNOWN_SUBSCRIPTION,
                            absl::StrCat("no subscription ", id.ToString(),
                                         " on this connection")));
    return;
  }
  SendAck(c, unsubscribe.op_id());
  if (unsubscribe.max_messages() > sub->delivered) {
    sub->max_messages = unsubscribe.max_messages();
    return;
  }
  c.subscriptions_.erase(id);
  RemoveSubscription(*sub, /*emit_event=*/true);
}

void BrokerCore::HandleUnsubscribeByPattern(
    ConnectionCore& c, const wire::Unsubscribe& unsubscribe) {
  std::vector<Subscription*> matching;
  for (const SubscriptionId id : c.subscriptions_) {
    Subscription* sub = index_.Find(id);
    if (sub != nullptr && sub->queue_group.empty() &&
        sub->pattern == unsubscribe.pattern()) {
      matching.push_back(sub);
    }
  }
  if (matching.empty()) {
    SendError(c, unsubscribe.op_id(),
              ProtocolError(wire::UNKNOWN_SUBSCRIPTION,
                            absl::StrCat("no subscription to '",
                                         unsubscribe.pattern().substr(0, 128),
                                         "' on this connection")));
    return;
  }
  SendAck(c, unsubscribe.op_id());
  for (Subscription* sub : matching) {
    c.subscriptions_.erase(sub->id);
    RemoveSubscription(*sub, /*emit_event=*/true);
  }
}

void BrokerCore::RemoveSubscription(Subscription& sub, bool emit_event,
                                    absl::string_view reason) {
  wire::BrokerEvent event;
  if (emit_event) {
    wire::SubscriptionRemoved* removed = event.mutable_subscription_removed();
    removed->set_session_id(sub.connection->session_id_);
    removed->set_subscription_id(sub.id.value());
    removed->set_pattern(sub.pattern);
    removed->set_queue_group(sub.queue_group);
    removed->set_reason(std::string(reason));
  }
  --stats_.subscriptions;
  if (ABSL_PREDICT_FALSE(sub.filter != nullptr || sub.stream_only)) {
    --filtered_subscriptions_;
  }
  if (ABSL_PREDICT_FALSE(sub.stream_only)) {
    cursors_to_sweep_ = true;
    LeaveConsumer(sub.id);
    sub.connection->codec_->EndedReplay(sub.id);
  }
  if (ABSL_PREDICT_FALSE(cluster_ != nullptr)) CountInterest(sub, -1);
  index_.Remove(sub);
  if (emit_event) Emit(std::move(event), sys_topics::kSubscriptionRemoved);
}

void BrokerCore::HandlePublish(ConnectionCore& c, const PublishOp& publish) {
  const uint64_t op_id = publish.op_id;
  if (IsReserved(publish.topic)) {
    HandleReservedPublish(c, publish);
    return;
  }
  if (const size_t size = MessageSize(publish);
      size > options_.max_payload_bytes()) {
    SendError(
        c, op_id,
        ProtocolError(wire::PAYLOAD_TOO_LARGE,
                      absl::StrCat("payload of ", size,
                                   " bytes (headers included) exceeds "
                                   "the limit of ",
                                   options_.max_payload_bytes(), " bytes")));
    return;
  }
  // A topic in the routing cache was validated when it got there. Most
  // publishers repeat their topic, so each connection remembers its last one.
  absl::Span<SubscriptionNode* const> nodes;
  bool cached = false;
  if (c.last_topic_epoch_ == index_.cache_epoch() &&
      publish.topic == c.last_topic_) {
    nodes = c.last_topic_nodes_;
    cached = true;
  } else if (const std::vector<SubscriptionNode*>* hit =
                 index_.FindCached(publish.topic)) {
    nodes = *hit;
    cached = true;
    c.last_topic_.assign(publish.topic.data(), publish.topic.size());
    c.last_topic_nodes_ = nodes;
    c.last_topic_epoch_ = index_.cache_epoch();
  }
  if (!cached) {
    if (absl::Status s =
            ValidateTopic(publish.topic, TopicRole::kPublish, topic_limits_);
        !s.ok()) {
      SendError(c, op_id, s);
      return;
    }
  }
  for (const HeaderView& h : publish.headers) {
    if (absl::Status s = ValidateHeader(h.key, h.value); !s.ok()) {
      SendError(c, op_id, s);
      return;
    }
  }
  if (ABSL_PREDICT_FALSE(c.permissions_ != nullptr) &&
      !PublishPermitted(c, publish)) {
    return;
  }
  if (!publish.reply_to.empty()) {
    if (absl::Status s =
            ValidateTopic(publish.reply_to, TopicRole::kLiteral, topic_limits_);
        !s.ok()) {
      SendError(
          c, op_id,
          ProtocolError(WireCode(s), absl::StrCat("reply_to: ", s.message())));
      return;
    }
    if (RefuseRequestByPublish(c, publish)) return;
  }
  // Nothing above touched the index, so `nodes` is still valid.
  uint64_t delivered;
  if (ABSL_PREDICT_TRUE(cluster_ == nullptr)) {
    delivered = cached ? RouteTo(nodes, publish, &c) : Route(publish, &c);
  } else {
    cluster_->BeginPublish(publish);
    delivered = cached ? RouteTo(nodes, publish, &c) : Route(publish, &c);
    delivered += cluster_->OnLocalPublish(publish);
  }
  // With a reply_to, a publish to a served topic is also a request to its
  // server (a NATS request reaches native services); the server counts as
  // one recipient.
  if (ABSL_PREDICT_FALSE(!publish.reply_to.empty())) {
    const bool served = RequestByPublish(c, publish);
    delivered += served;
    // A publish with a reply subject to a stored topic that nobody serves
    // is answered as JetStream answers one: once it is durable.
    if (ABSL_PREDICT_FALSE(!streams_.empty()) &&
        CaptureForStreams(&c, publish, delivered, /*js_reply=*/!served)) {
      return;
    }
    if (publish.ack) SendAck(c, op_id, 0, delivered);
    if (delivered == 0 && publish.no_responders) NotifyNoResponders(c, publish);
    return;
  }
  if (ABSL_PREDICT_FALSE(!streams_.empty()) &&
      CaptureForStreams(&c, publish, delivered, /*js_reply=*/false)) {
    return;  // the ack waits until the message is durable
  }
  if (publish.ack) SendAck(c, op_id, 0, delivered);
}

void BrokerCore::HandleReservedPublish(ConnectionCore& c,
                                       const PublishOp& publish) {
  // NATS JetStream's API and acks are served by the broker.
  if (HandleJetStream(c, publish)) return;
  SendError(c, publish.op_id,
            ProtocolError(wire::RESERVED_TOPIC,
                          absl::StrCat("topic '", publish.topic.substr(0, 64),
                                       "' is reserved for the broker")));
}

uint64_t BrokerCore::Route(const PublishOp& publish,
                           ConnectionCore* publisher) {
  // '*' only ever appears as a whole wildcard segment in a valid topic.
  const bool wildcard = publish.topic.find('*') != absl::string_view::npos;
  return RouteTo(wildcard ? index_.MatchPattern(publish.topic)
                          : index_.Match(publish.topic),
                 publish, publisher);
}

uint64_t BrokerCore::RouteTo(absl::Span<SubscriptionNode* const> nodes,
                             const PublishOp& publish,
                             ConnectionCore* publisher) {
  ++stats_.publishes;
  if (nodes.empty()) return 0;
  SharedMessage message(publish, encode_scratch_, ++last_message_id_);
  message.set_single_recipient(
      nodes.size() == 1 &&
      nodes[0]->subscribers().size() + nodes[0]->groups().size() == 1);
  return ABSL_PREDICT_TRUE(filtered_subscriptions_ == 0)
             ? DeliverToNodes<false>(nodes, message, publisher)
             : DeliverToNodes<true>(nodes, message, publisher);
}

template <bool kFiltered>
uint64_t BrokerCore::DeliverToNodes(absl::Span<SubscriptionNode* const> nodes,
                                    SharedMessage& message,
                                    const ConnectionCore* publisher) {
  uint64_t delivered = 0;
  for (SubscriptionNode* node : nodes) {
    for (Subscription* sub : node->subscribers()) {
      delivered += DeliverTo<kFiltered>(*sub, message, publisher);
    }
    for (auto& group : node->groups()) {
      delivered += DeliverToGroup<kFiltered>(*group, message, publisher);
    }
  }
  return delivered;
}

template <bool kFiltered>
bool BrokerCore::DeliverTo(Subscription& sub, SharedMessage& message,
                           const ConnectionCore* publisher) {
  ConnectionCore& c = *sub.connection;
  if (c.state_ != ConnectionState::kOpen) return false;
  if (&c == publisher && !c.echo_) return false;
  if (kFiltered &&
      (sub.stream_only ||
       (sub.filter != nullptr &&
        !sub.filter->Allows(message.publish().topic, sub.pattern)))) {
    return false;
  }
  if (c.outbound_.size() >= c.outbound_limit_ && !HasRoomForDelivery(c)) {
    return false;
  }
  if (c.native_) {
    NativeCodec::EncodeNativeDelivery(message, sub.id, c.outbound_);
  } else {
    c.codec_->EncodeDelivery(message, sub.id, c.outbound_);
  }
  ++stats_.deliveries;
  ++stats_.messages_out;
  MarkChanged(c);
  // Removal waits until routing is over: it would change the lists that are
  // being iterated.
  if (++sub.delivered == sub.max_messages) to_unsubscribe_.push_back(sub.id);
  return true;
}

template <bool kFiltered>
bool BrokerCore::DeliverToGroup(QueueGroup& group, SharedMessage& message,
                                const ConnectionCore* publisher) {
  // In a cluster, one node's members take each message. (A broker with a
  // cluster link always routes on the checked path: see AttachCluster.)
  if (kFiltered && ABSL_PREDICT_FALSE(cluster_ != nullptr) &&
      !group.members.empty() &&
      !cluster_->TakesGroup(group.members.front()->pattern, group.name)) {
    return false;
  }
  // Round-robin over the members that can take the message now; a member over
  // its output limit is passed over while another can take it.
  const size_t n = group.members.size();
  Subscription* full = nullptr;
  size_t full_position = 0;
  for (size_t k = 0; k < n; ++k) {
    const size_t position = (group.next + k) % n;
    Subscription* sub = group.members[position];
    const ConnectionCore& c = *sub->connection;
    if (c.state_ != ConnectionState::kOpen) continue;
    if (&c == publisher && !c.echo_) continue;
    // A member whose user may not receive this message is passed over.
    if (kFiltered && sub->filter != nullptr &&
        !sub->filter->Allows(message.publish().topic, sub->pattern)) {
      continue;
    }
    // A member whose link is lost takes messages only when no other can.
    if (c.outbound_.size() >= options_.max_outbound_bytes() || c.detached_) {
      if (full == nullptr) {
        full = sub;
        full_position = position;
      }
      continue;
    }
    group.next = (position + 1) % n;
    return DeliverTo<kFiltered>(*sub, message, publisher);
  }
  if (full == nullptr) return false;
  // Every eligible member is full or without a link. A full linked member:
  // the policy decides (drop or disconnect). A member without a link whose
  // buffer is full has just ended: the next one in turn may still hold the
  // message, which is lost only when none can.
  for (size_t k = 0; k < n; ++k) {
    const size_t position = (full_position + k) % n;
    Subscription* sub = group.members[position];
    const ConnectionCore& c = *sub->connection;
    if (c.state_ != ConnectionState::kOpen) continue;
    if (&c == publisher && !c.echo_) continue;
    // A member whose user may not receive this message is passed over.
    if (kFiltered && sub->filter != nullptr &&
        !sub->filter->Allows(message.publish().topic, sub->pattern)) {
      continue;
    }
    group.next = (position + 1) % n;
    if (DeliverTo<kFiltered>(*sub, message, publisher)) return true;
    if (!c.detached_) return false;
  }
  return false;
}

bool BrokerCore::HasRoomForDelivery(ConnectionCore& c) {
  if (c.outbound_.size() < c.outbound_limit_) return true;
  if (c.detached_) {
    // No reader to wait for: a session whose link is lost never stalls
    // anyone; past its buffer it ends, and its client learns why when it
    // comes back.
    EndOverflowedSession(c);
    return false;
  }
  switch (options_.slow_consumer_policy()) {
    case BrokerOptions::BACKPRESSURE:
      if (c.dropping_) break;  // past max_stall with drop_after_max_stall
      if (c.outbound_.size() >= hard_outbound_limit_) {
        CloseSlowConsumer(c);
        return false;
      }
      HoldBack(c);  // delivered; its publisher waits until `c` drains
      return true;
    case BrokerOptions::DROP:
      break;
    case BrokerOptions::DISCONNECT:
    default:
      CloseSlowConsumer(c);
      return false;
  }
  ++stats_.dropped_deliveries;
  return false;
}

void BrokerCore::NotifyNoResponders(ConnectionCore& publisher,
                                    const PublishOp& publish) {
  // As NATS does: a 503 status message on the reply topic, delivered only to
  // the publisher's own subscriptions (its reply inbox).
  PublishOp notice;
  notice.topic = publish.reply_to;
  notice.headers.push_back({"Status", "503"});
  notice.has_header_block = true;
  SharedMessage message(notice, encode_scratch_, ++last_message_id_);
  for (SubscriptionNode* node : index_.Match(publish.reply_to)) {
    for (Subscription* sub : node->subscribers()) {
      if (sub->connection == &publisher) DeliverTo(*sub, message, nullptr);
    }
    for (auto& group : node->groups()) {
      for (Subscription* sub : group->members) {
        if (sub->connection == &publisher) {
          DeliverTo(*sub, message, nullptr);
          break;
        }
      }
    }
  }
}

}  // namespace manifold::internal
