// File: broker/internal/native_codec.h
// -----------------------------------------------------------------------------
//
// The codec for Manifold's native protocol (core/manifold.proto): delimited
// protobuf frames in both directions.
//
// Two paths keep routing cheap without leaving protobuf's encoding:
//  - A frame that holds just a Publish is read field by field with protobuf's
//    CodedInputStream into views of the input: no allocation, no copy. Any
//    other frame (or a publish written in an unusual way) goes through the
//    generated parser, so both paths accept exactly the same bytes.
//  - A Deliver frame is a per-recipient prefix (frame length, field tag,
//    subscription id) followed by the encoded topic/payload/headers/reply_to,
//    which are the same for every recipient and encoded once per message.
//    Protobuf allows a message's fields to be concatenated like this.
//
// Example:
//
//   NativeCodec codec;
//   Operation op;
//   absl::StatusOr<size_t> used = codec.Decode(input, 1 << 20, op);

#ifndef MANIFOLD_BROKER_INTERNAL_NATIVE_CODEC_H_
#define MANIFOLD_BROKER_INTERNAL_NATIVE_CODEC_H_

#include "broker/protocol_codec.h"

namespace manifold::internal {

class NativeCodec final : public ProtocolCodec {
 public:
  absl::string_view name() const override { return "native"; }
  absl::StatusOr<size_t> Decode(absl::string_view input, size_t max_frame_bytes,
                                Operation& op) override;
  void Encode(const wire::ServerMessage& message, OutboundBuffer& out) override;
  void EncodeDelivery(SharedMessage& message, SubscriptionId subscription,
                      OutboundBuffer& out) override {
    EncodeNativeDelivery(message, subscription, out);
  }

  // The same as EncodeDelivery; static so that the broker can call it without
  // a virtual call (or touching the codec object) for native connections.
  static void EncodeNativeDelivery(SharedMessage& message,
                                   SubscriptionId subscription,
                                   OutboundBuffer& out);
};

// Decodes a Publish message body into views of `body`. Returns false when the
// body is not a well-formed Publish (the caller then uses the generated
// parser, which reports the error). Exposed for tests and benchmarks.
bool DecodePublishBody(absl::string_view body, PublishOp& publish);

}  // namespace manifold::internal

#endif  // MANIFOLD_BROKER_INTERNAL_NATIVE_CODEC_H_
