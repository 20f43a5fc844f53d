// Frame encode/decode benchmarks, native and NATS, without the broker: what
// it costs to read one publish off the wire and to write one delivery.
//
//   native: NativeCodec::Decode (the zero-copy publish path) against the
//           generated protobuf parser (FrameDecoder), and a Deliver frame
//           encoded for one recipient or for many (shared part encoded once).
//   NATS:   core/nats ParseCommand on PUB, NatsCodec::Decode (parse, subject
//           mapping, translation into a PublishOp), and NatsCodec's MSG
//           encoding for one recipient or many.
//
//   bazel run --config=bench //bench:codec_bench
//   build/bench/codec_bench --benchmark_filter=Nats

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "broker/internal/native_codec.h"
#include "broker/nats/nats_codec.h"
#include "broker/outbound_buffer.h"
#include "broker/protocol_codec.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/nats/parser.h"

namespace manifold {
namespace {

using ::manifold::internal::NativeCodec;

constexpr int kBatch = 256;  // frames per iteration
constexpr absl::string_view kTopic = "bench/orders/eu/new";
constexpr absl::string_view kSubject = "bench.orders.eu.new";

std::string NativePublishBatch(size_t payload) {
  wire::ClientMessage m;
  m.mutable_publish()->set_topic(std::string(kTopic));
  m.mutable_publish()->set_payload(std::string(payload, 'p'));
  std::string batch;
  for (int i = 0; i < kBatch; ++i) AppendFrame(m, &batch);
  return batch;
}

std::string NatsPubBatch(size_t payload) {
  std::string one = absl::StrCat("PUB ", kSubject, " ", payload, "\r\n",
                                 std::string(payload, 'p'), "\r\n");
  std::string batch;
  for (int i = 0; i < kBatch; ++i) batch += one;
  return batch;
}

void SetCounters(benchmark::State& state, size_t bytes) {
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

// --- Native decode ---------------------------------------------------------

void BM_NativeDecodePublish(benchmark::State& state) {
  const std::string batch = NativePublishBatch(state.range(0));
  NativeCodec codec;
  Operation op;
  for (auto _ : state) {
    absl::string_view input = batch;
    while (!input.empty()) {
      absl::StatusOr<size_t> used = codec.Decode(input, 1 << 20, op);
      benchmark::DoNotOptimize(op.publish.payload.data());
      input.remove_prefix(*used);
    }
  }
  SetCounters(state, batch.size());
}
BENCHMARK(BM_NativeDecodePublish)->ArgName("payload")->Arg(16)->Arg(1024);

// The generic path for comparison: the generated parser, copying strings.
void BM_NativeDecodeGenerated(benchmark::State& state) {
  const std::string batch = NativePublishBatch(state.range(0));
  wire::ClientMessage message;
  for (auto _ : state) {
    FrameDecoder decoder(FrameDecoder::Options{});
    decoder.Append(batch);
    while (*decoder.Next(message)) {
      benchmark::DoNotOptimize(message.publish().payload().data());
    }
  }
  SetCounters(state, batch.size());
}
BENCHMARK(BM_NativeDecodeGenerated)->ArgName("payload")->Arg(16)->Arg(1024);

// --- Native encode ---------------------------------------------------------

// Deliver frames for `recipients` subscribers of one message.
void BM_NativeEncodeDelivery(benchmark::State& state) {
  const std::string payload(state.range(0), 'p');
  const int recipients = static_cast<int>(state.range(1));
  PublishOp publish;
  publish.topic = kTopic;
  publish.payload = payload;
  SharedMessage::Scratch scratch;
  OutboundBuffer out;
  size_t bytes = 0;
  for (auto _ : state) {
    for (int m = 0; m < kBatch / recipients; ++m) {
      SharedMessage message(publish, scratch);
      message.set_single_recipient(recipients == 1);
      for (int r = 0; r < recipients; ++r) {
        NativeCodec::EncodeNativeDelivery(message, SubscriptionId(r + 1), out);
      }
    }
    bytes += out.size();
    out.Consume(out.size());
  }
  state.SetItemsProcessed(state.iterations() * (kBatch / recipients) *
                          recipients);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_NativeEncodeDelivery)
    ->ArgNames({"payload", "recipients"})
    ->Args({16, 1})
    ->Args({1024, 1})
    ->Args({16, 8})
    ->Args({1024, 8});

// --- NATS decode -----------------------------------------------------------

void BM_NatsParsePub(benchmark::State& state) {
  const std::string batch = NatsPubBatch(state.range(0));
  nats::Command command;
  const nats::ParseLimits limits;
  for (auto _ : state) {
    absl::string_view input = batch;
    while (!input.empty()) {
      absl::StatusOr<size_t> used = nats::ParseCommand(input, limits, command);
      benchmark::DoNotOptimize(command.payload.data());
      input.remove_prefix(*used);
    }
  }
  SetCounters(state, batch.size());
}
BENCHMARK(BM_NatsParsePub)->ArgName("payload")->Arg(16)->Arg(1024);

// A NatsCodec that has seen CONNECT and one SUB (sid "1"), the broker's Ack
// mapping it to subscription 7.
std::unique_ptr<NatsCodec> ConnectedCodec() {
  auto codec = std::make_unique<NatsCodec>();
  OutboundBuffer out;
  codec->Start(ConnectionStart{}, out);
  Operation op;
  const std::string setup =
      "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB " +
      std::string(kSubject) + " 1\r\n";
  absl::string_view input = setup;
  uint64_t sub_op = 0;
  while (!input.empty()) {
    absl::StatusOr<size_t> used = codec->Decode(input, 1 << 21, op);
    if (op.kind == Operation::Kind::kMessage && op.message.has_subscribe()) {
      sub_op = op.message.subscribe().op_id();
    }
    input.remove_prefix(*used);
  }
  wire::ServerMessage ack;
  ack.mutable_ack()->set_op_id(sub_op);
  ack.mutable_ack()->set_subscription_id(7);
  codec->Encode(ack, out);
  return codec;
}

void BM_NatsCodecDecodePub(benchmark::State& state) {
  const std::string batch = NatsPubBatch(state.range(0));
  std::unique_ptr<NatsCodec> codec = ConnectedCodec();
  Operation op;
  for (auto _ : state) {
    absl::string_view input = batch;
    while (!input.empty()) {
      absl::StatusOr<size_t> used = codec->Decode(input, 1 << 21, op);
      benchmark::DoNotOptimize(op.publish.payload.data());
      input.remove_prefix(*used);
    }
  }
  SetCounters(state, batch.size());
}
BENCHMARK(BM_NatsCodecDecodePub)->ArgName("payload")->Arg(16)->Arg(1024);

// --- NATS encode -----------------------------------------------------------

void BM_NatsEncodeMsg(benchmark::State& state) {
  const std::string payload(state.range(0), 'p');
  const int recipients = static_cast<int>(state.range(1));
  std::unique_ptr<NatsCodec> codec = ConnectedCodec();
  PublishOp publish;
  publish.topic = kTopic;
  publish.payload = payload;
  SharedMessage::Scratch scratch;
  OutboundBuffer out;
  size_t bytes = 0;
  for (auto _ : state) {
    for (int m = 0; m < kBatch / recipients; ++m) {
      SharedMessage message(publish, scratch);
      message.set_single_recipient(recipients == 1);
      for (int r = 0; r < recipients; ++r) {
        codec->EncodeDelivery(message, SubscriptionId(7), out);
      }
    }
    bytes += out.size();
    out.Consume(out.size());
  }
  state.SetItemsProcessed(state.iterations() * (kBatch / recipients) *
                          recipients);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_NatsEncodeMsg)
    ->ArgNames({"payload", "recipients"})
    ->Args({16, 1})
    ->Args({1024, 1})
    ->Args({16, 8})
    ->Args({1024, 8});

}  // namespace
}  // namespace manifold
