// File: transports/io_uring/internal/buffer_ring.h
// -----------------------------------------------------------------------------
//
// A provided-buffer ring: a pool of equal receive buffers registered with an
// io_uring, from which the kernel picks one for each multishot receive
// completion (IOSQE_BUFFER_SELECT). The pool is shared by every socket of the
// loop, so memory for receiving is bounded by count * size however many
// connections there are. A buffer belongs to the kernel until a completion
// names it, then to the loop until Recycle() gives it back.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<BufferRing>> buffers =
//       BufferRing::Create(ring.get(), /*group=*/0, 256, 32 * 1024);
//   io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
//   sqe->flags |= IOSQE_BUFFER_SELECT;
//   sqe->buf_group = (*buffers)->group();
//   ...for a completion with IORING_CQE_F_BUFFER:
//   const uint16_t id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
//   Use((*buffers)->Data(id, cqe->res));
//   (*buffers)->Recycle(id);
//
// Thread safety: none; use it on the loop's thread.

#ifndef MANIFOLD_TRANSPORTS_IO_URING_INTERNAL_BUFFER_RING_H_
#define MANIFOLD_TRANSPORTS_IO_URING_INTERNAL_BUFFER_RING_H_

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace manifold::io_uring_internal {

class BufferRing {
 public:
  // Registers `count` buffers of `size` bytes as buffer group `group` of
  // `ring`. REQUIRES: count is a power of two <= 32768. Returns UNAVAILABLE
  // when the kernel has no provided-buffer rings (before Linux 5.19).
  static absl::StatusOr<std::unique_ptr<BufferRing>> Create(io_uring* ring,
                                                            uint16_t group,
                                                            unsigned count,
                                                            size_t size);

  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;
  // Frees the memory. REQUIRES: the io_uring it was registered with is gone
  // or will never fill a buffer again (the kernel may write into it until
  // then).
  ~BufferRing();

  uint16_t group() const { return group_; }
  size_t buffer_size() const { return size_; }

  // The first `length` bytes of buffer `id`. REQUIRES: id < count; the
  // buffer was handed out by a completion and not recycled since.
  absl::string_view Data(uint16_t id, size_t length) const {
    return absl::string_view(buffers_ + size_t{id} * size_, length);
  }

  // Gives buffer `id` back to the kernel.
  void Recycle(uint16_t id);

 private:
  BufferRing(uint16_t group, unsigned count, size_t size,
             io_uring_buf_ring* entries, size_t entries_bytes, char* buffers);

  const uint16_t group_;
  const unsigned count_;
  const size_t size_;
  io_uring_buf_ring* const entries_;  // mmap()ed, shared with the kernel
  const size_t entries_bytes_;
  char* const buffers_;  // count_ * size_ bytes, mmap()ed
};

}  // namespace manifold::io_uring_internal

#endif  // MANIFOLD_TRANSPORTS_IO_URING_INTERNAL_BUFFER_RING_H_
