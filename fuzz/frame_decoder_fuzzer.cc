// Fuzzes the native frame decoder and codec: arbitrary bytes, fed in pieces
// whose sizes the input chooses, must produce messages or one specific error,
// never a crash, and the incremental decoder must agree with the codec's
// zero-copy path on every frame.

#include <cstdint>
#include <string>

#include "broker/internal/native_codec.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "google/protobuf/stubs/logging.h"

// Protobuf logs every string field with invalid UTF-8 it rejects; fuzzing
// produces millions of them.
static const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the piece size, the rest is the stream.
  const size_t piece = 1 + data[0] % 16;
  const absl::string_view stream(reinterpret_cast<const char*>(data + 1),
                                 size - 1);
  constexpr size_t kLimit = 4096;

  manifold::FrameDecoder decoder(
      manifold::FrameDecoder::Options{.max_frame_bytes = kLimit});
  size_t messages = 0;
  absl::Status error;
  for (size_t at = 0; at < stream.size() && error.ok(); at += piece) {
    decoder.Append(stream.substr(at, piece));
    while (true) {
      manifold::wire::ClientMessage m;
      absl::StatusOr<bool> got = decoder.Next(m);
      if (!got.ok()) {
        error = got.status();
        const manifold::wire::Code code = manifold::WireCode(error);
        if (code != manifold::wire::BAD_LENGTH_PREFIX &&
            code != manifold::wire::FRAME_TOO_LARGE &&
            code != manifold::wire::MALFORMED_MESSAGE) {
          __builtin_trap();  // an error without its specific code
        }
        break;
      }
      if (!*got) break;
      ++messages;
    }
  }
  if (decoder.buffered_bytes() > kLimit + 10 + piece) __builtin_trap();

  // The codec reads the same stream whole: it must see the same number of
  // operations before any error (an empty ClientMessage is an error to it).
  manifold::internal::NativeCodec codec;
  manifold::Operation op;
  absl::string_view rest = stream;
  size_t operations = 0;
  while (!rest.empty()) {
    absl::StatusOr<size_t> used = codec.Decode(rest, kLimit, op);
    if (!used.ok() || *used == 0) break;
    ++operations;
    if (op.kind == manifold::Operation::Kind::kPublish) {
      // The zero-copy path must read what the generated parser reads.
      absl::StatusOr<std::optional<manifold::FrameView>> frame =
          manifold::LocateFrame(rest, kLimit);
      manifold::wire::ClientMessage m;
      if (!frame.ok() || !frame->has_value() ||
          !m.ParseFromArray((*frame)->body.data(),
                            static_cast<int>((*frame)->body.size())) ||
          !m.has_publish() || m.publish().topic() != op.publish.topic ||
          m.publish().payload() != op.publish.payload ||
          m.publish().reply_to() != op.publish.reply_to ||
          m.publish().op_id() != op.publish.op_id ||
          m.publish().ack() != op.publish.ack ||
          static_cast<size_t>(m.publish().headers_size()) !=
              op.publish.headers.size()) {
        __builtin_trap();
      }
    }
    rest.remove_prefix(*used);
  }
  if (operations > messages) __builtin_trap();
  return 0;
}
