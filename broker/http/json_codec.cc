#include "broker/http/json_codec.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/http/json_messages.h"
#include "core/status.h"

namespace manifold {

absl::StatusOr<size_t> JsonCodec::Decode(absl::string_view input,
                                         size_t max_frame_bytes,
                                         Operation& op) {
  if (input.size() > max_frame_bytes) {
    return ProtocolError(
        wire::FRAME_TOO_LARGE,
        absl::StrCat("JSON message of ", input.size(), " bytes; the limit is ",
                     max_frame_bytes));
  }
  absl::StatusOr<wire::ClientMessage> message =
      http::ClientMessageFromJson(input);
  if (!message.ok()) {
    return ProtocolError(wire::MALFORMED_MESSAGE, message.status().message());
  }
  if (message->kind_case() == wire::ClientMessage::KIND_NOT_SET) {
    return ProtocolError(
        wire::MALFORMED_MESSAGE,
        "JSON message names no operation (hello, subscribe, publish, ...)");
  }
  op.kind = Operation::Kind::kMessage;
  op.message = *std::move(message);
  return input.size();
}

void JsonCodec::Encode(const wire::ServerMessage& message,
                       OutboundBuffer& out) {
  out.Append(http::ServerMessageToJson(message));
}

void JsonCodec::EncodeDelivery(SharedMessage& message,
                               SubscriptionId subscription,
                               OutboundBuffer& out) {
  const PublishOp& publish = message.publish();
  delivery_.Clear();
  wire::Deliver* deliver = delivery_.mutable_deliver();
  deliver->set_subscription_id(subscription.value());
  deliver->set_topic(std::string(publish.topic));
  deliver->set_payload(std::string(publish.payload));
  deliver->set_reply_to(std::string(publish.reply_to));
  for (const HeaderView& h : publish.headers) {
    wire::Header* header = deliver->add_headers();
    header->set_key(std::string(h.key));
    header->set_value(std::string(h.value));
  }
  out.Append(http::ServerMessageToJson(delivery_));
}

}  // namespace manifold
