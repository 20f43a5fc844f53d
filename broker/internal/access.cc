// The Broker's access control: the checks for connections admitted with
// permissions (Broker::Admit with a Grant; the rules are in
// broker/permissions.h). Connections without permissions never get here:
// every check site tests ConnectionCore::permissions_ first.

#include <string>

#include "absl/strings/str_cat.h"
#include "broker/internal/broker_core.h"
#include "core/status.h"

namespace manifold::internal {

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
  if (!c.user_.empty()) {
    // "permission denied: publish to 'x' (user 'alice')".
    denied = ProtocolError(
        wire::PERMISSION_DENIED,
        absl::StrCat(denied.message(), " (user '", c.user_, "')"));
  }
  SendError(c, op_id, denied);
  return false;
}

}  // namespace manifold::internal
