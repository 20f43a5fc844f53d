// File: client/cli/command.h
// -----------------------------------------------------------------------------
//
// What a `manifold` subcommand is. Each subcommand lives in its own file,
// `client/cli/<name>_command.cc`, which defines its own flags (if any) and a
// function returning its `Command`; client/cli/command_list.cc lists them.
// Adding a subcommand is that one file plus one line in the list.
//
// Example (client/cli/hello_command.cc):
//
//   absl::Status RunHello(CommandContext& context) {
//     if (absl::Status s = context.ExpectArgs(1, "NAME"); !s.ok()) return s;
//     context.Print(absl::StrCat("hello, ", context.args()[0]));
//     return absl::OkStatus();
//   }
//
//   Command HelloCommand() {
//     return {"hello", "hello NAME", "greet someone", {}, RunHello};
//   }

#ifndef MANIFOLD_CLIENT_CLI_COMMAND_H_
#define MANIFOLD_CLIENT_CLI_COMMAND_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/client.h"

namespace manifold::cli {

// What a running subcommand may use.
class CommandContext {
 public:
  CommandContext(std::string command, std::string synopsis,
                 std::vector<std::string> args);

  // Positional arguments after the subcommand's name.
  const std::vector<std::string>& args() const { return args_; }
  // --json: print one JSON object per line.
  bool json() const;
  // --server: where the broker is.
  std::string server() const;

  // Returns a usage error unless there are exactly `count` positional
  // arguments; `names` describes them, e.g. "TOPIC MESSAGE".
  absl::Status ExpectArgs(size_t count, absl::string_view names) const;

  // Connects to --server as a client named "manifold-<command>", with
  // --user, --pass and --token as its credentials.
  absl::StatusOr<std::unique_ptr<Client>> Connect(
      ClientOptions options = ClientOptions()) const;

  // Writes `line` and a newline to stdout and flushes, so that a pipe sees
  // each message as it arrives.
  void Print(absl::string_view line) const;

  // True once SIGINT or SIGTERM arrived: long-running subcommands finish
  // what they are doing and return OK.
  bool stop_requested() const;

 private:
  std::string command_;
  std::string synopsis_;
  std::vector<std::string> args_;
};

struct Command {
  // The word after `manifold`.
  std::string name;
  // Usage, without "manifold ": "sub PATTERN [--queue G] [--count N]".
  std::string synopsis;
  // One line for `manifold help`.
  std::string summary;
  // The flags only this subcommand accepts (names without dashes); giving
  // one of another subcommand's flags is a usage error.
  std::vector<std::string> flags;
  // Runs the subcommand. An error is printed as one line on stderr; the exit
  // status is 2 for a usage error (see UsageError()), else 1.
  absl::Status (*run)(CommandContext& context);
};

// Every subcommand, in the order `manifold help` lists them
// (client/cli/command_list.cc).
const std::vector<Command>& AllCommands();

// A status that makes `manifold` exit with status 2 (bad usage).
absl::Status UsageError(absl::string_view message);
bool IsUsageError(const absl::Status& status);

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_COMMAND_H_
