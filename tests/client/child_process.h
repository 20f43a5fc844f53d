// File: tests/client/child_process.h
// -----------------------------------------------------------------------------
//
// Test helper: runs a program as a child process whose stdout and stderr go to
// files, waits for it with a deadline, signals it by PID, and reads what it
// printed. Every wait is bounded; a child still running when its
// ChildProcess is destroyed is killed.
//
//   absl::StatusOr<ChildProcess> sub = ChildProcess::Start(
//       {cli, "sub", "room/*", "--count", "1"});
//   ...
//   absl::StatusOr<int> code = sub->Wait(absl::Seconds(5));
//   EXPECT_EQ(sub->Stdout(), "[room/1] hello\n");

#ifndef MANIFOLD_TESTS_CLIENT_CHILD_PROCESS_H_
#define MANIFOLD_TESTS_CLIENT_CHILD_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace manifold::testing {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the arguments argv[1..]; `input` is its
  // stdin. Returns INTERNAL if it cannot be started.
  static absl::StatusOr<ChildProcess> Start(std::vector<std::string> argv,
                                            const std::string& input = "");

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // Sends `signal` to the child (if it still runs).
  void Signal(int signal);

  // Waits up to `timeout` for the child to exit. Returns its exit status
  // (128 + N if signal N ended it), or DEADLINE_EXCEEDED (it is still
  // running; it is not killed).
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // Waits up to `timeout` until the child's stdout contains `text`. Returns
  // false at the deadline or if the child exited without printing it.
  bool WaitForOutput(const std::string& text, absl::Duration timeout);

  // Everything the child printed so far.
  std::string Stdout() const;
  std::string Stderr() const;

  // The command line, for failure messages.
  std::string Describe() const;

 private:
  ChildProcess() = default;
  void Reset();

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string dir_;  // holds stdin, stdout and stderr files
  std::vector<std::string> argv_;
};

// Runs a program to completion (at most `timeout`; it is killed after that).
struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
absl::StatusOr<ProcessResult> RunProcess(std::vector<std::string> argv,
                                         absl::Duration timeout,
                                         const std::string& input = "");

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_CLIENT_CHILD_PROCESS_H_
