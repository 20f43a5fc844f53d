// File: client/cli/flag_spelling.h
// -----------------------------------------------------------------------------
//
// `manifold`'s flags are Abseil flags, whose names are spelled with
// underscores (--from_seq, --tls_ca). People also type them with dashes, as
// most command-line tools spell them (--from-seq, --tls-ca); this file turns
// the dashed spelling into the defined one before Abseil parses the line.
//
// Example:
//
//   std::vector<std::string> args = AcceptDashedFlagNames(
//       {"manifold", "sub", "t", "--from-seq=5", "--last-per-topic"},
//       [](absl::string_view name) { return IsDefined(name); });
//   // {"manifold", "sub", "t", "--from_seq=5", "--last_per_topic"}

#ifndef MANIFOLD_CLIENT_CLI_FLAG_SPELLING_H_
#define MANIFOLD_CLIENT_CLI_FLAG_SPELLING_H_

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace manifold::cli {

// Returns `args` (a whole command line, program name first) with each flag
// whose name holds a '-' renamed with '_' in its place, when `is_flag` says
// the renamed flag exists (also as --noNAME for a boolean). Values, flags
// with no such underscore twin, and everything after a "--" are kept as
// they are.
std::vector<std::string> AcceptDashedFlagNames(
    std::vector<std::string> args,
    absl::FunctionRef<bool(absl::string_view name)> is_flag);

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_FLAG_SPELLING_H_
