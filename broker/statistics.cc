#include "broker/statistics.h"

namespace manifold {

wire::Statistics BrokerStatistics::ToProto() const {
  wire::Statistics p;
  p.set_connections(connections);
  p.set_subscriptions(subscriptions);
  p.set_services(services);
  p.set_requests_in_flight(requests_in_flight);
  p.set_connections_accepted(connections_accepted);
  p.set_connections_refused(connections_refused);
  p.set_messages_in(messages_in);
  p.set_bytes_in(bytes_in);
  p.set_messages_out(messages_out);
  p.set_bytes_out(bytes_out);
  p.set_publishes(publishes);
  p.set_deliveries(deliveries);
  p.set_dropped_deliveries(dropped_deliveries);
  p.set_slow_consumer_disconnects(slow_consumer_disconnects);
  p.set_protocol_errors(protocol_errors);
  p.set_operation_errors(operation_errors);
  p.set_requests(requests);
  p.set_requests_timed_out(requests_timed_out);
  p.set_keepalive_disconnects(keepalive_disconnects);
  p.set_dropped_events(dropped_events);
  return p;
}

}  // namespace manifold
