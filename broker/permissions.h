// File: broker/permissions.h
// -----------------------------------------------------------------------------
//
// Per-user permissions, as the Broker enforces them. A `Permissions` message
// (broker/permissions.proto, where the rules are stated) is compiled once
// into an immutable PermissionSet, shared by every connection of that user:
//
//   Permissions p;
//   p.mutable_publish()->add_allow("orders/**");
//   p.mutable_subscribe()->add_deny("orders/*/audit");
//   absl::StatusOr<std::shared_ptr<const PermissionSet>> set =
//       PermissionSet::Compile(p);
//   if (!set.ok()) return set.status();   // a pattern that does not parse
//   broker.Admit(id, Grant{"alice", *set}, now);
//
// The Broker checks each publish, subscribe, serve and request of the
// connection against it and answers a violation with PERMISSION_DENIED
// naming the operation and the topic; the connection stays open. A
// connection admitted without permissions (Admit(id, now), or no admission
// at all) is not checked, and costs nothing.
//
// Deliveries: a subscription that overlaps a denied pattern gets a receive
// filter, and a message is delivered to it only if its user may receive
// every topic the message could stand for within the subscription: for a
// message published to a literal topic, that topic; for one published to a
// pattern T on subscription P, every topic matched by both T and P (no deny
// pattern may share a topic with them). A queue group passes over members
// that may not receive a message. docs/permissions.md has the whole story,
// sessions included.
//
// Thread safety: a PermissionSet is immutable and may be shared across
// threads and brokers.

#ifndef MANIFOLD_BROKER_PERMISSIONS_H_
#define MANIFOLD_BROKER_PERMISSIONS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/permissions.pb.h"  // IWYU pragma: export
#include "core/pattern_set.h"
#include "core/topic.h"

namespace manifold {

// The operations a PermissionSet rules on.
enum class AccessOperation { kPublish, kSubscribe, kServe, kRequest };

// "publish", "subscribe", "serve", "request".
absl::string_view AccessOperationName(AccessOperation operation);

class PermissionSet {
 public:
  // For a subscription that overlaps denied topics: says which deliveries
  // it may have. Immutable.
  class ReceiveFilter {
   public:
    explicit ReceiveFilter(std::vector<std::string> denied);
    // True if a message published to `topic` may be delivered to the
    // subscription with pattern `subscription`. `topic` may be a pattern.
    // REQUIRES: both passed ValidateTopic().
    bool Allows(absl::string_view topic, absl::string_view subscription) const;
    const std::vector<std::string>& denied() const { return denied_; }

   private:
    std::vector<std::string> denied_;
    PatternSet denied_set_;
  };

  // Checks every pattern of `permissions` (ValidateTopic within `limits`)
  // and builds the set. Returns INVALID_ARGUMENT naming the operation, the
  // list and the pattern at fault.
  static absl::StatusOr<std::shared_ptr<const PermissionSet>> Compile(
      const Permissions& permissions, const TopicLimits& limits = {});

  // Returns OK, or PERMISSION_DENIED ("permission denied: publish to
  // 'orders/eu/audit'"). For publish `topic` may be a pattern, and for
  // subscribe it is one; serve and request take literal topics.
  // REQUIRES: `topic` passed ValidateTopic() for the operation.
  absl::Status Check(AccessOperation operation, absl::string_view topic) const;

  // For a subscription to `pattern` that Check() allowed: the filter its
  // deliveries need, or nullptr when it needs none (no deny pattern shares a
  // topic with it).
  std::shared_ptr<const ReceiveFilter> FilterFor(
      absl::string_view pattern) const;

  // Whether "$sys/..." may be subscribed to and asked.
  bool read_sys() const { return read_sys_; }

  // The message it was compiled from.
  const Permissions& source() const { return source_; }

 private:
  struct Rules {
    PatternSet allow;
    PatternSet deny;
    bool empty() const { return allow.empty() && deny.empty(); }
  };

  PermissionSet() = default;
  const Rules& RulesFor(AccessOperation operation) const;
  bool Allowed(AccessOperation operation, absl::string_view topic) const;

  Permissions source_;
  Rules publish_, subscribe_, serve_, request_;
  bool read_sys_ = false;
};

// Who a connection is, as the embedder admits it (Broker::Admit).
struct Grant {
  // Shown in events, $sys/connections and error messages; may be empty.
  std::string user;
  // What it may do; nullptr: anything, unchecked.
  std::shared_ptr<const PermissionSet> permissions;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_PERMISSIONS_H_
