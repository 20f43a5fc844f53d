// File: client/load/load_runner.h
// -----------------------------------------------------------------------------
//
// Runs one load scenario (client/load/load_options.h) against a server on this
// machine and reports what it measured. The run:
//
//  1. connects every client (receivers first), subscribes them, and waits
//     until the server confirms each one (a ping's answer), so nothing is
//     published before every subscription is in place;
//  2. starts the client event loops and lets the publishers (requesters,
//     pingers) go, each until its count is sent or `duration` has passed;
//  3. ends when everything sent has arrived, or when nothing arrived for
//     `timeout` (then whatever is missing is reported as lost, never hidden);
//  4. checks every arrival against the numbers sent: lost, duplicated,
//     reordered and corrupt messages are counted separately.
//
// Every wait is bounded: setup by `timeout` per connection, sending by
// `duration`, draining by `timeout` without progress.
//
// Example:
//
//   LoadOptions options;
//   options.scenario = Scenario::kRequestReply;
//   options.protocol = Protocol::kNats;
//   options.server = "127.0.0.1:4222";
//   absl::StatusOr<LoadReport> report = RunLoad(options);
//   if (report.ok()) printf("p50 %s\n", FormatDuration(report->latency.p50));

#ifndef MANIFOLD_CLIENT_LOAD_LOAD_RUNNER_H_
#define MANIFOLD_CLIENT_LOAD_LOAD_RUNNER_H_

#include "absl/status/statusor.h"
#include "client/load/load_options.h"

namespace manifold::load {

// Runs `options` to the end and returns the measurements. Returns
// INVALID_ARGUMENT for options out of range, PERMISSION_DENIED for a server
// that is not on this machine, and an error naming the connection when the
// server refuses a client, reports a fatal error or closes a connection.
absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options);

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_LOAD_RUNNER_H_
