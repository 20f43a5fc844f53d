#include "broker/internal/statistics_proto.h"

#include "absl/strings/ascii.h"

namespace manifold::internal {

wire::Statistics StatisticsToProto(const BrokerStatistics& s,
                                   const BrokerOptions& options) {
  wire::Statistics p;
  p.set_connections(s.connections);
  p.set_subscriptions(s.subscriptions);
  p.set_services(s.services);
  p.set_requests_in_flight(s.requests_in_flight);
  p.set_connections_accepted(s.connections_accepted);
  p.set_connections_refused(s.connections_refused);
  p.set_messages_in(s.messages_in);
  p.set_bytes_in(s.bytes_in);
  p.set_messages_out(s.messages_out);
  p.set_bytes_out(s.bytes_out);
  p.set_publishes(s.publishes);
  p.set_deliveries(s.deliveries);
  p.set_dropped_deliveries(s.dropped_deliveries);
  p.set_slow_consumer_disconnects(s.slow_consumer_disconnects);
  p.set_protocol_errors(s.protocol_errors);
  p.set_operation_errors(s.operation_errors);
  p.set_requests(s.requests);
  p.set_requests_timed_out(s.requests_timed_out);
  p.set_keepalive_disconnects(s.keepalive_disconnects);
  p.set_dropped_events(s.dropped_events);
  for (const auto& [protocol, count] : s.connections_by_protocol) {
    wire::ProtocolConnections* entry = p.add_connections_by_protocol();
    entry->set_protocol(protocol);
    entry->set_connections(count);
  }
  p.set_slow_consumer_policy(absl::AsciiStrToLower(
      BrokerOptions::SlowConsumerPolicy_Name(options.slow_consumer_policy())));
  p.set_publisher_stalls(s.publisher_stalls);
  p.set_stalled_publishers(s.stalled_publishers);
  p.set_stalled_ms(s.stalled_ms);
  p.set_stall_timeouts(s.stall_timeouts);
  p.set_detached_sessions(s.detached_sessions);
  p.set_sessions_resumed(s.sessions_resumed);
  p.set_sessions_expired(s.sessions_expired);
  p.set_session_overflows(s.session_overflows);
  p.set_permission_denials(s.permission_denials);
  p.set_stored_messages(s.stored_messages);
  p.set_storage_batches(s.storage_batches);
  p.set_storage_failures(s.storage_failures);
  p.set_storage_reads(s.storage_reads);
  p.set_replayed_messages(s.replayed_messages);
  p.set_stream_refusals(s.stream_refusals);
  p.set_tls_handshakes(s.tls.handshakes);
  for (const auto& [reason, count] : s.tls.failures) {
    wire::TlsFailures* entry = p.add_tls_failures();
    entry->set_reason(reason);
    entry->set_count(count);
  }
  if (s.cluster.enabled) {
    wire::ClusterFigures* c = p.mutable_cluster();
    c->set_nodes(s.cluster.nodes);
    c->set_redis_connected(s.cluster.redis_connected);
    c->set_messages_out(s.cluster.messages_out);
    c->set_messages_in(s.cluster.messages_in);
    c->set_duplicates_dropped(s.cluster.duplicates_dropped);
    c->set_messages_dropped(s.cluster.messages_dropped);
    c->set_bytes_out(s.cluster.bytes_out);
    c->set_bytes_in(s.cluster.bytes_in);
    c->set_local_patterns(s.cluster.local_patterns);
    c->set_remote_patterns(s.cluster.remote_patterns);
    c->set_redis_lost(s.cluster.redis_lost);
    c->set_malformed(s.cluster.malformed);
    c->set_bridge_in(s.cluster.bridge_in);
    c->set_bridge_out(s.cluster.bridge_out);
    c->set_local_services(s.cluster.local_services);
    c->set_remote_services(s.cluster.remote_services);
    c->set_requests_forwarded(s.cluster.requests_forwarded);
    c->set_requests_from_nodes(s.cluster.requests_from_nodes);
    c->set_publishes_out(s.cluster.publishes_out);
  }
  return p;
}

}  // namespace manifold::internal
