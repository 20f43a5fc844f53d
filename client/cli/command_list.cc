// The subcommands of `manifold`. To add one, write
// client/cli/<name>_command.cc defining `Command <Name>Command()` and add its
// name to the list below.

#include <vector>

#include "client/cli/command.h"

#define MANIFOLD_CLI_COMMANDS(X) \
  X(PubCommand)                  \
  X(SubCommand)                  \
  X(ReqCommand)                  \
  X(ServeCommand)                \
  X(StatsCommand)                \
  X(EventsCommand)               \
  X(StreamCommand)               \
  X(ReplayCommand)               \
  X(BenchCommand)                \
  X(PasswdCommand)

namespace manifold::cli {

#define MANIFOLD_DECLARE_COMMAND(name) Command name();
MANIFOLD_CLI_COMMANDS(MANIFOLD_DECLARE_COMMAND)
#undef MANIFOLD_DECLARE_COMMAND

const std::vector<Command>& AllCommands() {
#define MANIFOLD_LIST_COMMAND(name) name(),
  static const std::vector<Command>* const commands =
      new std::vector<Command>{MANIFOLD_CLI_COMMANDS(MANIFOLD_LIST_COMMAND)};
#undef MANIFOLD_LIST_COMMAND
  return *commands;
}

}  // namespace manifold::cli
