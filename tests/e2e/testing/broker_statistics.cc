#include "tests/e2e/testing/broker_statistics.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "broker/sys_topics.h"
#include "tests/transports/testing/wire_client.h"

namespace manifold::testing {

absl::StatusOr<wire::Statistics> RequestStatistics(const Endpoint& broker) {
  absl::StatusOr<WireClient> client = WireClient::Connect(broker);
  if (!client.ok()) return client.status();
  if (absl::StatusOr<wire::Welcome> welcome = client->Hello("statistics");
      !welcome.ok()) {
    return welcome.status();
  }
  wire::ClientMessage request;
  const uint64_t op = client->next_op_id();
  request.mutable_request()->set_op_id(op);
  request.mutable_request()->set_topic(
      std::string(sys_topics::kStatisticsTopic));
  request.mutable_request()->set_timeout_ms(5000);
  if (absl::Status sent = client->Send(request); !sent.ok()) return sent;
  absl::StatusOr<wire::ServerMessage> reply = client->ReceiveSkippingPings();
  if (!reply.ok()) return reply.status();
  if (!reply->has_response() || reply->response().op_id() != op ||
      reply->response().status() != wire::REQUEST_OK) {
    return absl::InternalError(
        absl::StrCat("unexpected answer to a statistics request: ",
                     reply->ShortDebugString()));
  }
  wire::Statistics statistics;
  if (!statistics.ParseFromString(reply->response().payload())) {
    return absl::InternalError("the statistics do not parse");
  }
  return statistics;
}

}  // namespace manifold::testing
