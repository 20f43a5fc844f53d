#include "client/cli/stream_requests.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "broker/sys_topics.h"
#include "client/errors.h"

namespace manifold::cli {
namespace {

SysRequest Named(absl::string_view topic, absl::string_view name) {
  return {std::string(topic), std::string(name)};
}

template <typename Proto>
absl::StatusOr<Proto> ParseAnswer(const SysRequest& request,
                                  const Message& reply) {
  Proto answer;
  if (!answer.ParseFromString(reply.payload)) {
    return absl::DataLossError(
        absl::StrCat("the broker's answer on ", request.topic, " is not a ",
                     Proto::descriptor()->name(), " message (",
                     reply.payload.size(), " bytes)"));
  }
  return answer;
}

}  // namespace

SysRequest AddStreamRequest(const wire::StreamConfig& config) {
  return {std::string(sys_topics::kStreamAdd), config.SerializeAsString()};
}

SysRequest ListStreamsRequest() {
  return {std::string(sys_topics::kStreamList), ""};
}

SysRequest StreamInfoRequest(absl::string_view name) {
  return Named(sys_topics::kStreamInfo, name);
}

SysRequest PurgeStreamRequest(absl::string_view name) {
  return Named(sys_topics::kStreamPurge, name);
}

SysRequest RemoveStreamRequest(absl::string_view name) {
  return Named(sys_topics::kStreamRemove, name);
}

SysRequest RemoveConsumerRequest(absl::string_view stream,
                                 absl::string_view consumer) {
  wire::ConsumerState named;
  named.set_stream(std::string(stream));
  named.set_name(std::string(consumer));
  return {std::string(sys_topics::kConsumerRemove), named.SerializeAsString()};
}

absl::Status StreamRequestFailed(const SysRequest& request,
                                 const absl::Status& error) {
  if (RequestStatusOf(error) == wire::NO_SERVER) {
    absl::Status explained(
        error.code(),
        absl::StrCat(error.message(),
                     " (this broker has no durable streams: nothing answers ",
                     request.topic, ")"));
    // Keep what the status carries (the request outcome, for scripts).
    error.ForEachPayload([&](absl::string_view url, const absl::Cord& value) {
      explained.SetPayload(url, value);
    });
    return explained;
  }
  return error;
}

absl::StatusOr<wire::StreamInfo> ParseStreamInfo(const SysRequest& request,
                                                 const Message& reply) {
  return ParseAnswer<wire::StreamInfo>(request, reply);
}

absl::StatusOr<wire::StreamList> ParseStreamList(const SysRequest& request,
                                                 const Message& reply) {
  return ParseAnswer<wire::StreamList>(request, reply);
}

}  // namespace manifold::cli
