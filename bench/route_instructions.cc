// Routes a fixed number of messages through an in-process Broker so that
// `valgrind --tool=callgrind` can count instructions per routed message, a
// figure that does not depend on how busy the machine is.
//
//   route_instructions SCENARIO MESSAGES
//     SCENARIO: 1to1 | 1to1_1k | fanout8 | fanout64 | fanout1000 | queue8
//
// bench/instructions.sh runs it at N and 2N messages and divides the
// difference by N, which cancels start-up costs.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "broker/broker.h"
#include "core/framing.h"
#include "core/manifold.pb.h"

namespace manifold {
namespace {

struct Scenario {
  int subscribers;
  bool queue_group;
  size_t payload;
};

int Run(const Scenario& scenario, long messages) {
  BrokerOptions options;
  options.max_outbound_bytes = 1 << 30;
  options.max_inbound_bytes = 64 << 20;
  options.statistics_interval = absl::ZeroDuration();
  options.keepalive_interval = absl::ZeroDuration();
  options.max_queued_events = 0;
  Broker broker(options);
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);

  auto connect = [&]() -> Connection& {
    Connection& c = broker.Accept(PeerInfo{"bench"}, now);
    wire::ClientMessage hello;
    hello.mutable_hello()->set_protocol_version(1);
    c.Receive(EncodeFrame(hello), now);
    return c;
  };
  Connection& publisher = connect();
  std::vector<Connection*> subscribers;
  for (int i = 0; i < scenario.subscribers; ++i) {
    Connection& c = connect();
    wire::ClientMessage subscribe;
    subscribe.mutable_subscribe()->set_pattern("bench/topic");
    if (scenario.queue_group) subscribe.mutable_subscribe()->set_queue_group("g");
    c.Receive(EncodeFrame(subscribe), now);
    subscribers.push_back(&c);
  }
  broker.Process(now);

  wire::ClientMessage publish;
  publish.mutable_publish()->set_topic("bench/topic");
  publish.mutable_publish()->set_payload(std::string(scenario.payload, 'p'));
  constexpr int kBatch = 1000;
  std::string batch;
  for (int i = 0; i < kBatch; ++i) AppendFrame(publish, &batch);

  std::vector<ConnectionId> changed;
  absl::string_view chunks[64];
  uint64_t bytes = 0;
  for (long sent = 0; sent < messages; sent += kBatch) {
    publisher.Receive(batch, now);
    broker.Process(now);
    broker.TakeChanged(changed);
    for (Connection* c : subscribers) {
      while (c->PendingOutputBytes() > 0) {
        const size_t n = c->PendingOutput(absl::MakeSpan(chunks));
        size_t written = 0;
        for (size_t i = 0; i < n; ++i) written += chunks[i].size();
        c->Consume(written);
        bytes += written;
      }
    }
    publisher.Consume(publisher.PendingOutputBytes());
  }
  std::printf("routed %ld messages, %llu deliveries, %llu bytes out\n",
              messages,
              static_cast<unsigned long long>(broker.statistics().deliveries),
              static_cast<unsigned long long>(bytes));
  return 0;
}

}  // namespace
}  // namespace manifold

int main(int argc, char** argv) {
  long messages = 0;
  if (argc != 3 || !absl::SimpleAtoi(argv[2], &messages) || messages <= 0) {
    std::fprintf(stderr,
                 "usage: route_instructions 1to1|1to1_1k|fanout8|fanout64|"
                 "fanout1000|queue8 MESSAGES\n");
    return 2;
  }
  const absl::string_view name = argv[1];
  manifold::Scenario scenario;
  if (name == "1to1") {
    scenario = {1, false, 16};
  } else if (name == "1to1_1k") {
    scenario = {1, false, 1024};
  } else if (name == "fanout8") {
    scenario = {8, false, 16};
  } else if (name == "fanout64") {
    scenario = {64, false, 16};
  } else if (name == "fanout1000") {
    scenario = {1000, false, 16};
  } else if (name == "queue8") {
    scenario = {8, true, 16};
  } else {
    std::fprintf(stderr, "unknown scenario '%s'\n", argv[1]);
    return 2;
  }
  return manifold::Run(scenario, messages);
}
