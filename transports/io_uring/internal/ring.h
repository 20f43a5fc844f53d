// File: transports/io_uring/internal/ring.h
// -----------------------------------------------------------------------------
//
// An io_uring instance set up for a broker loop, or a one-line reason why this
// machine cannot have one. Setup tries the best flags first and falls back:
//
//   SINGLE_ISSUER | DEFER_TASKRUN   (Linux 6.1: completions are processed only
//                                    when the loop asks, on its own thread)
//   SINGLE_ISSUER                   (Linux 6.0)
//   COOP_TASKRUN                    (Linux 5.19)
//   none
//
// each with R_DISABLED where the kernel has it, so the ring is bound to the
// thread that calls Enable() (the one that runs the loop), not the one that
// created it. It then checks that the kernel has what the adapter uses
// (multishot accept and receive, provided-buffer rings: Linux 6.0).
//
// Where io_uring is unavailable - no io_uring in the kernel (ENOSYS), the
// kernel.io_uring_disabled sysctl or a seccomp policy (EPERM), an old kernel -
// Create() returns UNAVAILABLE with a message that says which, e.g.
// "io_uring is unavailable: a seccomp filter or container policy forbids it
// (io_uring_setup: Operation not permitted)".
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<Ring>> ring = Ring::Create(512);
//   if (!ring.ok()) return ring.status();       // one line, says why
//   ...on the loop's thread:
//   if (absl::Status s = (*ring)->Enable(); !s.ok()) return s;
//   io_uring_sqe* sqe = (*ring)->NextSqe();
//
// Thread safety: none; after Enable(), use the ring only on that thread.

#ifndef MANIFOLD_TRANSPORTS_IO_URING_INTERNAL_RING_H_
#define MANIFOLD_TRANSPORTS_IO_URING_INTERNAL_RING_H_

#include <liburing.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace manifold::io_uring_internal {

class Ring {
 public:
  // The setup flag sets tried by default, best first (see the file comment).
  static std::vector<unsigned> DefaultFlagSets();

  // Creates a ring with `entries` submission slots (and eight times as many
  // completion slots), trying each of `flag_sets` until the kernel accepts
  // one. Returns UNAVAILABLE with a one-line explanation when none works or
  // the kernel lacks what the adapter needs.
  static absl::StatusOr<std::unique_ptr<Ring>> Create(
      unsigned entries,
      absl::Span<const unsigned> flag_sets = DefaultFlagSets());

  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  // Tears the ring down; the kernel cancels whatever is still in flight.
  ~Ring();

  io_uring* get() { return &ring_; }
  // The setup flags the kernel accepted.
  unsigned flags() const { return flags_; }
  // "SINGLE_ISSUER DEFER_TASKRUN", "none".
  std::string DescribeFlags() const;

  // Starts the ring if it was created disabled; the calling thread becomes
  // its only submitter. REQUIRES: called once, before any submission.
  absl::Status Enable();

  // Returns a free submission slot, submitting what is queued first when the
  // queue is full. Returns nullptr only if the kernel refuses to take more
  // (the caller treats that as an error of the operation).
  io_uring_sqe* NextSqe();

 private:
  Ring() = default;

  io_uring ring_{};
  unsigned flags_ = 0;
  bool initialized_ = false;
};

// The explanation for io_uring_setup() failing with `error` (an errno value),
// as an UNAVAILABLE status. Reads /proc/sys/kernel/io_uring_disabled to tell
// the sysctl from a seccomp filter.
absl::Status SetupError(int error);

}  // namespace manifold::io_uring_internal

#endif  // MANIFOLD_TRANSPORTS_IO_URING_INTERNAL_RING_H_
