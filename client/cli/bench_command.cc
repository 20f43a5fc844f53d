// manifold bench SCENARIO: a load run against a broker on this machine,
// native protocol or NATS (so the same run can target nats-server). See
// client/load/load_options.h for the scenarios and bench/README.md for how the
// numbers are used.
//
//   manifold bench fanout --subs 8 --count 500000
//   manifold --server 127.0.0.1:4222 bench reqrep --protocol nats --json
//   manifold --server 127.0.0.1:4222 bench durable --protocol nats --size 1024
//   manifold bench replay --count 1000000
//   manifold --server 127.0.0.1:4222 bench fanout --protocol nats --subs 64
//       --sub_servers 127.0.0.1:4222,127.0.0.1:4223,127.0.0.1:4224 --settle 1s
//   manifold --server 127.0.0.1:8080 bench fanout --protocol bayeux --subs 64

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "client/cli/bench_report.h"
#include "client/cli/command.h"
#include "client/cli/flags.h"
#include "client/cli/tls_flags.h"
#include "client/load/load_runner.h"

ABSL_FLAG(std::string, protocol, "native",
          "bench: the protocol to speak: native, nats, or over a WebSocket "
          "nats-ws (NATS at /nats, as manifoldd --http and nats-server's "
          "websocket listener serve it) or ws (native at /ws, manifold.v1), "
          "or bayeux (long-polling over HTTP at --bayeux_path; pubsub and "
          "fanout)");
ABSL_FLAG(std::string, bayeux_path, "/cometd",
          "bench: with --protocol bayeux, the server's Bayeux path");
ABSL_FLAG(int32_t, pubs, 0,
          "bench: publishers (requesters, pingers); 0: the scenario's default");
ABSL_FLAG(int32_t, subs, 0,
          "bench: subscribers (queue members, responders); 0: the scenario's "
          "default");
ABSL_FLAG(uint64_t, size, 16, "bench: payload bytes per message (>= 12)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "bench: stop sending after this long even if --count is not reached");
ABSL_FLAG(uint64_t, window, 0,
          "bench: messages a publisher may have in flight (durable: "
          "unacknowledged); 0: about 2 MiB (durable: 4000)");
ABSL_FLAG(uint64_t, read_rate, 0,
          "bench: subscribers read at most this many payload bytes per "
          "second (a slow reader); 0: as fast as they can");
ABSL_FLAG(int32_t, inflight, 1,
          "bench: requests each requester keeps outstanding (reqrep)");
ABSL_FLAG(
    int32_t, subjects, 0,
    "bench: distinct subjects the wildcard scenario publishes to; 0: 256");
ABSL_FLAG(std::string, replay_stream, "",
          "bench: the stream the replay scenario reads; empty: the one that "
          "captures the bench subjects (bench.>)");
ABSL_FLAG(uint64_t, replay_from, 1,
          "bench: the stream sequence the replay scenario starts at");
ABSL_FLAG(std::vector<std::string>, sub_servers, {},
          "bench: subscribers (queue members, responders) connect to these "
          "servers, HOST:PORT,HOST:PORT,..., in turn, while publishers stay on "
          "--server: the nodes of a cluster; empty: --server");
ABSL_FLAG(absl::Duration, settle, absl::ZeroDuration(),
          "bench: wait this long after connecting before sending, so that a "
          "cluster carries the subscriptions to the publishers' node "
          "(e.g. 1s with --sub_servers)");
ABSL_FLAG(int32_t, client_threads, 2,
          "bench: 1 runs every connection on one thread; 2 puts senders and "
          "receivers on separate threads");

namespace manifold::cli {
namespace {

absl::Status RunBench(CommandContext& context) {
  if (absl::Status s = context.ExpectArgs(1, "SCENARIO"); !s.ok()) return s;
  load::LoadOptions options;
  absl::StatusOr<load::Scenario> scenario =
      load::ParseScenario(context.args()[0]);
  if (!scenario.ok()) return UsageError(scenario.status().message());
  options.scenario = *scenario;
  const std::string protocol_name = absl::GetFlag(FLAGS_protocol);
  if (protocol_name == "nats-ws") {
    options.protocol = load::Protocol::kNats;
    options.websocket_path = "/nats";
  } else if (protocol_name == "bayeux") {
    options.bayeux_path = absl::GetFlag(FLAGS_bayeux_path);
  } else if (protocol_name == "ws") {
    options.protocol = load::Protocol::kNative;
    options.websocket_path = "/ws";
    options.websocket_protocol = "manifold.v1";
  } else {
    absl::StatusOr<load::Protocol> protocol =
        load::ParseProtocol(protocol_name);
    if (!protocol.ok()) {
      return UsageError(absl::StrCat(protocol.status().message(),
                                     " (or nats-ws, ws, bayeux)"));
    }
    options.protocol = *protocol;
  }
  options.server = context.server();
  options.subscriber_servers = absl::GetFlag(FLAGS_sub_servers);
  options.settle = absl::GetFlag(FLAGS_settle);
  // The same TLS flags as every other command (client/cli/tls_flags.h).
  options.tls.enabled = absl::GetFlag(FLAGS_tls);
  options.tls.ca_file = absl::GetFlag(FLAGS_tls_ca);
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.publishers = absl::GetFlag(FLAGS_pubs);
  options.subscribers = absl::GetFlag(FLAGS_subs);
  options.payload_bytes = absl::GetFlag(FLAGS_size);
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (count < 0) return UsageError("--count must be 0 or more");
  options.messages = static_cast<uint64_t>(count);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.timeout = absl::GetFlag(FLAGS_timeout);
  options.window = absl::GetFlag(FLAGS_window);
  options.inflight = absl::GetFlag(FLAGS_inflight);
  options.read_bytes_per_second = absl::GetFlag(FLAGS_read_rate);
  options.subjects = absl::GetFlag(FLAGS_subjects);
  options.client_threads = absl::GetFlag(FLAGS_client_threads);
  options.replay_stream = absl::GetFlag(FLAGS_replay_stream);
  options.replay_from = absl::GetFlag(FLAGS_replay_from);
  if (absl::StatusOr<load::LoadOptions> resolved =
          load::ResolveOptions(options);
      !resolved.ok()) {
    return UsageError(resolved.status().message());
  }
  load::LoadProgress previous;
  options.on_progress = [&previous](const load::LoadProgress& now) {
    const std::string line = FormatBenchProgress(now, previous);
    std::fprintf(stderr, "%s\n", line.c_str());
    previous = now;
  };
  absl::StatusOr<load::LoadReport> report = load::RunLoad(options);
  if (absl::IsPermissionDenied(report.status()) ||
      absl::IsInvalidArgument(report.status())) {
    return UsageError(report.status().message());
  }
  if (!report.ok()) return report.status();
  context.Print(FormatBenchReport(*report, context.json()));
  if (!report->clean()) {
    return absl::DataLossError(absl::StrCat(
        "the run was not clean: ", report->lost, " lost, ", report->duplicates,
        " duplicated, ", report->reordered, " reordered, ", report->corrupt,
        " unexpected, ", report->errors, " server errors"));
  }
  return absl::OkStatus();
}

}  // namespace

Command BenchCommand() {
  return {
      "bench",
      "bench pubsub|fanout|queue|wildcard|reqrep|ping|durable|replay "
      "[--protocol "
      "native|nats|nats-ws|ws|bayeux] [--bayeux_path /cometd] [--pubs P] "
      "[--subs S] [--size BYTES] [--count N] "
      "[--duration 10s] [--window N] [--read_rate BYTES_PER_S] "
      "[--inflight N] [--subjects K] [--replay_stream S] "
      "[--replay_from SEQ] [--sub_servers HOST:PORT,...] [--settle 1s] "
      "[--client_threads 1|2] [--tls --tls_ca FILE]",
      "load a broker on this machine and check every message (also "
      "nats-server, with --protocol nats, and any Bayeux server, with "
      "--protocol bayeux)",
      {"protocol", "bayeux_path", "pubs", "subs", "size", "duration", "window",
       "read_rate", "inflight", "subjects", "replay_stream", "replay_from",
       "sub_servers", "settle", "client_threads", "count", "timeout"},
      RunBench};
}

}  // namespace manifold::cli
