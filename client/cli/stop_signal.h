// File: client/cli/stop_signal.h
// -----------------------------------------------------------------------------
//
// SIGINT and SIGTERM as a polite request to stop: subcommands that run until
// interrupted (sub, serve, events) check StopRequested() between waits and
// return normally, so `manifold` closes its connection and exits 0.
//
// Example:
//
//   InstallStopSignalHandlers();
//   while (!StopRequested()) { ... wait at most 200 ms for the next thing ... }

#ifndef MANIFOLD_CLIENT_CLI_STOP_SIGNAL_H_
#define MANIFOLD_CLIENT_CLI_STOP_SIGNAL_H_

namespace manifold::cli {

// Makes SIGINT and SIGTERM set the stop flag instead of killing the process,
// and ignores SIGPIPE (a closed stdout then shows up as a write error).
void InstallStopSignalHandlers();

// True once SIGINT or SIGTERM has arrived.
bool StopRequested();

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_STOP_SIGNAL_H_
