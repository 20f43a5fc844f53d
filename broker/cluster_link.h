// File: broker/cluster_link.h
// -----------------------------------------------------------------------------
//
// The seam between a Broker and the component that joins it to other brokers
// (a cluster, docs/cluster.md). The Broker tells the link what its own
// clients are interested in and what they publish; the link tells the Broker
// what arrived from other nodes (Broker::PublishFromCluster). The link
// decides, from the interest the other nodes announced, whether a message
// leaves this node at all, so a broker whose clients' topics nobody else
// wants sends nothing. For services the link keeps one server per topic
// cluster-wide: the Broker grants a Serve once the link claimed the topic
// (ClaimService, answered by Broker::ServiceClaimed), and sends a request
// for a topic served on another node through it (ForwardRequest, answered
// by Broker::AnswerFromCluster).
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
#include "absl/types/span.h"
#include "broker/protocol_codec.h"
#include "core/manifold.pb.h"

namespace manifold {

// A request made on this node for a topic a server on another node holds
// (ClusterLink::ForwardRequest), or one that arrived from another node for
// a topic a server of this node holds (Broker::RequestFromCluster). The
// views are valid only during the call.
struct ClusterCall {
  // The requesting node's id for it: the answer names it.
  uint64_t call_id = 0;
  absl::string_view topic;
  absl::string_view payload;
  absl::Span<const HeaderView> headers;
  uint32_t timeout_ms = 0;
  uint64_t requester_session_id = 0;
};

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

  // --- Services: one server per topic cluster-wide ---------------------------

  // A client of this node asks to serve literal `topic`, which no
  // connection of this node serves or is claiming. Returns false when the
  // link cannot ask the cluster now (the Serve then fails with
  // CLUSTER_UNAVAILABLE); otherwise it answers exactly once, later, with
  // Broker::ServiceClaimed(topic, ...), never from inside this call.
  virtual bool ClaimService(absl::string_view topic) = 0;

  // This node no longer serves `topic`, which ServiceClaimed granted (its
  // server stopped or left, or the claim came back after the client did).
  virtual void ReleaseService(absl::string_view topic) = 0;

  // A request for literal `call.topic`, which no connection of this node
  // serves. Returns the name of the node whose server holds the topic,
  // after sending the request there: the answer comes back through
  // Broker::AnswerFromCluster(call.call_id, ...) (SERVER_GONE when that
  // node goes away first). Returns "" when no node is known to serve it.
  // The view is valid until the next call.
  virtual absl::string_view ForwardRequest(const ClusterCall& call) = 0;

  // What became of a request node `origin` forwarded here
  // (Broker::RequestFromCluster): the server's answer when `respond` is not
  // null, else NO_SERVER, TIMED_OUT or SERVER_GONE with `message`.
  virtual void AnswerRequest(absl::string_view origin, uint64_t call_id,
                             wire::RequestStatus status,
                             absl::string_view message,
                             const wire::Respond* respond) = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_CLUSTER_LINK_H_
