// File: client/cli/stream_requests.h
// -----------------------------------------------------------------------------
//
// The requests behind `manifold stream`: a stream is managed with requests
// to topics under $sys/streams/ that the broker answers itself
// (broker/sys_topics.h). This file says what to send where, and reads the
// answers, so that both are tested without a broker.
//
// Example:
//
//   SysRequest add = AddStreamRequest(config);
//   absl::StatusOr<Message> reply =
//       client->Request(add.topic, add.payload, timeout);
//   if (!reply.ok()) return StreamRequestFailed(add, reply.status());
//   absl::StatusOr<wire::StreamInfo> info = ParseStreamInfo(add, *reply);

#ifndef MANIFOLD_CLIENT_CLI_STREAM_REQUESTS_H_
#define MANIFOLD_CLIENT_CLI_STREAM_REQUESTS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/message.h"
#include "core/manifold.pb.h"

namespace manifold::cli {

// A request to the broker itself: its topic and payload.
struct SysRequest {
  std::string topic;
  std::string payload;
};

// $sys/streams/add with the serialized `config`.
SysRequest AddStreamRequest(const wire::StreamConfig& config);
// $sys/streams/list.
SysRequest ListStreamsRequest();
// $sys/streams/info, purge and remove, each with the stream's name.
SysRequest StreamInfoRequest(absl::string_view name);
SysRequest PurgeStreamRequest(absl::string_view name);
SysRequest RemoveStreamRequest(absl::string_view name);
// $sys/streams/consumer/remove: durable consumer `consumer` of `stream`.
SysRequest RemoveConsumerRequest(absl::string_view stream,
                                 absl::string_view consumer);

// Returns `error` (from Client::Request) for `request`, explained where the
// broker's own words need it: NO_SERVER on $sys/streams/ means the broker
// has no durable streams. Any other error is returned as it is (e.g. the
// broker's "REJECTED: no stream named 'orders'").
absl::Status StreamRequestFailed(const SysRequest& request,
                                 const absl::Status& error);

// The StreamInfo in the broker's answer to add, info or purge; DATA_LOSS
// when the answer is not one.
absl::StatusOr<wire::StreamInfo> ParseStreamInfo(const SysRequest& request,
                                                 const Message& reply);
// The StreamList in the broker's answer to list; DATA_LOSS when the answer
// is not one.
absl::StatusOr<wire::StreamList> ParseStreamList(const SysRequest& request,
                                                 const Message& reply);

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_STREAM_REQUESTS_H_
