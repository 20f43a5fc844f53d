// Fuzzes the web front end's HTTP side: arbitrary bytes, revealed in
// input-chosen pieces, go to a whole HTTP connection (HttpCodec in front of a
// real Broker) with a fake clock that ticks between pieces. Never a crash;
// every way the connection ends is a specific error (never INTERNAL, which
// would mean the codec's byte accounting broke); output stays bounded.

#include <cstdint>
#include <memory>
#include <string>

#include "broker/broker.h"
#include "broker/http/http_codec.h"
#include "core/status.h"
#include "google/protobuf/stubs/logging.h"

static const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t piece = 1 + data[0] % 64;
  const absl::Duration step = absl::Milliseconds(data[1] * 50);
  const absl::string_view input(reinterpret_cast<const char*>(data + 2),
                                size - 2);
  manifold::BrokerOptions options;
  options.set_max_outbound_bytes(64 * 1024);
  options.set_max_payload_bytes(1024);
  options.set_max_frame_bytes(4096);
  manifold::Broker broker(options);
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  manifold::HttpOptions http;
  http.max_header_bytes = 512;
  http.max_pipelined_requests = 4;
  // A native subscriber and server on the same bus, so publishes and
  // requests reach someone.
  manifold::Connection& c =
      broker.Accept(manifold::PeerInfo{"fuzz"}, now,
                    std::make_unique<manifold::HttpCodec>(http));
  const manifold::ConnectionId id = c.id();
  for (size_t at = 0; at < input.size(); at += piece) {
    manifold::Connection* conn = broker.FindConnection(id);
    if (conn == nullptr) break;
    if (conn->WantsRead()) conn->Receive(input.substr(at, piece), now);
    broker.Process(now);
    now += step;
    broker.Tick(now);
    broker.Process(now);
    conn = broker.FindConnection(id);
    if (conn == nullptr) break;
    if (conn->PendingOutputBytes() > options.max_outbound_bytes() +
                                         2 * options.max_frame_bytes() +
                                         64 * 1024) {
      __builtin_trap();
    }
    conn->Consume(conn->PendingOutputBytes());
    if (conn->ShouldClose()) {
      if (manifold::WireCode(conn->close_reason()) ==
          manifold::wire::INTERNAL) {
        __builtin_trap();
      }
      broker.Close(id, "fuzz done", now);
      break;
    }
  }
  return 0;
}
