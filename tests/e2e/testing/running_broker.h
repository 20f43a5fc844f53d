// File: tests/e2e/testing/running_broker.h
// -----------------------------------------------------------------------------
//
// For end-to-end tests: a real manifoldd process on free loopback ports,
// started with the flags a test needs, watched from outside (its resident
// memory from /proc/<pid>/status, its statistics from a $sys/stats request)
// and stopped by PID.
//
//   absl::StatusOr<std::unique_ptr<RunningBroker>> broker =
//       RunningBroker::Start("epoll", {"--max_connections=64"},
//                            {.nats = true});
//   absl::StatusOr<WireClient> c = WireClient::Connect((*broker)->tcp());
//   absl::StatusOr<int64_t> rss = (*broker)->ResidentKib();
//   absl::StatusOr<wire::Statistics> stats = (*broker)->Statistics();
//   EXPECT_TRUE((*broker)->Stop().ok());   // SIGTERM, then exit status 0

#ifndef MANIFOLD_TESTS_E2E_TESTING_RUNNING_BROKER_H_
#define MANIFOLD_TESTS_E2E_TESTING_RUNNING_BROKER_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/manifold.pb.h"
#include "tests/transports/testing/child_process.h"
#include "transports/sockets/endpoint.h"

namespace manifold::testing {

// The manifoldd the build gave the test: $MANIFOLDD (Bazel), else the path
// CMake compiled in as MANIFOLDD_PATH.
std::string ManifolddPath();

class RunningBroker {
 public:
  struct Options {
    // Also listen for NATS clients (--nats=127.0.0.1:0).
    bool nats = false;
  };

  // Starts manifoldd on `loop` with --listen=127.0.0.1:0, --log_level=info
  // (so removals are logged with their reason) and `flags`, and waits for
  // its "listening on" line. Returns an error naming what went wrong, with
  // manifoldd's stderr, if it did not start.
  static absl::StatusOr<std::unique_ptr<RunningBroker>> Start(
      absl::string_view loop, const std::vector<std::string>& flags,
      Options options);
  static absl::StatusOr<std::unique_ptr<RunningBroker>> Start(
      absl::string_view loop, const std::vector<std::string>& flags) {
    return Start(loop, flags, Options());
  }

  // Kills the process if Stop() was not called.
  ~RunningBroker() = default;

  pid_t pid() const { return process_->pid(); }
  // The native TCP listener.
  const Endpoint& tcp() const { return tcp_; }
  // The NATS listener; only with Options::nats.
  const Endpoint& nats() const { return nats_; }

  // True while the process has not exited.
  bool Alive();

  // The process's resident set size (VmRSS in /proc/<pid>/status), in KiB.
  absl::StatusOr<int64_t> ResidentKib() const;

  // Asks the broker for its statistics over a fresh native connection
  // (a Request to $sys/stats). Fails if the broker does not answer within
  // a few seconds.
  absl::StatusOr<wire::Statistics> Statistics() const;

  // What manifoldd logged so far.
  std::string Log() const { return process_->Stderr(); }

  // Sends SIGTERM and waits for the exit. OK only if manifoldd exited with
  // status 0; otherwise the error says how it ended, with its log.
  absl::Status Stop();

 private:
  explicit RunningBroker(std::unique_ptr<ChildProcess> process)
      : process_(std::move(process)) {}

  std::unique_ptr<ChildProcess> process_;
  Endpoint tcp_;
  Endpoint nats_;
};

// True when this build, and so the manifoldd it made, runs under a
// sanitizer. Their allocators keep freed memory in quarantine and add shadow
// memory, so resident memory says little about the broker's own use, and
// they slow some code far more than other code, so relative speeds say
// little either: tests report both but do not judge them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_E2E_TESTING_RUNNING_BROKER_H_
