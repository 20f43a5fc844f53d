// File: broker/cluster_link.h
// -----------------------------------------------------------------------------
//
// The seam between a Broker and the component that joins it to other brokers
// (a cluster, docs/cluster.md). The Broker tells the link what its own
// clients are interested in and what they publish; the link tells the Broker
// what arrived from other nodes (Broker::PublishFromCluster). The link
// decides, from the interest the other nodes announced, whether a message
// leaves this node at all, so a broker whose clients' topics nobody else
// wants sends nothing.
//
// ClusterRouter (broker/cluster/cluster_router.h) is the implementation over
// Redis. Tests may attach their own.
//
// Example:
//
//   Broker broker(options);
//   ClusterRouter router(broker, cluster_options);  // attaches itself
//   // A client of this node subscribes to "chat/*": the Broker calls
//   // router.OnLocalInterest("chat/*", true). A client publishes to
//   // "chat/x": after delivering it locally the Broker calls
//   // router.OnLocalPublish(op), which sends it to the nodes that want it.
//
// Thread safety: none; the Broker calls its link from its own thread.

#ifndef MANIFOLD_BROKER_CLUSTER_LINK_H_
#define MANIFOLD_BROKER_CLUSTER_LINK_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "broker/protocol_codec.h"

namespace manifold {

class ClusterLink {
 public:
  virtual ~ClusterLink() = default;

  // `pattern` (a subscription's pattern as given, wildcards included) got
  // its first subscription on this node (`added`), or lost its last one: its
  // first broadcast subscription when `queue_group` is empty, else its first
  // member of that queue group. Called once per change, in order; an entry
  // is never reported added twice without a removal in between.
  virtual void OnLocalInterest(absl::string_view pattern,
                               absl::string_view queue_group, bool added) = 0;

  // A client of this node or the embedder publishes `publish`: the Broker is
  // about to deliver it here (asking TakesGroup for each queue group), then
  // calls OnLocalPublish.
  virtual void BeginPublish(const PublishOp& publish) = 0;

  // Whether this node's members of queue group `queue_group` on `pattern`
  // take the message being delivered (each message goes to one member
  // cluster-wide), or a member on another node does. Asked once per group
  // and message, between BeginPublish and OnLocalPublish for a local
  // message, inside PublishFromCluster for one from another node; true for
  // any other message (the broker's own).
  virtual bool TakesGroup(absl::string_view pattern,
                          absl::string_view queue_group) = 0;

  // A message a client of this node or the embedder published, after the
  // Broker delivered it to this node's subscribers. Not called for what
  // arrived through PublishFromCluster (no echo back into the cluster).
  // Returns how many other nodes it was sent to (counted as recipients: a
  // NATS request reaching a responder on another node is not "no
  // responders"). The views in `publish` are valid only during the call.
  virtual uint64_t OnLocalPublish(const PublishOp& publish) = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_CLUSTER_LINK_H_
