// File: broker/cluster/cluster_router.h
// -----------------------------------------------------------------------------
//
// Joins a Broker to other brokers through Redis (docs/cluster.md): clients of
// any node see one bus. A ClusterRouter is the node's ClusterLink
// (broker/cluster_link.h) and, like the Broker, a state machine without I/O:
// it speaks RESP over two links to one Redis server, whose bytes the embedder
// moves, and reads time only from its arguments.
//
//  - The subscriber link (RESP2 subscribe mode) listens: to the control
//    channel every node shares, to this node's own channel, and, with
//    PSUBSCRIBE, to the topics this node's clients subscribe to (each
//    pattern translated to a Redis glob, special characters escaped).
//  - The publisher link talks: messages that another node wants, the
//    node's interest as it changes, heartbeats.
//
// A node sends a message to Redis only when another node announced interest
// that matches it: on its topic's channel (<prefix>:t:<topic>), or, for a
// publish to a wildcard pattern and for answers to a request from another
// node, on each interested node's own channel (<prefix>:n:<node>).
// Services are one server per topic cluster-wide: a node claims a topic in
// a registry of Redis keys (<prefix>:svc:<topic>, kept alive by its
// heartbeats, gone two heartbeats after it dies) before the Broker grants
// the Serve, announces what it holds, and requests for a topic served on
// another node go to that node's own channel and their answers back. A message
// arriving on several of a node's globs is taken once; what a glob matched
// too much is left out by the Broker's exact matching; a node's own messages
// never come back to its clients. Replies reach the requester's node from the
// first request on: a message carries its origin node, and an answer to its
// reply_to goes straight to that node's channel. For a queue group with
// members on several nodes, the publishing node picks which node's members
// take each message (in turn) and names it in the message. What a node has
// for one channel in one turn goes out as one PUBLISH, closed when the
// embedder asks for PendingOutput. With `bridges`, Redis channels of other
// applications map to topics and back (RedisBridge).
//
// Example (what transports/cluster does on each loop):
//
//   ClusterRouter router(broker, options);   // attaches itself to `broker`
//   // connect two TCP links to Redis; once each is up:
//   router.OnConnected(RedisLink::kSubscriber, now);
//   router.OnConnected(RedisLink::kPublisher, now);
//   loop {
//     // bytes read from a link:
//     if (!router.Receive(link, bytes, now).ok()) { close; reconnect later }
//     // a link was lost: router.OnDisconnected(link, why, now); reconnect
//     router.Tick(now);                    // heartbeats, expiring nodes
//     // write router.PendingOutput(link), then router.Consume(link, n)
//     // wait at most until router.NextDeadline()
//   }
//
// Thread safety: none. Call it on the Broker's thread.

#ifndef MANIFOLD_BROKER_CLUSTER_CLUSTER_ROUTER_H_
#define MANIFOLD_BROKER_CLUSTER_CLUSTER_ROUTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "broker/cluster_link.h"
#include "broker/protocol_codec.h"
#include "broker/statistics.h"

namespace manifold {

// Bridge mode: a Redis channel glob mapped to a topic pattern, so that an
// application publishing to Redis reaches Manifold's clients and the other
// way round. Each `*` of `channel` matches what the `*` segment of `topic`
// in the same position holds: "timeline:*" <-> "timeline/*" maps channel
// "timeline:42" to topic "timeline/42". Payloads cross as they are; headers
// and reply subjects do not (Redis has none).
struct RedisBridge {
  std::string channel;
  std::string topic;
};

// Parses "CHANNEL=TOPIC" (e.g. "timeline:*=timeline/*"). Returns
// INVALID_ARGUMENT naming what is wrong: no '=', a channel with Redis glob
// characters other than `*`, a topic that is not a pattern of literal and
// `*` segments, or `*` counts that differ.
absl::StatusOr<RedisBridge> ParseRedisBridge(absl::string_view spec);

struct ClusterOptions {
  // This node's name, unique in the cluster: 1 to 64 of [A-Za-z0-9_.-].
  std::string node;
  // Tells this run of the node from earlier ones under the same name (the
  // embedder gives, say, the start time in microseconds): the other nodes
  // then forget what the earlier run announced.
  uint64_t incarnation = 0;
  // Starts every channel name: 1 to 32 of [A-Za-z0-9_.-]. Clusters sharing
  // one Redis are kept apart by their prefixes.
  std::string prefix = "manifold";
  // How often the node says it is alive. A node silent for two heartbeats
  // (its own interval) is gone: its interest is dropped.
  absl::Duration heartbeat = absl::Seconds(2);
  // What may wait to be written to the publisher link. Past it, messages
  // for other nodes are dropped (and counted), never this node's traffic.
  size_t max_output_bytes = size_t{64} << 20;
  // Reply subjects remembered, with the node each came from, so answers go
  // straight back; the oldest is forgotten first. They are also forgotten
  // after reply_route_ttl.
  size_t max_reply_routes = 65536;
  absl::Duration reply_route_ttl = absl::Seconds(60);
  // Redis channels mapped to topics (bridge mode). A local publish to a
  // bridged topic goes to its channel (and reaches the other nodes from
  // there), not through the cluster's own channels. No bridge channel may
  // start with the cluster's prefix.
  std::vector<RedisBridge> bridges;
};

// The two connections to Redis.
enum class RedisLink {
  kSubscriber = 0,
  kPublisher = 1,
};

class ClusterRouter : public ClusterLink {
 public:
  // Checks `options`: INVALID_ARGUMENT naming the field that is wrong.
  static absl::Status Validate(const ClusterOptions& options);

  // Attaches itself to `broker` (Broker::AttachCluster), which must outlive
  // it. REQUIRES: Validate(options).ok().
  ClusterRouter(Broker& broker, ClusterOptions options);
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;
  // Detaches from the broker.
  ~ClusterRouter() override;

  // Link `link` is connected: queues what it must say first (subscriptions
  // on the subscriber link; this node's interest and a request for the
  // others' on the publisher link). The node has joined once both are up
  // and Redis confirmed the control channel.
  void OnConnected(RedisLink link, absl::Time now);

  // Link `link` was lost (or the embedder closed it): what it had not
  // written is dropped. Local traffic goes on; cross-node traffic resumes
  // when both links are back, every subscription renewed. `why` goes into
  // the "$sys/cluster/redis_lost" event.
  void OnDisconnected(RedisLink link, absl::string_view why, absl::Time now);

  // Bytes Redis sent on `link`, any split. Delivers what arrived to the
  // Broker. Returns an error naming the problem when they are not RESP or
  // not what Redis says on that link; the embedder then closes the link
  // (and calls OnDisconnected).
  absl::Status Receive(RedisLink link, absl::string_view bytes, absl::Time now);

  // What to write to `link`: the caller writes a prefix and calls
  // Consume(link, n) with its length. Valid until the next non-const call.
  // Messages for other nodes are gathered, one PUBLISH per channel, until
  // this is called: call it after every turn of the loop.
  absl::string_view PendingOutput(RedisLink link);
  void Consume(RedisLink link, size_t n);

  // Says goodbye (an orderly shutdown): the other nodes drop this node's
  // interest at once instead of two heartbeats later, and the topics its
  // servers hold are released in the registry. Write what
  // PendingOutput(RedisLink::kPublisher) then holds before closing.
  void Leave(absl::Time now);

  // Sends heartbeats and forgets nodes gone silent. Call when NextDeadline()
  // is reached (or more often).
  void Tick(absl::Time now);
  std::optional<absl::Time> NextDeadline() const;

  // Whether the node is part of the cluster right now (both links up and
  // the control channel confirmed).
  bool joined() const;
  const ClusterOptions& options() const;
  const ClusterStatistics& statistics() const;

  // ClusterLink (called by the Broker).
  void OnLocalInterest(absl::string_view pattern, absl::string_view queue_group,
                       bool added) override;
  void BeginPublish(const PublishOp& publish) override;
  bool TakesGroup(absl::string_view pattern,
                  absl::string_view queue_group) override;
  uint64_t OnLocalPublish(const PublishOp& publish) override;
  bool ClaimService(absl::string_view topic) override;
  void ReleaseService(absl::string_view topic) override;
  absl::string_view ForwardRequest(const ClusterCall& call) override;
  void AnswerRequest(absl::string_view origin, uint64_t call_id,
                     wire::RequestStatus status, absl::string_view message,
                     const wire::Respond* respond) override;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
  Broker* broker_;
};

// The Redis glob that matches every channel of a topic `pattern` matches
// (and maybe more), under `channel_prefix`: `*` and `**` segments become
// `*`, characters special to Redis globs (`*`, `?`, `[`, `]`, `\`) in literal
// segments are escaped. REQUIRES: `pattern` is a valid subscription pattern.
std::string RedisGlobFor(absl::string_view channel_prefix,
                         absl::string_view pattern);

// Whether Redis would match `channel` against `glob` as RedisGlobFor writes
// them (`*` and backslash escapes).
bool RedisGlobMatches(absl::string_view glob, absl::string_view channel);

}  // namespace manifold

#endif  // MANIFOLD_BROKER_CLUSTER_CLUSTER_ROUTER_H_
