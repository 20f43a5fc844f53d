// File: broker/http/json_codec.h
// -----------------------------------------------------------------------------
//
// The "manifold.json" WebSocket subprotocol: the native protocol's operations
// as JSON text messages, one client or server message per WebSocket message
// (core/http/json_messages.h describes the mapping). The HTTP codec hands it
// each complete text message; it works on whole messages, never on a byte
// stream.
//
// Example (what HttpCodec does with it):
//
//   JsonCodec json;
//   absl::StatusOr<size_t> used = json.Decode(message_text, limit, op);
//   json.Encode(server_message, scratch);      // one JSON text
//
// Thread safety: none; one per connection.

#ifndef MANIFOLD_BROKER_HTTP_JSON_CODEC_H_
#define MANIFOLD_BROKER_HTTP_JSON_CODEC_H_

#include "broker/protocol_codec.h"

namespace manifold {

class JsonCodec final : public ProtocolCodec {
 public:
  absl::string_view name() const override { return "ws-json"; }
  // `input` is one whole message; returns input.size(), or
  // MALFORMED_MESSAGE naming what is wrong (the connection stays usable:
  // the caller answers it with an error message).
  absl::StatusOr<size_t> Decode(absl::string_view input, size_t max_frame_bytes,
                                Operation& op) override;
  void Encode(const wire::ServerMessage& message, OutboundBuffer& out) override;
  void EncodeDelivery(SharedMessage& message, SubscriptionId subscription,
                      OutboundBuffer& out) override;

 private:
  wire::ServerMessage delivery_;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_JSON_CODEC_H_
