#include "client/cli/flag_spelling.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace manifold::cli {

std::vector<std::string> AcceptDashedFlagNames(
    std::vector<std::string> args,
    absl::FunctionRef<bool(absl::string_view name)> is_flag) {
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;
    const size_t dashes = arg[1] == '-' ? 2 : 1;
    const size_t end = std::min(arg.find('='), arg.size());
    if (end <= dashes) continue;
    const std::string typed = arg.substr(dashes, end - dashes);
    std::string name = typed;
    std::replace(name.begin(), name.end(), '-', '_');
    if (is_flag(name)) {
      // --from-seq: --from_seq
    } else if (absl::StartsWith(name, "no_") && is_flag(name.substr(3))) {
      name = absl::StrCat("no", name.substr(3));  // --no-reconnect
    } else if (!(absl::StartsWith(name, "no") && is_flag(name.substr(2)))) {
      continue;  // not ours: Abseil names it as unknown, as typed
    }
    if (name == typed) continue;
    arg = absl::StrCat(arg.substr(0, dashes), name, arg.substr(end));
  }
  return args;
}

}  // namespace manifold::cli
