// File: broker/outbound_buffer.h
// -----------------------------------------------------------------------------
//
// The bytes waiting to be written to one peer: a chain of slices of
// reference-counted blocks. Small writes are copied into the buffer's own tail
// block; a large encoded message that goes to many peers is appended by
// reference (`SharedBytes`), so fan-out to 10,000 subscribers encodes and
// stores the message once.
//
// The transport reads the front of the chain with `Peek` (one string_view per
// slice, ready for writev) and drops what the kernel accepted with `Consume`.
//
// A codec that wraps what it writes in frames of an outer protocol whose
// header states the frame's length (a WebSocket message carrying NATS) can
// write the payload first and the header last: `OpenFrame` reserves room for
// the header, appends go into the frame as usual, and `CloseFrame` writes the
// header once the length is known. So one frame can gather many messages
// without copying them. An open frame counts in `size()` (flow control sees
// it) but not in `ready_size()`, and `Peek` stops before it: a transport never
// writes half a frame.
//
// Single-threaded: blocks are reference counted without atomics. A buffer and
// the SharedBytes appended to it must stay on one thread.
//
// Example:
//
//   OutboundBuffer out;
//   out.Append("header");
//   SharedBytes body = SharedBytes::Copy(encoded_message);
//   out.AppendShared(body);              // no copy of the message
//   absl::string_view chunks[16];
//   size_t n = out.Peek(absl::MakeSpan(chunks));
//   size_t written = writev(...chunks[0..n)...);
//   out.Consume(written);
//
//   out.OpenFrame(/*max_header_bytes=*/10);
//   out.Append("PONG\r\n");                 // the frame's payload
//   out.CloseFrame(HeaderFor(out.open_frame_payload_size()));

#ifndef MANIFOLD_BROKER_OUTBOUND_BUFFER_H_
#define MANIFOLD_BROKER_OUTBOUND_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <deque>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace manifold {

namespace outbound_internal {
struct Block;
}  // namespace outbound_internal

// An immutable, reference-counted byte string that many OutboundBuffers can
// hold at once. Copying a SharedBytes copies a pointer.
class SharedBytes {
 public:
  SharedBytes() = default;
  // Returns a SharedBytes holding a copy of `bytes`.
  static SharedBytes Copy(absl::string_view bytes);
  // Returns a SharedBytes of `size` bytes for the caller to fill through
  // mutable_data() before sharing it.
  static SharedBytes Uninitialized(size_t size);

  SharedBytes(const SharedBytes& other);
  SharedBytes& operator=(const SharedBytes& other);
  SharedBytes(SharedBytes&& other) noexcept;
  SharedBytes& operator=(SharedBytes&& other) noexcept;
  // Inline for the common empty case: every routed message destroys a few.
  ~SharedBytes() {
    if (block_ != nullptr) Release();
  }

  absl::string_view view() const;
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // REQUIRES: this is the only holder (just created by Uninitialized()).
  char* mutable_data();

 private:
  friend class OutboundBuffer;
  void Release();
  outbound_internal::Block* block_ = nullptr;
  size_t size_ = 0;
};

class OutboundBuffer {
 public:
  OutboundBuffer() = default;
  OutboundBuffer(const OutboundBuffer&) = delete;
  OutboundBuffer& operator=(const OutboundBuffer&) = delete;
  ~OutboundBuffer();

  // Appends a copy of `bytes`.
  void Append(absl::string_view bytes);

  // Appends `n` bytes of contiguous space and returns it; the caller must
  // write all `n` bytes before the next call on this buffer.
  char* AppendSpace(size_t n) {
    if (tail_ != nullptr && n <= tail_free_) {  // common: room in the tail
      // The tail slice's length is brought up to date lazily (SyncTail), so
      // this touches only the buffer object itself.
      char* space = tail_write_;
      tail_write_ += n;
      tail_free_ -= n;
      size_ += n;
      return space;
    }
    return AppendSpaceSlow(n);
  }

  // Appends `bytes` by reference. Small values are copied instead, since a
  // copy of a few hundred bytes is cheaper than an extra slice.
  void AppendShared(const SharedBytes& bytes);

  // Appends the bytes of `bytes` from `offset` on, by reference like
  // AppendShared(bytes). REQUIRES: offset <= bytes.size().
  void AppendShared(const SharedBytes& bytes, size_t offset);

  // Total bytes not yet consumed, an open frame included (with the room
  // reserved for its header).
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // The bytes Peek() can return: size() less an open frame.
  size_t ready_size() const { return frame_open_ ? ready_bytes_ : size_; }

  // Fills `chunks` with views of the first slices before any open frame, in
  // order, and returns how many it filled (fewer when there are fewer). The
  // views stay valid until the next non-const call.
  size_t Peek(absl::Span<absl::string_view> chunks) const;

  // Drops the first `n` bytes. REQUIRES: n <= ready_size().
  void Consume(size_t n);

  // Drops everything, an open frame included.
  void Clear();

  // --- Frames whose header is written last ----------------------------------

  // Opens a frame: reserves `max_header_bytes` for its header; what is
  // appended from now on is its payload. REQUIRES: !frame_open(),
  // 0 < max_header_bytes <= kMaxFrameHeaderBytes.
  void OpenFrame(size_t max_header_bytes);
  bool frame_open() const { return frame_open_; }
  // The payload appended since OpenFrame(). REQUIRES: frame_open().
  size_t open_frame_payload_size() const {
    return size_ - ready_bytes_ - frame_header_room_;
  }
  // Calls `visit` with each piece of the open frame's payload, in order
  // (views valid until the next non-const call). REQUIRES: frame_open().
  void ForEachOpenFramePiece(
      absl::FunctionRef<void(absl::string_view)> visit) const;
  // Writes `header` in front of the open frame's payload and closes it: its
  // bytes become ready. An empty header with an empty payload leaves nothing.
  // REQUIRES: frame_open(), header.size() <= the room OpenFrame() reserved.
  void CloseFrame(absl::string_view header);

  // Appends below this size are copied even when offered by reference.
  static constexpr size_t kCopyThreshold = 512;
  // Size of the blocks small appends are copied into.
  static constexpr size_t kBlockSize = 16 * 1024;
  // The most room OpenFrame() reserves for a header.
  static constexpr size_t kMaxFrameHeaderBytes = 16;

 private:
  struct Slice {
    outbound_internal::Block* block;
    uint32_t offset;
    uint32_t length;
  };

  char* AppendSpaceSlow(size_t n);
  // Brings the writable tail slice's length up to date with tail_write_.
  void SyncTail() const;
  // Makes the tail slice one this buffer may write into, with at least `n`
  // free bytes after it.
  void MakeWritableTail(size_t n);
  // Forgets the writable tail (it was consumed, or a shared slice follows it).
  void DropWritableTail();
  void Release(outbound_internal::Block* block);

  // The fields an append touches come first, on one cache line.
  size_t size_ = 0;
  // The writable tail: the last slice, its block owned by this buffer alone,
  // with `tail_free_` unused bytes at `tail_write_`. References into a deque
  // stay valid across push_back and across pop_front of other elements.
  Slice* tail_ = nullptr;
  char* tail_write_ = nullptr;
  size_t tail_free_ = 0;
  mutable std::deque<Slice> slices_;  // the tail's length is synced lazily
  // One emptied block kept for reuse, so a steady stream of small writes does
  // not allocate.
  outbound_internal::Block* spare_ = nullptr;
  // The open frame (OpenFrame()): the index of its first slice from the
  // front, which begins with the room for its header; that room's size; and
  // the bytes before the frame.
  bool frame_open_ = false;
  uint32_t frame_header_room_ = 0;
  size_t frame_slice_ = 0;
  size_t ready_bytes_ = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_OUTBOUND_BUFFER_H_
