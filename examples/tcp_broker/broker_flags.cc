#include "examples/tcp_broker/broker_flags.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace manifold {

bool AbslParseFlag(absl::string_view text, SlowConsumerPolicy* policy,
                   std::string* error) {
  if (text == "disconnect") {
    *policy = SlowConsumerPolicy::kDisconnect;
    return true;
  }
  if (text == "drop") {
    *policy = SlowConsumerPolicy::kDropAndCount;
    return true;
  }
  *error = "expected disconnect or drop";
  return false;
}

std::string AbslUnparseFlag(SlowConsumerPolicy policy) {
  return policy == SlowConsumerPolicy::kDropAndCount ? "drop" : "disconnect";
}

}  // namespace manifold

namespace {
const manifold::BrokerOptions kDefaults;
}  // namespace

ABSL_FLAG(std::string, server_name, kDefaults.server_name,
          "The broker's name, sent to clients in Welcome.");
ABSL_FLAG(uint64_t, max_connections, kDefaults.max_connections,
          "Most client connections at once; more are refused with "
          "TOO_MANY_CONNECTIONS.");
ABSL_FLAG(absl::Duration, handshake_timeout, kDefaults.handshake_timeout,
          "Time a new connection has to send Hello.");
ABSL_FLAG(absl::Duration, keepalive_interval, kDefaults.keepalive_interval,
          "How often a quiet connection is pinged; 0 disables keepalive.");
ABSL_FLAG(uint32_t, keepalive_max_missed, kDefaults.keepalive_max_missed,
          "Unanswered pings in a row before a connection is closed.");
ABSL_FLAG(absl::Duration, close_linger, kDefaults.close_linger,
          "How long a closing connection may take to drain its output.");
ABSL_FLAG(uint64_t, max_frame_bytes, kDefaults.max_frame_bytes,
          "Largest frame a client may send, in bytes.");
ABSL_FLAG(uint64_t, max_payload_bytes, kDefaults.max_payload_bytes,
          "Largest payload plus headers of a message, in bytes.");
ABSL_FLAG(uint64_t, max_topic_length, kDefaults.topic_limits.max_length,
          "Longest topic or pattern, in bytes.");
ABSL_FLAG(uint64_t, max_topic_depth, kDefaults.topic_limits.max_depth,
          "Most segments in a topic or pattern.");
ABSL_FLAG(uint64_t, max_inbound_bytes, kDefaults.max_inbound_bytes,
          "Unprocessed input buffered per connection before reading pauses.");
ABSL_FLAG(uint64_t, max_outbound_bytes, kDefaults.max_outbound_bytes,
          "Unsent output buffered per connection before the slow-consumer "
          "policy applies.");
ABSL_FLAG(manifold::SlowConsumerPolicy, slow_consumer_policy,
          kDefaults.slow_consumer_policy,
          "What happens to a connection over --max_outbound_bytes: "
          "disconnect (with SLOW_CONSUMER) or drop (its deliveries, counted).");
ABSL_FLAG(uint64_t, max_subscriptions_per_connection,
          kDefaults.max_subscriptions_per_connection,
          "Most subscriptions one connection may hold.");
ABSL_FLAG(uint64_t, max_services_per_connection,
          kDefaults.max_services_per_connection,
          "Most topics one connection may serve.");
ABSL_FLAG(uint64_t, max_pending_requests_per_connection,
          kDefaults.max_pending_requests_per_connection,
          "Most requests one connection may have in flight.");
ABSL_FLAG(absl::Duration, default_request_timeout,
          kDefaults.default_request_timeout,
          "Timeout of a request that names none.");
ABSL_FLAG(absl::Duration, max_request_timeout, kDefaults.max_request_timeout,
          "Longer request timeouts are capped to this.");
ABSL_FLAG(absl::Duration, statistics_interval, kDefaults.statistics_interval,
          "How often statistics are published on $sys/stats; 0 disables it.");
ABSL_FLAG(uint64_t, frames_per_turn, kDefaults.frames_per_turn,
          "Frames one connection may have handled in a row before others get "
          "a turn.");

namespace manifold {
namespace {

absl::Status AtLeast(absl::string_view flag, uint64_t value, uint64_t least) {
  if (value >= least) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must be at least ", least));
}

absl::Status NotNegative(absl::string_view flag, absl::Duration value) {
  if (value >= absl::ZeroDuration()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must not be negative"));
}

absl::Status Positive(absl::string_view flag, absl::Duration value) {
  if (value > absl::ZeroDuration()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must be longer than 0"));
}

}  // namespace

absl::StatusOr<BrokerOptions> BrokerOptionsFromFlags() {
  BrokerOptions o;
  o.server_name = absl::GetFlag(FLAGS_server_name);
  o.max_connections = absl::GetFlag(FLAGS_max_connections);
  o.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  o.keepalive_interval = absl::GetFlag(FLAGS_keepalive_interval);
  o.keepalive_max_missed = absl::GetFlag(FLAGS_keepalive_max_missed);
  o.close_linger = absl::GetFlag(FLAGS_close_linger);
  o.max_frame_bytes = absl::GetFlag(FLAGS_max_frame_bytes);
  o.max_payload_bytes = absl::GetFlag(FLAGS_max_payload_bytes);
  o.topic_limits.max_length = absl::GetFlag(FLAGS_max_topic_length);
  o.topic_limits.max_depth = absl::GetFlag(FLAGS_max_topic_depth);
  o.max_inbound_bytes = absl::GetFlag(FLAGS_max_inbound_bytes);
  o.max_outbound_bytes = absl::GetFlag(FLAGS_max_outbound_bytes);
  o.slow_consumer_policy = absl::GetFlag(FLAGS_slow_consumer_policy);
  o.max_subscriptions_per_connection =
      absl::GetFlag(FLAGS_max_subscriptions_per_connection);
  o.max_services_per_connection =
      absl::GetFlag(FLAGS_max_services_per_connection);
  o.max_pending_requests_per_connection =
      absl::GetFlag(FLAGS_max_pending_requests_per_connection);
  o.default_request_timeout = absl::GetFlag(FLAGS_default_request_timeout);
  o.max_request_timeout = absl::GetFlag(FLAGS_max_request_timeout);
  o.statistics_interval = absl::GetFlag(FLAGS_statistics_interval);
  o.frames_per_turn = absl::GetFlag(FLAGS_frames_per_turn);

  for (absl::Status check : {
           AtLeast("max_connections", o.max_connections, 1),
           Positive("handshake_timeout", o.handshake_timeout),
           NotNegative("keepalive_interval", o.keepalive_interval),
           AtLeast("keepalive_max_missed", o.keepalive_max_missed, 1),
           NotNegative("close_linger", o.close_linger),
           AtLeast("max_frame_bytes", o.max_frame_bytes, 64),
           AtLeast("max_payload_bytes", o.max_payload_bytes, 1),
           AtLeast("max_topic_length", o.topic_limits.max_length, 1),
           AtLeast("max_topic_depth", o.topic_limits.max_depth, 1),
           AtLeast("max_inbound_bytes", o.max_inbound_bytes, 1),
           AtLeast("max_outbound_bytes", o.max_outbound_bytes, 1),
           AtLeast("max_subscriptions_per_connection",
                   o.max_subscriptions_per_connection, 1),
           AtLeast("max_services_per_connection", o.max_services_per_connection,
                   1),
           AtLeast("max_pending_requests_per_connection",
                   o.max_pending_requests_per_connection, 1),
           Positive("default_request_timeout", o.default_request_timeout),
           Positive("max_request_timeout", o.max_request_timeout),
           NotNegative("statistics_interval", o.statistics_interval),
           AtLeast("frames_per_turn", o.frames_per_turn, 1),
       }) {
    if (!check.ok()) return check;
  }
  return o;
}

}  // namespace manifold
