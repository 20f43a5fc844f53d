#include "broker/internal/native_codec.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "core/framing.h"
#include "core/status.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/util/delimited_message_util.h"
#include "google/protobuf/wire_format_lite.h"

namespace manifold::internal {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;

constexpr uint32_t LengthTag(int field_number) {
  return WireFormatLite::MakeTag(field_number,
                                 WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
}
constexpr uint32_t VarintTag(int field_number) {
  return WireFormatLite::MakeTag(field_number, WireFormatLite::WIRETYPE_VARINT);
}

// proto3 `string` fields must hold UTF-8; the generated parser rejects
// anything else, so the fast path must too.
bool IsUtf8(absl::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) {
      return google::protobuf::internal::IsStructurallyValidUTF8(
          s.data(), static_cast<int>(s.size()));
    }
  }
  return true;
}

// Reads a length-delimited field's contents as a view into the input.
bool ReadView(CodedInputStream& in, absl::string_view whole,
              absl::string_view& out) {
  uint32_t length = 0;
  if (!in.ReadVarint32(&length)) return false;
  const int at = in.CurrentPosition();
  if (length > whole.size() - static_cast<size_t>(at)) return false;
  out = whole.substr(static_cast<size_t>(at), length);
  return in.Skip(static_cast<int>(length));
}

bool DecodeHeader(absl::string_view body, HeaderView& header) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(body.data()),
                      static_cast<int>(body.size()));
  while (true) {
    const uint32_t tag = in.ReadTag();
    // 0 is also what a tag cut short reads as: only a clean end is one.
    if (tag == 0) return in.ConsumedEntireMessage();
    if (tag == LengthTag(wire::Header::kKeyFieldNumber)) {
      if (!ReadView(in, body, header.key) || !IsUtf8(header.key)) return false;
    } else if (tag == LengthTag(wire::Header::kValueFieldNumber)) {
      if (!ReadView(in, body, header.value) || !IsUtf8(header.value)) {
        return false;
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

// Size of a length-delimited field with a one-byte tag.
size_t LengthFieldSize(size_t length) {
  return 1 + CodedOutputStream::VarintSize32(static_cast<uint32_t>(length)) +
         length;
}

// Like LengthFieldSize, but 0 for an empty value: proto3 omits default
// values, and so do we, to write exactly what protobuf would.
size_t OptionalFieldSize(size_t length) {
  return length == 0 ? 0 : LengthFieldSize(length);
}

size_t HeaderSize(const HeaderView& h) {
  return OptionalFieldSize(h.key.size()) + OptionalFieldSize(h.value.size());
}

uint8_t* WriteLengthField(uint32_t tag, absl::string_view value,
                          uint8_t* target) {
  target = CodedOutputStream::WriteTagToArray(tag, target);
  target = CodedOutputStream::WriteVarint32ToArray(
      static_cast<uint32_t>(value.size()), target);
  std::memcpy(target, value.data(), value.size());
  return target + value.size();
}

}  // namespace

namespace {

// Reads Publish fields from `in` until its current limit. `base` is the data
// `in` was created over, so field contents can be returned as views into it.
// Returns false if the fields are not a well-formed Publish.
bool ReadPublishFields(CodedInputStream& in, absl::string_view base,
                       PublishOp& publish) {
  publish.Reset();
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return in.ConsumedEntireMessage();
    switch (tag) {
      case VarintTag(wire::Publish::kOpIdFieldNumber):
        if (!in.ReadVarint64(&publish.op_id)) return false;
        break;
      case LengthTag(wire::Publish::kTopicFieldNumber):
        if (!ReadView(in, base, publish.topic) || !IsUtf8(publish.topic)) {
          return false;
        }
        break;
      case LengthTag(wire::Publish::kPayloadFieldNumber):
        if (!ReadView(in, base, publish.payload)) return false;
        break;
      case LengthTag(wire::Publish::kHeadersFieldNumber): {
        absl::string_view encoded;
        HeaderView header;
        if (!ReadView(in, base, encoded) || !DecodeHeader(encoded, header)) {
          return false;
        }
        publish.headers.push_back(header);
        break;
      }
      case LengthTag(wire::Publish::kReplyToFieldNumber):
        if (!ReadView(in, base, publish.reply_to) ||
            !IsUtf8(publish.reply_to)) {
          return false;
        }
        break;
      case VarintTag(wire::Publish::kAckFieldNumber): {
        uint64_t value = 0;
        if (!in.ReadVarint64(&value)) return false;
        publish.ack = value != 0;
        break;
      }
      case VarintTag(wire::Publish::kNoRespondersFieldNumber): {
        uint64_t value = 0;
        if (!in.ReadVarint64(&value)) return false;
        publish.no_responders = value != 0;
        break;
      }
      default:
        // Unknown fields (from a newer peer) are skipped, as protobuf does.
        if (!WireFormatLite::SkipField(&in, tag)) return false;
    }
  }
}

}  // namespace

bool DecodePublishBody(absl::string_view body, PublishOp& publish) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(body.data()),
                      static_cast<int>(body.size()));
  return ReadPublishFields(in, body, publish);
}

absl::StatusOr<size_t> NativeCodec::Decode(absl::string_view input,
                                           size_t max_frame_bytes,
                                           Operation& op) {
  // One stream reads the length prefix and, for the common case of a frame
  // that is exactly one ClientMessage.publish field, the publish itself.
  const int window = static_cast<int>(
      std::min<size_t>(input.size(), std::numeric_limits<int>::max()));
  CodedInputStream in(reinterpret_cast<const uint8_t*>(input.data()), window);
  uint64_t length = 0;
  if (!in.ReadVarint64(&length) || length > max_frame_bytes) {
    // A partial or bad prefix, or an oversized frame: LocateFrame tells which.
    absl::StatusOr<std::optional<FrameView>> frame =
        LocateFrame(input, max_frame_bytes);
    if (!frame.ok()) return frame.status();
    return 0;
  }
  const size_t prefix = static_cast<size_t>(in.CurrentPosition());
  if (input.size() - prefix < length) return 0;
  const size_t frame_size = prefix + length;
  const absl::string_view body = input.substr(prefix, length);

  in.PushLimit(static_cast<int>(length));
  uint32_t publish_length = 0;
  if (in.ReadTag() == LengthTag(wire::ClientMessage::kPublishFieldNumber) &&
      in.ReadVarint32(&publish_length) &&
      static_cast<int>(publish_length) == in.BytesUntilLimit() &&
      ReadPublishFields(in, input, op.publish)) {
    op.kind = Operation::Kind::kPublish;
    return frame_size;
  }

  op.kind = Operation::Kind::kMessage;
  if (!op.message.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return ProtocolError(wire::MALFORMED_MESSAGE,
                         absl::StrCat("frame of ", body.size(),
                                      " bytes does not parse as a "
                                      "manifold.wire.ClientMessage"));
  }
  if (op.message.kind_case() == wire::ClientMessage::KIND_NOT_SET) {
    return ProtocolError(wire::MALFORMED_MESSAGE,
                         "frame carries no operation (empty ClientMessage)");
  }
  return frame_size;
}

void NativeCodec::Encode(const wire::ServerMessage& message,
                         OutboundBuffer& out) {
  const size_t body = message.ByteSizeLong();
  const size_t total =
      CodedOutputStream::VarintSize32(static_cast<uint32_t>(body)) + body;
  google::protobuf::io::ArrayOutputStream stream(out.AppendSpace(total),
                                                 static_cast<int>(total));
  CodedOutputStream coded(&stream);
  google::protobuf::util::SerializeDelimitedToCodedStream(message, &coded);
}

namespace {

// The Deliver fields every recipient shares: topic, payload, headers,
// reply_to. Empty fields are left out, as protobuf leaves them out.
size_t SharedDeliverFieldsSize(const PublishOp& publish) {
  size_t size = LengthFieldSize(publish.topic.size()) +
                OptionalFieldSize(publish.payload.size()) +
                OptionalFieldSize(publish.reply_to.size());
  for (const HeaderView& h : publish.headers) {
    size += LengthFieldSize(HeaderSize(h));
  }
  return size;
}

void WriteSharedDeliverFields(const PublishOp& publish, uint8_t* p) {
  p = WriteLengthField(LengthTag(wire::Deliver::kTopicFieldNumber),
                       publish.topic, p);
  if (!publish.payload.empty()) {
    p = WriteLengthField(LengthTag(wire::Deliver::kPayloadFieldNumber),
                         publish.payload, p);
  }
  for (const HeaderView& h : publish.headers) {
    p = CodedOutputStream::WriteTagToArray(
        LengthTag(wire::Deliver::kHeadersFieldNumber), p);
    p = CodedOutputStream::WriteVarint32ToArray(
        static_cast<uint32_t>(HeaderSize(h)), p);
    if (!h.key.empty()) {
      p = WriteLengthField(LengthTag(wire::Header::kKeyFieldNumber), h.key, p);
    }
    if (!h.value.empty()) {
      p = WriteLengthField(LengthTag(wire::Header::kValueFieldNumber), h.value,
                           p);
    }
  }
  if (!publish.reply_to.empty()) {
    WriteLengthField(LengthTag(wire::Deliver::kReplyToFieldNumber),
                     publish.reply_to, p);
  }
}

}  // namespace

namespace {

// The bytes of a Deliver frame before the shared fields: frame length,
// ServerMessage.deliver tag and length, Deliver.subscription_id field.
struct DeliveryPrefix {
  size_t size;
  uint32_t server_length;
  uint32_t deliver_length;
};

DeliveryPrefix PlanPrefix(SubscriptionId subscription, size_t shared) {
  const size_t deliver =
      1 + CodedOutputStream::VarintSize64(subscription.value()) + shared;
  const size_t server =
      1 + CodedOutputStream::VarintSize32(static_cast<uint32_t>(deliver)) +
      deliver;
  return DeliveryPrefix{
      CodedOutputStream::VarintSize32(static_cast<uint32_t>(server)) +
          (server - shared),
      static_cast<uint32_t>(server), static_cast<uint32_t>(deliver)};
}

uint8_t* WritePrefix(const DeliveryPrefix& plan, SubscriptionId subscription,
                     uint8_t* p) {
  p = CodedOutputStream::WriteVarint32ToArray(plan.server_length, p);
  p = CodedOutputStream::WriteTagToArray(
      LengthTag(wire::ServerMessage::kDeliverFieldNumber), p);
  p = CodedOutputStream::WriteVarint32ToArray(plan.deliver_length, p);
  p = CodedOutputStream::WriteTagToArray(
      VarintTag(wire::Deliver::kSubscriptionIdFieldNumber), p);
  return CodedOutputStream::WriteVarint64ToArray(subscription.value(), p);
}

}  // namespace

void NativeCodec::EncodeNativeDelivery(SharedMessage& message,
                                       SubscriptionId subscription,
                                       OutboundBuffer& out) {
  constexpr CodecSlot kSlot = CodecSlot::kNative;
  if (!message.encoded(kSlot)) {
    const size_t size = SharedDeliverFieldsSize(message.publish());
    if (message.single_recipient()) {
      // Nobody else needs the shared fields: write them in place.
      const DeliveryPrefix plan = PlanPrefix(subscription, size);
      uint8_t* p =
          reinterpret_cast<uint8_t*>(out.AppendSpace(plan.size + size));
      WriteSharedDeliverFields(message.publish(),
                               WritePrefix(plan, subscription, p));
      return;
    }
    WriteSharedDeliverFields(
        message.publish(),
        reinterpret_cast<uint8_t*>(message.BeginEncoding(kSlot, size)));
    message.FinishEncoding(kSlot);
  }
  const absl::string_view shared = message.bytes(kSlot);
  const DeliveryPrefix plan = PlanPrefix(subscription, shared.size());
  // A small shared part is copied right behind the prefix: one append.
  if (message.by_reference(kSlot)) {
    WritePrefix(plan, subscription,
                reinterpret_cast<uint8_t*>(out.AppendSpace(plan.size)));
    message.AppendEncoded(kSlot, out);
    return;
  }
  uint8_t* p = WritePrefix(
      plan, subscription,
      reinterpret_cast<uint8_t*>(out.AppendSpace(plan.size + shared.size())));
  std::memcpy(p, shared.data(), shared.size());
}

}  // namespace manifold::internal
