// File: client/cli/shell_command.h
// -----------------------------------------------------------------------------
//
// Runs a shell command with some bytes on its stdin and collects what it
// writes, within a time limit and an output limit. `manifold serve --exec`
// answers each request this way.
//
// Example:
//
//   absl::StatusOr<ShellResult> r =
//       RunShellCommand("tr a-z A-Z", "hello", absl::Seconds(2), 1 << 20);
//   // r->exit_code == 0, r->out == "HELLO"

#ifndef MANIFOLD_CLIENT_CLI_SHELL_COMMAND_H_
#define MANIFOLD_CLIENT_CLI_SHELL_COMMAND_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace manifold::cli {

struct ShellResult {
  // The command's exit status; 128 + N when signal N ended it.
  int exit_code = 0;
  std::string out;  // stdout, at most max_output bytes
  std::string err;  // stderr, at most max_output bytes
};

// Runs `/bin/sh -c command` in a process group of its own, with `input` on
// stdin. Returns its result, or: DEADLINE_EXCEEDED if it runs longer than
// `timeout`, RESOURCE_EXHAUSTED if it writes more than `max_output` bytes to
// stdout (in both cases the whole process group is killed), INTERNAL if it
// cannot be started. SIGPIPE is blocked on the calling thread while it runs.
absl::StatusOr<ShellResult> RunShellCommand(absl::string_view command,
                                            absl::string_view input,
                                            absl::Duration timeout,
                                            size_t max_output);

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_SHELL_COMMAND_H_
