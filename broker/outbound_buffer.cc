#include "broker/outbound_buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <new>

namespace manifold {
namespace outbound_internal {

// A heap block: header followed by `capacity` bytes. `used` bytes are written.
struct Block {
  uint32_t refs;
  uint32_t capacity;
  uint32_t used;
  char* data() { return reinterpret_cast<char*>(this + 1); }
};

namespace {

Block* NewBlock(size_t capacity) {
  void* memory = ::operator new(sizeof(Block) + capacity);
  return new (memory) Block{1, static_cast<uint32_t>(capacity), 0};
}

void Unref(Block* block) {
  if (block != nullptr && --block->refs == 0) ::operator delete(block);
}

}  // namespace
}  // namespace outbound_internal

using outbound_internal::Block;

// ---------------------------------------------------------------------------
// SharedBytes

SharedBytes SharedBytes::Copy(absl::string_view bytes) {
  SharedBytes shared = Uninitialized(bytes.size());
  if (!bytes.empty())
    std::memcpy(shared.mutable_data(), bytes.data(), bytes.size());
  return shared;
}

SharedBytes SharedBytes::Uninitialized(size_t size) {
  SharedBytes shared;
  shared.block_ = outbound_internal::NewBlock(size);
  shared.block_->used = static_cast<uint32_t>(size);
  shared.size_ = size;
  return shared;
}

SharedBytes::SharedBytes(const SharedBytes& other)
    : block_(other.block_), size_(other.size_) {
  if (block_ != nullptr) ++block_->refs;
}

SharedBytes& SharedBytes::operator=(const SharedBytes& other) {
  if (this != &other) {
    if (other.block_ != nullptr) ++other.block_->refs;
    outbound_internal::Unref(block_);
    block_ = other.block_;
    size_ = other.size_;
  }
  return *this;
}

SharedBytes::SharedBytes(SharedBytes&& other) noexcept
    : block_(other.block_), size_(other.size_) {
  other.block_ = nullptr;
  other.size_ = 0;
}

SharedBytes& SharedBytes::operator=(SharedBytes&& other) noexcept {
  if (this != &other) {
    outbound_internal::Unref(block_);
    block_ = other.block_;
    size_ = other.size_;
    other.block_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void SharedBytes::Release() {
  outbound_internal::Unref(block_);
  block_ = nullptr;
}

absl::string_view SharedBytes::view() const {
  return block_ == nullptr ? absl::string_view()
                           : absl::string_view(block_->data(), size_);
}

char* SharedBytes::mutable_data() {
  assert(block_ != nullptr && block_->refs == 1);
  return block_->data();
}

// ---------------------------------------------------------------------------
// OutboundBuffer

OutboundBuffer::~OutboundBuffer() {
  Clear();
  if (spare_ != nullptr) ::operator delete(spare_);
}

void OutboundBuffer::SyncTail() const {
  if (tail_ != nullptr) {
    tail_->length = static_cast<uint32_t>(
        tail_write_ - (tail_->block->data() + tail_->offset));
  }
}

void OutboundBuffer::DropWritableTail() {
  if (tail_ != nullptr) {
    SyncTail();
    // Record what was written, so the block's bytes are accounted for.
    tail_->block->used =
        static_cast<uint32_t>(tail_write_ - tail_->block->data());
  }
  tail_ = nullptr;
  tail_write_ = nullptr;
  tail_free_ = 0;
}

void OutboundBuffer::MakeWritableTail(size_t n) {
  DropWritableTail();
  Block* block;
  if (spare_ != nullptr && spare_->capacity >= n) {
    block = spare_;
    spare_ = nullptr;
    block->refs = 1;
    block->used = 0;
  } else {
    block = outbound_internal::NewBlock(std::max(n, kBlockSize));
  }
  slices_.push_back(Slice{block, 0, 0});
  tail_ = &slices_.back();
  tail_write_ = block->data();
  tail_free_ = block->capacity;
}

char* OutboundBuffer::AppendSpaceSlow(size_t n) {
  MakeWritableTail(n);
  return AppendSpace(n);
}

void OutboundBuffer::Append(absl::string_view bytes) {
  if (bytes.empty()) return;
  std::memcpy(AppendSpace(bytes.size()), bytes.data(), bytes.size());
}

void OutboundBuffer::AppendShared(const SharedBytes& bytes) {
  if (bytes.size() < kCopyThreshold) {
    Append(bytes.view());
    return;
  }
  DropWritableTail();
  ++bytes.block_->refs;
  slices_.push_back(
      Slice{bytes.block_, 0, static_cast<uint32_t>(bytes.size())});
  size_ += bytes.size();
}

void OutboundBuffer::AppendShared(const SharedBytes& bytes, size_t offset) {
  assert(offset <= bytes.size());
  const size_t length = bytes.size() - offset;
  if (length < kCopyThreshold) {
    Append(bytes.view().substr(offset));
    return;
  }
  DropWritableTail();
  ++bytes.block_->refs;
  slices_.push_back(Slice{bytes.block_, static_cast<uint32_t>(offset),
                          static_cast<uint32_t>(length)});
  size_ += length;
}

size_t OutboundBuffer::Peek(absl::Span<absl::string_view> chunks) const {
  SyncTail();
  size_t filled = 0;
  const auto end = frame_open_ ? slices_.begin() + frame_slice_ : slices_.end();
  for (auto it = slices_.begin(); it != end && filled < chunks.size(); ++it) {
    if (it->length == 0) continue;
    chunks[filled++] =
        absl::string_view(it->block->data() + it->offset, it->length);
  }
  return filled;
}

void OutboundBuffer::Consume(size_t n) {
  assert(n <= ready_size());
  SyncTail();
  size_ -= n;
  if (frame_open_) ready_bytes_ -= n;
  while (n > 0) {
    Slice& front = slices_.front();
    if (n < front.length) {
      front.offset += static_cast<uint32_t>(n);
      front.length -= static_cast<uint32_t>(n);
      return;
    }
    n -= front.length;
    Block* block = front.block;
    if (&front == tail_) DropWritableTail();
    slices_.pop_front();
    if (frame_open_) --frame_slice_;
    Release(block);
  }
  // An empty tail slice can remain after a zero-length append; drop it too.
  while (!slices_.empty() && slices_.front().length == 0 && size_ == 0) {
    Block* block = slices_.front().block;
    if (&slices_.front() == tail_) DropWritableTail();
    slices_.pop_front();
    Release(block);
  }
}

void OutboundBuffer::Clear() {
  DropWritableTail();
  while (!slices_.empty()) {
    Block* block = slices_.front().block;
    slices_.pop_front();
    Release(block);
  }
  size_ = 0;
  frame_open_ = false;
}

void OutboundBuffer::OpenFrame(size_t max_header_bytes) {
  assert(!frame_open_);
  assert(max_header_bytes > 0 && max_header_bytes <= kMaxFrameHeaderBytes);
  SyncTail();
  if (tail_ != nullptr && tail_free_ >= max_header_bytes) {
    if (tail_->length != 0) {
      // The frame must begin a slice, so that CloseFrame() can drop the room
      // its header does not use: start one in the same block.
      Block* block = tail_->block;
      ++block->refs;
      slices_.push_back(
          Slice{block, static_cast<uint32_t>(tail_write_ - block->data()), 0});
      tail_ = &slices_.back();
    }
  } else {
    MakeWritableTail(max_header_bytes);
  }
  frame_slice_ = slices_.size() - 1;
  ready_bytes_ = size_;
  frame_header_room_ = static_cast<uint32_t>(max_header_bytes);
  frame_open_ = true;
  AppendSpace(max_header_bytes);  // written by CloseFrame()
}

void OutboundBuffer::ForEachOpenFramePiece(
    absl::FunctionRef<void(absl::string_view)> visit) const {
  assert(frame_open_);
  SyncTail();
  size_t skip = frame_header_room_;
  for (auto it = slices_.begin() + frame_slice_; it != slices_.end(); ++it) {
    absl::string_view piece(it->block->data() + it->offset, it->length);
    piece.remove_prefix(skip);
    skip = 0;
    if (!piece.empty()) visit(piece);
  }
}

void OutboundBuffer::CloseFrame(absl::string_view header) {
  assert(frame_open_ && header.size() <= frame_header_room_);
  SyncTail();
  Slice& first = slices_[frame_slice_];
  // The header goes at the end of its room; the slice then starts there.
  const uint32_t unused =
      frame_header_room_ - static_cast<uint32_t>(header.size());
  if (!header.empty()) {
    std::memcpy(first.block->data() + first.offset + unused, header.data(),
                header.size());
  }
  first.offset += unused;
  first.length -= unused;  // SyncTail() agrees when `first` is the tail
  size_ -= unused;
  frame_open_ = false;
}

void OutboundBuffer::Release(Block* block) {
  if (--block->refs > 0) return;
  if (spare_ == nullptr && block->capacity == kBlockSize) {
    spare_ = block;
    return;
  }
  ::operator delete(block);
}

}  // namespace manifold
