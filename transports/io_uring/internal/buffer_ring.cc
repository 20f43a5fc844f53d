#include "transports/io_uring/internal/buffer_ring.h"

#include <errno.h>
#include <sys/mman.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace manifold::io_uring_internal {
namespace {

void* MapAnonymous(size_t bytes) {
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return memory == MAP_FAILED ? nullptr : memory;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BufferRing>> BufferRing::Create(io_uring* ring,
                                                               uint16_t group,
                                                               unsigned count,
                                                               size_t size) {
  const size_t entries_bytes = count * sizeof(io_uring_buf);
  auto* entries = static_cast<io_uring_buf_ring*>(MapAnonymous(entries_bytes));
  if (entries == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("io_uring receive buffers: mmap: ", std::strerror(errno)));
  }
  auto* buffers = static_cast<char*>(MapAnonymous(count * size));
  if (buffers == nullptr) {
    const int error = errno;
    ::munmap(entries, entries_bytes);
    return absl::ResourceExhaustedError(
        absl::StrCat("io_uring receive buffers: mmap: ", std::strerror(error)));
  }
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<uintptr_t>(entries);
  registration.ring_entries = count;
  registration.bgid = group;
  const int result = io_uring_register_buf_ring(ring, &registration, 0);
  if (result != 0) {
    ::munmap(buffers, count * size);
    ::munmap(entries, entries_bytes);
    return absl::UnavailableError(absl::StrCat(
        "io_uring is unavailable: the kernel has no provided-buffer rings "
        "(io_uring_register_buf_ring: ",
        std::strerror(-result), "; Linux 5.19 or newer is needed)"));
  }
  io_uring_buf_ring_init(entries);
  std::unique_ptr<BufferRing> pool(
      new BufferRing(group, count, size, entries, entries_bytes, buffers));
  for (unsigned id = 0; id < count; ++id) {
    io_uring_buf_ring_add(entries, buffers + size_t{id} * size, size, id,
                          io_uring_buf_ring_mask(count), id);
  }
  io_uring_buf_ring_advance(entries, count);
  return pool;
}

BufferRing::BufferRing(uint16_t group, unsigned count, size_t size,
                       io_uring_buf_ring* entries, size_t entries_bytes,
                       char* buffers)
    : group_(group),
      count_(count),
      size_(size),
      entries_(entries),
      entries_bytes_(entries_bytes),
      buffers_(buffers) {}

BufferRing::~BufferRing() {
  ::munmap(buffers_, count_ * size_);
  ::munmap(entries_, entries_bytes_);
}

void BufferRing::Recycle(uint16_t id) {
  io_uring_buf_ring_add(entries_, buffers_ + size_t{id} * size_, size_, id,
                        io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(entries_, 1);
}

}  // namespace manifold::io_uring_internal
