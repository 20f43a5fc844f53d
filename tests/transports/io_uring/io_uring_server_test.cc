// What only the io_uring adapter does: its ring setup (the best flags the
// kernel has, falling back past the ones it lacks), and failing with one line
// that says why where io_uring is unavailable, never crashing or hanging.
// Unavailability is made real with a seccomp filter on io_uring_setup(), in a
// thread of this process and in a real manifoldd process. Everything a client
// can see is tested for every loop in
// tests/transports/sockets/socket_server_test.cc.

#include "transports/io_uring/io_uring_server.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/running_manifoldd.h"
#include "transports/io_uring/internal/ring.h"

namespace manifold {
namespace {

using io_uring_internal::Ring;

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
constexpr uint32_t kAuditArch = 0;
#endif

// Makes io_uring_setup() fail with `error` on the calling thread (and in
// programs it execs), as a container runtime's seccomp profile does. Returns
// false where this architecture is not known here.
bool ForbidIoUringSetup(int error) {
  if (kAuditArch == 0) return false;
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO |
                   (static_cast<uint32_t>(error) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0;
}

// IoUringServer::Create()'s status on a thread where io_uring_setup() fails
// with `error`.
absl::Status CreateWhereSetupFails(int error) {
  absl::Status status;
  std::thread forbidden([&] {
    if (!ForbidIoUringSetup(error)) {
      status = absl::UnimplementedError("cannot install a seccomp filter");
      return;
    }
    absl::StatusOr<std::unique_ptr<IoUringServer>> server =
        IoUringServer::Create();
    status = server.status();
  });
  forbidden.join();
  return status;
}

bool KernelAtLeast(int major, int minor) {
  utsname name{};
  int have_major = 0, have_minor = 0;
  return ::uname(&name) == 0 &&
         std::sscanf(name.release, "%d.%d", &have_major, &have_minor) == 2 &&
         (have_major > major || (have_major == major && have_minor >= minor));
}

TEST(IoUringServerTest,
     UsesSingleIssuerAndDeferredTaskRunWhereTheKernelHasThem) {
  absl::StatusOr<std::unique_ptr<IoUringServer>> server =
      IoUringServer::Create();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->loop_name(), "io_uring");
  if (KernelAtLeast(6, 1)) {
    EXPECT_TRUE(absl::StartsWith((*server)->ring_flags(),
                                 "SINGLE_ISSUER DEFER_TASKRUN"))
        << (*server)->ring_flags();
  }
}

TEST(IoUringServerTest, RingSetupFallsBackPastFlagsTheKernelRefuses) {
  constexpr unsigned kUnknownFlag = 1u << 30;
  absl::StatusOr<std::unique_ptr<Ring>> ring =
      Ring::Create(64, {kUnknownFlag, 0u});
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ((*ring)->flags(), 0u);
  EXPECT_EQ((*ring)->DescribeFlags(), "none");
  EXPECT_TRUE((*ring)->Enable().ok());
}

TEST(IoUringServerTest, RingSetupNoFlagsWorkForFailsWithAReason) {
  absl::StatusOr<std::unique_ptr<Ring>> ring = Ring::Create(64, {1u << 30});
  EXPECT_EQ(ring.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ring.status().message(),
            "io_uring is unavailable: the kernel refused every ring setup "
            "tried (io_uring_setup: Invalid argument); Linux 6.0 or newer is "
            "needed");
}

TEST(IoUringServerTest, ASeccompPolicyAgainstIoUringIsAOneLineError) {
  const absl::Status status = CreateWhereSetupFails(EPERM);
  if (absl::IsUnimplemented(status)) GTEST_SKIP() << status;
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StartsWith(status.message(), "io_uring is unavailable: "))
      << status;
  EXPECT_TRUE(absl::EndsWith(status.message(),
                             "(io_uring_setup: Operation not permitted)"))
      << status;
  EXPECT_FALSE(absl::StrContains(status.message(), "\n"));
}

TEST(IoUringServerTest, AKernelWithoutIoUringIsAOneLineError) {
  const absl::Status status = CreateWhereSetupFails(ENOSYS);
  if (absl::IsUnimplemented(status)) GTEST_SKIP() << status;
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(),
            "io_uring is unavailable: this kernel has no io_uring "
            "(io_uring_setup: Function not implemented)");
}

// Runs manifoldd with `args` to its end, where io_uring_setup() fails with
// EPERM: it is started from a thread with that seccomp filter, which the
// child inherits. Fails after 10 s.
absl::StatusOr<testing::Completed> RunManifolddWithoutIoUring(
    const std::vector<std::string>& args) {
  absl::StatusOr<testing::Completed> run =
      absl::InternalError("the filtered thread did not run");
  std::thread forbidden([&] {
    if (!ForbidIoUringSetup(EPERM)) {
      run = absl::UnimplementedError("cannot install a seccomp filter");
      return;
    }
    run = testing::RunToCompletion(testing::ManifolddPath(), args,
                                   absl::Seconds(10));
  });
  forbidden.join();
  return run;
}

TEST(IoUringServerTest, ManifolddSaysInOneLineWhyItCannotUseIoUring) {
  if (kAuditArch == 0) GTEST_SKIP() << "no seccomp filter for this machine";
  absl::StatusOr<testing::Completed> run =
      RunManifolddWithoutIoUring({"--loop=io_uring", "--listen=127.0.0.1:0"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 1) << run->err;
  EXPECT_TRUE(
      absl::StartsWith(run->err, "manifoldd: io_uring is unavailable: "))
      << run->err;
  EXPECT_EQ(std::count(run->err.begin(), run->err.end(), '\n'), 1) << run->err;
}

}  // namespace
}  // namespace manifold
