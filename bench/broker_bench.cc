// Broker micro benchmarks: routing through the whole state machine, in
// process, no sockets. Each iteration feeds a batch of encoded client frames
// to Connection::Receive, runs Broker::Process, and drains every recipient's
// output with PendingOutput/Consume, as a transport would (minus the syscall).
//
//   bazel run -c opt //bench:broker_bench
//   build/bench/broker_bench --benchmark_filter=Route

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "broker/broker.h"
#include "core/framing.h"
#include "core/manifold.pb.h"

namespace manifold {
namespace {

constexpr int kBatch = 1000;  // frames handed to Receive() at once

class BenchBroker {
 public:
  BenchBroker() : broker_(Options()) {}

  static BrokerOptions Options() {
    BrokerOptions options;
    options.set_max_outbound_bytes(1 << 30);
    options.set_max_inbound_bytes(64 << 20);
    options.set_statistics_interval_ms(0);
    options.set_keepalive_interval_ms(0);
    options.set_max_queued_events(0);
    return options;
  }

  Connection& Connect() {
    Connection& c = broker_.Accept(PeerInfo{"bench"}, now_);
    wire::ClientMessage hello;
    hello.mutable_hello()->set_protocol_version(1);
    c.Receive(EncodeFrame(hello), now_);
    broker_.Process(now_);
    Drain(c);
    return c;
  }

  void Subscribe(Connection& c, absl::string_view pattern,
                 absl::string_view group = "") {
    wire::ClientMessage m;
    m.mutable_subscribe()->set_pattern(std::string(pattern));
    m.mutable_subscribe()->set_queue_group(std::string(group));
    c.Receive(EncodeFrame(m), now_);
    broker_.Process(now_);
    Drain(c);
  }

  // Drops everything queued for `c`, walking the chunks as writev would.
  static size_t Drain(Connection& c) {
    size_t total = 0;
    absl::string_view chunks[64];
    while (c.PendingOutputBytes() > 0) {
      const size_t n = c.PendingOutput(absl::MakeSpan(chunks));
      size_t bytes = 0;
      for (size_t i = 0; i < n; ++i) bytes += chunks[i].size();
      benchmark::DoNotOptimize(chunks[0].data());
      c.Consume(bytes);
      total += bytes;
    }
    return total;
  }

  Broker& broker() { return broker_; }
  absl::Time now() const { return now_; }

 private:
  Broker broker_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

std::string PublishBatch(absl::string_view topic, size_t payload_bytes,
                         int count) {
  wire::ClientMessage m;
  m.mutable_publish()->set_topic(std::string(topic));
  m.mutable_publish()->set_payload(std::string(payload_bytes, 'p'));
  std::string batch;
  for (int i = 0; i < count; ++i) AppendFrame(m, &batch);
  return batch;
}

// One publisher, `subscribers` broadcast subscribers on one literal topic.
void BM_FanOut(benchmark::State& state) {
  const int subscribers = static_cast<int>(state.range(0));
  const size_t payload = static_cast<size_t>(state.range(1));
  BenchBroker b;
  Connection& pub = b.Connect();
  std::vector<Connection*> subs;
  for (int i = 0; i < subscribers; ++i) {
    subs.push_back(&b.Connect());
    b.Subscribe(*subs.back(), "bench/topic");
  }
  // Keep total deliveries per iteration near 1000 so large fan-outs do not
  // build huge batches.
  const int publishes = std::max(1, kBatch / subscribers);
  const std::string batch = PublishBatch("bench/topic", payload, publishes);
  std::vector<ConnectionId> changed;
  size_t bytes = 0;
  for (auto _ : state) {
    pub.Receive(batch, b.now());
    b.broker().Process(b.now());
    b.broker().TakeChanged(changed);
    for (Connection* s : subs) bytes += BenchBroker::Drain(*s);
  }
  state.counters["msgs/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * publishes,
                         benchmark::Counter::kIsRate);
  state.counters["deliveries/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * publishes * subscribers,
      benchmark::Counter::kIsRate);
  // Seconds per delivery, printed with a unit (e.g. "12.3n").
  state.counters["per delivery"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * publishes * subscribers,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_FanOut)
    ->ArgNames({"subs", "payload"})
    ->Args({1, 16})
    ->Args({1, 1024})
    ->Args({8, 16})
    ->Args({64, 16})
    ->Args({1000, 16})
    ->Args({1000, 1024});

// A queue group of 8 members: each message goes to one of them.
void BM_QueueGroup(benchmark::State& state) {
  BenchBroker b;
  Connection& pub = b.Connect();
  std::vector<Connection*> members;
  for (int i = 0; i < 8; ++i) {
    members.push_back(&b.Connect());
    b.Subscribe(*members.back(), "jobs", "workers");
  }
  const std::string batch = PublishBatch("jobs", 16, kBatch);
  std::vector<ConnectionId> changed;
  for (auto _ : state) {
    pub.Receive(batch, b.now());
    b.broker().Process(b.now());
    b.broker().TakeChanged(changed);
    for (Connection* m : members) BenchBroker::Drain(*m);
  }
  state.counters["msgs/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kBatch,
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_QueueGroup);

// Wildcard subscriptions: the topic matches "bench/*" and "bench/**".
void BM_RouteWildcardSubscription(benchmark::State& state) {
  BenchBroker b;
  Connection& pub = b.Connect();
  Connection& sub = b.Connect();
  b.Subscribe(sub, "bench/*/x");
  const std::string batch = PublishBatch("bench/a/x", 16, kBatch);
  std::vector<ConnectionId> changed;
  for (auto _ : state) {
    pub.Receive(batch, b.now());
    b.broker().Process(b.now());
    b.broker().TakeChanged(changed);
    BenchBroker::Drain(sub);
  }
  state.counters["msgs/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kBatch,
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RouteWildcardSubscription);

// Request -> server -> Respond -> requester, through the broker, one at a
// time (a full round trip per iteration).
void BM_RequestResponseRoundTrip(benchmark::State& state) {
  BenchBroker b;
  Connection& server = b.Connect();
  Connection& client = b.Connect();
  wire::ClientMessage serve;
  serve.mutable_serve()->set_topic("svc");
  server.Receive(EncodeFrame(serve), b.now());
  b.broker().Process(b.now());
  BenchBroker::Drain(server);

  wire::ClientMessage request;
  request.mutable_request()->set_topic("svc");
  request.mutable_request()->set_payload(std::string(16, 'q'));
  const std::string request_frame = EncodeFrame(request);
  wire::ClientMessage respond;
  respond.mutable_respond()->set_payload(std::string(16, 'r'));
  uint64_t request_id = 0;
  std::vector<ConnectionId> changed;
  for (auto _ : state) {
    client.Receive(request_frame, b.now());
    b.broker().Process(b.now());
    BenchBroker::Drain(server);
    // Request ids count up from 1 on this broker.
    respond.mutable_respond()->set_request_id(++request_id);
    server.Receive(EncodeFrame(respond), b.now());
    b.broker().Process(b.now());
    BenchBroker::Drain(client);
    b.broker().TakeChanged(changed);
  }
  state.counters["round trips/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RequestResponseRoundTrip);

}  // namespace
}  // namespace manifold
