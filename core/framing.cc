#include "core/framing.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/delimited_message_util.h"

namespace manifold {
namespace {

// A varint never needs more than 10 bytes.
constexpr size_t kMaxVarintBytes = 10;

const uint8_t* Bytes(absl::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

}  // namespace

absl::StatusOr<std::optional<FrameView>> LocateFrame(absl::string_view bytes,
                                                     size_t max_frame_bytes) {
  if (bytes.empty()) return std::nullopt;
  const size_t window = std::min(bytes.size(), kMaxVarintBytes);
  google::protobuf::io::CodedInputStream input(Bytes(bytes),
                                               static_cast<int>(window));
  uint64_t length = 0;
  if (!input.ReadVarint64(&length)) {
    // Either the prefix is cut short by the end of the data so far, or it
    // runs past the longest possible varint.
    const bool prefix_ended = std::any_of(
        bytes.begin(), bytes.begin() + window,
        [](char c) { return (static_cast<uint8_t>(c) & 0x80) == 0; });
    if (!prefix_ended && window < kMaxVarintBytes) return std::nullopt;
    return ProtocolError(wire::BAD_LENGTH_PREFIX,
                         "frame length prefix is not a valid varint");
  }
  if (length > max_frame_bytes) {
    return ProtocolError(
        wire::FRAME_TOO_LARGE,
        absl::StrCat("frame of ", length, " bytes exceeds the limit of ",
                     max_frame_bytes, " bytes"));
  }
  const size_t prefix = static_cast<size_t>(input.CurrentPosition());
  if (bytes.size() - prefix < length) return std::nullopt;
  return FrameView{bytes.substr(prefix, length), prefix + length};
}

void AppendFrame(const google::protobuf::MessageLite& message,
                 std::string* out) {
  google::protobuf::io::StringOutputStream stream(out);
  google::protobuf::util::SerializeDelimitedToZeroCopyStream(message, &stream);
}

std::string EncodeFrame(const google::protobuf::MessageLite& message) {
  std::string out;
  AppendFrame(message, &out);
  return out;
}

FrameDecoder::FrameDecoder(Options options) : options_(options) {}

void FrameDecoder::Append(absl::string_view bytes) {
  if (!error_.ok()) return;
  // Drop what has been decoded once it dominates the buffer, so the buffer
  // holds at most the unread frames and never creeps upward.
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

absl::StatusOr<bool> FrameDecoder::Next(
    google::protobuf::MessageLite& message) {
  if (!error_.ok()) return error_;
  const absl::string_view unread = absl::string_view(buffer_).substr(consumed_);
  absl::StatusOr<std::optional<FrameView>> frame =
      LocateFrame(unread, options_.max_frame_bytes);
  if (!frame.ok()) {
    error_ = frame.status();
    return error_;
  }
  if (!frame->has_value()) return false;
  // The frame is complete, so protobuf's own delimited parser reads exactly it.
  google::protobuf::io::CodedInputStream input(
      Bytes(unread), static_cast<int>((*frame)->size));
  bool clean_eof = false;
  message.Clear();
  if (!google::protobuf::util::ParseDelimitedFromCodedStream(&message, &input,
                                                             &clean_eof)) {
    error_ = ProtocolError(
        wire::MALFORMED_MESSAGE,
        absl::StrCat("frame of ", (*frame)->body.size(),
                     " bytes does not parse as ", message.GetTypeName()));
    return error_;
  }
  consumed_ += (*frame)->size;
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  return true;
}

absl::Status FrameDecoder::CheckEndOfStream() const {
  if (!error_.ok()) return error_;
  if (buffered_bytes() == 0) return absl::OkStatus();
  return ProtocolError(wire::TRUNCATED_FRAME,
                       absl::StrCat("stream ended inside a frame, ",
                                    buffered_bytes(), " bytes into it"));
}

}  // namespace manifold
