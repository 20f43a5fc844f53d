// File: broker/options.h
// -----------------------------------------------------------------------------
//
// Everything a Broker can be told: limits, timeouts, policies. Every queue and
// buffer in the broker is bounded by one of these numbers, and every limit has
// a policy for what happens when it is reached (a specific error, and at worst
// the offending connection closing).
//
// The defaults suit a broker on a LAN: NATS-like payload limits, keepalive
// every 30 s, a few MiB of output buffered per slow reader.
//
// Example:
//
//   BrokerOptions options;
//   options.server_name = "edge-1";
//   options.max_payload_bytes = 64 * 1024;
//   options.slow_consumer_policy = SlowConsumerPolicy::kDropAndCount;
//   Broker broker(options);

#ifndef MANIFOLD_BROKER_OPTIONS_H_
#define MANIFOLD_BROKER_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "core/framing.h"
#include "core/topic.h"

namespace manifold {

// What happens to a connection whose unsent output reaches
// `max_outbound_bytes`.
enum class SlowConsumerPolicy {
  // Send a SLOW_CONSUMER error after the pending output and close the
  // connection, as NATS does. The default.
  kDisconnect,
  // Keep the connection; drop deliveries to it while it is over the limit and
  // count them in Statistics.dropped_deliveries.
  kDropAndCount,
};

struct BrokerOptions {
  // Sent in Welcome and events.
  std::string server_name = "manifold";

  // --- Connections -------------------------------------------------------
  // Most connections open at once; Accept() beyond it refuses with
  // TOO_MANY_CONNECTIONS.
  size_t max_connections = 65536;
  // When set, a Hello waits for the embedder's Admit() or Refuse() (see
  // Broker::PollEvent and wire::ConnectionPending).
  bool require_admission = false;
  // A connection must complete Hello (and admission) within this time.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // How often a quiet connection is pinged; zero disables keepalive.
  absl::Duration keepalive_interval = absl::Seconds(30);
  // A connection that lets this many pings in a row go unanswered is closed
  // with KEEPALIVE_TIMEOUT.
  uint32_t keepalive_max_missed = 2;
  // How long a closing connection may take to drain its output before the
  // broker discards it and asks the transport to close the link anyway.
  absl::Duration close_linger = absl::Seconds(5);

  // --- Sizes -------------------------------------------------------------
  // Largest frame a client may send, in bytes (the wire limit). Larger than
  // max_payload_bytes so that a largest payload still fits with its topic,
  // headers and framing (and a NATS control line), and gets the specific
  // PAYLOAD_TOO_LARGE error rather than a fatal FRAME_TOO_LARGE when over.
  size_t max_frame_bytes = (1 << 20) + (64 << 10);
  // Largest payload plus headers in a publish, request or response.
  size_t max_payload_bytes = 1 << 20;
  // Limits on topics and patterns.
  TopicLimits topic_limits;
  // Unprocessed input a connection may hold before it stops asking the
  // transport for more (Connection::WantsRead turns false). A single frame
  // larger than this is still let in whole.
  size_t max_inbound_bytes = 256 * 1024;
  // Unsent output a connection may hold before the slow-consumer policy
  // applies.
  size_t max_outbound_bytes = 8 << 20;
  SlowConsumerPolicy slow_consumer_policy = SlowConsumerPolicy::kDisconnect;

  // --- Per-connection counts ---------------------------------------------
  size_t max_subscriptions_per_connection = 65536;
  size_t max_services_per_connection = 1024;
  size_t max_pending_requests_per_connection = 4096;

  // --- Requests ----------------------------------------------------------
  // Used when a Request gives no timeout.
  absl::Duration default_request_timeout = absl::Seconds(5);
  // Larger request timeouts are capped to this.
  absl::Duration max_request_timeout = absl::Minutes(5);

  // --- Events and statistics ---------------------------------------------
  // Events waiting for PollEvent(); past it the oldest is dropped and counted
  // in Statistics.dropped_events. Zero turns embedder events off.
  size_t max_queued_events = 10000;
  // How often statistics are published on $sys/stats (only when someone
  // subscribes); zero turns the periodic publication off. Requests to
  // $sys/stats are answered either way.
  absl::Duration statistics_interval = absl::Seconds(10);

  // --- Fairness ------------------------------------------------------------
  // Frames one connection may have handled in a row inside Process() before
  // the others get a turn.
  size_t frames_per_turn = 64;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_OPTIONS_H_
