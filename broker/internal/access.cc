// The Broker's access control: the checks for connections admitted with
// permissions (Broker::Admit with a Grant; the rules are in
// broker/permissions.h). Connections without permissions never get here:
// every check site tests ConnectionCore::permissions_ first.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/internal/broker_core.h"
#include "core/status.h"

namespace manifold::internal {
namespace {

// "permission denied: publish to 'x' (user 'alice')": Check()'s message,
// with the user when there is one.
std::string DeniedText(const absl::Status& denied, const std::string& user) {
  if (user.empty()) return std::string(denied.message());
  return absl::StrCat(denied.message(), " (user '", user, "')");
}

}  // namespace

bool BrokerCore::PublishPermitted(ConnectionCore& c, const PublishOp& publish) {
  // Publishers mostly repeat their topic, and a PermissionSet never changes:
  // a topic allowed once stays allowed.
  if (publish.topic != c.last_permitted_topic_) {
    if (!Permitted(c, AccessOperation::kPublish, publish.topic,
                   publish.op_id)) {
      return false;
    }
    c.last_permitted_topic_.assign(publish.topic.data(), publish.topic.size());
  }
  // A publish with reply_to to a served topic is also a request to its
  // server (RequestByPublish): that needs the request permission too.
  if (!publish.reply_to.empty() && services_.contains(publish.topic)) {
    return Permitted(c, AccessOperation::kRequest, publish.topic,
                     publish.op_id);
  }
  return true;
}

bool BrokerCore::Permitted(ConnectionCore& c, AccessOperation operation,
                           absl::string_view topic, uint64_t op_id) {
  absl::Status denied = c.permissions_->Check(operation, topic);
  if (ABSL_PREDICT_TRUE(denied.ok())) return true;
  ++stats_.permission_denials;
  SendError(
      c, op_id,
      ProtocolError(wire::PERMISSION_DENIED, DeniedText(denied, c.user_)));
  return false;
}

void BrokerCore::Regrant(absl::FunctionRef<std::shared_ptr<const PermissionSet>(
                             absl::string_view user)>
                             permissions_of,
                         absl::Time now) {
  Advance(now);
  std::vector<ConnectionId> ids;
  ids.reserve(connections_.size());
  for (const auto& [id, c] : connections_) ids.push_back(id);
  for (const ConnectionId id : ids) {
    ConnectionCore* c = FindConnection(id);
    if (c == nullptr || c->state_ != ConnectionState::kOpen) continue;
    c->permissions_ = permissions_of(c->user_);
    c->last_permitted_topic_.clear();
    RecheckHoldings(*c);
  }
  RunDeferred();
}

void BrokerCore::RecheckHoldings(ConnectionCore& c) {
  const std::vector<SubscriptionId> held(c.subscriptions_.begin(),
                                         c.subscriptions_.end());
  for (const SubscriptionId id : held) {
    Subscription* sub = index_.Find(id);
    if (sub == nullptr) continue;
    std::shared_ptr<const PermissionSet::ReceiveFilter> filter;
    if (c.permissions_ != nullptr) {
      absl::Status denied =
          c.permissions_->Check(AccessOperation::kSubscribe, sub->pattern);
      if (!denied.ok()) {
        const std::string reason = DeniedText(denied, c.user_);
        ++stats_.permission_denials;
        ++stats_.operation_errors;
        wire::ServerMessage& m = scratch_message_;
        m.Clear();
        wire::Error* error = m.mutable_error();
        error->set_code(wire::PERMISSION_DENIED);
        error->set_message(
            absl::StrCat("subscription ", id.ToString(), " ended: ", reason));
        error->set_subscription_id(id.value());
        error->set_pattern(sub->pattern);
        Send(c, m);
        c.subscriptions_.erase(id);
        RemoveSubscription(*sub, /*emit_event=*/true, reason);
        continue;
      }
      filter = c.permissions_->FilterFor(sub->pattern);
    }
    // A replaying subscription counts once, whatever its filter.
    if (sub->filter != nullptr && !sub->stream_only) --filtered_subscriptions_;
    if (filter != nullptr && !sub->stream_only) ++filtered_subscriptions_;
    sub->filter = std::move(filter);
  }
  if (c.permissions_ == nullptr) return;
  const std::vector<std::string> served(c.served_topics_.begin(),
                                        c.served_topics_.end());
  for (const std::string& topic : served) {
    absl::Status denied = c.permissions_->Check(AccessOperation::kServe, topic);
    if (denied.ok()) continue;
    ++stats_.permission_denials;
    ++stats_.operation_errors;
    const std::string reason = DeniedText(denied, c.user_);
    wire::ServerMessage& m = scratch_message_;
    m.Clear();
    m.mutable_error()->set_code(wire::PERMISSION_DENIED);
    m.mutable_error()->set_message(
        absl::StrCat("serving '", topic, "' ended: ", reason));
    Send(c, m);
    c.served_topics_.erase(topic);
    RemoveService(topic,
                  absl::StrCat("server ", c.Describe(),
                               " may no longer serve '", topic, "'"),
                  /*emit_event=*/true);
  }
}

}  // namespace manifold::internal
