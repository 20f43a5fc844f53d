#include "transports/io_uring/internal/ring.h"

#include <errno.h>
#include <sys/utsname.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace manifold::io_uring_internal {
namespace {

constexpr unsigned kBestEffortFlags =
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED;

absl::Status Unavailable(absl::string_view why) {
  return absl::UnavailableError(absl::StrCat("io_uring is unavailable: ", why));
}

std::string SetupFailure(int error) {
  return absl::StrCat("io_uring_setup: ", std::strerror(error));
}

// The kernel.io_uring_disabled sysctl (Linux 6.6), or -1 where there is none.
int IoUringDisabledSysctl() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  int value = -1;
  if (!(in >> value)) return -1;
  return value;
}

// Returns {major, minor} of the running kernel, {0, 0} if unknown.
std::pair<int, int> KernelVersion() {
  utsname name{};
  int major = 0, minor = 0;
  if (::uname(&name) != 0 ||
      std::sscanf(name.release, "%d.%d", &major, &minor) != 2) {
    return {0, 0};
  }
  return {major, minor};
}

// Checks that the kernel has every operation the adapter submits.
absl::Status CheckOperations(io_uring* ring) {
  io_uring_probe* probe = io_uring_get_probe_ring(ring);
  if (probe == nullptr) {
    return Unavailable(
        "the kernel cannot list its io_uring operations (Linux 5.6 or newer "
        "is needed)");
  }
  struct Needed {
    int op;
    const char* name;
  };
  static constexpr Needed kNeeded[] = {
      {IORING_OP_ACCEPT, "ACCEPT"},
      {IORING_OP_RECV, "RECV"},
      {IORING_OP_SEND, "SEND"},
      {IORING_OP_READ, "READ"},
      {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
  };
  absl::Status status;
  for (const Needed& needed : kNeeded) {
    if (!io_uring_opcode_supported(probe, needed.op)) {
      status =
          Unavailable(absl::StrCat("the kernel lacks IORING_OP_", needed.name,
                                   " (Linux 6.0 or newer is needed)"));
      break;
    }
  }
  io_uring_free_probe(probe);
  return status;
}

}  // namespace

absl::Status SetupError(int error) {
  switch (error) {
    case ENOSYS:
      return Unavailable(absl::StrCat("this kernel has no io_uring (",
                                      SetupFailure(error), ")"));
    case EPERM:
    case EACCES:
      switch (IoUringDisabledSysctl()) {
        case 2:
          return Unavailable(absl::StrCat(
              "disabled by the kernel.io_uring_disabled=2 sysctl (",
              SetupFailure(error), ")"));
        case 1:
          return Unavailable(absl::StrCat(
              "kernel.io_uring_disabled=1 allows it only to members of "
              "kernel.io_uring_group (",
              SetupFailure(error), ")"));
        default:
          return Unavailable(
              absl::StrCat("a seccomp filter or container policy forbids it (",
                           SetupFailure(error), ")"));
      }
    case ENOMEM:
      return Unavailable(absl::StrCat("not enough locked memory for the ring (",
                                      SetupFailure(error),
                                      "); raise RLIMIT_MEMLOCK"));
    case EINVAL:
      return Unavailable(
          absl::StrCat("the kernel refused every ring setup tried (",
                       SetupFailure(error), "); Linux 6.0 or newer is needed"));
    default:
      return Unavailable(SetupFailure(error));
  }
}

std::vector<unsigned> Ring::DefaultFlagSets() {
  return {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
          kBestEffortFlags,
      IORING_SETUP_SINGLE_ISSUER | kBestEffortFlags,
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      0,
  };
}

absl::StatusOr<std::unique_ptr<Ring>> Ring::Create(
    unsigned entries, absl::Span<const unsigned> flag_sets) {
  const auto [major, minor] = KernelVersion();
  if (major != 0 && (major < 6)) {
    return Unavailable(absl::StrCat(
        "Linux ", major, ".", minor,
        " lacks multishot receive; the io_uring loop needs Linux 6.0 or "
        "newer"));
  }
  std::unique_ptr<Ring> ring(new Ring());
  int error = EINVAL;
  for (unsigned flags : flag_sets) {
    io_uring_params params{};
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 8;
    const int result =
        io_uring_queue_init_params(entries, &ring->ring_, &params);
    if (result == 0) {
      ring->flags_ = flags;
      ring->initialized_ = true;
      break;
    }
    error = -result;
    // Only an unknown flag is worth another try; anything else (no
    // io_uring at all, not permitted, no memory) fails the same way again.
    if (error != EINVAL) break;
  }
  if (!ring->initialized_) return SetupError(error);
  if (absl::Status ops = CheckOperations(&ring->ring_); !ops.ok()) return ops;
  return ring;
}

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

std::string Ring::DescribeFlags() const {
  std::vector<const char*> names;
  if (flags_ & IORING_SETUP_SINGLE_ISSUER) names.push_back("SINGLE_ISSUER");
  if (flags_ & IORING_SETUP_DEFER_TASKRUN) names.push_back("DEFER_TASKRUN");
  if (flags_ & IORING_SETUP_COOP_TASKRUN) names.push_back("COOP_TASKRUN");
  if (flags_ & IORING_SETUP_SUBMIT_ALL) names.push_back("SUBMIT_ALL");
  return names.empty() ? "none" : absl::StrJoin(names, " ");
}

absl::Status Ring::Enable() {
  if ((flags_ & IORING_SETUP_R_DISABLED) == 0) return absl::OkStatus();
  // liburing 2.3 declares io_uring_enable_rings() but does not export it.
  const int result = io_uring_register(
      ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  if (result < 0) {
    return Unavailable(
        absl::StrCat("enabling the ring failed: ", std::strerror(-result)));
  }
  return absl::OkStatus();
}

io_uring_sqe* Ring::NextSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe != nullptr) return sqe;
  io_uring_submit(&ring_);
  return io_uring_get_sqe(&ring_);
}

}  // namespace manifold::io_uring_internal
