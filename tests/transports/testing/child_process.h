// File: tests/transports/testing/child_process.h
// -----------------------------------------------------------------------------
//
// For tests: runs a program (manifoldd, an example) as a real child process
// with its stdout and stderr in files, reads what it prints, signals it by
// PID and collects its exit status. A child still running when the ChildProcess
// goes away is killed, so a failing test leaves nothing behind.
//
//   absl::StatusOr<std::unique_ptr<ChildProcess>> broker = ChildProcess::Start(
//       ProgramPath("MANIFOLDD", MANIFOLDD_PATH), {"--listen=127.0.0.1:0"});
//   absl::StatusOr<std::string> line = (*broker)->ReadLine(absl::Seconds(5));
//   (*broker)->Signal(SIGTERM);
//   absl::StatusOr<int> status = (*broker)->Wait(absl::Seconds(5));
//   EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);

#ifndef MANIFOLD_TESTS_TRANSPORTS_TESTING_CHILD_PROCESS_H_
#define MANIFOLD_TESTS_TRANSPORTS_TESTING_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace manifold::testing {

class ChildProcess {
 public:
  struct Options {
    // RLIMIT_NOFILE for the child, to run it short of file descriptors.
    std::optional<int> max_open_files;
  };

  // Starts `path` with `args` (argv[0] is added). Fails if it cannot start.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::string& path, const std::vector<std::string>& args,
      Options options);
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::string& path, const std::vector<std::string>& args) {
    return Start(path, args, Options());
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills the child (SIGKILL) if it is still running and removes its files.
  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // Returns the next line the child printed on stdout, without the newline.
  // DEADLINE_EXCEEDED if none is complete within `timeout`; UNAVAILABLE if
  // the child exited first.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout);

  // Sends `signal_number` to the child.
  absl::Status Signal(int signal_number);

  // Waits for the child to exit; returns its wait status (WIFEXITED...), or
  // DEADLINE_EXCEEDED.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // Everything the child wrote to stdout / stderr so far.
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  ChildProcess(pid_t pid, std::string directory);
  std::string ReadFile(const std::string& name) const;

  pid_t pid_;
  std::string directory_;  // holds "stdout" and "stderr"
  size_t stdout_offset_ = 0;
  std::optional<int> status_;
};

// Runs `path` with `args` to completion (at most `timeout`) and returns its
// wait status together with its stdout and stderr.
struct Completed {
  int status = 0;
  std::string out;
  std::string err;
};
absl::StatusOr<Completed> RunToCompletion(
    const std::string& path, const std::vector<std::string>& args,
    absl::Duration timeout = absl::Seconds(10));

// A fresh, short directory for Unix sockets (their paths are limited to 107
// bytes, which test temp dirs can exceed). The caller removes it.
std::string MakeShortTempDir();

// The path of a program given to the test by the build system: the
// environment variable `env_name` (Bazel sets it from $(rootpath)), else
// `compiled_in` (CMake passes $<TARGET_FILE>), else empty.
std::string ProgramPath(const char* env_name, const char* compiled_in);

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TRANSPORTS_TESTING_CHILD_PROCESS_H_
