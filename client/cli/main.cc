// `manifold`: the command-line client for a Manifold broker.
//
//   manifold [--server HOST:PORT | --server unix:PATH] [--json] COMMAND ...
//
// Each subcommand is a client/cli/<name>_command.cc file (see command.h).
// Output is one line per message (one JSON object per line with --json);
// an error is one line on stderr and a non-zero exit status.

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/cli/command.h"
#include "client/cli/flag_spelling.h"
#include "client/cli/flags.h"
#include "client/cli/stop_signal.h"

namespace manifold::cli {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

std::string UsageText() {
  std::string text =
      "talk to a Manifold broker\n\n"
      "usage: manifold [--server HOST:PORT | --server unix:PATH] [--json] "
      "COMMAND ARGS...\n\ncommands:\n";
  // Summaries line up after the synopses; a synopsis too long for that
  // (bench's) has its summary on the next line, at the same column.
  constexpr size_t kMaxAlignedSynopsis = 60;
  size_t width = 0;
  for (const Command& c : AllCommands()) {
    if (c.synopsis.size() <= kMaxAlignedSynopsis) {
      width = std::max(width, c.synopsis.size());
    }
  }
  for (const Command& c : AllCommands()) {
    if (c.synopsis.size() <= width) {
      absl::StrAppend(&text, "  ", c.synopsis,
                      std::string(width + 2 - c.synopsis.size(), ' '),
                      c.summary, "\n");
    } else {
      absl::StrAppend(&text, "  ", c.synopsis, "\n",
                      std::string(width + 4, ' '), c.summary, "\n");
    }
  }
  absl::StrAppend(
      &text,
      "\nglobal flags:\n"
      "  --server  the broker (default 127.0.0.1:24387)\n"
      "  --json    one JSON object per line, for scripts\n"
      "  --user NAME --pass PASSWORD, --token TOKEN\n"
      "            credentials for the broker's admission check\n"
      "  (a flag may be spelled with '-' or '_': --from-seq, --from_seq)\n"
      "\nexit status: 0 done, 1 failed (one line on stderr says why), "
      "2 bad usage\n");
  return text;
}

const Command* FindCommand(absl::string_view name) {
  for (const Command& c : AllCommands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// Returns a usage error if a flag of another subcommand was given.
absl::Status CheckFlagsApply(const Command& command) {
  for (const Command& other : AllCommands()) {
    for (const std::string& flag : other.flags) {
      if (std::find(command.flags.begin(), command.flags.end(), flag) !=
          command.flags.end()) {
        continue;
      }
      const absl::CommandLineFlag* f = absl::FindCommandLineFlag(flag);
      // (This Abseil cannot tell "given" from "given its default value"; the
      // latter is harmless.)
      if (f != nullptr && f->CurrentValue() != f->DefaultValue()) {
        return UsageError(absl::StrCat("--", flag, " does not apply to '",
                                       command.name, "' (usage: manifold ",
                                       command.synopsis, ")"));
      }
    }
  }
  return absl::OkStatus();
}

// Returns a usage error naming the first flag that no part of `manifold`
// defines. (Abseil would report it too, but exit with status 1.)
absl::Status CheckFlagsExist(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;
    absl::string_view name =
        absl::StripPrefix(absl::StripPrefix(arg, "-"), "-");
    name = name.substr(0, name.find('='));
    if (absl::FindCommandLineFlag(name) != nullptr) continue;
    // Abseil's own: --help and friends, --flagfile, --fromenv, ...
    if (absl::StartsWith(name, "help") || name == "version" ||
        name == "flagfile" || name == "fromenv" || name == "tryfromenv" ||
        name == "undefok" || name == "only_check_args") {
      continue;
    }
    // --noFLAG sets a boolean flag to false.
    if (absl::StartsWith(name, "no") &&
        absl::FindCommandLineFlag(name.substr(2)) != nullptr) {
      continue;
    }
    return UsageError(
        absl::StrCat("unknown flag '", arg, "' (try 'manifold help')"));
  }
  return absl::OkStatus();
}

int Fail(absl::string_view command, const absl::Status& status) {
  std::fprintf(stderr, "manifold%s%s: %.*s\n", command.empty() ? "" : " ",
               std::string(command).c_str(),
               static_cast<int>(status.message().size()),
               status.message().data());
  return IsUsageError(status) ? kExitUsage : kExitFailure;
}

int Main(int original_argc, char** original_argv) {
  absl::SetProgramUsageMessage(UsageText());
  // --from-seq means --from_seq: the flags are defined with underscores.
  std::vector<std::string> spelled = AcceptDashedFlagNames(
      std::vector<std::string>(original_argv, original_argv + original_argc),
      [](absl::string_view name) {
        return absl::FindCommandLineFlag(name) != nullptr;
      });
  std::vector<char*> arg_pointers;
  for (std::string& arg : spelled) arg_pointers.push_back(arg.data());
  arg_pointers.push_back(nullptr);
  const int argc = original_argc;
  char** const argv = arg_pointers.data();
  // --help and -h mean `manifold help`. (Abseil's --help would add a list of
  // the flags defined in main.cc, which is none of them.)
  for (int i = 1; i < argc && absl::string_view(argv[i]) != "--"; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-help" || arg == "-h") {
      std::fputs(UsageText().c_str(), stdout);
      return 0;
    }
  }
  if (absl::Status s = CheckFlagsExist(argc, argv); !s.ok()) return Fail("", s);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) {
    std::fputs(UsageText().c_str(), stderr);
    return kExitUsage;
  }
  const std::string name = positional[1];
  if (name == "help") {
    std::fputs(UsageText().c_str(), stdout);
    return 0;
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    return Fail("", UsageError(absl::StrCat("unknown command '", name,
                                            "' (try 'manifold help')")));
  }
  if (absl::Status s = CheckFlagsApply(*command); !s.ok()) {
    return Fail(name, s);
  }
  std::vector<std::string> args(positional.begin() + 2, positional.end());
  CommandContext context(command->name, command->synopsis, std::move(args));
  InstallStopSignalHandlers();
  if (absl::Status s = command->run(context); !s.ok()) return Fail(name, s);
  return 0;
}

}  // namespace
}  // namespace manifold::cli

int main(int argc, char** argv) { return manifold::cli::Main(argc, argv); }
