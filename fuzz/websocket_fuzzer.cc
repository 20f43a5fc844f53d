// Fuzzes the web front end's WebSocket side: after a valid upgrade to one of
// /ws (manifold.v1), /ws (manifold.json) or /nats (the first input byte
// chooses), arbitrary frame bytes, revealed in input-chosen pieces, reach
// wslay and the protocol inside. Never a crash; the connection ends only with
// a specific error (never INTERNAL: every operation found bytes to take);
// output stays bounded.

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
  static const char* const kUpgrades[] = {
      "GET /ws HTTP/1.1\r\nSec-WebSocket-Protocol: manifold.v1\r\n",
      "GET /ws HTTP/1.1\r\nSec-WebSocket-Protocol: manifold.json\r\n",
      "GET /nats HTTP/1.1\r\n",
  };
  const std::string upgrade = std::string(kUpgrades[data[0] % 3]) +
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
  const size_t piece = 1 + data[1] % 64;
  const absl::string_view frames(reinterpret_cast<const char*>(data + 2),
                                 size - 2);
  manifold::BrokerOptions options;
  options.set_max_outbound_bytes(64 * 1024);
  options.set_max_payload_bytes(1024);
  options.set_max_frame_bytes(4096);
  manifold::Broker broker(options);
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  manifold::Connection& c = broker.Accept(
      manifold::PeerInfo{"fuzz"}, now, std::make_unique<manifold::HttpCodec>());
  const manifold::ConnectionId id = c.id();
  c.Receive(upgrade, now);
  broker.Process(now);
  for (size_t at = 0; at <= frames.size(); at += piece) {
    manifold::Connection* conn = broker.FindConnection(id);
    if (conn == nullptr) break;
    if (at < frames.size() && conn->WantsRead()) {
      conn->Receive(frames.substr(at, piece), now);
    }
    broker.Process(now);
    now += absl::Seconds(1);
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
