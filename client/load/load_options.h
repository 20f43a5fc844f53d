// File: client/load/load_options.h
// -----------------------------------------------------------------------------
//
// What a load run does (LoadOptions) and what it measured (LoadReport), for
// client/load/load_runner.h and `manifold bench`.
//
// Scenarios (publishers P, subscribers S; every message is numbered and
// checked on arrival):
//
//   pubsub    P publishers, S subscribers, one subject: each subscriber gets
//             every message (P x S).
//   fanout    pubsub with 1 publisher and S (default 8) subscribers.
//   queue     P publishers; S subscribers in one queue group: each message
//             reaches exactly one of them.
//   wildcard  P publishers rotating over K literal subjects
//             ("bench.w.<k>.data"); S subscribers with wildcard patterns
//             ("bench.w.*.data", "bench.w.>", "bench.*.*.data", "bench.>"),
//             each matching every message.
//   reqrep    P requesters, each keeping `inflight` requests outstanding, S
//             responders that echo them (NATS: publish with a reply subject
//             and a wildcard inbox subscription, as NATS clients do; native:
//             Serve / Request). Reports round-trip latency and requests/s.
//   ping      P clients pinging the server one ping at a time: the round
//             trip floor for reqrep.
//   durable   P publishers to a subject a durable stream captures, each
//             keeping `window` messages waiting for the server's durable
//             acknowledgement (NATS: a publish with a reply subject on a
//             wildcard inbox, answered with a JetStream PubAck such as
//             {"stream":"S","seq":N}, by manifoldd and nats-server -js
//             alike; native: Publish with ack, answered by Ack or Error).
//             Reports acks/s and the ack latency. The server must have a
//             stream capturing "bench.>" ("bench/**"), or nothing is acked.
//   replay    One native subscriber that replays `messages` stored messages
//             of the stream capturing "bench.>" from `replay_from` on
//             (Subscribe.replay) and checks their stream sequences follow
//             one another. Reports messages/s.
//
// Example:
//
//   LoadOptions options;
//   options.scenario = Scenario::kFanOut;
//   options.protocol = Protocol::kNats;
//   options.server = "127.0.0.1:4222";
//   absl::StatusOr<LoadReport> report = RunLoad(options);

#ifndef MANIFOLD_CLIENT_LOAD_LOAD_OPTIONS_H_
#define MANIFOLD_CLIENT_LOAD_LOAD_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/load/latency.h"
#include "client/load/load_wire.h"

namespace manifold::load {

enum class Scenario {
  kPubSub,
  kFanOut,
  kQueue,
  kWildcard,
  kRequestReply,
  kPing,
  kDurable,
  kReplay
};

// "pubsub", "fanout", "queue", "wildcard", "reqrep", "ping", "durable",
// "replay".
absl::string_view ScenarioName(Scenario scenario);
// The inverse of ScenarioName; INVALID_ARGUMENT listing the names otherwise.
absl::StatusOr<Scenario> ParseScenario(absl::string_view name);
// True for reqrep and ping, which measure round trips rather than
// throughput.
bool IsRoundTrip(Scenario scenario);
// True for the scenarios that report latencies: reqrep, ping and durable
// (the time from a publish to its durable acknowledgement).
bool MeasuresLatency(Scenario scenario);

// A snapshot while a run goes on.
struct LoadProgress {
  absl::Duration elapsed;
  uint64_t sent = 0;      // messages, requests or pings sent
  uint64_t received = 0;  // deliveries or answers received
};

// TLS on every connection of a run (`manifold bench --tls`): the native
// protocol and NATS over TCP. NATS links read the server's INFO in clear and
// start TLS when it says tls_required, as NATS clients do.
struct LoadTlsOptions {
  bool enabled = false;
  // CAs the server's certificate must chain to; empty: the system's.
  std::string ca_file;
  // A client certificate and its key (both or neither), for servers that
  // ask for one.
  std::string cert_file;
  std::string key_file;
  // The name the server's certificate must carry; empty: the host of
  // `server`.
  std::string server_name;
};

struct LoadOptions {
  Scenario scenario = Scenario::kPubSub;
  Protocol protocol = Protocol::kNative;
  // Non-empty: carry `protocol` in a WebSocket opened at this path (with
  // subprotocol `websocket_protocol` unless empty), e.g. "/nats".
  std::string websocket_path;
  std::string websocket_protocol;
  // Non-empty: ignore `protocol` and speak Bayeux long-polling over HTTP/1.1
  // at this path of `server`, e.g. "/cometd" (client/load/bayeux_load.h).
  // Only pubsub and fanout, with one publisher; `window` defaults to 4000.
  std::string bayeux_path;
  // TLS (not with a WebSocket or Bayeux).
  LoadTlsOptions tls;
  // "HOST:PORT" or "unix:PATH"; must be this machine (client/load/loopback.h).
  std::string server = "127.0.0.1:24387";
  // Non-empty: subscribers (queue members, responders) connect to these
  // servers instead, subscriber s to subscriber_servers[s % size()] (each
  // "HOST:PORT" or "unix:PATH" on this machine, as `server`), while
  // publishers stay on `server`: the nodes of a cluster, publishing on one
  // and receiving on the others. Not with Bayeux.
  std::vector<std::string> subscriber_servers;
  // Wait this long after every connection is set up before sending: time for
  // a cluster to carry the subscriptions to the publishers' node (a server
  // acknowledges a subscription before the other nodes know of it, and what
  // is published before they do is lost). 0: send at once.
  absl::Duration settle = absl::ZeroDuration();
  // Publishers, requesters or pingers; 0: the scenario's default.
  int publishers = 0;
  // Subscribers, queue members or responders; 0: the scenario's default.
  int subscribers = 0;
  // Payload bytes of every message (at least kStampBytes, 12).
  size_t payload_bytes = 16;
  // Messages (requests, pings) per publisher; 0: the scenario's default.
  uint64_t messages = 0;
  // Sending stops after this long even if `messages` were not all sent.
  absl::Duration duration = absl::Seconds(10);
  // How long to wait for the server during setup, and for the last arrivals
  // after sending stopped (a run ends once nothing arrived for this long).
  absl::Duration timeout = absl::Seconds(5);
  // Messages a publisher may have sent that have not all arrived yet; 0:
  // about 2 MiB worth, between 64 and 16384. A window as large as the count
  // is a burst: the publisher sends as fast as the server takes it.
  uint64_t window = 0;
  // Subscribers read at most this many payload bytes per second (a slow
  // reader, to make the server's flow control act); 0: as fast as they can.
  // Needs client_threads 2, so that a slow reader does not slow the senders.
  uint64_t read_bytes_per_second = 0;
  // reqrep: requests each requester keeps outstanding.
  int inflight = 1;
  // replay: the stream to read (empty: the one capturing the bench
  // subject) and the first sequence to read.
  std::string replay_stream;
  uint64_t replay_from = 1;
  // wildcard: distinct subjects published to; 0: 256.
  int subjects = 0;
  // Client threads: 1 runs every connection in one event loop; 2 puts the
  // senders (publishers, requesters, pingers) in one and the receivers in
  // another. Bayeux runs always use 2.
  int client_threads = 2;
  // Called about once a second from the calling thread while a run lasts.
  std::function<void(const LoadProgress&)> on_progress;
};

// `options` with the scenario's defaults filled in, or INVALID_ARGUMENT
// naming the first option out of range.
absl::StatusOr<LoadOptions> ResolveOptions(LoadOptions options);

struct LoadReport {
  LoadOptions options;  // as resolved
  // From the first message sent to the last one received.
  absl::Duration elapsed;
  // Messages (requests, pings) sent, and deliveries (answers) expected from
  // them: for pubsub and fanout, sent x subscribers; for queue, sent; for
  // durable, one ack per message sent; for replay (which sends nothing),
  // the messages asked for.
  uint64_t sent = 0;
  uint64_t expected = 0;
  // Arrivals of every kind, and the payload bytes they carried.
  uint64_t received = 0;
  uint64_t received_bytes = 0;
  // Expected arrivals that never came, arrivals of a message already
  // received, arrivals after a later message of the same publisher (on the
  // same subscriber), and arrivals that are no message this run sent.
  uint64_t lost = 0;
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint64_t corrupt = 0;
  // Non-fatal errors from the server (fatal ones fail the run), including
  // durable publishes the server refused; the first one's text.
  uint64_t errors = 0;
  std::string first_error;
  // True when the run ended because nothing arrived for `timeout`.
  bool timed_out = false;
  double sent_per_second = 0;
  double received_per_second = 0;
  // reqrep and ping: round-trip times; durable: publish to durable ack.
  LatencySummary latency;
  // CPU the load tool itself used (user + system) during the run.
  absl::Duration client_cpu;

  // Every expected message arrived exactly once, in order.
  bool clean() const {
    return lost == 0 && duplicates == 0 && reordered == 0 && corrupt == 0 &&
           errors == 0;
  }
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_LOAD_OPTIONS_H_
