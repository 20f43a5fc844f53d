#include "client/load/load_options.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "client/load/arrivals.h"
#include "client/load/bayeux_load.h"

namespace manifold::load {
namespace {

struct Defaults {
  Scenario scenario;
  absl::string_view name;
  int publishers;
  int subscribers;
  uint64_t messages;
};

constexpr Defaults kDefaults[] = {
    {Scenario::kPubSub, "pubsub", 1, 1, 2'000'000},
    {Scenario::kFanOut, "fanout", 1, 8, 500'000},
    {Scenario::kQueue, "queue", 1, 4, 2'000'000},
    {Scenario::kWildcard, "wildcard", 1, 2, 1'000'000},
    {Scenario::kRequestReply, "reqrep", 1, 1, 50'000},
    {Scenario::kPing, "ping", 1, 0, 50'000},
    {Scenario::kDurable, "durable", 1, 0, 200'000},
    {Scenario::kReplay, "replay", 1, 0, 1'000'000},
};

const Defaults& DefaultsFor(Scenario scenario) {
  for (const Defaults& d : kDefaults) {
    if (d.scenario == scenario) return d;
  }
  return kDefaults[0];
}

// Sequence-number bitmaps, one per publisher per subscriber: kept below this.
constexpr uint64_t kMaxBitmapBytes = uint64_t{512} << 20;
constexpr int kMaxConnections = 1000;
// Messages in flight per publisher, by default about this many bytes.
constexpr uint64_t kWindowBytes = 2 << 20;
// durable: acks a publisher waits for at once, by default and at most.
constexpr uint64_t kDurableWindow = 4000;
constexpr uint64_t kMaxDurableWindow = 1 << 20;

}  // namespace

absl::string_view ScenarioName(Scenario scenario) {
  return DefaultsFor(scenario).name;
}

absl::StatusOr<Scenario> ParseScenario(absl::string_view name) {
  for (const Defaults& d : kDefaults) {
    if (d.name == name) return d.scenario;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown scenario '", name,
                   "'; expected pubsub, fanout, queue, wildcard, reqrep, "
                   "ping, durable or replay"));
}

bool IsRoundTrip(Scenario scenario) {
  return scenario == Scenario::kRequestReply || scenario == Scenario::kPing;
}

bool MeasuresLatency(Scenario scenario) {
  return IsRoundTrip(scenario) || scenario == Scenario::kDurable;
}

absl::StatusOr<LoadOptions> ResolveOptions(LoadOptions o) {
  const Defaults& d = DefaultsFor(o.scenario);
  if (o.publishers == 0) o.publishers = d.publishers;
  if (o.subscribers == 0) o.subscribers = d.subscribers;
  if (o.messages == 0) o.messages = d.messages;
  if (o.subjects == 0) o.subjects = 256;
  if (!o.bayeux_path.empty()) {
    if (o.scenario != Scenario::kPubSub && o.scenario != Scenario::kFanOut) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Bayeux runs are pubsub or fanout, not ", ScenarioName(o.scenario)));
    }
    if (o.publishers != 1) {
      return absl::InvalidArgumentError(
          "Bayeux runs have one publisher (with several lanes)");
    }
    if (o.bayeux_path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "the Bayeux path '", o.bayeux_path, "' must start with '/'"));
    }
    if (o.window == 0) o.window = kBayeuxWindow;
    o.client_threads = 2;
  }
  if (!o.subscriber_servers.empty() && !o.bayeux_path.empty()) {
    return absl::InvalidArgumentError(
        "Bayeux runs use one server: leave out the subscribers' servers");
  }
  for (const std::string& server : o.subscriber_servers) {
    if (server.empty()) {
      return absl::InvalidArgumentError(
          "a subscribers' server is empty; give HOST:PORT or unix:PATH");
    }
  }
  if (o.settle < absl::ZeroDuration() || o.settle > absl::Minutes(1)) {
    return absl::InvalidArgumentError("settle must be between 0 and 1 minute");
  }
  if (o.tls.enabled && (!o.websocket_path.empty() || !o.bayeux_path.empty())) {
    return absl::InvalidArgumentError(
        "--tls works with --protocol native and nats (not over WebSockets or "
        "Bayeux)");
  }
  if (o.tls.cert_file.empty() != o.tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together: give both or neither");
  }
  if (o.window == 0 && o.scenario == Scenario::kDurable) {
    // As many acks as a NATS client waits for at once by default (nats.go's
    // PublishAsync), so the server can batch its syncs.
    o.window = kDurableWindow;
  }
  if (o.scenario == Scenario::kDurable && o.window > kMaxDurableWindow) {
    return absl::InvalidArgumentError(
        absl::StrCat("a durable publisher waits for at most ",
                     kMaxDurableWindow, " acks at once; lower --window"));
  }
  if (o.window == 0) {
    o.window =
        std::clamp<uint64_t>(kWindowBytes / (o.payload_bytes + 64), 64, 16384);
  }
  if (o.publishers < 1 || o.subscribers < 0 ||
      o.publishers + o.subscribers > kMaxConnections) {
    return absl::InvalidArgumentError(
        absl::StrCat("publishers (", o.publishers,
                     ") must be at least 1 and with "
                     "subscribers (",
                     o.subscribers, ") at most ", kMaxConnections));
  }
  if (o.scenario == Scenario::kReplay) {
    if (o.protocol != Protocol::kNative || !o.websocket_path.empty()) {
      return absl::InvalidArgumentError(
          "replay reads a stream with the native protocol's Subscribe.replay: "
          "give --protocol native");
    }
    if (o.publishers != 1) {
      return absl::InvalidArgumentError(
          "replay has one reader: give --pubs 1 (or leave it out)");
    }
    if (o.replay_from < 1) {
      return absl::InvalidArgumentError(
          "a replay starts at stream sequence 1 or later");
    }
  }
  if (o.scenario == Scenario::kPing || o.scenario == Scenario::kDurable ||
      o.scenario == Scenario::kReplay) {
    o.subscribers = 0;
  } else if (o.subscribers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(ScenarioName(o.scenario), " needs at least 1 subscriber"));
  }
  if (o.scenario == Scenario::kRequestReply &&
      o.protocol == Protocol::kNative && o.subscribers != 1) {
    return absl::InvalidArgumentError(
        "native reqrep uses Serve/Request, which has one server per topic: "
        "give --subs 1");
  }
  if (o.payload_bytes < kStampBytes || o.payload_bytes > (8 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "payload size ", o.payload_bytes, " must be between ", kStampBytes,
        " (room for a sequence number and a publisher index) and 8 MiB"));
  }
  if (o.duration <= absl::ZeroDuration() || o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration and timeout must be positive");
  }
  if (o.inflight < 1 || o.inflight > 65536) {
    return absl::InvalidArgumentError("inflight must be between 1 and 65536");
  }
  if (o.subjects < 1 || o.subjects > 1'000'000) {
    return absl::InvalidArgumentError("subjects must be between 1 and 1000000");
  }
  if (o.client_threads < 1 || o.client_threads > 2) {
    return absl::InvalidArgumentError("client threads must be 1 or 2");
  }
  if (o.read_bytes_per_second > 0 && o.client_threads != 2) {
    return absl::InvalidArgumentError(
        "a read rate needs client threads 2, or the slow readers would slow "
        "the senders too");
  }
  const uint64_t streams = static_cast<uint64_t>(o.publishers) *
                           static_cast<uint64_t>(std::max(1, o.subscribers));
  if (o.messages > (uint64_t{1} << 40) ||
      o.messages / 8 * streams > kMaxBitmapBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        o.messages, " messages per publisher are too many to check with ",
        o.publishers, " publishers and ", o.subscribers,
        " subscribers; lower the count"));
  }
  return o;
}

}  // namespace manifold::load
