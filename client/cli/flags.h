// File: client/cli/flags.h
// -----------------------------------------------------------------------------
//
// The flags of `manifold` that more than one subcommand reads. A flag that
// only one subcommand uses is defined in that subcommand's file.
//
//   --server   where the broker is (all subcommands)
//   --user, --pass, --token
//              credentials for the broker's admission (all subcommands
//              that connect as a client)
//   --json     one JSON object per line (all subcommands)
//   --count    stop after N messages/requests/events (sub, serve, events)
//   --timeout  how long to wait for an answer (req, stats)

#ifndef MANIFOLD_CLIENT_CLI_FLAGS_H_
#define MANIFOLD_CLIENT_CLI_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(std::string, user);
ABSL_DECLARE_FLAG(std::string, pass);
ABSL_DECLARE_FLAG(std::string, token);
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(int64_t, count);
ABSL_DECLARE_FLAG(absl::Duration, timeout);

#endif  // MANIFOLD_CLIENT_CLI_FLAGS_H_
