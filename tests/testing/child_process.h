// File: tests/testing/child_process.h
// -----------------------------------------------------------------------------
//
// For tests: runs a program (manifoldd, the `manifold` CLI, an example) as a
// real child process with its stdin from a string and its stdout and stderr in
// files; reads what it prints, signals it by PID and collects its exit code.
// Every wait is bounded, and a child still running when its ChildProcess goes
// away is killed, so a failing test leaves nothing behind.
//
//   absl::StatusOr<std::unique_ptr<ChildProcess>> sub =
//       ChildProcess::Start(cli, {"sub", "room/*", "--count", "1"});
//   ASSERT_TRUE(sub.ok()) << sub.status();
//   ASSERT_TRUE((*sub)->WaitForOutput("[room/1]", absl::Seconds(5)));
//   (*sub)->Signal(SIGTERM).IgnoreError();
//   absl::StatusOr<int> code = (*sub)->Wait(absl::Seconds(5));
//   EXPECT_EQ(code.value_or(-1), 0) << (*sub)->Stderr();
//
//   absl::StatusOr<Completed> help = RunToCompletion(cli, {"--help"});
//   EXPECT_EQ(help->exit_code, 0);

#ifndef MANIFOLD_TESTS_TESTING_CHILD_PROCESS_H_
#define MANIFOLD_TESTS_TESTING_CHILD_PROCESS_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace manifold::testing {

class ChildProcess {
 public:
  struct Options {
    // What the child reads on stdin (then end of file).
    std::string input;
    // RLIMIT_NOFILE for the child, to run it short of file descriptors.
    std::optional<int> max_open_files;
    // The child's working directory; empty: the test's. A relative program
    // path is resolved against the test's directory first.
    std::string working_directory;
  };

  // Starts the program at `path` with `args` (argv[0] is `path`). The child
  // inherits the environment and no descriptor of the test but the three it
  // gets. Fails if the program cannot be started (INVALID_ARGUMENT for an
  // empty path, INTERNAL otherwise; a path that is not executable makes the
  // child exit with 127).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::string& path, const std::vector<std::string>& args,
      Options options);
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::string& path, const std::vector<std::string>& args) {
    return Start(path, args, Options());
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills the child (SIGKILL) if it is still running, reaps it and removes
  // its files.
  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // Returns the next line the child printed on stdout, without the newline.
  // DEADLINE_EXCEEDED if none is complete within `timeout`; UNAVAILABLE if
  // the child exited first.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout);

  // Waits up to `timeout` until the child's stdout contains `text`. Returns
  // false at the deadline, or when the child exited without printing it.
  bool WaitForOutput(absl::string_view text, absl::Duration timeout);

  // Sends `signal_number` to the child. FAILED_PRECONDITION if it has been
  // reaped already.
  absl::Status Signal(int signal_number);

  // Waits up to `timeout` for the child to exit and returns its exit code, as
  // a shell reports it: the status it exited with, or 128 + N if signal N
  // ended it. DEADLINE_EXCEEDED if it is still running (it is not killed).
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // True while the child has not exited.
  bool Running();

  // Everything the child wrote to stdout / stderr so far.
  std::string Stdout() const;
  std::string Stderr() const;

  // The command line, quoted, for failure messages.
  std::string Describe() const;

 private:
  ChildProcess(pid_t pid, std::string directory, std::string command);
  std::string ReadFile(const char* name) const;

  const pid_t pid_;
  const std::string directory_;  // holds "stdin", "stdout" and "stderr"
  const std::string command_;
  size_t stdout_offset_ = 0;  // how far ReadLine() has read
  std::optional<int> exit_code_;
};

// What a program that ran to its end did.
struct Completed {
  int exit_code = -1;  // as ChildProcess::Wait() reports it
  std::string out;
  std::string err;
};

// Runs `path` with `args` until it exits, at most `timeout` (after that it is
// killed and DEADLINE_EXCEEDED returned).
absl::StatusOr<Completed> RunToCompletion(
    const std::string& path, const std::vector<std::string>& args,
    absl::Duration timeout = absl::Seconds(10),
    ChildProcess::Options options = ChildProcess::Options());

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TESTING_CHILD_PROCESS_H_
