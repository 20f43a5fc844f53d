// The embedder's own messages: publishing and requesting without a
// connection (Broker::Publish, Broker::Request, Broker::PollResponse).

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/internal/broker_core.h"
#include "broker/internal/message_checks.h"
#include "core/headers.h"
#include "core/status.h"
#include "core/topic.h"

namespace manifold::internal {

absl::StatusOr<uint64_t> BrokerCore::PublishFromEmbedder(
    const PublishOp& publish, absl::Time now, bool to_cluster) {
  Advance(now);
  if (IsReserved(publish.topic)) {
    return ProtocolError(wire::RESERVED_TOPIC,
                         absl::StrCat("topic '", publish.topic.substr(0, 64),
                                      "' is reserved for the broker"));
  }
  if (absl::Status s =
          ValidateTopic(publish.topic, TopicRole::kPublish, topic_limits_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSizeAndHeaders(publish.payload, publish.headers,
                                           options_.max_payload_bytes());
      !s.ok()) {
    return s;
  }
  if (!publish.reply_to.empty()) {
    if (absl::Status s =
            ValidateTopic(publish.reply_to, TopicRole::kLiteral, topic_limits_);
        !s.ok()) {
      return ProtocolError(WireCode(s),
                           absl::StrCat("reply_to: ", s.message()));
    }
  }
  // The embedder has no link to slow down: under backpressure a full
  // subscriber still takes its messages, up to the hard limit.
  origin_ = nullptr;
  uint64_t delivered = Route(publish, nullptr);
  if (ABSL_PREDICT_FALSE(cluster_ != nullptr) && to_cluster) {
    delivered += cluster_->OnLocalPublish(publish);
  }
  if (ABSL_PREDICT_FALSE(!streams_.empty())) {
    CaptureForStreams(nullptr, publish, delivered, /*js_reply=*/false);
    AfterStreamsTurn();
  }
  RunDeferred();
  FlushPolls();
  return delivered;
}

absl::StatusOr<RequestId> BrokerCore::RequestFromEmbedder(
    absl::string_view topic, absl::string_view payload,
    absl::Span<const HeaderView> headers, absl::Duration timeout,
    absl::Time now) {
  Advance(now);
  const size_t limit = options_.max_pending_requests_per_connection();
  if (embedder_requests_ + embedder_responses_.size() >= limit) {
    return ProtocolError(
        wire::TOO_MANY_PENDING_REQUESTS,
        absl::StrCat(embedder_requests_, " requests in flight and ",
                     embedder_responses_.size(),
                     " answers not taken with PollResponse(); the limit is ",
                     limit));
  }
  if (absl::Status s = ValidateTopic(topic, TopicRole::kLiteral, topic_limits_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckSizeAndHeaders(payload, headers, options_.max_payload_bytes());
      !s.ok()) {
    return s;
  }
  wire::Request request;
  request.set_topic(std::string(topic));
  request.set_payload(std::string(payload));
  for (const HeaderView& h : headers) {
    wire::Header* header = request.add_headers();
    header->set_key(std::string(h.key));
    header->set_value(std::string(h.value));
  }
  const int64_t ms = absl::ToInt64Milliseconds(timeout);
  request.set_timeout_ms(static_cast<uint32_t>(
      std::clamp<int64_t>(ms, 0, std::numeric_limits<uint32_t>::max())));
  const RequestId id = embedder_request_ids_.Next();
  origin_ = nullptr;
  StartRequest(RequesterKind::kEmbedder, nullptr, id.value(), request);
  RunDeferred();
  FlushPolls();
  return id;
}

std::optional<wire::Response> BrokerCore::PollResponse() {
  if (embedder_responses_.empty()) return std::nullopt;
  wire::Response response = std::move(embedder_responses_.front());
  embedder_responses_.pop_front();
  return response;
}

}  // namespace manifold::internal
