// File: broker/storage/stream_storage.cc
// -----------------------------------------------------------------------------

#include "broker/storage/stream_storage.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace manifold {
namespace {

// A batch's first block; each next one doubles, up to kMaxBlockBytes. A
// request above a quarter of that gets a block of its own, so that a block
// never leaves much of itself unused.
constexpr size_t kFirstBlockBytes = 4 << 10;
constexpr size_t kMaxBlockBytes = 256 << 10;

}  // namespace

BatchMemory& BatchMemory::operator=(BatchMemory&& other) noexcept {
  blocks_ = std::move(other.blocks_);
  other.blocks_.clear();
  block_size_ = std::exchange(other.block_size_, 0);
  next_ = std::exchange(other.next_, nullptr);
  left_ = std::exchange(other.left_, 0);
  return *this;
}

char* BatchMemory::Allocate(size_t size) {
  if (size > kMaxBlockBytes / 4) {
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(size));
    return blocks_.back().get();
  }
  if (left_ < size) {
    block_size_ = block_size_ == 0 ? kFirstBlockBytes
                                   : std::min(block_size_ * 2, kMaxBlockBytes);
    block_size_ = std::max(block_size_, size);
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(block_size_));
    next_ = blocks_.back().get();
    left_ = block_size_;
  }
  char* const out = next_;
  next_ += size;
  left_ -= size;
  return out;
}

absl::string_view StorageBatch::Keep(absl::string_view bytes) {
  if (bytes.empty()) return absl::string_view();
  char* const out = Allocate(bytes.size());
  std::memcpy(out, bytes.data(), bytes.size());
  return absl::string_view(out, bytes.size());
}

StorageBatch StorageBatch::Copy() const {
  StorageBatch copy;
  copy.id = id;
  copy.put_streams = put_streams;
  copy.remove_streams = remove_streams;
  copy.purge_streams = purge_streams;
  copy.appends = appends;
  for (AppendRecord& a : copy.appends) {
    a.topic = copy.Keep(a.topic);
    a.record = copy.Keep(a.record);
  }
  copy.put_consumers = put_consumers;
  copy.remove_consumers = remove_consumers;
  copy.enforce_streams = enforce_streams;
  copy.now_unix_ms = now_unix_ms;
  copy.sync = sync;
  return copy;
}

}  // namespace manifold
