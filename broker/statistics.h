// File: broker/statistics.h
// -----------------------------------------------------------------------------
//
// The broker's counters and gauges: plain integers updated on the hot path and
// cheap to read at any time through Broker::statistics(). The wire form
// published on "$sys/stats" is wire::Statistics (core/manifold.proto).
//
// Example:
//
//   const BrokerStatistics& s = broker.statistics();
//   std::cout << s.deliveries << " deliveries, " << s.connections << " open\n";

#ifndef MANIFOLD_BROKER_STATISTICS_H_
#define MANIFOLD_BROKER_STATISTICS_H_

#include <cstdint>
#include <string>

#include "absl/container/btree_map.h"

namespace manifold {

// Secured links (TLS), as the transports count them: the broker has no TLS
// of its own, so the embedder that runs it reports these through
// Broker::ReportTlsStatistics (BrokerDriver does, for every loop).
struct TlsStatistics {
  uint64_t handshakes = 0;  // completed
  // Failed or abandoned handshakes and broken records, by reason (short
  // identifiers such as "plain_text" or "handshake_timeout"). A reason the
  // embedder reports stays listed, at 0 or more.
  absl::btree_map<std::string, uint64_t> failures;
};

// A node of a cluster (broker/cluster/cluster_router.h): reported by its
// ClusterRouter through Broker::ReportClusterStatistics.
struct ClusterStatistics {
  bool enabled = false;  // false: not in a cluster; the rest is zero
  // Nodes this node knows are alive, itself excluded.
  uint64_t nodes = 0;
  bool redis_connected = false;
  // Messages sent to Redis, and the PUBLISH commands that carried them (one
  // per channel and turn of the loop).
  uint64_t messages_out = 0;
  uint64_t publishes_out = 0;
  // Messages from other nodes handed to the Broker.
  uint64_t messages_in = 0;
  // Copies of a message a second glob brought, and this node's own
  // messages back from Redis: not delivered.
  uint64_t duplicates_dropped = 0;
  // Messages for other nodes lost: Redis was not connected, or the
  // publisher link's output was full.
  uint64_t messages_dropped = 0;
  // Bytes to and from Redis.
  uint64_t bytes_out = 0;
  uint64_t bytes_in = 0;
  // Patterns of this node (with a Redis glob each) and of the others.
  uint64_t local_patterns = 0;
  uint64_t remote_patterns = 0;
  // Times the Redis connection was lost.
  uint64_t redis_lost = 0;
  // What came from Redis and was not delivered: not a message or
  // announcement of this cluster, or refused by this node's limits.
  uint64_t malformed = 0;
  // Bridge mode: messages from bridged Redis channels delivered here, and
  // local publishes sent to them.
  uint64_t bridge_in = 0;
  uint64_t bridge_out = 0;
  // Services: topics this node's servers hold in the cluster's registry,
  // and topics served on other nodes; requests sent to a server on another
  // node, and requests from other nodes handed to this node's servers.
  uint64_t local_services = 0;
  uint64_t remote_services = 0;
  uint64_t requests_forwarded = 0;
  uint64_t requests_from_nodes = 0;
};

struct BrokerStatistics {
  // Gauges: the state right now.
  uint64_t connections = 0;  // welcomed and not closing
  uint64_t subscriptions = 0;
  uint64_t services = 0;
  uint64_t requests_in_flight = 0;
  // Welcomed connections by protocol (ProtocolCodec::name()); a protocol
  // stays listed, at 0, once its last connection has gone.
  absl::btree_map<std::string, uint64_t> connections_by_protocol;

  // Counters since the broker was created.
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // over the limit, shutting down, refused
  uint64_t messages_in = 0;          // operations decoded from clients
  uint64_t bytes_in = 0;             // bytes handed to Connection::Receive
  uint64_t messages_out = 0;         // frames queued for clients
  uint64_t bytes_out = 0;            // bytes the transports reported written
  uint64_t publishes = 0;            // publishes routed (clients and $sys)
  uint64_t deliveries = 0;           // deliveries queued for subscribers
  uint64_t dropped_deliveries = 0;   // dropped by the drop-and-count policy
  uint64_t slow_consumer_disconnects = 0;
  uint64_t protocol_errors = 0;   // fatal errors caused by a peer
  uint64_t operation_errors = 0;  // operations answered with an Error
  uint64_t requests = 0;          // requests routed to a server
  uint64_t requests_timed_out = 0;
  uint64_t keepalive_disconnects = 0;
  uint64_t dropped_events = 0;  // embedder events dropped, queue full

  // Flow control (the backpressure policy).
  // Times a connection's input was paused, or a polled session's output
  // held for its poller; and how many are held right now (a gauge).
  uint64_t publisher_stalls = 0;
  uint64_t stalled_publishers = 0;
  uint64_t stalled_ms = 0;      // time paused, summed over connections
  uint64_t stall_timeouts = 0;  // connections past max_stall

  // Sessions that outlive their links.
  uint64_t detached_sessions = 0;  // gauge: sessions without a link now
  uint64_t sessions_resumed = 0;
  uint64_t sessions_expired = 0;
  uint64_t session_overflows = 0;  // ended with SESSION_OVERFLOW

  // Access control: operations answered PERMISSION_DENIED.
  uint64_t permission_denials = 0;

  // Durable streams.
  uint64_t stored_messages = 0;    // messages captured into a stream batch
  uint64_t storage_batches = 0;    // batches written (one per turn at most)
  uint64_t storage_failures = 0;   // batches the storage failed
  uint64_t storage_reads = 0;      // reads for replays
  uint64_t replayed_messages = 0;  // stored messages delivered by replays
  // Publishes not stored because too much waited for the storage.
  uint64_t stream_refusals = 0;

  // TLS, as last reported by the embedder (zero and empty until it reports).
  TlsStatistics tls;
  ClusterStatistics cluster;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_STATISTICS_H_
