// File: broker/sys_topics.h
// -----------------------------------------------------------------------------
//
// The reserved topics on which the broker publishes its events. Each message's
// payload is a serialized `wire::BrokerEvent`. Any client may subscribe (for
// example to "$sys/**"); no client may publish or serve under "$".
//
// A request to `kStatisticsTopic` is answered by the broker itself with a
// serialized `wire::Statistics`, one to `kConnectionsTopic` with a
// serialized `wire::ConnectionList`.
//
// Example (with the bundled CLI):
//
//   manifold sub '$sys/**'        # watch every broker event
//   manifold req '$sys/stats' ''  # ask for the current statistics

#ifndef MANIFOLD_BROKER_SYS_TOPICS_H_
#define MANIFOLD_BROKER_SYS_TOPICS_H_

#include "absl/strings/string_view.h"

namespace manifold::sys_topics {

inline constexpr absl::string_view kConnectionAdded = "$sys/connection/added";
inline constexpr absl::string_view kConnectionRemoved =
    "$sys/connection/removed";
inline constexpr absl::string_view kSubscriptionAdded =
    "$sys/subscription/added";
inline constexpr absl::string_view kSubscriptionRemoved =
    "$sys/subscription/removed";
inline constexpr absl::string_view kServiceAdded = "$sys/service/added";
inline constexpr absl::string_view kServiceRemoved = "$sys/service/removed";
// A connection kept others stalled longer than max_stall (wire::SlowConsumer).
inline constexpr absl::string_view kSlowConsumer = "$sys/slow_consumer";
// Sessions that outlive their links (resumable native sessions, Bayeux
// clients) began or ended (wire::SessionAdded, wire::SessionRemoved).
inline constexpr absl::string_view kSessionAdded = "$sys/session/added";
inline constexpr absl::string_view kSessionRemoved = "$sys/session/removed";
// Periodic statistics, and the topic whose requests the broker answers.
inline constexpr absl::string_view kStatisticsTopic = "$sys/stats";
// The topic whose requests the broker answers with a serialized
// `wire::ConnectionList`: connections, their subscriptions and services.
inline constexpr absl::string_view kConnectionsTopic = "$sys/connections";

// Durable streams (docs/streams.md), managed by requests the broker answers
// itself. Each answer is REQUEST_OK with the payload named, or REJECTED with a
// message naming the problem.
//  add:    payload a serialized wire::StreamConfig; answers wire::StreamInfo.
//  list:   any payload; answers wire::StreamList.
//  info, purge, remove: payload the stream's name; info and purge answer
//          wire::StreamInfo, remove an empty payload.
inline constexpr absl::string_view kStreamAdd = "$sys/streams/add";
inline constexpr absl::string_view kStreamList = "$sys/streams/list";
inline constexpr absl::string_view kStreamInfo = "$sys/streams/info";
inline constexpr absl::string_view kStreamPurge = "$sys/streams/purge";
inline constexpr absl::string_view kStreamRemove = "$sys/streams/remove";
// Removes one durable consumer; the payload is a wire::ConsumerState naming
// its stream and name (the other fields are ignored).
inline constexpr absl::string_view kConsumerRemove =
    "$sys/streams/consumer/remove";
// The storage of durable streams failed, and recovered (wire::StorageFailed,
// wire::StorageRecovered).
inline constexpr absl::string_view kStorageFailed = "$sys/storage/failed";
inline constexpr absl::string_view kStorageRecovered = "$sys/storage/recovered";
// A node of the cluster joined or left; this node lost Redis, and has it
// back (wire::ClusterNodeJoined, ClusterNodeLeft, ClusterRedisLost,
// ClusterRedisBack; docs/cluster.md).
inline constexpr absl::string_view kClusterNodeJoined =
    "$sys/cluster/node_joined";
inline constexpr absl::string_view kClusterNodeLeft = "$sys/cluster/node_left";
inline constexpr absl::string_view kClusterRedisLost =
    "$sys/cluster/redis_lost";
inline constexpr absl::string_view kClusterRedisBack =
    "$sys/cluster/redis_back";

}  // namespace manifold::sys_topics

#endif  // MANIFOLD_BROKER_SYS_TOPICS_H_
