// File: core/framing.h
// -----------------------------------------------------------------------------
//
// Frames on the native wire: each frame is one protobuf message in protobuf's
// delimited form (a varint length, then the message bytes).
//
// `FrameDecoder` turns a byte stream that arrives in arbitrary pieces (one byte
// at a time works) into whole messages. `LocateFrame` finds one frame at the
// front of a buffer without copying, for callers that parse frames themselves.
// `AppendFrame` encodes a message onto an output string.
//
// Errors carry specific protocol codes (see core/status.h):
//   BAD_LENGTH_PREFIX  the length prefix is not a valid varint
//   FRAME_TOO_LARGE    the length prefix exceeds the frame limit (detected as
//                      soon as the prefix arrives, before the body)
//   MALFORMED_MESSAGE  the frame body does not parse
// After an error the stream cannot be resynchronised; close the connection.
//
// Example:
//
//   std::string wire;
//   AppendFrame(message, &wire);
//
//   FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1 << 20});
//   decoder.Append(bytes_from_socket);
//   wire::ClientMessage message;
//   while (true) {
//     absl::StatusOr<bool> got = decoder.Next(message);
//     if (!got.ok()) { /* report got.status() and close */ break; }
//     if (!*got) break;  // need more bytes
//     Handle(message);
//   }

#ifndef MANIFOLD_CORE_FRAMING_H_
#define MANIFOLD_CORE_FRAMING_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"

namespace manifold {

// The default limit on a frame's body, in bytes.
inline constexpr size_t kDefaultMaxFrameBytes = 1 << 20;

// One frame located at the front of a buffer.
struct FrameView {
  // The message bytes (without the length prefix). Points into the buffer.
  absl::string_view body;
  // Prefix plus body: how many bytes to drop from the buffer to move past it.
  size_t size = 0;
};

// Looks for one complete frame at the front of `bytes`. Returns the frame, or
// std::nullopt when `bytes` holds only part of one (including an empty or
// partial length prefix). Returns BAD_LENGTH_PREFIX if the prefix is not a
// varint of at most 10 bytes, FRAME_TOO_LARGE if it announces more than
// `max_frame_bytes`. Does not parse the body.
absl::StatusOr<std::optional<FrameView>> LocateFrame(absl::string_view bytes,
                                                     size_t max_frame_bytes);

// Appends `message` to `*out` as one frame.
// REQUIRES: `message` is initialized (always true for proto3 messages).
void AppendFrame(const google::protobuf::MessageLite& message,
                 std::string* out);

// Returns `message` encoded as one frame.
std::string EncodeFrame(const google::protobuf::MessageLite& message);

// Incremental decoder for one direction of one connection. Buffers at most one
// incomplete frame (bounded by max_frame_bytes plus a 10-byte prefix) beyond
// the complete frames the caller has not taken yet.
class FrameDecoder {
 public:
  struct Options {
    size_t max_frame_bytes = kDefaultMaxFrameBytes;
  };

  explicit FrameDecoder(Options options);
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Adds bytes received from the peer.
  void Append(absl::string_view bytes);

  // Parses the next complete frame into `message` (which is cleared first).
  // Returns true when a message was produced, false when more bytes are
  // needed, or an error (see the file comment). After an error every later
  // call returns the same error.
  absl::StatusOr<bool> Next(google::protobuf::MessageLite& message);

  // Returns OK if the bytes so far end on a frame boundary, else a
  // TRUNCATED_FRAME error saying how much of the last frame arrived. Call it
  // when the peer closes its side, to tell a clean end from a cut-off one.
  absl::Status CheckEndOfStream() const;

  // Bytes received but not yet returned as messages.
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }

  // Forgets every byte received and any error: the stream starts over (a
  // client resuming its session on a new link).
  void Reset() {
    buffer_.clear();
    consumed_ = 0;
    error_ = absl::OkStatus();
  }

 private:
  Options options_;
  std::string buffer_;
  size_t consumed_ = 0;  // bytes at the front of buffer_ already decoded
  absl::Status error_;
};

}  // namespace manifold

#endif  // MANIFOLD_CORE_FRAMING_H_
